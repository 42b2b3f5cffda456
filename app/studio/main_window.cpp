#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QSplitter>
#include <QTimer>
#include <QUndoStack>

#include <utility>

#include <Eigen/Core>
#include <qcustomplot.h>

#include "configuration_exporter.h"
#include "configuration_files.h"
#include "factorization_service.h"
#include "generate_panel.h"
#include "job_runner.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "model_apply_panel.h"
#include "model_commands.h"
#include "model_session.h"
#include "perplexity_panel.h"
#include "recent_models_menu.h"
#include "studio_document.h"
#include "studio_settings.h"
#include "studio_status_bar.h"

#ifndef MDBF_VERSION
#define MDBF_VERSION "0.0.0"
#endif

namespace mdbf::studio {

namespace {
constexpr int kMessageMs = 5000;
}

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), m_runner(new JobRunner(this))
{
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("MDBF Studio"));
    initStudioResources();
    setWindowIcon(QIcon(QStringLiteral(":/icons/mdbf-studio.svg")));
    setAcceptDrops(true);
    setDockNestingEnabled(true);

    // The service first: it drops a previous model's jobs before any view reacts to a new one.
    m_document = new StudioDocument(this);
    m_service = new FactorizationService(m_runner, m_document, this);
    m_inspector = new LayerInspectorPanel(m_service, m_document, this);
    setCentralWidget(m_inspector);
    m_browser = new LayerBrowserDock(m_document, this);
    addDockWidget(Qt::LeftDockWidgetArea, m_browser);

    m_perplexity = new PerplexityPanel(m_runner, m_document, this);
    m_perplexityDock = addPanelDock(m_perplexity, tr("Perplexity"), QStringLiteral("perplexityDock"),
                                    tr("Perplexity of the original and the configured model on a text"));
    m_applyPanel = new ModelApplyPanel(m_service, m_document, this);
    m_modelDock = addPanelDock(m_applyPanel, tr("Model"), QStringLiteral("modelDock"),
                               tr("Apply to Model: progress of the running apply and the error of every factorized layer"));
    tabifyDockWidget(m_perplexityDock, m_modelDock);
    m_generate = new GeneratePanel(m_runner, m_document, this);
    m_generateDock = addPanelDock(m_generate, tr("Generate"), QStringLiteral("generateDock"),
                                  tr("One prompt through the original and the configured model, side by side"));
    tabifyDockWidget(m_modelDock, m_generateDock);
    m_perplexityDock->raise();
    // The bottom dock spans only the centre, as in the layout sketch: the Layers dock keeps the left edge.
    setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);

    m_exporter = new ConfigurationExporter(m_runner, this);
    m_files = new ConfigurationFiles(this, m_document, m_exporter, m_service);
    m_commands = new ModelCommands({this, m_document, m_service, m_browser, m_inspector, m_exporter, m_files}, this);
    m_statusBar = new StudioStatusBar(m_document, m_runner, this);
    setStatusBar(m_statusBar);

    createMenus();
    connectReports();

    QSettings settings;
    if (!restoreGeometry(settings.value(QStringLiteral("mainWindow/geometry")).toByteArray())) resize(1440, 900);
    for (QSplitter* splitter : findChildren<QSplitter*>()) {
        if (splitter->objectName().isEmpty()) continue;
        splitter->restoreState(settings.value(QStringLiteral("splitters/") + splitter->objectName()).toByteArray());
    }
    m_needsDefaultLayout = !restoreState(settings.value(QStringLiteral("mainWindow/state")).toByteArray());
}

MainWindow::~MainWindow() { m_runner->shutdown(); }

QDockWidget* MainWindow::addPanelDock(QWidget* panel, const QString& title, const QString& objectName, const QString& tip)
{
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(objectName);
    dock->setToolTip(tip);
    dock->setWidget(panel);
    addDockWidget(Qt::BottomDockWidgetArea, dock);
    return dock;
}

