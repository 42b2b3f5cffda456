#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>

#include <gtest/gtest.h>

#include <QAbstractButton>
#include <QAbstractItemView>
#include <QAbstractSpinBox>
#include <QApplication>
#include <QComboBox>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QMimeData>
#include <QProgressBar>
#include <QSlider>
#include <QUrl>
#include <QDir>
#include <QElapsedTimer>
#include <QHeaderView>
#include <QMessageBox>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QTreeView>

#include "comparison_tab.h"
#include "factor_control_bar.h"
#include "factorization_service.h"
#include "job_runner.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/widgets/error_curve_plot.h"
#include "mdbf/widgets/heatmap_plot.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "mdbf/widgets/method_comparison_plot.h"
#include "mdbf/widgets/sign_image_view.h"
#include "mdbf/widgets/spectrum_plot.h"
#include "model_session.h"
#include "perplexity_panel.h"
#include "mdbf/widgets/perplexity_plot.h"
#include "studio_document.h"
#include "studio_settings.h"
#include "test_fixtures.h"
#include "studio_test_support.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

using mdbf::test::editSettings;
using mdbf::test::demoDir;
using mdbf::test::findErrorDialog;
using mdbf::test::openDemo;
using mdbf::test::waitUntil;


TEST(StudioSettings, DemoModelIsFoundBesideTheExecutable)
{
    EXPECT_TRUE(demoModelPath().endsWith(QStringLiteral("share/mdbf-studio/models/tiny-llama")));
    EXPECT_TRUE(demoModelPath().startsWith(QDir::cleanPath(QCoreApplication::applicationDirPath() + QStringLiteral("/.."))));
    // The build tree holds the copy the real executable finds.
    EXPECT_TRUE(QFileInfo::exists(QStringLiteral(MDBF_STUDIO_BIN_DIR "/../share/mdbf-studio/models/tiny-llama/config.json")));
}

TEST(StudioSettings, RecentModelsNewestFirstWithoutDuplicates)
{
    clearRecentModels();
    addRecentModel(QStringLiteral("/tmp/a"));
    addRecentModel(QStringLiteral("/tmp/b"));
    addRecentModel(QStringLiteral("/tmp/a/"));
    EXPECT_EQ(recentModels(), (QStringList{QStringLiteral("/tmp/a"), QStringLiteral("/tmp/b")}));
    for (int i = 0; i < 20; ++i) addRecentModel(QStringLiteral("/tmp/m%1").arg(i));
    EXPECT_EQ(recentModels().size(), kMaxRecentModels);
    clearRecentModels();
}

TEST(MainWindow, OpensTheDemoModelAndListsItsLayers)
{
    auto window = openDemo();
    ASSERT_TRUE(window->session());
    EXPECT_EQ(window->session()->name(), QStringLiteral("tiny-llama"));
    const widgets::LayerTreeModel* model = window->layerBrowser()->model();
    ASSERT_EQ(model->rowCount(), 6);
    int blocks = 0;
    for (int g = 0; g < model->rowCount(); ++g) {
        const QString label = model->index(g, 0).data().toString();
        if (label.startsWith(QStringLiteral("block"))) {
            ++blocks;
            EXPECT_EQ(model->rowCount(model->index(g, 0)), 7);
        }
    }
    EXPECT_EQ(blocks, 4);
    EXPECT_EQ(model->index(0, 0).data().toString(), QStringLiteral("embeddings"));
    EXPECT_EQ(model->index(5, 0).data().toString(), QStringLiteral("head"));
    EXPECT_TRUE(window->modelSummaryText().contains(QStringLiteral("tiny-llama")));
    EXPECT_TRUE(window->modelSummaryText().contains(QStringLiteral("F16")));
    EXPECT_EQ(recentModels().value(0), QDir::cleanPath(demoDir()));

    // Norms arrive in the background and match an independent computation.
    ASSERT_TRUE(waitUntil([&] { return model->tensorsWithoutNorm().isEmpty(); }, 60000));
    const auto checkpoint = io::Checkpoint::open(mdbf::test::demoModel());
    const QString key = QStringLiteral("model.layers.2.self_attn.v_proj");
    const RowMatrixF w = checkpoint.matrix("model.layers.2.self_attn.v_proj.weight");
    EXPECT_NEAR(*model->norm(key), std::sqrt(w.cast<double>().squaredNorm()), 1e-9);
}

