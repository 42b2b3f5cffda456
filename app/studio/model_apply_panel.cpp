#include "model_apply_panel.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <QAction>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QToolButton>
#include <QVBoxLayout>

#include "duration_text.h"
#include "factorization_service.h"
#include "mdbf/model/architecture.h"
#include "mdbf/widgets/layer_error_bar_plot.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "studio_document.h"

namespace mdbf::studio {

namespace {

/// "3·q", "3·gate", "head": short enough to stand rotated under a bar.
QString tickLabel(const QString& key)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(key.toStdString());
    if (id && id->block >= 0 && id->projection < model::kBlockProjectionCount) {
        const std::string_view tick = model::blockProjections()[id->projection].tick;
        return QStringLiteral("%1·%2").arg(id->block).arg(QString::fromUtf8(tick.data(), static_cast<qsizetype>(tick.size())));
    }
    if (id && id->role == model::TensorRole::Head) return QStringLiteral("head");
    return key.section(QLatin1Char('.'), -1);
}

/// The fixed colour of a layer's group: its projection's index, the head after them (−1: other).
int colorIndexOf(const QString& key)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(key.toStdString());
    if (!id) return -1;
    if (id->projection < model::kBlockProjectionCount) return static_cast<int>(id->projection);
    return id->role == model::TensorRole::Head ? static_cast<int>(model::kBlockProjectionCount) : -1;
}

/// The colour group of a layer: its projection's short name ("up_proj") or "lm_head".
QString categoryOf(const QString& key)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(key.toStdString());
    if (!id) return key.section(QLatin1Char('.'), -1);
    return QString::fromUtf8(id->label.data(), static_cast<qsizetype>(id->label.size()));
}

}  // namespace

ModelApplyPanel::ModelApplyPanel(FactorizationService* service, StudioDocument* document, QWidget* parent)
    : QWidget(parent), m_service(service), m_document(document), m_layers(document->layers())
{
    m_cancelAction = new QAction(tr("Cancel Appl&y"), this);
    m_cancelAction->setToolTip(tr("Stop applying; the layers already done stay in the configuration"));
    m_cancelAction->setEnabled(false);
    connect(m_cancelAction, &QAction::triggered, m_service, &FactorizationService::cancelApply);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 2, 4, 2);
    layout->setSpacing(2);

    auto* top = new QHBoxLayout();
    m_status = new QLabel(this);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_status->setWordWrap(true);  // a long report must not widen the dock area and squeeze the Layers panel
    m_status->setToolTip(tr("The last Apply to Model: settings, layers factorized (reused from the cache), layers "
                            "kept dense, and the model's bits per weight"));
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1000);
    m_progress->setFixedWidth(180);
    m_progress->setMaximumHeight(18);
    m_progress->setToolTip(tr("Layers done of those to compute, and the work done weighted by layer size and iterations"));
    m_progress->hide();
    m_eta = new QLabel(this);
    m_eta->setToolTip(tr("Estimated time left, from the work done so far"));
    m_eta->hide();
    m_cancel = new QToolButton(this);
    m_cancel->setDefaultAction(m_cancelAction);
    m_cancel->setText(tr("Cancel"));
    m_cancel->hide();
    top->addWidget(m_status, 1);
    top->addWidget(m_progress);
    top->addWidget(m_eta);
    top->addWidget(m_cancel);
    layout->addLayout(top);

    m_plot = new widgets::LayerErrorBarPlot(this);
    m_plot->setMinimumHeight(140);
    layout->addWidget(m_plot, 1);

    m_denseLabel = new QLabel(this);
    m_denseLabel->setWordWrap(true);
    m_denseLabel->setStyleSheet(QStringLiteral("color: #8c510a;"));
    m_denseLabel->setToolTip(tr("Layers whose bit budget cannot pay for k ≥ max(1, l): they stay at stored precision"));
    m_denseLabel->hide();
    layout->addWidget(m_denseLabel);

    connect(m_plot, &widgets::LayerErrorBarPlot::barClicked, m_document, &StudioDocument::setCurrentLayer);
    connect(m_document, &StudioDocument::currentLayerChanged, m_plot, &widgets::LayerErrorBarPlot::setHighlighted);
    connect(m_service, &FactorizationService::applyStarted, this, &ModelApplyPanel::onStarted);
    connect(m_service, &FactorizationService::applyProgress, this, &ModelApplyPanel::onProgress);
    connect(m_service, &FactorizationService::applyLayerDone, this, [this] { updateStatus(); });
    connect(m_service, &FactorizationService::applyEnded, this, &ModelApplyPanel::onEnded);
    connect(m_document, &StudioDocument::configurationChanged, this, &ModelApplyPanel::showChart);
    connect(m_document, &StudioDocument::sessionChanged, this, &ModelApplyPanel::onEnded);
    updateStatus();
}

void ModelApplyPanel::onStarted(int jobLayers)
{
    m_fraction = 0.0;
    m_clock.start();
    showChart();  // the kept-dense markers of this apply
    if (jobLayers == 0) return;
    m_progress->setValue(0);
    m_progress->setFormat(tr("0/%1 · %p%").arg(jobLayers));
    m_progress->show();
    m_eta->setText(tr("ETA …"));
    m_eta->show();
    m_cancelAction->setEnabled(true);
    m_cancel->show();
    updateStatus();
}

