#include "main_window.h"

#include <cmath>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QTreeView>
#include <QUndoStack>

#include <Eigen/Core>
#include <qcustomplot.h>

#include "configuration_exporter.h"
#include "configuration_files.h"
#include "factorization_service.h"
#include "generate_panel.h"
#include "job_runner.h"
#include "job_status_widget.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_apply_panel.h"
#include "model_session.h"
#include "perplexity_panel.h"
#include "plan_dialog.h"
#include "studio_document.h"
#include "studio_settings.h"

#ifndef MDBF_VERSION
#define MDBF_VERSION "0.0.0"
#endif

namespace mdbf::studio {

using widgets::LayerTreeModel;

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), m_runner(new JobRunner(this))
{
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("MDBF Studio"));
    initStudioResources();
    setWindowIcon(QIcon(QStringLiteral(":/icons/mdbf-studio.svg")));
    setAcceptDrops(true);
    setDockNestingEnabled(true);

    m_document = new StudioDocument(this);
    m_browser = new LayerBrowserDock(this);
    m_service = new FactorizationService(m_runner, m_document, m_browser->model(), this);
    m_inspector = new LayerInspectorPanel(m_service, m_document, this);
    setCentralWidget(m_inspector);
    addDockWidget(Qt::LeftDockWidgetArea, m_browser);

    m_perplexity = new PerplexityPanel(m_runner, m_document, this);
    auto* pplDock = new QDockWidget(tr("Perplexity"), this);
    pplDock->setObjectName(QStringLiteral("perplexityDock"));
    pplDock->setToolTip(tr("Perplexity of the original and the configured model on a text"));
    pplDock->setWidget(m_perplexity);
    addDockWidget(Qt::BottomDockWidgetArea, pplDock);
    m_perplexityDock = pplDock;

    m_applyPanel = new ModelApplyPanel(m_service, m_document, m_browser->model(), this);
    m_modelDock = new QDockWidget(tr("Model"), this);
    m_modelDock->setObjectName(QStringLiteral("modelDock"));
    m_modelDock->setToolTip(tr("Apply to Model: progress of the running apply and the error of every factorized layer"));
    m_modelDock->setWidget(m_applyPanel);
    addDockWidget(Qt::BottomDockWidgetArea, m_modelDock);
    tabifyDockWidget(pplDock, m_modelDock);
    m_generate = new GeneratePanel(m_runner, m_document, this);
    m_generateDock = new QDockWidget(tr("Generate"), this);
    m_generateDock->setObjectName(QStringLiteral("generateDock"));
    m_generateDock->setToolTip(tr("One prompt through the original and the configured model, side by side"));
    m_generateDock->setWidget(m_generate);
    addDockWidget(Qt::BottomDockWidgetArea, m_generateDock);
    tabifyDockWidget(m_modelDock, m_generateDock);
    pplDock->raise();
    m_exporter = new ConfigurationExporter(m_runner, this);
    m_files = new ConfigurationFiles(this, m_document, m_exporter, m_service, m_browser->model());
    // The bottom dock spans only the centre, as in the layout sketch: the Layers dock keeps the left edge.
    setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);

    m_modelLabel = new QLabel(tr("no model"), this);
    m_modelLabel->setToolTip(tr("Open model: name, parameters, stored element type"));
    m_bpwLabel = new QLabel(this);
    m_bpwLabel->setToolTip(tr("Bits per weight of the whole model with the factorized layers swapped in "
                              "(and of the factorized layers alone)"));
    m_jobStatus = new JobStatusWidget(m_runner, this);
    statusBar()->addPermanentWidget(m_jobStatus);
    statusBar()->addPermanentWidget(m_bpwLabel);
    statusBar()->addPermanentWidget(m_modelLabel);
    statusBar()->setSizeGripEnabled(true);

    createMenus();

    connect(m_browser, &LayerBrowserDock::layerSelected, this, &MainWindow::onLayerSelected);
    connect(m_browser, &LayerBrowserDock::layerSelected, m_applyPanel, &ModelApplyPanel::setCurrentLayer);
    connect(m_document, &StudioDocument::layerChanged, this, &MainWindow::onLayerChanged);
    connect(m_document, &StudioDocument::configurationChanged, this, &MainWindow::updateModelSummary);
    connect(m_document, &StudioDocument::modifiedChanged, this, &QWidget::setWindowModified);
    connect(m_files, &ConfigurationFiles::errorReported, this, &MainWindow::showError);
    connect(m_files, &ConfigurationFiles::statusMessage, this, [this](const QString& m) { statusBar()->showMessage(m, 5000); });
    connect(m_applyPanel, &ModelApplyPanel::layerClicked, this, [this](const QString& layer) { m_browser->selectLayer(layer); });
    connect(m_service, &FactorizationService::applyStarted, this, [this] {
        m_modelDock->show();
        m_modelDock->raise();
    });
    connect(m_service, &FactorizationService::applyEnded, this, [this](bool cancelled) {
        statusBar()->showMessage(cancelled ? tr("Apply cancelled; the layers already done stay applied")
                                           : tr("Settings applied"),
                                 5000);
    });
    connect(m_service, &FactorizationService::planFinished, this, [this](std::shared_ptr<const pipeline::ModelPlan> plan) {
        statusBar()->showMessage(tr("Planned %1 layers at %2 bpw (%3 trials); applying them")
                                     .arg(plan->layers.size())
                                     .arg(plan->bits.factorizedBpw(), 0, 'f', 3)
                                     .arg(plan->trials),
                                 5000);
    });
    connect(m_service, &FactorizationService::planStopped, this, [this](bool cancelled, const QString& message) {
        if (cancelled) statusBar()->showMessage(tr("Plan cancelled; the configuration is unchanged"), 5000);
        else showError(tr("Planning failed"), message);
    });
    connect(m_service, &FactorizationService::applyFailed, this,
            [this](const QString& message) { showError(tr("Applying the settings failed"), message); });
    connect(m_document, &StudioDocument::calibrationChanged, this,
            [this](std::shared_ptr<const StudioCalibration> calibration) {
                if (calibration) statusBar()->showMessage(calibration->description(), 5000);
            });
    connect(m_perplexity, &PerplexityPanel::calibrationFailed, this,
            [this](const QString& message) { showError(tr("Calibration failed"), message); });
    connect(m_perplexity, &PerplexityPanel::studyLoadFailed, this, &MainWindow::showError);
    connect(m_generate, &GeneratePanel::generationFailed, this,
            [this](const QString& message) { showError(tr("Generation failed"), message); });
    connect(m_service, &FactorizationService::modelOpened, this,
            [this](const QString&, std::shared_ptr<const ModelSession> session) { adoptSession(std::move(session)); });
    connect(m_service, &FactorizationService::modelOpenFailed, this, [this](const QString& path, const QString& message) {
        statusBar()->clearMessage();
        showError(tr("Could not open model"), tr("%1\n\n%2").arg(path, message));
        emit modelLoadFailed(message);
    });
    connect(m_service, &FactorizationService::modelOpenCancelled, this, [this] { statusBar()->clearMessage(); });
    connect(m_service, &FactorizationService::layerNormReady, m_browser->model(), &widgets::LayerTreeModel::setNorm);
    connect(m_exporter, &ConfigurationExporter::exportFailed, this, &MainWindow::showError);
    connect(m_exporter, &ConfigurationExporter::packageExported, this, &MainWindow::onPackageExported);
    connect(m_exporter, &ConfigurationExporter::packageCancelled, this, [this](const QString& path) {
        statusBar()->showMessage(tr("Export of %1 cancelled; nothing was written").arg(path), 5000);
    });
    connect(m_exporter, &ConfigurationExporter::configExported, this, [this](const QString& path) {
        statusBar()->showMessage(tr("Configuration written to %1").arg(path), 5000);
        emit configurationExported(path);
    });

    QSettings settings;
    if (!restoreGeometry(settings.value(QStringLiteral("mainWindow/geometry")).toByteArray())) resize(1440, 900);
    for (QSplitter* splitter : findChildren<QSplitter*>()) {
        if (splitter->objectName().isEmpty()) continue;
        splitter->restoreState(settings.value(QStringLiteral("splitters/") + splitter->objectName()).toByteArray());
    }
    m_needsDefaultLayout = !restoreState(settings.value(QStringLiteral("mainWindow/state")).toByteArray());
    updateModelSummary();
}