/// True when every shown column of the Layers tree is as wide as its header and values ask for and
/// all of them fit the tree's width (none cut off at the right edge). Reports what does not fit.
::testing::AssertionResult layerColumnsFit(const LayerBrowserDock& browser)
{
    const QTreeView* view = browser.view();
    const QHeaderView* header = view->header();
    for (int c = 0; c < widgets::LayerTreeModel::ColCount; ++c) {
        if (header->isSectionHidden(c) || c == widgets::LayerTreeModel::ColName) continue;
        const int needed = std::max(static_cast<const QAbstractItemView*>(view)->sizeHintForColumn(c), header->sectionSizeHint(c));
        if (view->columnWidth(c) < needed)
            return ::testing::AssertionFailure() << "column " << c << " is " << view->columnWidth(c) << " px, needs " << needed;
    }
    if (view->columnWidth(widgets::LayerTreeModel::ColName) < 100)
        return ::testing::AssertionFailure() << "the name column is " << view->columnWidth(widgets::LayerTreeModel::ColName) << " px";
    if (header->length() > view->viewport()->width())
        return ::testing::AssertionFailure() << "the columns take " << header->length() << " px of " << view->viewport()->width();
    return ::testing::AssertionSuccess();
}

TEST(MainWindow, LayersDockKeepsItsWidthAndItsColumnsFit)
{
    auto window = openDemo();
    window->resize(1200, 800);
    LayerInspectorPanel* inspector = window->inspector();
    LayerBrowserDock* browser = window->layerBrowser();
    const widgets::LayerTreeModel* model = browser->model();
    editSettings(inspector, [](FactorSettings& s) { s.iterations = 30; });
    ASSERT_TRUE(waitUntil([&] {
        return model->tensorsWithoutNorm().isEmpty() && inspector->current() && inspector->current()->refined &&
               !inspector->isBusy();
    }, 60000));
    QTest::qWait(50);
    const int width = browser->width();
    const int centre = inspector->minimumSizeHint().width();
    EXPECT_TRUE(layerColumnsFit(*browser));

    // Refined results put a long line above the tabs; none of them narrows the dock.
    for (int i = 0; i < 3; ++i) {
        browser->stepLayer(+1);
        const QString key = window->document()->currentLayer();
        ASSERT_TRUE(waitUntil([&] {
            return inspector->current() && inspector->layer().key == key && inspector->current()->refined && !inspector->isBusy();
        }, 60000)) << i;
        QTest::qWait(20);
        EXPECT_GT(inspector->statusText().size(), 90) << inspector->statusText().toStdString();
        EXPECT_EQ(browser->width(), width) << i << ": " << inspector->statusText().toStdString();
        EXPECT_EQ(inspector->minimumSizeHint().width(), centre) << i;
    }
    // Applied layers fill the Error, bpw, l and k columns and the Model panel reports the apply.
    editSettings(inspector, [](FactorSettings& s) { s.iterations = 0; });
    ASSERT_TRUE(window->commands()->applySettingsToAllLayers());
    ASSERT_TRUE(waitUntil([&] { return !window->factorizationService()->isApplying(); }, 60000));
    QTest::qWait(50);
    EXPECT_EQ(browser->width(), width);
    EXPECT_TRUE(layerColumnsFit(*browser));
    // The comparison's error maps carry long titles side by side; they do not widen the centre either.
    window->inspector()->tabActions().at(3)->trigger();
    ComparisonRequest request;
    request.budgets = {factor::Bpw::parse("0.75")};
    request.ranks = {2};
    QSignalSpy compared(inspector, &LayerInspectorPanel::comparisonFinished);
    inspector->runComparison(request);
    ASSERT_TRUE(waitUntil([&] { return compared.count() == 1; }, 60000));
    QTest::qWait(50);
    EXPECT_EQ(browser->width(), width);
    EXPECT_EQ(inspector->minimumSizeHint().width(), centre);
}

