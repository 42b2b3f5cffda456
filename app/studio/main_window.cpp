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
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QTreeView>
#include <QDoubleSpinBox>
#include <QSpinBox>

#include <Eigen/Core>
#include <qcustomplot.h>

#include "factor_control_bar.h"
#include "job_runner.h"
#include "job_status_widget.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "perplexity_panel.h"
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

    m_inspector = new LayerInspectorPanel(m_runner, this);
    setCentralWidget(m_inspector);

    m_browser = new LayerBrowserDock(this);
    addDockWidget(Qt::LeftDockWidgetArea, m_browser);

    m_perplexity = new PerplexityPanel(m_runner, this);
    auto* pplDock = new QDockWidget(tr("Perplexity"), this);
    pplDock->setObjectName(QStringLiteral("perplexityDock"));
    pplDock->setToolTip(tr("Perplexity of the original and the configured model on a text"));
    pplDock->setWidget(m_perplexity);
    addDockWidget(Qt::BottomDockWidgetArea, pplDock);
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
    connect(m_inspector, &LayerInspectorPanel::factorizationShown, this, &MainWindow::onFactorization);

    QSettings settings;
    if (!restoreGeometry(settings.value(QStringLiteral("mainWindow/geometry")).toByteArray())) resize(1440, 900);
    for (QSplitter* splitter : findChildren<QSplitter*>()) {
        if (splitter->objectName().isEmpty()) continue;
        splitter->restoreState(settings.value(QStringLiteral("splitters/") + splitter->objectName()).toByteArray());
    }
    m_needsDefaultLayout = !restoreState(settings.value(QStringLiteral("mainWindow/state")).toByteArray());
    m_perplexityDock = pplDock;
    updateModelSummary();
}