// What the document, the service, the panels and the exporter report reaches the user here: the
// title, the status bar and error dialogs. Nothing is relayed between them.
void MainWindow::connectReports()
{
    auto note = [this](const QString& message) { m_statusBar->showMessage(message, kMessageMs); };
    connect(m_document, &StudioDocument::modifiedChanged, this, &QWidget::setWindowModified);
    connect(m_document, &StudioDocument::sessionChanged, this, [this](std::shared_ptr<const ModelSession> session) {
        setWindowTitle(session ? tr("%1[*] — MDBF Studio").arg(session->name()) : tr("MDBF Studio"));
    });
    connect(m_files, &ConfigurationFiles::errorReported, this, &MainWindow::showError);
    connect(m_files, &ConfigurationFiles::statusMessage, this, note);
    connect(m_commands, &ModelCommands::statusMessage, m_statusBar, &QStatusBar::showMessage);
    connect(m_service, &FactorizationService::applyStarted, this, [this] {
        m_modelDock->show();
        m_modelDock->raise();
    });
    connect(m_service, &FactorizationService::applyEnded, this, [note](bool cancelled) {
        note(cancelled ? tr("Apply cancelled; the layers already done stay applied") : tr("Settings applied"));
    });
    connect(m_service, &FactorizationService::applyFailed, this,
            [this](const QString& message) { showError(tr("Applying the settings failed"), message); });
    connect(m_service, &FactorizationService::planFinished, this, [note](std::shared_ptr<const pipeline::ModelPlan> plan) {
        note(tr("Planned %1 layers at %2 bpw on the %3 error (%4 trials); applying them")
                 .arg(plan->layers.size())
                 .arg(plan->bits.factorizedBpw(), 0, 'f', 3)
                 .arg(plan->outputError ? tr("output") : tr("weight"))
                 .arg(plan->trials));
    });
    connect(m_service, &FactorizationService::planStopped, this, [this, note](bool cancelled, const QString& message) {
        if (cancelled) note(tr("Plan cancelled; the configuration is unchanged"));
        else showError(tr("Planning failed"), message);
    });
    connect(m_service, &FactorizationService::modelOpened, this, &MainWindow::onModelOpened);
    connect(m_service, &FactorizationService::modelOpenFailed, this, [this](const QString& path, const QString& message) {
        m_statusBar->clearMessage();
        showError(tr("Could not open model"), tr("%1\n\n%2").arg(path, message));
        emit modelLoadFailed(message);
    });
    connect(m_service, &FactorizationService::modelOpenCancelled, m_statusBar, &QStatusBar::clearMessage);
    connect(m_perplexity, &PerplexityPanel::calibrationFailed, this,
            [this](const QString& message) { showError(tr("Calibration failed"), message); });
    connect(m_perplexity, &PerplexityPanel::studyLoadFailed, this, &MainWindow::showError);
    connect(m_generate, &GeneratePanel::generationFailed, this,
            [this](const QString& message) { showError(tr("Generation failed"), message); });
    connect(m_exporter, &ConfigurationExporter::exportFailed, this, &MainWindow::showError);
    connect(m_exporter, &ConfigurationExporter::packageExported, this, &MainWindow::onPackageExported);
    connect(m_exporter, &ConfigurationExporter::packageCancelled, this, [note](const QString& path) {
        note(tr("Export of %1 cancelled; nothing was written").arg(path));
    });
    connect(m_exporter, &ConfigurationExporter::configExported, this, [this, note](const QString& path) {
        note(tr("Configuration written to %1").arg(path));
        emit configurationExported(path);
    });
}

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
    m_recentMenu = new RecentModelsMenu(this);
    connect(m_recentMenu, &RecentModelsMenu::openRequested, this, &MainWindow::openModel);
    file->addMenu(m_recentMenu);
    file->addSeparator();
    file->addAction(m_commands->exportPackageAction());
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
    const std::pair<QDockWidget*, std::pair<const char*, const char*>> toggles[] = {
        {m_browser, {"Ctrl+L", QT_TR_NOOP("Show or hide the Layers panel")}},
        {m_perplexityDock, {"Ctrl+Shift+L", QT_TR_NOOP("Show or hide the Perplexity panel")}},
        {m_modelDock, {"Ctrl+Shift+M", QT_TR_NOOP("Show or hide the Model panel (apply progress and per-layer errors)")}},
        {m_generateDock,
         {"Ctrl+Shift+G", QT_TR_NOOP("Show or hide the Generate panel (original and configured model side by side)")}},
    };
    for (const auto& [dock, keyAndTip] : toggles) {
        QAction* toggle = dock->toggleViewAction();
        toggle->setShortcut(QKeySequence(QString::fromLatin1(keyAndTip.first)));
        toggle->setToolTip(tr(keyAndTip.second));
        view->addAction(toggle);
    }
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
    layer->addAction(m_commands->revertSelectedAction());

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
    model->addAction(m_commands->applyAllAction());
    model->addAction(m_commands->applySelectedAction());
    model->addAction(m_applyPanel->cancelAction());
    model->addSeparator();
    model->addAction(m_commands->planAction());
    model->addAction(m_commands->cancelPlanAction());
    model->addSeparator();
    model->addAction(m_commands->revertAllAction());
    m_browser->addContextAction(m_commands->applySelectedAction());
    m_browser->addContextAction(m_commands->revertSelectedAction());

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->setToolTipsVisible(true);
    add(help, tr("&About MDBF Studio"), QKeySequence::HelpContents, tr("Versions and what the studio does"),
        [this] { showAbout(); });
    add(help, tr("About &Qt"), QKeySequence(), tr("The Qt version in use"), [] { QApplication::aboutQt(); });
}

void MainWindow::openFolderDialog()
{
    const QString start = m_document->session() ? QString::fromStdString(m_document->session()->directory().parent_path().string()) : QDir::homePath();
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open model folder"), start);
    if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::openModel(const QString& dir)
{
    m_files->whenDiscardable(tr("opening another model"), [this, dir] {
        const QString path = QDir::cleanPath(QFileInfo(dir).absoluteFilePath());
        m_statusBar->showMessage(tr("Opening %1…").arg(path));
        m_service->openModel(path);
    });
}

void MainWindow::onModelOpened(const QString& path)
{
    m_recentMenu->addModel(path);
    m_statusBar->showMessage(tr("Opened %1").arg(path), kMessageMs);
    emit modelLoaded(m_document->session()->name());
}

bool MainWindow::exportConfigurationJson(const QString& path)
{
    return m_files->saveTo(path);
}

void MainWindow::onPackageExported(const PackageExportSummary& summary)
{
    m_statusBar->showMessage(tr("Wrote %1: %2 factorized layers, %3 dense tensors, model %4 bpw, %5 MB")
                                 .arg(summary.path)
                                 .arg(summary.factorizedLayers)
                                 .arg(summary.denseTensors)
                                 .arg(summary.modelBpw, 0, 'f', 3)
                                 .arg(static_cast<double>(summary.bytes) / (1024.0 * 1024.0), 0, 'f', 2),
                             10000);
    emit packageExported(summary.path);
}

std::shared_ptr<const StudioCalibration> MainWindow::calibration() const { return m_document->calibration(); }

double MainWindow::modelBpw() const { return m_document->modelBpw(); }

QString MainWindow::modelSummaryText() const { return m_statusBar->summaryText(); }

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