TEST(MainWindow, BrokenModelFolderReportsAndStaysUsable)
{
    MainWindow window;
    window.show();
    QTemporaryDir dir;
    {
        std::ofstream(dir.filePath(QStringLiteral("config.json")).toStdString()) << "{ not json";
    }
    QSignalSpy failed(&window, &MainWindow::modelLoadFailed);
    window.openModel(dir.path());
    ASSERT_TRUE(waitUntil([&] { return failed.count() == 1; }, 30000));
    EXPECT_TRUE(window.lastError().contains(QStringLiteral("config.json"))) << window.lastError().toStdString();
    EXPECT_FALSE(window.session());
    QMessageBox* box = nullptr;
    ASSERT_TRUE(waitUntil([&] { return (box = findErrorDialog()) != nullptr; }, 5000));
    EXPECT_TRUE(box->text().contains(QStringLiteral("config.json")));
    box->close();
    ASSERT_TRUE(waitUntil([] { return findErrorDialog() == nullptr; }, 5000));

    // A folder that does not exist fails the same way.
    window.openModel(dir.filePath(QStringLiteral("missing")));
    ASSERT_TRUE(waitUntil([&] { return failed.count() == 2; }, 30000));
    EXPECT_TRUE(window.lastError().contains(QStringLiteral("missing")));
    if (QMessageBox* again = findErrorDialog()) again->close();

    // The window still opens a good model afterwards.
    QSignalSpy loaded(&window, &MainWindow::modelLoaded);
    window.openModel(demoDir());
    ASSERT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    EXPECT_EQ(window.layerBrowser()->model()->layerCount(), 30);
}