MainWindow::~MainWindow() { m_runner->shutdown(); }

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
    add(file, tr("Open &Demo Model"), QKeySequence(tr("Ctrl+Shift+D")), tr("Open the tiny-llama model shipped with the studio"),
        [this] { openModel(demoModelPath()); });
    m_recentMenu = file->addMenu(tr("Open &Recent"));
    m_recentMenu->setToolTipsVisible(true);
    rebuildRecentMenu();
    file->addSeparator();
    add(file, tr("&Quit"), QKeySequence::Quit, tr("Cancel running jobs and close the studio"), [this] { close(); });

    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->setToolTipsVisible(true);
    QAction* layersToggle = m_browser->toggleViewAction();
    layersToggle->setShortcut(QKeySequence(tr("Ctrl+L")));
    layersToggle->setToolTip(tr("Show or hide the Layers panel"));
    view->addAction(layersToggle);
    for (QDockWidget* dock : findChildren<QDockWidget*>()) {
        if (dock == m_browser) continue;
        QAction* toggle = dock->toggleViewAction();
        toggle->setShortcut(QKeySequence(tr("Ctrl+Shift+L")));
        toggle->setToolTip(tr("Show or hide the Perplexity panel"));
        view->addAction(toggle);
    }
    view->addSeparator();
    const QStringList tabNames = {tr("Sign Bases"), tr("Envelope Spectra"), tr("Error"), tr("DBF vs MDBF")};
    for (int i = 0; i < tabNames.size(); ++i) {
        add(view, tabNames[i], QKeySequence(QStringLiteral("Alt+%1").arg(i + 1)), tr("Show the %1 tab").arg(tabNames[i]),
            [this, i] { m_inspector->tabs()->setCurrentIndex(i); });
    }

    QMenu* layer = menuBar()->addMenu(tr("&Layer"));
    layer->setToolTipsVisible(true);
    add(layer, tr("&Next Layer"), QKeySequence(tr("Alt+Down")), tr("Select the next factorizable layer"),
        [this] { m_browser->stepLayer(+1); });
    add(layer, tr("&Previous Layer"), QKeySequence(tr("Alt+Up")), tr("Select the previous factorizable layer"),
        [this] { m_browser->stepLayer(-1); });
    layer->addSeparator();
    add(layer, tr("Method &DBF"), QKeySequence(tr("Ctrl+D")), tr("Factorize with DBF (rank-1 envelopes)"),
        [this] { m_inspector->controls()->setMethod(factor::Method::Dbf); });
    add(layer, tr("Method &MDBF"), QKeySequence(tr("Ctrl+M")), tr("Factorize with MDBF (rank-l envelopes)"),
        [this] { m_inspector->controls()->setMethod(factor::Method::Mdbf); });
    add(layer, tr("More Bits"), QKeySequence(tr("Ctrl+]")), tr("Raise the budget by 0.05 bpw"),
        [this] { m_inspector->controls()->bpwSpin()->stepUp(); });
    add(layer, tr("Fewer Bits"), QKeySequence(tr("Ctrl+[")), tr("Lower the budget by 0.05 bpw"),
        [this] { m_inspector->controls()->bpwSpin()->stepDown(); });
    add(layer, tr("Larger l"), QKeySequence(tr("Ctrl+.")), tr("Raise the envelope rank l"),
        [this] { m_inspector->controls()->lSpin()->stepUp(); });
    add(layer, tr("Smaller l"), QKeySequence(tr("Ctrl+,")), tr("Lower the envelope rank l"),
        [this] { m_inspector->controls()->lSpin()->stepDown(); });
    layer->addSeparator();
    add(layer, tr("&Cancel Refinement"), QKeySequence(Qt::Key_Escape), tr("Stop the running refinement, keeping its best iterate"),
        [this] { m_inspector->cancelRefinement(); });
    add(layer, tr("Run &Comparison"), QKeySequence(tr("Ctrl+R")), tr("Run the DBF vs MDBF comparison on this layer"),
        [this] {
            m_inspector->tabs()->setCurrentIndex(3);
            m_inspector->runComparison();
        });
    add(layer, tr("&Revert Layer to Dense"), QKeySequence(tr("Ctrl+Backspace")),
        tr("Remove this layer from the configuration (it stays dense)"), [this] { revertLayer(m_browser->currentLayer()); });

    QMenu* model = menuBar()->addMenu(tr("&Model"));
    model->setToolTipsVisible(true);
    add(model, tr("Perplexity of &Original"), QKeySequence(tr("Ctrl+P")), tr("Evaluate the stored model on the chosen text"),
        [this] { m_perplexity->evaluateOriginal(); });
    add(model, tr("Perplexity of &Configuration"), QKeySequence(tr("Ctrl+Shift+P")),
        tr("Evaluate the model with every factorized layer swapped in"), [this] { m_perplexity->evaluateConfiguration(); });
    add(model, tr("Revert &All Layers"), QKeySequence(), tr("Remove every factorized layer from the configuration"),
        [this] { revertLayer(QString()); });

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
    const QString start = m_session ? QString::fromStdString(m_session->directory().parent_path().string()) : QDir::homePath();
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open model folder"), start);
    if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::openModel(const QString& dir)
{
    if (m_loadJob) m_loadJob->cancel();
    const QString path = QDir::cleanPath(QFileInfo(dir).absoluteFilePath());
    statusBar()->showMessage(tr("Opening %1…").arg(path));
    QPointer<MainWindow> self(this);
    m_loadJob = m_runner->start<std::shared_ptr<const ModelSession>>(
        tr("Opening %1").arg(QFileInfo(path).fileName()),
        [path](const RunContext& ctx, Job*) -> std::shared_ptr<const ModelSession> {
            return ModelSession::load(path.toStdString(), ctx);
        },
        [self](std::shared_ptr<const ModelSession>&& session) {
            if (self) self->adoptSession(std::move(session));
        });
    connect(m_loadJob, &Job::failed, this, [this, path](const QString& message) {
        statusBar()->clearMessage();
        showError(tr("Could not open model"), tr("%1\n\n%2").arg(path, message));
        emit modelLoadFailed(message);
    });
    connect(m_loadJob, &Job::cancelled, this, [this] { statusBar()->clearMessage(); });
}

void MainWindow::adoptSession(std::shared_ptr<const ModelSession> session)
{
    if (m_normJob) m_normJob->cancel();
    m_session = std::move(session);
    m_applied.clear();
    m_inspector->setSession(m_session);
    m_perplexity->setSession(m_session);
    m_browser->model()->setGroups(
        widgets::groupLayers(m_session->checkpoint().tensors(), m_session->config().tieWordEmbeddings));
    const QString dir = QString::fromStdString(m_session->directory().string());
    addRecentModel(dir);
    rebuildRecentMenu();
    setWindowTitle(tr("%1 — MDBF Studio").arg(m_session->name()));
    statusBar()->showMessage(tr("Opened %1").arg(dir), 5000);
    updateModelSummary();
    startNormJob();
    m_browser->stepLayer(+1);  // selects the first projection so the inspector shows something at once
    emit modelLoaded(m_session->name());
}