MainWindow::~MainWindow() { m_runner->shutdown(); }

const std::shared_ptr<const ModelSession>& MainWindow::session() const { return m_document->session(); }

const ModelConfiguration& MainWindow::configuration() const { return m_document->configuration(); }

void MainWindow::createMenus()
{
    auto add = [this](QMenu* menu, const QString& text, const QKeySequence& key, const QString& tip, auto&& slot) {
        QAction* a = menu->addAction(text);
        if (!key.isEmpty()) a->setShortcut(key);
        a->setToolTip(tip);
        a->setStatusTip(tip);
        connect(a, &QAction::triggered, this, std::forward<decltype(slot)>(slot));
        return a;
    };

    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->setToolTipsVisible(true);
    add(file, tr("&Open Model Folder…"), QKeySequence::Open, tr("Open a Hugging Face model folder"),
        [this] { openFolderDialog(); });
    add(file, tr("Open &Configuration…"), QKeySequence(tr("Ctrl+Shift+O")),
        tr("Apply a quantization config (JSON, as mdbf quantize --config takes) to the open model"),
        [this] { m_files->openDialog(); });
    add(file, tr("Open &Demo Model"), QKeySequence(tr("Ctrl+Shift+D")), tr("Open the tiny-llama model shipped with the studio"),
        [this] { openModel(demoModelPath()); });
    m_recentMenu = file->addMenu(tr("Open &Recent"));
    m_recentMenu->setToolTipsVisible(true);
    rebuildRecentMenu();
    file->addSeparator();
    add(file, tr("&Export Deployment Package…"), QKeySequence(tr("Ctrl+E")),
        tr("Write the configuration as an HDF5 package: factorized layers packed, everything else dense"),
        [this] { exportPackageDialog(); });
    add(file, tr("&Save Configuration"), QKeySequence::Save,
        tr("Save the per-layer settings in use as a quantization config for mdbf quantize --config"),
        [this] { m_files->save(); });
    add(file, tr("Save Configuration &As…"), QKeySequence(tr("Ctrl+Shift+S")),
        tr("Save the configuration to a new file"), [this] { m_files->saveAs(); });
    file->addSeparator();
    add(file, tr("&Quit"), QKeySequence::Quit, tr("Cancel running jobs and close the studio"), [this] { close(); });

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QAction* undo = m_document->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    undo->setToolTip(tr("Undo the last change to the configuration (its name is in the menu)"));
    QAction* redo = m_document->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setShortcut(QKeySequence::Redo);
    redo->setToolTip(tr("Redo the change last undone"));
    edit->addAction(undo);
    edit->addAction(redo);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->setToolTipsVisible(true);
    QAction* layersToggle = m_browser->toggleViewAction();
    layersToggle->setShortcut(QKeySequence(tr("Ctrl+L")));
    layersToggle->setToolTip(tr("Show or hide the Layers panel"));
    view->addAction(layersToggle);
    QAction* pplToggle = m_perplexityDock->toggleViewAction();
    pplToggle->setShortcut(QKeySequence(tr("Ctrl+Shift+L")));
    pplToggle->setToolTip(tr("Show or hide the Perplexity panel"));
    view->addAction(pplToggle);
    QAction* modelToggle = m_modelDock->toggleViewAction();
    modelToggle->setShortcut(QKeySequence(tr("Ctrl+Shift+M")));
    modelToggle->setToolTip(tr("Show or hide the Model panel (apply progress and per-layer errors)"));
    view->addAction(modelToggle);
    QAction* generateToggle = m_generateDock->toggleViewAction();
    generateToggle->setShortcut(QKeySequence(tr("Ctrl+Shift+G")));
    generateToggle->setToolTip(tr("Show or hide the Generate panel (original and configured model side by side)"));
    view->addAction(generateToggle);
    view->addSeparator();
    view->addActions(m_inspector->tabActions());

    QMenu* layer = menuBar()->addMenu(tr("&Layer"));
    layer->setToolTipsVisible(true);
    add(layer, tr("&Next Layer"), QKeySequence(tr("Alt+Down")), tr("Select the next factorizable layer"),
        [this] { m_browser->stepLayer(+1); });
    add(layer, tr("&Previous Layer"), QKeySequence(tr("Alt+Up")), tr("Select the previous factorizable layer"),
        [this] { m_browser->stepLayer(-1); });
    layer->addSeparator();
    layer->addAction(m_inspector->applyAction());
    layer->addSeparator();
    for (QAction* action : m_inspector->layerActions()) {
        if (action) layer->addAction(action);
        else layer->addSeparator();
    }
    QAction* revert = add(layer, tr("&Revert Layer to Dense"), QKeySequence(tr("Ctrl+Backspace")),
                          tr("Remove the selected layers from the configuration (they stay dense)"),
                          [this] { revertSelectedLayers(); });

    QMenu* model = menuBar()->addMenu(tr("&Model"));
    model->setToolTipsVisible(true);
    add(model, tr("Perplexity of &Original"), QKeySequence(tr("Ctrl+P")), tr("Evaluate the stored model on the chosen text"),
        [this] { m_perplexity->evaluateOriginal(); });
    add(model, tr("Perplexity of &Configuration"), QKeySequence(tr("Ctrl+Shift+P")),
        tr("Evaluate the model with every factorized layer swapped in"), [this] { m_perplexity->evaluateConfiguration(); });
    add(model, tr("Ca&librate"), QKeySequence(),
        tr("Collect the layers' input statistics on the Perplexity panel's text, enabling the diag and gram objectives"),
        [this] { m_perplexity->calibrate(); });
    add(model, tr("Load &Study…"), QKeySequence(),
        tr("Show the perplexity-vs-bpw points of a study.json (mdbf study) for this model in the Perplexity panel"),
        [this] {
            m_perplexityDock->show();
            m_perplexityDock->raise();
            m_perplexity->loadStudyDialog();
        });
    model->addSeparator();
    add(model, tr("Apply Settings to &All Layers…"), QKeySequence(tr("Ctrl+Shift+Return")),
        tr("Factorize every linear layer with the inspector's settings in the background"), [this] { confirmApplyToAll(); });
    QAction* applySelected =
        add(model, tr("Apply Settings to &Selected Layers"), QKeySequence(tr("Ctrl+Return")),
            tr("Factorize the layers (or groups) selected in the Layers panel with the inspector's settings"),
            [this] { applySettingsToSelectedLayers(); });
    model->addAction(m_applyPanel->cancelAction());
    model->addSeparator();
    add(model, tr("&Plan at Budget…"), QKeySequence(),
        tr("Choose format, l and bits per layer for a bpw budget (mdbf plan) and apply them as one undoable step"),
        [this] { planDialog(); });
    QAction* cancelPlan = add(model, tr("Cancel P&lan"), QKeySequence(),
                              tr("Stop the running plan; the configuration stays as it was"),
                              [this] { m_service->cancelPlan(); });
    // Enabled only while a plan runs, as Cancel Apply is only while an apply runs.
    cancelPlan->setEnabled(false);
    connect(m_service, &FactorizationService::planStarted, cancelPlan, [cancelPlan] { cancelPlan->setEnabled(true); });
    connect(m_service, &FactorizationService::planFinished, cancelPlan, [cancelPlan] { cancelPlan->setEnabled(false); });
    connect(m_service, &FactorizationService::planStopped, cancelPlan, [cancelPlan] { cancelPlan->setEnabled(false); });
    model->addSeparator();
    add(model, tr("Revert &All Layers"), QKeySequence(), tr("Remove every factorized layer from the configuration"),
        [this] { m_document->revertLayers({}); });
    m_browser->addContextAction(applySelected);
    m_browser->addContextAction(revert);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->setToolTipsVisible(true);
    add(help, tr("&About MDBF Studio"), QKeySequence::HelpContents, tr("Versions and what the studio does"),
        [this] { showAbout(); });
    add(help, tr("About &Qt"), QKeySequence(), tr("The Qt version in use"), [] { QApplication::aboutQt(); });
}