TEST(MainWindow, FactorizesTheSelectedLayerAndEveryViewAgreesWithTheEngine)
{
    auto window = openDemo();
    LayerInspectorPanel* inspector = window->inspector();
    const QString key = QStringLiteral("model.layers.1.mlp.up_proj");
    QSignalSpy refined(inspector, &LayerInspectorPanel::refinementFinished);
    FactorSettings settings;
    settings.method = factor::Method::Mdbf;
    settings.l = 2;
    settings.bpw = factor::Bpw::parse("1.5");
    settings.iterations = 30;
    inspector->setSettings(settings);
    ASSERT_TRUE(window->layerBrowser()->selectLayer(key));
    ASSERT_TRUE(waitUntil([&] {
        for (const auto& args : refined)
            if (args.at(0).toString() == key) return true;
        return false;
    }, 120000));
    ASSERT_TRUE(waitUntil([&] { return !inspector->isBusy(); }, 10000));

    const auto shown = inspector->current();
    ASSERT_TRUE(shown && shown->refined);
    const factor::FactorResult& r = *shown->result;
    EXPECT_EQ(r.l, 2);
    EXPECT_EQ(r.method, factor::Method::Mdbf);
    const auto budget = factor::computeBitBudget(352, 128, factor::Bpw::parse("1.5"), factor::Method::Mdbf, 2, 1);
    EXPECT_EQ(r.k, budget.k);
    EXPECT_EQ(r.bpw, budget.bpw);
    EXPECT_TRUE(inspector->controls()->budgetText().contains(QString::number(budget.k)));

    // Refinement curve: one point per iteration, the last equal to the engine's reported error.
    ASSERT_EQ(static_cast<int>(r.errorHistory.size()), r.iterations);
    EXPECT_EQ(inspector->errorCurve()->pointCount(), r.iterations);
    EXPECT_EQ(inspector->errorCurve()->lastError(), r.errorHistory.back());
    EXPECT_EQ(inspector->errorCurve()->reference(), r.initialError);
    EXPECT_TRUE(inspector->statusText().contains(QString::number(r.finalError, 'f', 4)));

    // Sign images show the packed signs of the result.
    const kernels::PackedSigns* sa = inspector->signA()->signs();
    ASSERT_TRUE(sa);
    EXPECT_EQ(*sa, r.paths[0].sa);
    const QImage& image = inspector->signA()->overviewImage();
    ASSERT_EQ(inspector->signA()->downsampleFactor(), 1);
    for (int i = 0; i < image.height(); ++i)
        for (int j = 0; j < image.width(); ++j)
            ASSERT_EQ(qGray(image.pixel(j, i)), r.paths[0].sa.isNegative(i, j) ? 0 : 255);
    EXPECT_EQ(*inspector->signB()->signs(), r.paths[0].sb);

    // Spectrum plot holds the singular values the engine reports for the start at this k and l.
    const auto& spectra = inspector->spectrumPlot()->spectra();
    ASSERT_EQ(spectra.size(), 2u);
    ASSERT_EQ(spectra[0].values.size(), static_cast<std::size_t>(shown->spectra.sigmaF.size()));
    for (std::size_t i = 0; i < spectra[0].values.size(); ++i)
        EXPECT_EQ(spectra[0].values[i], static_cast<double>(shown->spectra.sigmaF[static_cast<Eigen::Index>(i)]));
    EXPECT_NEAR(inspector->spectrumPlot()->energyShare(0), shown->spectra.shareF, 1e-5);

    // The residual heatmap shows W − Ŵ rebuilt independently from the checkpoint and the paths, to
    // the FP16 rounding it is kept in (relative 2⁻¹¹, plus float rounding of the reconstruction).
    const auto checkpoint = io::Checkpoint::open(mdbf::test::demoModel());
    const RowMatrixF w = checkpoint.matrix("model.layers.1.mlp.up_proj.weight");
    const RowMatrixF residual = w - factor::reconstruct(r.paths);
    const widgets::HeatmapPlot* map = inspector->residualHeatmap();
    ASSERT_EQ(map->poolFactor(), 1);
    for (Eigen::Index i = 0; i < 352; i += 17)
        for (Eigen::Index j = 0; j < 128; j += 13)
            EXPECT_NEAR(map->displayedValue(i, j), residual(i, j), std::abs(residual(i, j)) * 0x1p-11 + 1e-6);
    EXPECT_NEAR((residual.norm() / w.norm()), r.finalPlainError, 1e-4);
    EXPECT_DOUBLE_EQ(map->colorRangeHalfWidth(), inspector->weightHeatmap()->colorRangeHalfWidth());

    // Applied to the layer, the layer tree and the status bar know about it.
    EXPECT_FALSE(window->layerBrowser()->model()->factorization(key).has_value());  // a preview only
    inspector->applyAction()->trigger();
    const auto summary = window->layerBrowser()->model()->factorization(key);
    ASSERT_TRUE(summary.has_value());
    EXPECT_EQ(summary->k, r.k);
    EXPECT_EQ(summary->error, r.finalError);
    EXPECT_TRUE(summary->refined);
    EXPECT_LT(window->modelBpw(), window->session()->storedBpw());
    EXPECT_TRUE(window->modelSummaryText().contains(QStringLiteral("1/29 layers factorized")));

    // Changing l shows the closed form at once from the cached SVD, then refines again.
    refined.clear();
    editSettings(inspector, [](FactorSettings& s) { s.l = 4; });
    ASSERT_TRUE(waitUntil([&] { return refined.count() >= 1; }, 120000));
    ASSERT_TRUE(waitUntil([&] { return !inspector->isBusy(); }, 10000));
    EXPECT_EQ(inspector->current()->result->l, 4);
    EXPECT_EQ(inspector->errorCurve()->lastError(), inspector->current()->result->errorHistory.back());

    // Going back to l = 2 reuses the cached refinement without a job.
    editSettings(inspector, [](FactorSettings& s) { s.l = 2; });
    ASSERT_TRUE(waitUntil([&] { return inspector->current()->result->l == 2; }, 5000));
    EXPECT_EQ(inspector->current()->result.get(), shown->result.get());
    EXPECT_FALSE(inspector->isBusy());
}