void MainWindow::startNormJob()
{
    const QStringList tensors = m_browser->model()->tensorsWithoutNorm();
    if (tensors.isEmpty()) return;
    auto session = m_session;
    QPointer<MainWindow> self(this);
    m_normJob = m_runner->start<int>(
        tr("Computing layer norms"),
        [session, tensors, self](const RunContext& ctx, Job* job) -> int {
            int done = 0;
            for (const QString& name : tensors) {
                if (ctx.stopRequested()) break;
                const RowMatrixF w = session->checkpoint().matrix(name.toStdString());
                const double norm = std::sqrt(w.cast<double>().squaredNorm());
                job->post([self, session, name, norm] {
                    if (self && self->m_session == session) self->m_browser->model()->setNorm(name, norm);
                });
                ctx.report("norms", ++done, tensors.size());
            }
            return done;
        },
        {});
}

void MainWindow::onLayerSelected(const QString& key)
{
    m_inspector->setLayer(key.isEmpty() ? nullptr : m_browser->model()->layer(key));
}

void MainWindow::onFactorization(const QString& layer, std::shared_ptr<const LayerFactorization> f)
{
    if (!f || !f->result) return;
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
    m_applied[layer] = f;
    updateModelSummary();
}

void MainWindow::revertLayer(const QString& layer)
{
    if (layer.isEmpty()) m_applied.clear();
    else m_applied.erase(layer);
    m_browser->model()->clearFactorization(layer);
    updateModelSummary();
}

double MainWindow::modelBpw() const
{
    if (!m_session || m_session->parameterCount() == 0) return 0.0;
    double bits = m_session->storedBpw() * static_cast<double>(m_session->parameterCount());
    const LayerTreeModel* model = m_browser->model();
    for (const auto& [key, f] : m_applied) {
        const widgets::LayerEntry* e = model->layer(key);
        if (!e) continue;
        const double weights = static_cast<double>(e->rows) * static_cast<double>(e->cols);
        // A tied head reads the embedding table, which stays stored for the lookup: it only adds bits.
        const bool ownsTensor = !(key == QLatin1String("lm_head") && e->tensor != QLatin1String("lm_head.weight"));
        if (ownsTensor) {
            const auto& info = m_session->checkpoint().info(e->tensor.toStdString());
            bits -= weights * static_cast<double>(io::dtypeSize(info.dtype) * 8);
        }
        bits += f->result->bpw * weights;
    }
    return bits / static_cast<double>(m_session->parameterCount());
}

QString MainWindow::modelSummaryText() const { return m_modelLabel->text() + QStringLiteral(" · ") + m_bpwLabel->text(); }

void MainWindow::updateModelSummary()
{
    if (!m_session) {
        m_modelLabel->setText(tr("no model"));
        m_bpwLabel->setText(QString());
        return;
    }
    m_modelLabel->setText(tr("<b>%1</b> · %2 params · %3")
                              .arg(m_session->name(), widgets::compactCount(m_session->parameterCount()),
                                   m_session->dominantDtype()));
    const LayerTreeModel* model = m_browser->model();
    double factorBits = 0.0;
    double factorWeights = 0.0;
    for (const auto& [key, f] : m_applied) {
        const double w = static_cast<double>(f->result->n) * static_cast<double>(f->result->m);
        factorBits += f->result->bpw * w;
        factorWeights += w;
    }
    QString text = tr("model %1 bpw").arg(modelBpw(), 0, 'f', 3);
    if (factorWeights > 0) text += tr(" (factorized layers %1)").arg(factorBits / factorWeights, 0, 'f', 3);
    text += tr(" · %1/%2 layers factorized").arg(m_applied.size()).arg(model->factorizableCount());
    m_bpwLabel->setText(text);
    ModelConfiguration config(m_applied.begin(), m_applied.end());
    m_perplexity->setConfiguration(std::move(config), modelBpw());
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
        resizeDocks({m_perplexityDock}, {std::max(180, height() / 4)}, Qt::Vertical);
    });
}

void MainWindow::closeEvent(QCloseEvent* event)
{
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
