#include "studio_status_bar.h"

#include <QLabel>

#include "job_status_widget.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_configuration.h"
#include "model_session.h"
#include "studio_document.h"

namespace mdbf::studio {

StudioStatusBar::StudioStatusBar(StudioDocument* document, JobRunner* runner, QWidget* parent)
    : QStatusBar(parent), m_document(document)
{
    m_modelLabel = new QLabel(tr("no model"), this);
    m_modelLabel->setToolTip(tr("Open model: name, parameters, stored element type"));
    m_bpwLabel = new QLabel(this);
    m_bpwLabel->setToolTip(tr("Bits per weight of the whole model with the factorized layers swapped in "
                              "(and of the factorized layers alone)"));
    addPermanentWidget(new JobStatusWidget(runner, this));
    addPermanentWidget(m_bpwLabel);
    addPermanentWidget(m_modelLabel);
    setSizeGripEnabled(true);
    connect(m_document, &StudioDocument::configurationChanged, this, &StudioStatusBar::updateSummary);
    connect(m_document, &StudioDocument::sessionChanged, this, &StudioStatusBar::updateSummary);
    connect(m_document, &StudioDocument::calibrationChanged, this,
            [this](std::shared_ptr<const StudioCalibration> calibration) {
                if (calibration) showMessage(calibration->description(), 5000);
            });
}

QString StudioStatusBar::summaryText() const { return m_modelLabel->text() + QStringLiteral(" · ") + m_bpwLabel->text(); }

void StudioStatusBar::updateSummary()
{
    const auto& session = m_document->session();
    if (!session) {
        m_modelLabel->setText(tr("no model"));
        m_bpwLabel->setText(QString());
        return;
    }
    m_modelLabel->setText(tr("<b>%1</b> · %2 params · %3")
                              .arg(session->name(), widgets::compactCount(session->parameterCount()), session->dominantDtype()));
    const pipeline::ModelBits bits = accountConfiguration(session->checkpoint(), m_document->configuration());
    QString text = tr("model %1 bpw").arg(bits.modelBpw(), 0, 'f', 3);
    if (bits.factorizedWeights > 0) text += tr(" (factorized layers %1)").arg(bits.factorizedBpw(), 0, 'f', 3);
    text += tr(" · %1/%2 layers factorized")
                .arg(m_document->configuration().size())
                .arg(m_document->layers()->factorizableCount());
    m_bpwLabel->setText(text);
}

}  // namespace mdbf::studio