TEST(MainWindow, ComparisonPlotHasAPointPerBudgetAndMethodAtTheExactBpw)
{
    auto window = openDemo();
    LayerInspectorPanel* inspector = window->inspector();
    const QString key = QStringLiteral("model.layers.0.self_attn.o_proj");
    ASSERT_TRUE(window->layerBrowser()->selectLayer(key));
    ASSERT_TRUE(waitUntil([&] { return inspector->current() != nullptr; }, 60000)) << inspector->statusText().toStdString();
    inspector->cancelRefinement();
    ComparisonRequest request;
    request.budgets = {factor::Bpw::parse("1"), factor::Bpw::parse("1.5"), factor::Bpw::parse("2")};
    request.ranks = {2, 4};
    QSignalSpy done(inspector, &LayerInspectorPanel::comparisonFinished);
    inspector->runComparison(request);
    ASSERT_TRUE(waitUntil([&] { return done.count() == 1; }, 120000));
    const widgets::MethodComparisonPlot* plot = inspector->comparisonPlot();
    struct Curve {
        QString name;
        factor::Method method;
        int l;
    };
    for (const Curve& c : {Curve{QStringLiteral("DBF closed form"), factor::Method::Dbf, 1},
                           Curve{QStringLiteral("MDBF closed form"), factor::Method::Mdbf, 2},
                           Curve{QStringLiteral("MDBF closed form"), factor::Method::Mdbf, 4}}) {
        const auto points = plot->points(c.name, c.l);
        int feasible = 0;
        for (const char* b : {"1", "1.5", "2"}) {
            const auto check = factor::checkBitBudget(128, 128, factor::Bpw::parse(b), c.method, c.l, 1);
            if (!check.budget) continue;  // skipped by the comparison (too few bits for k ≥ l)
            ++feasible;
            const auto& budget = *check.budget;
            const auto it = std::find_if(points.begin(), points.end(), [&](const widgets::ComparisonPoint& p) {
                return p.bpw == budget.bpw && p.k == budget.k;
            });
            ASSERT_NE(it, points.end()) << c.name.toStdString() << " l=" << c.l << " @ " << b;
            EXPECT_GT(it->error, 0.0);
            EXPECT_LT(it->error, 1.0);
        }
        EXPECT_EQ(static_cast<int>(points.size()), feasible) << c.name.toStdString() << " l=" << c.l;
    }
    // 1 bpw cannot pay for l = 4 envelopes on a 128×128 layer: the tab says so.
    EXPECT_FALSE(factor::checkBitBudget(128, 128, factor::Bpw::parse("1"), factor::Method::Mdbf, 4, 1).budget);
    // At matched budgets, DBF's merged storage buys a larger k than MDBF at l = 1 would.
    EXPECT_GE(plot->points(QStringLiteral("DBF closed form"), 1).front().k,
              factor::computeBitBudget(128, 128, factor::Bpw::parse("1"), factor::Method::Mdbf, 1, 1).k);
}

TEST(MainWindow, PerplexityOfOriginalAndConfiguredModel)
{
    auto window = openDemo();
    PerplexityPanel* panel = window->perplexityPanel();
    panel->setTextFile(QString::fromStdString((mdbf::test::testData() / "eval-small.txt").string()));
    panel->setContextLength(128);
    QSignalSpy evaluated(panel, &PerplexityPanel::evaluated);
    panel->evaluateOriginal();
    ASSERT_TRUE(waitUntil([&] { return evaluated.count() == 1; }, 120000));
    const auto reference = nlohmann::json::parse(std::ifstream(mdbf::test::testData() / "tiny-llama" / "tiny-llama.reference.json"));
    const double expected = reference["ppl_eval_small_ctx128"].get<double>();
    ASSERT_TRUE(panel->originalPpl().has_value());
    EXPECT_NEAR(*panel->originalPpl(), expected, expected * 1e-3);

    // Factorize one layer (closed form is enough), then evaluate the configured model.
    LayerInspectorPanel* inspector = window->inspector();
    FactorSettings settings = inspector->settings();
    settings.iterations = 0;
    settings.bpw = factor::Bpw::parse("2");
    inspector->setSettings(settings);
    QSignalSpy shown(inspector, &LayerInspectorPanel::factorizationShown);
    ASSERT_TRUE(window->layerBrowser()->selectLayer(QStringLiteral("model.layers.0.mlp.down_proj")));
    ASSERT_TRUE(waitUntil([&] {
        return inspector->current() && inspector->layer().key == QStringLiteral("model.layers.0.mlp.down_proj") &&
               !inspector->isBusy();
    }, 60000));
    ASSERT_TRUE(waitUntil([&] { return panel->isBusy() == false; }, 1000));
    // Selecting only previews; Apply to Layer puts it into the configuration.
    EXPECT_TRUE(window->configuration().empty());
    inspector->applyAction()->trigger();
    ASSERT_EQ(window->configuration().size(), 1u);
    panel->evaluateConfiguration();
    ASSERT_TRUE(waitUntil([&] { return evaluated.count() == 2; }, 120000));
    ASSERT_TRUE(panel->configuredPpl().has_value());
    EXPECT_TRUE(std::isfinite(*panel->configuredPpl()));
    EXPECT_NE(*panel->configuredPpl(), *panel->originalPpl());
    // A few factorized layers at 2 bpw degrade the model, but not beyond recognition.
    EXPECT_GT(*panel->configuredPpl(), *panel->originalPpl() * 0.9);
    EXPECT_LT(*panel->configuredPpl(), *panel->originalPpl() * 10.0);
    EXPECT_EQ(panel->plot()->points().size(), 1u);
    EXPECT_NEAR(panel->plot()->points().front().modelBpw, window->modelBpw(), 1e-12);
}