void MainWindow::rebuildRecentMenu()
{
    m_recentMenu->clear();
    const QStringList recent = recentModels();
    for (const QString& dir : recent) {
        QAction* a = m_recentMenu->addAction(QFileInfo(dir).fileName() + QStringLiteral("  —  ") + dir);
        a->setToolTip(tr("Open %1").arg(dir));
        connect(a, &QAction::triggered, this, [this, dir] { openModel(dir); });
    }
    if (!recent.isEmpty()) {
        m_recentMenu->addSeparator();
        QAction* clear = m_recentMenu->addAction(tr("Clear List"));
        clear->setToolTip(tr("Forget the recently opened models"));
        connect(clear, &QAction::triggered, this, [this] {
            clearRecentModels();
            rebuildRecentMenu();
        });
    }
    m_recentMenu->setEnabled(!recent.isEmpty());
}

void MainWindow::openFolderDialog()
{
    const QString start = m_document->session() ? QString::fromStdString(m_document->session()->directory().parent_path().string()) : QDir::homePath();
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open model folder"), start);
    if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::openModel(const QString& dir)
{
    m_files->whenDiscardable(tr("opening another model"), [this, dir] { startLoading(dir); });
}

void MainWindow::startLoading(const QString& dir)
{
    const QString path = QDir::cleanPath(QFileInfo(dir).absoluteFilePath());
    statusBar()->showMessage(tr("Opening %1…").arg(path));
    m_service->openModel(path);
}

void MainWindow::adoptSession(std::shared_ptr<const ModelSession> session)
{
    m_document->setSession(std::move(session));
    m_browser->model()->clearFactorization(QString());
    m_browser->model()->setGroups(
        widgets::groupLayers(m_document->session()->checkpoint().tensors(), m_document->session()->config().tieWordEmbeddings));
    const QString dir = QString::fromStdString(m_document->session()->directory().string());
    addRecentModel(dir);
    rebuildRecentMenu();
    setWindowTitle(tr("%1[*] — MDBF Studio").arg(m_document->session()->name()));
    statusBar()->showMessage(tr("Opened %1").arg(dir), 5000);
    updateModelSummary();
    m_service->computeNorms(m_browser->model()->tensorsWithoutNorm());
    m_browser->stepLayer(+1);  // selects the first projection so the inspector shows something at once
    emit modelLoaded(m_document->session()->name());
}

void MainWindow::onLayerSelected(const QString& key)
{
    m_inspector->setLayer(key.isEmpty() ? nullptr : m_browser->model()->layer(key));
}

void MainWindow::onLayerChanged(const QString& layer, std::shared_ptr<const LayerFactorization> f)
{
    if (!f || !f->result) {
        m_browser->model()->clearFactorization(layer);
        return;
    }
    const auto& r = *f->result;
    widgets::LayerFactorSummary s;
    s.method = r.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF");
    s.l = r.l;
    s.k = r.k;
    s.bpw = r.bpw;
    s.error = r.finalError;
    s.objective = QString::fromStdString(std::string(factor::objectiveName(r.objective)));
    s.refined = f->refined && f->complete;
    m_browser->model()->setFactorization(layer, s);
}

bool MainWindow::applySettingsToLayers(const QStringList& layers)
{
    const bool started = m_service->applyToModel(layers, m_inspector->settings());
    if (!started) statusBar()->showMessage(m_service->refusalText(), 5000);
    return started;
}

bool MainWindow::applySettingsToAllLayers() { return applySettingsToLayers(m_browser->model()->defaultLayerKeys()); }

bool MainWindow::applySettingsToSelectedLayers()
{
    const QStringList layers = m_browser->selectedLayers();
    if (layers.isEmpty()) {
        statusBar()->showMessage(tr("Select layers or groups in the Layers panel first (Ctrl/Shift-click for several)"), 5000);
        return false;
    }
    return applySettingsToLayers(layers);
}

void MainWindow::planDialog()
{
    if (!m_document->session()) {
        statusBar()->showMessage(tr("Open a model first"), 5000);
        return;
    }
    auto* dialog = new PlanDialog(m_inspector->settings().bpw.value(), this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] {
        if (!m_service->planAtBudget(dialog->options())) statusBar()->showMessage(m_service->refusalText(), 5000);
    });
    dialog->open();  // window-modal without a nested event loop
}

