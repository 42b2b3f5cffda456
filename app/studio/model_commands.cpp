#include "model_commands.h"

#include <QAction>
#include <QKeySequence>
#include <QMessageBox>
#include <QPushButton>

#include "configuration_exporter.h"
#include "configuration_files.h"
#include "factorization_service.h"
#include "job_runner.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "plan_dialog.h"
#include "studio_document.h"

namespace mdbf::studio {

namespace {
constexpr int kMessageMs = 5000;
}

ModelCommands::ModelCommands(const Parts& parts, QObject* parent) : QObject(parent), m_parts(parts)
{
    m_applyAll = makeAction(tr("Apply Settings to &All Layers…"), QKeySequence(tr("Ctrl+Shift+Return")),
                            tr("Factorize every linear layer with the inspector's settings in the background"));
    connect(m_applyAll, &QAction::triggered, this, &ModelCommands::confirmApplyToAll);
    m_applySelected = makeAction(tr("Apply Settings to &Selected Layers"), QKeySequence(tr("Ctrl+Return")),
                                 tr("Factorize the layers (or groups) selected in the Layers panel with the inspector's settings"));
    connect(m_applySelected, &QAction::triggered, this, [this] { applySettingsToSelectedLayers(); });
    m_plan = makeAction(tr("&Plan at Budget…"), QKeySequence(),
                        tr("Choose format, l and bits per layer for a bpw budget (mdbf plan) and apply them as one "
                           "undoable step; with a calibration, the layers' output errors are weighed"));
    connect(m_plan, &QAction::triggered, this, &ModelCommands::planDialog);
    m_cancelPlan = makeAction(tr("Cancel P&lan"), QKeySequence(), tr("Stop the running plan; the configuration stays as it was"));
    connect(m_cancelPlan, &QAction::triggered, m_parts.service, &FactorizationService::cancelPlan);
    // Enabled only while a plan runs, as Cancel Apply is only while an apply runs.
    m_cancelPlan->setEnabled(false);
    connect(m_parts.service, &FactorizationService::planStarted, m_cancelPlan, [this] { m_cancelPlan->setEnabled(true); });
    connect(m_parts.service, &FactorizationService::planFinished, m_cancelPlan, [this] { m_cancelPlan->setEnabled(false); });
    connect(m_parts.service, &FactorizationService::planStopped, m_cancelPlan, [this] { m_cancelPlan->setEnabled(false); });
    m_revertSelected = makeAction(tr("&Revert Layer to Dense"), QKeySequence(tr("Ctrl+Backspace")),
                                  tr("Remove the selected layers from the configuration (they stay dense)"));
    connect(m_revertSelected, &QAction::triggered, this, &ModelCommands::revertSelectedLayers);
    m_revertAll = makeAction(tr("Revert &All Layers"), QKeySequence(), tr("Remove every factorized layer from the configuration"));
    connect(m_revertAll, &QAction::triggered, this, [this] { m_parts.document->revertLayers({}); });
    m_exportPackage = makeAction(tr("&Export Deployment Package…"), QKeySequence(tr("Ctrl+E")),
                                 tr("Write the configuration as an HDF5 package: factorized layers packed, everything else dense"));
    connect(m_exportPackage, &QAction::triggered, this, &ModelCommands::exportPackageDialog);
}

QAction* ModelCommands::makeAction(const QString& text, const QKeySequence& key, const QString& tip)
{
    auto* a = new QAction(text, this);
    if (!key.isEmpty()) a->setShortcut(key);
    a->setToolTip(tip);
    a->setStatusTip(tip);
    return a;
}

bool ModelCommands::requireModel()
{
    if (m_parts.document->session()) return true;
    emit statusMessage(tr("Open a model first"), kMessageMs);
    return false;
}

bool ModelCommands::applySettingsToLayers(const QStringList& layers)
{
    const bool started = m_parts.service->applyToModel(layers, m_parts.inspector->settings());
    if (!started) emit statusMessage(m_parts.service->refusalText(), kMessageMs);
    return started;
}

bool ModelCommands::applySettingsToAllLayers()
{
    return applySettingsToLayers(m_parts.document->layers()->defaultLayerKeys());
}

bool ModelCommands::applySettingsToSelectedLayers()
{
    const QStringList layers = m_parts.browser->selectedLayers();
    if (layers.isEmpty()) {
        emit statusMessage(tr("Select layers or groups in the Layers panel first (Ctrl/Shift-click for several)"), kMessageMs);
        return false;
    }
    return applySettingsToLayers(layers);
}

void ModelCommands::confirmApplyToAll()
{
    if (!requireModel()) return;
    const FactorSettings s = m_parts.inspector->settings();
    const QString method = s.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF l=%1").arg(s.l);
    auto* box = new QMessageBox(
        QMessageBox::Question, tr("Apply settings to all layers"),
        tr("Factorize all %1 projections of %2 with %3 at %4 bpw (%5 iterations, objective %6)?\n\n"
           "Layers already computed with these settings are reused; the rest run in the background with "
           "progress and Cancel in the Model panel. Layers whose budget cannot pay for k ≥ max(1, l) stay dense. "
           "The output head stays dense; select it to factorize it too.")
            .arg(m_parts.document->layers()->defaultLayerKeys().size())
            .arg(m_parts.document->session()->name(), method, QString::fromStdString(s.bpw.text()))
            .arg(s.iterations)
            .arg(s.objectiveLabel()),
        QMessageBox::NoButton, m_parts.window);
    box->setObjectName(QStringLiteral("applyAllDialog"));
    QPushButton* apply = box->addButton(tr("Apply"), QMessageBox::AcceptRole);
    box->addButton(QMessageBox::Cancel);
    box->setDefaultButton(apply);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::buttonClicked, this, [this, apply](QAbstractButton* button) {
        if (button == apply) applySettingsToAllLayers();
    });
    box->open();
}