TEST(MainWindow, OpensAFolderDroppedOnIt)
{
    MainWindow window;
    window.show();
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(demoDir())});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&window, &enter);
    EXPECT_TRUE(enter.isAccepted());
    QSignalSpy loaded(&window, &MainWindow::modelLoaded);
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&window, &drop);
    ASSERT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    EXPECT_EQ(window.session()->name(), QStringLiteral("tiny-llama"));

    // A dropped file (not a folder) is refused.
    QMimeData fileMime;
    fileMime.setUrls({QUrl::fromLocalFile(demoDir() + QStringLiteral("/config.json"))});
    QDragEnterEvent refuse(QPoint(10, 10), Qt::CopyAction, &fileMime, Qt::LeftButton, Qt::NoModifier);
    refuse.setAccepted(false);
    QApplication::sendEvent(&window, &refuse);
    EXPECT_FALSE(refuse.isAccepted());
}

TEST(MainWindow, EveryControlAndMenuActionHasATooltip)
{
    auto window = openDemo();
    QStringList missing;
    const auto check = [&](QWidget* w) {
        if (w->toolTip().trimmed().isEmpty()) missing << QStringLiteral("%1 '%2'").arg(w->metaObject()->className(), w->objectName());
    };
    for (QAbstractButton* w : window->findChildren<QAbstractButton*>()) {
        // Buttons Qt creates inside docks, tab bars and spin boxes are not ours to describe.
        if (w->inherits("QDockWidgetTitleButton") || w->parent()->inherits("QTabBar") || w->parent()->inherits("QLineEdit") ||
            w->objectName().startsWith(QLatin1String("qt_")))
            continue;
        check(w);
    }
    for (QAbstractSpinBox* w : window->findChildren<QAbstractSpinBox*>()) check(w);
    for (QComboBox* w : window->findChildren<QComboBox*>()) check(w);
    for (QSlider* w : window->findChildren<QSlider*>()) check(w);
    for (QLineEdit* w : window->findChildren<QLineEdit*>()) {
        if (w->parent()->inherits("QAbstractSpinBox") || w->parent()->inherits("QComboBox")) continue;
        check(w);
    }
    for (QAbstractItemView* w : window->findChildren<QAbstractItemView*>()) {
        if (w->parent()->inherits("QComboBox") || w->inherits("QListView") || w->objectName().startsWith(QLatin1String("qt_"))) continue;
        check(w);
    }
    EXPECT_TRUE(missing.isEmpty()) << missing.join(QStringLiteral(", ")).toStdString();
    int actions = 0;
    for (QAction* a : window->menuBar()->actions()) {
        for (QAction* item : a->menu()->actions()) {
            if (item->isSeparator() || item->menu()) continue;
            ++actions;
            EXPECT_FALSE(item->toolTip().isEmpty() || item->toolTip() == item->text().remove(QLatin1Char('&')))
                << item->text().toStdString();
        }
    }
    EXPECT_GE(actions, 15);
}