void MainWindow::confirmApplyToAll()
{
    if (!m_document->session()) {
        statusBar()->showMessage(tr("Open a model first"), 5000);
        return;
    }
    const FactorSettings s = m_inspector->settings();
    const QString method = s.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF l=%1").arg(s.l);
    auto* box = new QMessageBox(
        QMessageBox::Question, tr("Apply settings to all layers"),
        tr("Factorize all %1 projections of %2 with %3 at %4 bpw (%5 iterations, objective %6)?\n\n"
           "Layers already computed with these settings are reused; the rest run in the background with "
           "progress and Cancel in the Model panel. Layers whose budget cannot pay for k ≥ max(1, l) stay dense. "
           "The output head stays dense; select it to factorize it too.")
            .arg(m_browser->model()->defaultLayerKeys().size())
            .arg(m_document->session()->name(), method, QString::fromStdString(s.bpw.text()))
            .arg(s.iterations)
            .arg(s.objectiveLabel()),
        QMessageBox::NoButton, this);
    box->setObjectName(QStringLiteral("applyAllDialog"));
    QPushButton* apply = box->addButton(tr("Apply"), QMessageBox::AcceptRole);
    box->addButton(QMessageBox::Cancel);
    box->setDefaultButton(apply);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::buttonClicked, this, [this, apply](QAbstractButton* button) {
        if (button == apply) applySettingsToAllLayers();
    });
    box->open();  // window-modal without a nested event loop
}