void ModelApplyPanel::onProgress(double fraction, const QString& layer)
{
    const auto& report = m_service->applyReport();
    if (!report) return;
    m_fraction = fraction;
    m_progress->setValue(static_cast<int>(std::lround(fraction * 1000.0)));
    m_progress->setFormat(tr("%1/%2 · %p%").arg(report->computed).arg(report->jobLayers));
    if (!layer.isEmpty())
        m_progress->setToolTip(tr("Layers done of those to compute, and the work done weighted by layer size and "
                                  "iterations. Now: %1")
                                   .arg(layer));
    m_eta->setText(etaText());
}

QString ModelApplyPanel::etaText() const
{
    if (!m_service->isApplying()) return {};
    const double elapsed = static_cast<double>(m_clock.elapsed()) / 1000.0;
    // Too little done for a stable rate: say so rather than show a wild number.
    if (m_fraction < 0.02 && elapsed < 2.0) return tr("ETA …");
    if (m_fraction <= 0.0) return tr("ETA …");
    return tr("ETA %1").arg(durationText(elapsed * (1.0 - m_fraction) / m_fraction));
}

void ModelApplyPanel::onEnded()
{
    m_progress->hide();
    m_eta->hide();
    m_cancel->hide();
    m_cancelAction->setEnabled(false);
    showChart();
}

QString ModelApplyPanel::statusText() const { return m_status->text(); }

void ModelApplyPanel::updateStatus()
{
    const auto& report = m_service->applyReport();
    if (!report) {
        m_status->setText(m_document->session() ? tr("Model ▸ Apply Settings applies the inspector's settings to all or "
                                                     "the selected layers; their errors appear here.")
                                                : tr("Open a model to apply settings to its layers."));
        m_denseLabel->hide();
        return;
    }
    const FactorizationService::ApplyReport& r = *report;
    // Once it is over, the report is of the last apply; what follows it (undo, other applies) shows
    // in the configuration's own figures at the end.
    QString text = (m_service->isApplying() ? tr("<b>%1</b> → %2 of %3 layers factorized")
                                            : tr("Last apply: <b>%1</b> → %2 of %3 layers factorized"))
                       .arg(r.description)
                       .arg(r.cached + r.computed)
                       .arg(r.requested);
    if (r.cached > 0) text += tr(" (%1 reused)").arg(r.cached);
    if (r.dense > 0) text += tr(" · %1 kept dense").arg(r.dense);
    if (m_service->isApplying()) text += tr(" · running…");
    else if (!r.outcome.isEmpty()) text += QStringLiteral(" · <b>%1</b>").arg(r.outcome.toHtmlEscaped());
    else text += tr(" · done in %1 s").arg(r.seconds, 0, 'f', 1);
    if (m_document->session()) {
        const pipeline::ModelBits bits = accountConfiguration(m_document->session()->checkpoint(), m_document->configuration());
        const auto layers = static_cast<int>(m_document->configuration().size());
        text += tr(" · configuration now: %1 factorized, model %2 bpw")
                    .arg(layers == 1 ? tr("1 layer") : tr("%1 layers").arg(layers))
                    .arg(bits.modelBpw(), 0, 'f', 3);
    }
    m_status->setText(text);

    QStringList names;
    for (const auto& [key, reason] : r.keptDense) names << key;
    m_denseLabel->setVisible(!r.keptDense.empty());
    if (!r.keptDense.empty()) {
        m_denseLabel->setText(tr("Kept dense, budget too small for k ≥ max(1, l): %1 (%2)")
                                  .arg(names.join(QStringLiteral(", ")), r.keptDense.front().second));
    }
}

void ModelApplyPanel::showChart()
{
    const ModelConfiguration& config = m_document->configuration();
    static const std::vector<std::pair<QString, QString>> kNone;
    const auto& report = m_service->applyReport();
    const auto& keptDense = report ? report->keptDense : kNone;
    std::set<QString> objectives;
    std::vector<widgets::LayerErrorBar> entries;
    for (const QString& key : m_layers->layerKeys()) {
        const auto it = config.find(key);
        const bool configured = it != config.end() && it->second && it->second->result;
        const auto dense = std::find_if(keptDense.begin(), keptDense.end(), [&](const auto& d) { return d.first == key; });
        if (!configured && dense == keptDense.end()) continue;
        widgets::LayerErrorBar bar;
        bar.name = key;
        bar.label = tickLabel(key);
        bar.category = categoryOf(key);
        bar.colorIndex = colorIndexOf(key);
        if (configured) {
            const LayerFactorization& f = *it->second;
            const factor::FactorResult& r = *f.result;
            bar.error = r.finalError;
            const QString objective = QString::fromStdString(std::string(factor::objectiveName(r.objective)));
            objectives.insert(objective);
            bar.detail = tr("%1 l=%2 · k %3 · %4 bpw · %5")
                             .arg(r.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF"))
                             .arg(r.l)
                             .arg(r.k)
                             .arg(r.bpw, 0, 'f', 3)
                             .arg(!f.refined ? tr("closed form")
                                             : (f.complete ? tr("%1 iterations").arg(r.iterations)
                                                           : tr("refinement cancelled at %1").arg(r.iterations)));
            bar.detail += tr(" · error (%1)").arg(objective);
        } else {
            bar.dense = true;
            bar.detail = tr("kept dense: %1").arg(dense->second);
        }
        entries.push_back(std::move(bar));
    }
    m_plot->setObjectiveLabel(objectives.size() == 1 ? *objectives.begin()
                              : objectives.empty()   ? tr("plain")
                                                     : tr("objective of each layer"));
    m_plot->setEntries(std::move(entries));
    updateStatus();
}

}  // namespace mdbf::studio