TEST(MainWindow, RendersANonBlankWindow)
{
    auto window = openDemo();
    ASSERT_TRUE(waitUntil([&] { return window->inspector()->current() != nullptr; }, 60000))
        << window->inspector()->statusText().toStdString();
    QTest::qWait(300);
    const QImage shot = window->grab().toImage();
    ASSERT_FALSE(shot.isNull());
    EXPECT_GE(shot.width(), 1000);
    EXPECT_GT(mdbf::test::distinctColors(shot), 200);
    QTemporaryDir dir;
    const QString file = dir.filePath(QStringLiteral("window.png"));
    ASSERT_TRUE(shot.save(file, "PNG"));
    EXPECT_EQ(QImage(file).size(), shot.size());
}

TEST(MainWindow, StaysResponsiveWhileALargeFactorizationRuns)
{
    MainWindow window;
    window.show();
    std::mt19937 gen(3);
    std::normal_distribution<float> dist;
    auto W = std::make_shared<RowMatrixF>(2048, 2048);
    for (Eigen::Index i = 0; i < W->size(); ++i) W->data()[i] = dist(gen);

    QElapsedTimer clock;
    clock.start();
    qint64 last = 0;
    qint64 worstGap = 0;
    QTimer ticker;
    ticker.setInterval(10);
    QObject::connect(&ticker, &QTimer::timeout, [&] {
        const qint64 now = clock.elapsed();
        worstGap = std::max(worstGap, now - last);
        last = now;
    });
    factor::FactorizerOptions options;
    options.bpw = factor::Bpw::parse("1");
    options.l = 2;
    options.outerIterations = 2;
    Job* job = window.jobRunner()->start<double>(
        QStringLiteral("2048² factorization"),
        [W, options](const RunContext& ctx, Job*) { return factor::Factorizer(options).run(*W, ctx).finalError; }, {});
    QSignalSpy ended(job, &Job::ended);
    last = clock.elapsed();
    ticker.start();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1; }, 600000));
    ticker.stop();
    const qint64 jobMs = clock.elapsed();
    std::cout << "[ measured ] 2048x2048 factorization " << jobMs << " ms, worst timer gap " << worstGap << " ms\n";
    EXPECT_GT(jobMs, 500);  // the job really ran long enough to matter
    EXPECT_LT(worstGap, 250);
}

// The refinement's progress bar draws "refining N% · ETA m:ss" inside itself: all of it must fit.
TEST(MainWindow, RefinementProgressShowsItsWholeText)
{
    auto window = openDemo();
    window->show();
    LayerInspectorPanel* inspector = window->inspector();
    FactorSettings settings = inspector->settings();
    settings.iterations = 5000;
    inspector->setSettings(settings);
    ASSERT_TRUE(window->layerBrowser()->selectLayer(QStringLiteral("lm_head")));
    QProgressBar* progress = nullptr;
    ASSERT_TRUE(waitUntil([&] {
        for (QProgressBar* bar : inspector->findChildren<QProgressBar*>())
            if (bar->isVisible() && bar->text().contains(QStringLiteral("ETA"))) progress = bar;
        return progress != nullptr;
    }, 60000));
    const QFontMetrics metrics = progress->fontMetrics();
    EXPECT_GE(progress->width(), metrics.horizontalAdvance(progress->text())) << progress->text().toStdString();
    EXPECT_GE(progress->height(), metrics.height());
    window->close();
}

TEST(MainWindow, ClosingMidRefinementCancelsCleanly)
{
    auto window = openDemo();
    LayerInspectorPanel* inspector = window->inspector();
    FactorSettings settings = inspector->settings();
    settings.iterations = 5000;
    inspector->setSettings(settings);
    ASSERT_TRUE(window->layerBrowser()->selectLayer(QStringLiteral("lm_head")));
    ASSERT_TRUE(waitUntil([&] { return inspector->isBusy() && inspector->errorCurve()->pointCount() > 2; }, 60000));
    const auto start = std::chrono::steady_clock::now();
    window->close();
    EXPECT_EQ(window->jobRunner()->runningCount(), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    window.reset();
    QTest::qWait(50);  // late queued posts must find nothing to touch
}

}  // namespace
}  // namespace mdbf::studio