void MainWindow::exportPackageDialog()
{
    if (!m_document->session()) {
        statusBar()->showMessage(tr("Open a model first"), 5000);
        return;
    }
    const QString path = m_files->askSavePath(tr("Export deployment package"),
                                              QStringLiteral("%1-%2bpw").arg(m_document->session()->name()).arg(modelBpw(), 0, 'f', 2),
                                              QStringLiteral("h5"), tr("MDBF package (*.h5)"));
    if (!path.isEmpty()) exportPackage(path);
}

Job* MainWindow::exportPackage(const QString& path)
{
    Job* job = m_exporter->exportPackage(m_document->session(), m_document->configuration(), path);
    if (job) {
        QString message = tr("Exporting %1 factorized layers to %2…").arg(m_document->configuration().size()).arg(path);
        // The package holds the configuration as it is now; layers an apply adds later are not in it.
        if (m_service->isApplying()) message += tr(" (an apply is still running: only the layers done so far)");
        statusBar()->showMessage(message, 5000);
    }
    return job;
}

bool MainWindow::exportConfigurationJson(const QString& path)
{
    return m_files->saveTo(path);
}

void MainWindow::onPackageExported(const PackageExportSummary& summary)
{
    statusBar()->showMessage(tr("Wrote %1: %2 factorized layers, %3 dense tensors, model %4 bpw, %5 MB")
                                 .arg(summary.path)
                                 .arg(summary.factorizedLayers)
                                 .arg(summary.denseTensors)
                                 .arg(summary.modelBpw, 0, 'f', 3)
                                 .arg(static_cast<double>(summary.bytes) / (1024.0 * 1024.0), 0, 'f', 2),
                             10000);
    emit packageExported(summary.path);
}

