#pragma once
// Helpers of the tests that drive the studio's main window: opening the demo model and finding the
// error dialog the window shows.

#include <filesystem>
#include <memory>
#include <string>

#include <omp.h>

#include <QAction>
#include <QApplication>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QSignalSpy>
#include <QString>

#include <gtest/gtest.h>

#include "factor_settings.h"
#include "job_runner.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/io/checkpoint.h"
#include "test_fixtures.h"
#include "widget_test_support.h"

namespace mdbf::test {

/// The demo model's directory as a QString.
inline QString demoDir() { return QString::fromStdString(demoModel().string()); }

/// A shown 1400×900 main window with the demo model opened (waits up to 60 s; a failure to load is
/// reported as a test failure and the window is returned anyway).
inline std::unique_ptr<studio::MainWindow> openDemo()
{
    auto window = std::make_unique<studio::MainWindow>();
    window->resize(1400, 900);
    window->show();
    QSignalSpy loaded(window.get(), &studio::MainWindow::modelLoaded);
    window->openModel(demoDir());
    EXPECT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    return window;
}

/// The action of `window`'s menus whose text is `text` (with its & mnemonic), or null.
inline QAction* findAction(studio::MainWindow& window, const QString& text)
{
    for (QAction* menu : window.menuBar()->actions())
        for (QAction* a : menu->menu()->actions())
            if (a->text() == text) return a;
    return nullptr;
}

/// Changes the inspector's settings with `change` and previews them, as an edit of its controls does.
template <class Change>
void editSettings(studio::LayerInspectorPanel* inspector, Change&& change)
{
    studio::FactorSettings s = inspector->settings();
    change(s);
    inspector->previewSettings(s);
}

/// Studio settings of `method` at envelope rank `l`, budget `bpw` and `iterations` outer iterations
/// (one path, plain objective).
inline studio::FactorSettings settingsOf(factor::Method method, int l, const char* bpw, int iterations)
{
    studio::FactorSettings s;
    s.method = method;
    s.l = l;
    s.bpw = factor::Bpw::parse(bpw);
    s.iterations = iterations;
    return s;
}

/// The core factorizer's options for studio settings `s` (method, l, budget, paths, iterations, objective).
inline factor::FactorizerOptions factorizerOptionsOf(const studio::FactorSettings& s)
{
    factor::FactorizerOptions o;
    o.method = s.method;
    o.l = s.effectiveL();
    o.bpw = s.bpw;
    o.paths = s.paths;
    o.outerIterations = s.iterations;
    o.objective = s.objective;
    return o;
}

/// The core factorizer on tensor `tensor` of the model in `dir`, with the options, seed and threads
/// the studio's jobs use for `s`: an independent path to the result a studio job reports.
inline factor::FactorResult coreFactorization(const std::filesystem::path& dir, const std::string& tensor,
                                              const studio::FactorSettings& s)
{
    const auto checkpoint = io::Checkpoint::open(dir);
    const RowMatrixF W = checkpoint.matrix(tensor);
    factor::FactorizerOptions options = factorizerOptionsOf(s);
    options.seed = 0;
    RunContext ctx;
    ctx.threads = studio::JobRunner::workerThreads();
    const int previous = omp_get_max_threads();
    omp_set_num_threads(ctx.threads);
    factor::FactorResult r = factor::Factorizer(options).run(W, ctx);
    omp_set_num_threads(previous);
    return r;
}

/// The visible message box of the studio named `name`, or null.
inline QMessageBox* findDialog(const char* name)
{
    for (QWidget* w : QApplication::topLevelWidgets())
        if (auto* box = qobject_cast<QMessageBox*>(w); box && box->objectName() == QLatin1String(name) && box->isVisible())
            return box;
    return nullptr;
}

/// The visible error dialog of the studio (object name "errorDialog"), or null.
inline QMessageBox* findErrorDialog() { return findDialog("errorDialog"); }

/// The visible Save / Discard / Cancel question about unsaved changes, or null.
inline QMessageBox* findUnsavedDialog() { return findDialog("unsavedDialog"); }

}  // namespace mdbf::test