void ModelCommands::planDialog()
{
    if (!requireModel()) return;
    const auto calibration = m_parts.document->calibration();
    const QString measured = m_parts.service->plansOnOutputs() ? calibration->description() : QString();
    auto* dialog = new PlanDialog(m_parts.inspector->settings().bpw.value(), measured, m_parts.window);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] {
        if (!m_parts.service->planAtBudget(dialog->options()))
            emit statusMessage(m_parts.service->refusalText(), kMessageMs);
    });
    dialog->open();
}

void ModelCommands::exportPackageDialog()
{
    if (!requireModel()) return;
    const QString path = m_parts.files->askSavePath(
        tr("Export deployment package"),
        QStringLiteral("%1-%2bpw").arg(m_parts.document->session()->name()).arg(m_parts.document->modelBpw(), 0, 'f', 2),
        QStringLiteral("h5"), tr("MDBF package (*.h5)"));
    if (!path.isEmpty()) exportPackage(path);
}

Job* ModelCommands::exportPackage(const QString& path)
{
    const StudioDocument* document = m_parts.document;
    Job* job = m_parts.exporter->exportPackage(document->session(), document->configuration(), path);
    if (job) {
        QString message = tr("Exporting %1 factorized layers to %2…").arg(document->configuration().size()).arg(path);
        // The package holds the configuration as it is now; layers an apply adds later are not in it.
        if (m_parts.service->isApplying()) message += tr(" (an apply is still running: only the layers done so far)");
        emit statusMessage(message, kMessageMs);
    }
    return job;
}

void ModelCommands::revertSelectedLayers()
{
    QStringList layers = m_parts.browser->selectedLayers();
    if (layers.isEmpty() && !m_parts.document->currentLayer().isEmpty()) layers << m_parts.document->currentLayer();
    if (!layers.isEmpty()) m_parts.document->revertLayers(layers);
}

}  // namespace mdbf::studio