void MainWindow::revertSelectedLayers()
{
    QStringList layers = m_browser->selectedLayers();
    if (layers.isEmpty() && !m_browser->currentLayer().isEmpty()) layers << m_browser->currentLayer();
    if (!layers.isEmpty()) m_document->revertLayers(layers);
}

std::shared_ptr<const StudioCalibration> MainWindow::calibration() const { return m_document->calibration(); }

double MainWindow::modelBpw() const { return m_document->modelBpw(); }

QString MainWindow::modelSummaryText() const { return m_modelLabel->text() + QStringLiteral(" · ") + m_bpwLabel->text(); }

void MainWindow::updateModelSummary()
{
    if (!m_document->session()) {
        m_modelLabel->setText(tr("no model"));
        m_bpwLabel->setText(QString());
        return;
    }
    m_modelLabel->setText(tr("<b>%1</b> · %2 params · %3")
                              .arg(m_document->session()->name(), widgets::compactCount(m_document->session()->parameterCount()),
                                   m_document->session()->dominantDtype()));
    const LayerTreeModel* model = m_browser->model();
    const pipeline::ModelBits bits = accountConfiguration(m_document->session()->checkpoint(), m_document->configuration());
    QString text = tr("model %1 bpw").arg(bits.modelBpw(), 0, 'f', 3);
    if (bits.factorizedWeights > 0) text += tr(" (factorized layers %1)").arg(bits.factorizedBpw(), 0, 'f', 3);
    text += tr(" · %1/%2 layers factorized").arg(m_document->configuration().size()).arg(model->factorizableCount());
    m_bpwLabel->setText(text);
}

void MainWindow::showError(const QString& title, const QString& message)
{
    m_lastError = title + QStringLiteral(": ") + message;
    if (m_errorBox) m_errorBox->close();
    // Non-modal, so a failure never blocks the window (or a test driving it).
    auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
    box->setObjectName(QStringLiteral("errorDialog"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setWindowModality(Qt::NonModal);
    box->show();
    m_errorBox = box;
    emit errorReported(title, message);
}

void MainWindow::showAbout()
{
    QMessageBox::about(
        this, tr("About MDBF Studio"),
        tr("<h3>MDBF Studio %1</h3>"
           "<p>Compress the linear layers of language models to 1–2 bits per weight with Double Binary "
           "Factorization (DBF) and Multi-Envelope DBF, and see what it does to every layer and to the model.</p>"
           "<p>Qt %2 (built with %3) · QCustomPlot %4 · Eigen %5.%6.%7</p>")
            .arg(QStringLiteral(MDBF_VERSION), QString::fromLatin1(qVersion()), QStringLiteral(QT_VERSION_STR),
                 QStringLiteral(QCUSTOMPLOT_VERSION_STR))
            .arg(EIGEN_WORLD_VERSION)
            .arg(EIGEN_MAJOR_VERSION)
            .arg(EIGEN_MINOR_VERSION));
}

void MainWindow::showEvent(QShowEvent* event)
{
    QMainWindow::showEvent(event);
    if (!m_needsDefaultLayout) return;
    m_needsDefaultLayout = false;
    // Dock sizes only take once the window has its real size.
    QTimer::singleShot(0, this, [this] {
        resizeDocks({m_browser}, {std::max(420, width() * 38 / 100)}, Qt::Horizontal);
        resizeDocks({m_perplexityDock}, {std::max(220, height() * 3 / 10)}, Qt::Vertical);
    });
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (m_document->isModified() && !m_closeConfirmed) {
        event->ignore();
        m_files->whenDiscardable(tr("closing the studio"), [this] {
            m_closeConfirmed = true;
            close();
        });
        return;
    }
    QSettings settings;
    settings.setValue(QStringLiteral("mainWindow/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("mainWindow/state"), saveState());
    for (QSplitter* splitter : findChildren<QSplitter*>()) {
        if (!splitter->objectName().isEmpty())
            settings.setValue(QStringLiteral("splitters/") + splitter->objectName(), splitter->saveState());
    }
    // Stops every job and waits for its worker, so nothing touches the window after it is gone.
    m_runner->shutdown();
    event->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    const auto urls = event->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile() && QFileInfo(urls.first().toLocalFile()).isDir())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const auto urls = event->mimeData()->urls();
    if (urls.isEmpty()) return;
    openModel(urls.first().toLocalFile());
    event->acceptProposedAction();
}

}  // namespace mdbf::studio
