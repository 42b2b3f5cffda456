// Activation-aware objectives in the studio and study files in the perplexity panel, on the demo
// model. The references are computed here independently: eval::calibrateModel (without a cache)
// for the statistics and factor::Factorizer for the errors; the study file is written by hand.

#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QMenuBar>
#include <QMessageBox>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>

#include "factor_control_bar.h"
#include "job_runner.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/widgets/error_curve_plot.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "mdbf/widgets/perplexity_plot.h"
#include "factorization_service.h"
#include "model_apply_panel.h"
#include "model_session.h"
#include "perplexity_panel.h"
#include "studio_document.h"
#include "test_fixtures.h"
#include "studio_test_support.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

std::filesystem::path evalSmall() { return mdbf::test::testData() / "eval-small.txt"; }

using mdbf::test::editSettings;
using mdbf::test::findAction;
using mdbf::test::findErrorDialog;
using mdbf::test::openDemo;
using mdbf::test::waitUntil;

using mdbf::test::findAction;

bool itemEnabled(QComboBox* combo, int index)
{
    return combo->model()->index(index, 0).flags().testFlag(Qt::ItemIsEnabled);
}

QString itemToolTip(QComboBox* combo, int index)
{
    return combo->model()->index(index, 0).data(Qt::ToolTipRole).toString();
}

/// Points the calibration cache at a temporary directory for the lifetime of the object, so the
/// tests neither read nor fill the user's cache.
class ScopedCacheHome {
public:
    ScopedCacheHome() : m_previous(qgetenv("XDG_CACHE_HOME")), m_had(qEnvironmentVariableIsSet("XDG_CACHE_HOME"))
    {
        qputenv("XDG_CACHE_HOME", m_dir.path().toUtf8());
    }
    ~ScopedCacheHome()
    {
        if (m_had) qputenv("XDG_CACHE_HOME", m_previous);
        else qunsetenv("XDG_CACHE_HOME");
    }
    QString path() const { return m_dir.path(); }

private:
    QTemporaryDir m_dir;
    QByteArray m_previous;
    bool m_had;
};

/// The factorizer run in the test as the studio's job runs it (same options, seed and threads).
factor::FactorResult reference(const std::string& layer, factor::FactorizerOptions options)
{
    const auto checkpoint = io::Checkpoint::open(mdbf::test::demoModel());
    const RowMatrixF W = checkpoint.matrix(layer + ".weight");
    RunContext ctx;
    ctx.threads = JobRunner::workerThreads();
    const int previous = omp_get_max_threads();
    omp_set_num_threads(ctx.threads);
    factor::FactorResult r = factor::Factorizer(std::move(options)).run(W, ctx);
    omp_set_num_threads(previous);
    return r;
}

/// The calibration run in the test, without a cache, with the thread count of the studio's jobs
/// (the float32 forward pass sums in a thread-dependent order).
eval::CalibrationStats referenceCalibration(const eval::CalibrationOptions& request)
{
    RunContext ctx;
    ctx.threads = JobRunner::workerThreads();
    const int previous = omp_get_max_threads();
    omp_set_num_threads(ctx.threads);
    eval::CalibrationStats stats = eval::calibrateModel(mdbf::test::demoModel(), evalSmall(), request, nullptr, ctx);
    omp_set_num_threads(previous);
    return stats;
}

factor::FactorizerOptions optionsOf(const FactorSettings& s) { return mdbf::test::factorizerOptionsOf(s); }

/// Waits for the inspector to show a complete result of `layer` under `objective`.
bool waitForResult(LayerInspectorPanel* inspector, const QString& layer, factor::Objective objective, bool refined)
{
    return waitUntil([&] {
        const auto f = inspector->current();
        return f && !inspector->isBusy() && inspector->layer().key == layer && f->result->objective == objective &&
               f->refined == refined && f->complete;
    }, 180000);
}

TEST(Calibration, EnablesTheActivationAwareObjectivesWhoseResultsMatchTheEngine)
{
    ScopedCacheHome cacheHome;
    auto window = openDemo();
    LayerInspectorPanel* inspector = window->inspector();
    FactorControlBar* controls = inspector->controls();
    QComboBox* objective = controls->objectiveCombo();
    inspector->cancelRefinement();
    ASSERT_TRUE(waitUntil([&] { return !inspector->isBusy(); }, 60000));

    // Without statistics diag and gram cannot be chosen, and say why.
    ASSERT_EQ(objective->count(), 3);
    EXPECT_TRUE(itemEnabled(objective, 0));
    for (int i : {1, 2}) {
        EXPECT_FALSE(itemEnabled(objective, i));
        EXPECT_TRUE(itemToolTip(objective, i).contains(QStringLiteral("Calibrate first"))) << i;
    }
    FactorSettings wanted;
    wanted.objective = factor::Objective::DiagonalWeighted;
    controls->setSettings(wanted);
    EXPECT_EQ(controls->settings().objective, factor::Objective::Plain);
    EXPECT_EQ(controls->calibrationText(), QStringLiteral("not calibrated"));

    // Calibrate on the evaluation text; the Model menu has the action too.
    ASSERT_NE(findAction(*window, QStringLiteral("Ca&librate")), nullptr);
    PerplexityPanel* panel = window->perplexityPanel();
    panel->setTextFile(QString::fromStdString(evalSmall().string()));
    panel->setContextLength(128);
    QSignalSpy changed(window->document(), &StudioDocument::calibrationChanged);
    panel->calibrate();
    EXPECT_TRUE(panel->isCalibrating());
    ASSERT_TRUE(waitUntil([&] { return window->calibration() != nullptr && !panel->isCalibrating(); }, 180000))
        << panel->calibrationText().toStdString();
    ASSERT_EQ(changed.count(), 1);

    eval::CalibrationOptions request;
    request.ctx = 128;
    request.gram = true;
    const eval::CalibrationStats stats = referenceCalibration(request);
    const auto calibration = window->calibration();
    EXPECT_EQ(calibration->stats->tokens, stats.tokens);
    // The same statistics, bit for bit, as the run happened with the same thread count.
    ASSERT_EQ(calibration->stats->layers.size(), stats.layers.size());
    for (const auto& [name, expected] : stats.layers) {
        const eval::LayerCalibration& got = calibration->stats->layer(name);
        EXPECT_EQ(got.secondMoments, expected.secondMoments) << name;
        EXPECT_EQ(got.gram, expected.gram) << name;
    }
    EXPECT_TRUE(calibration->hasGram());
    const QString expectedLine = QStringLiteral("calibrated on eval-small.txt · ctx 128 · %1 tokens").arg(stats.tokens);
    EXPECT_EQ(panel->calibrationText(), expectedLine);
    EXPECT_EQ(controls->calibrationText(), expectedLine);
    // The studio used the default cache, which now holds a file.
    EXPECT_FALSE(QDir(cacheHome.path() + QStringLiteral("/mdbf")).entryList(QDir::Files).isEmpty());
    for (int i : {0, 1, 2}) EXPECT_TRUE(itemEnabled(objective, i)) << i;

    // diag on one layer, a few iterations: the refinement equals the engine with the same weights.
    const std::string layer = "model.layers.1.mlp.up_proj";
    const QString key = QString::fromStdString(layer);
    FactorSettings diag;
    diag.method = factor::Method::Mdbf;
    diag.l = 2;
    diag.bpw = factor::Bpw::parse("1.5");
    diag.iterations = 8;
    diag.objective = factor::Objective::DiagonalWeighted;
    inspector->setSettings(diag);
    ASSERT_EQ(inspector->settings().objective, factor::Objective::DiagonalWeighted);
    ASSERT_TRUE(window->layerBrowser()->selectLayer(key));
    ASSERT_TRUE(waitForResult(inspector, key, factor::Objective::DiagonalWeighted, true)) << inspector->statusText().toStdString();
    const auto shownDiag = inspector->current();
    const factor::FactorResult& r = *shownDiag->result;

    factor::FactorizerOptions options = optionsOf(diag);
    options.channelWeights = stats.layer(layer).channelWeights();
    ASSERT_EQ(options.channelWeights.size(), 128);  // in_features of the 352 × 128 layer
    const factor::FactorResult expected = reference(layer, options);
    EXPECT_EQ(r.k, expected.k);
    EXPECT_EQ(r.iterations, expected.iterations);
    EXPECT_NEAR(r.finalError, expected.finalError, 1e-6);
    EXPECT_NEAR(r.initialError, expected.initialError, 1e-6);
    EXPECT_NEAR(r.finalPlainError, expected.finalPlainError, 1e-6);
    // Every error shown names its objective.
    EXPECT_EQ(r.errorLabel(), "rel_error (diag)");
    EXPECT_TRUE(inspector->statusText().contains(QStringLiteral("rel_error (diag) %1").arg(r.finalError, 0, 'f', 4)))
        << inspector->statusText().toStdString();
    EXPECT_TRUE(inspector->errorCurve()->yAxis->label().contains(QStringLiteral("diag")));
    inspector->applyAction()->trigger();
    const auto summary = window->layerBrowser()->model()->factorization(key);
    ASSERT_TRUE(summary.has_value());
    EXPECT_EQ(summary->objective, QStringLiteral("diag"));
    EXPECT_EQ(summary->error, r.finalError);

    // plain on the same layer is a different result (its own SVD and cache entry), ...
    editSettings(inspector, [](FactorSettings& s) { s.objective = factor::Objective::Plain; });
    ASSERT_TRUE(waitForResult(inspector, key, factor::Objective::Plain, true));
    factor::FactorizerOptions plainOptions = optionsOf(diag);
    plainOptions.objective = factor::Objective::Plain;
    EXPECT_NEAR(inspector->current()->result->finalError, reference(layer, plainOptions).finalError, 1e-6);
    EXPECT_TRUE(inspector->statusText().contains(QStringLiteral("rel_error (plain)")));

    // ... gram uses the layer's Gram matrix, ...
    editSettings(inspector, [](FactorSettings& s) { s.objective = factor::Objective::Gram; });
    ASSERT_TRUE(waitForResult(inspector, key, factor::Objective::Gram, true)) << inspector->statusText().toStdString();
    factor::FactorizerOptions gramOptions = optionsOf(diag);
    gramOptions.objective = factor::Objective::Gram;
    gramOptions.inputGram = stats.layer(layer).gram;
    EXPECT_NEAR(inspector->current()->result->finalError, reference(layer, gramOptions).finalError, 1e-6);
    EXPECT_TRUE(inspector->statusText().contains(QStringLiteral("rel_error (gram)")));

    // ... and going back to diag reuses the cached diag refinement without a job.
    editSettings(inspector, [](FactorSettings& s) { s.objective = factor::Objective::DiagonalWeighted; });
    ASSERT_TRUE(waitUntil([&] { return inspector->current()->result->objective == factor::Objective::DiagonalWeighted; }, 5000));
    EXPECT_EQ(inspector->current()->result.get(), shownDiag->result.get());
    EXPECT_FALSE(inspector->isBusy());

    // Apply to Model passes each layer's statistics (closed form, diag).
    FactorSettings applied = diag;
    applied.iterations = 0;
    inspector->setSettings(applied);
    QSignalSpy ended(window->factorizationService(), &FactorizationService::applyEnded);
    const QStringList layers{QStringLiteral("model.layers.0.self_attn.q_proj"), QStringLiteral("model.layers.2.mlp.down_proj")};
    ASSERT_TRUE(window->commands()->applySettingsToLayers(layers)) << window->factorizationService()->refusalText().toStdString();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1; }, 180000));
    for (const QString& name : layers) {
        const auto it = window->configuration().find(name);
        ASSERT_NE(it, window->configuration().end()) << name.toStdString();
        const factor::FactorResult& a = *it->second->result;
        EXPECT_EQ(a.objective, factor::Objective::DiagonalWeighted);
        factor::FactorizerOptions o = optionsOf(applied);
        o.channelWeights = stats.layer(name.toStdString()).channelWeights();
        EXPECT_NEAR(a.finalError, reference(name.toStdString(), o).finalError, 1e-6) << name.toStdString();
    }

    // A new model forgets the calibration: diag and gram are disabled again and plain is selected.
    QSignalSpy loaded(window.get(), &MainWindow::modelLoaded);
    window->openModel(mdbf::test::demoDir());
    QMessageBox* unsaved = mdbf::test::findUnsavedDialog();  // the applied layers are not saved
    ASSERT_NE(unsaved, nullptr);
    unsaved->button(QMessageBox::Discard)->click();
    ASSERT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    EXPECT_EQ(window->calibration(), nullptr);
    EXPECT_FALSE(itemEnabled(objective, 1));
    EXPECT_FALSE(itemEnabled(objective, 2));
    EXPECT_EQ(inspector->settings().objective, factor::Objective::Plain);
}

TEST(Calibration, TooShortATextIsReportedAndLeavesTheObjectivesDisabled)
{
    ScopedCacheHome cacheHome;
    auto window = openDemo();
    QTemporaryDir dir;
    const QString text = dir.filePath(QStringLiteral("short.txt"));
    mdbf::test::writeTextFile(text.toStdString(), "only a few words");
    PerplexityPanel* panel = window->perplexityPanel();
    panel->setTextFile(text);
    panel->setContextLength(128);
    QSignalSpy failed(panel, &PerplexityPanel::calibrationFailed);
    panel->calibrate();
    ASSERT_TRUE(waitUntil([&] { return failed.count() == 1 && !panel->isCalibrating(); }, 120000));
    QMessageBox* box = findErrorDialog();
    ASSERT_NE(box, nullptr);
    EXPECT_TRUE(box->text().contains(QStringLiteral("short.txt"))) << box->text().toStdString();
    box->close();
    EXPECT_EQ(window->calibration(), nullptr);
    EXPECT_FALSE(itemEnabled(window->inspector()->controls()->objectiveCombo(), 1));
    EXPECT_TRUE(panel->calibrationText().contains(QStringLiteral("failed")));
}

/// A point as `mdbf study` writes it (its label is derived from the settings by the reader).
nlohmann::json studyPoint(const char* method, int l, const char* budget, double bpw, nlohmann::json ppl)
{
    return {{"label", "unused"}, {"method", method}, {"l", l}, {"bpw_requested", budget}, {"objective", "plain"},
            {"sequential", false}, {"iterations", 60}, {"ppl", std::move(ppl)}, {"model_bpw", bpw},
            {"factorized_bpw", bpw - 0.1}, {"seconds", 1.0}, {"cached_layers", 0}, {"from_cache", false},
            {"layers", nlohmann::json::array()}};
}

nlohmann::json studyModel(const std::string& name, nlohmann::json points)
{
    return {{"model", name}, {"eval_text", "eval-small.txt"}, {"ctx", 128}, {"eval_tokens", 2048},
            {"original_ppl", 30.0}, {"original_bpw", 16.0}, {"cancelled", false}, {"points", std::move(points)},
            {"layer_view", nlohmann::json::array()}};
}

nlohmann::json studyFile(nlohmann::json models) { return {{"format", "mdbf-study"}, {"version", 1}, {"models", std::move(models)}}; }

TEST(Study, PointsOfTheOpenModelJoinThePlotInTheirOwnSeries)
{
    auto window = openDemo();
    PerplexityPanel* panel = window->perplexityPanel();
    widgets::PerplexityPlot* plot = panel->plot();
    ASSERT_NE(findAction(*window, QStringLiteral("Load &Study…")), nullptr);
    plot->addPoint({3.5, 41.0, QStringLiteral("mine")});
    QTemporaryDir dir;

    const QString good = dir.filePath(QStringLiteral("study.json"));
    const nlohmann::json study = studyFile(
        {studyModel("other-model", {studyPoint("mdbf", 2, "1", 1.1, 99.0)}),
         studyModel("tiny-llama", {studyPoint("dbf", 1, "1", 1.25, 80.5), studyPoint("mdbf", 2, "1.5", 1.72, 47.25),
                                   studyPoint("mdbf", 4, "1", 1.3, nullptr)})});
    mdbf::test::writeTextFile(good.toStdString(), study.dump(2));
    ASSERT_TRUE(panel->loadStudy(good)) << panel->studyText().toStdString();
    const auto& points = plot->studyPoints();
    ASSERT_EQ(points.size(), 2u);
    EXPECT_EQ(points[0].label, QStringLiteral("dbf @1 plain T=60"));
    EXPECT_EQ(points[0].modelBpw, 1.25);
    EXPECT_EQ(points[0].ppl, 80.5);
    EXPECT_EQ(points[1].label, QStringLiteral("mdbf l=2 @1.5 plain T=60"));
    EXPECT_EQ(points[1].modelBpw, 1.72);
    EXPECT_EQ(points[1].ppl, 47.25);
    // Drawn as a separate series in a different style; the user's point is untouched.
    const QCPGraph* graph = plot->studyGraph();
    ASSERT_EQ(graph->data()->size(), 2);
    EXPECT_EQ(graph->data()->at(0)->key, 1.25);
    EXPECT_EQ(graph->data()->at(0)->value, 80.5);
    EXPECT_EQ(graph->data()->at(1)->key, 1.72);
    EXPECT_EQ(graph->data()->at(1)->value, 47.25);
    EXPECT_NE(graph->scatterStyle().shape(), plot->pointGraph()->scatterStyle().shape());
    EXPECT_NE(graph->scatterStyle().pen().color(), plot->pointGraph()->scatterStyle().pen().color());
    ASSERT_EQ(plot->points().size(), 1u);
    EXPECT_EQ(plot->pointGraph()->data()->size(), 1);
    EXPECT_TRUE(plot->xAxis->range().contains(1.25) && plot->xAxis->range().contains(3.5));
    EXPECT_TRUE(plot->yAxis->range().contains(80.5) && plot->yAxis->range().contains(41.0));
    EXPECT_TRUE(plot->csv().contains(QStringLiteral("\"study: dbf @1 plain T=60\",1.25,80.5")));
    EXPECT_TRUE(panel->studyText().contains(QStringLiteral("2 points")));
    EXPECT_TRUE(panel->studyText().contains(QStringLiteral("1 skipped: no perplexity")));
    EXPECT_EQ(findErrorDialog(), nullptr);

    // A study of other models only: nothing is added, and the panel says so.
    const QString other = dir.filePath(QStringLiteral("other.json"));
    mdbf::test::writeTextFile(other.toStdString(),
                              studyFile({studyModel("other-model", {studyPoint("mdbf", 2, "1", 1.0, 50.0)})}).dump());
    EXPECT_FALSE(panel->loadStudy(other));
    EXPECT_TRUE(panel->studyText().contains(QStringLiteral("no points for tiny-llama"))) << panel->studyText().toStdString();
    EXPECT_TRUE(panel->studyText().contains(QStringLiteral("other-model")));
    EXPECT_EQ(plot->studyPoints().size(), 2u);  // the previous study stays
    if (QMessageBox* box = findErrorDialog()) box->close();

    // Malformed files: the error dialog names the file and the problem.
    struct Bad {
        const char* name;
        std::string text;
        const char* problem;
    };
    nlohmann::json mistyped = study;
    mistyped["models"][1]["points"][1]["model_bpw"] = "1.72";
    for (const Bad& bad : {Bad{"broken.json", "{\"format\": \"mdbf-study\", \"models\": [", "not valid JSON"},
                           Bad{"foreign.json", "{\"format\": \"something-else\"}", "not a study file"},
                           Bad{"mistyped.json", mistyped.dump(), "models[1].points[1].model_bpw"}}) {
        const QString path = dir.filePath(QString::fromLatin1(bad.name));
        mdbf::test::writeTextFile(path.toStdString(), bad.text);
        QSignalSpy reported(window.get(), &MainWindow::errorReported);
        EXPECT_FALSE(panel->loadStudy(path));
        ASSERT_EQ(reported.count(), 1) << bad.name;
        QMessageBox* box = findErrorDialog();
        ASSERT_NE(box, nullptr) << bad.name;
        EXPECT_TRUE(box->text().contains(path)) << box->text().toStdString();
        EXPECT_TRUE(box->text().contains(QString::fromLatin1(bad.problem))) << box->text().toStdString();
        box->close();
    }
    EXPECT_FALSE(panel->loadStudy(dir.filePath(QStringLiteral("missing.json"))));
    ASSERT_NE(findErrorDialog(), nullptr);
    EXPECT_TRUE(findErrorDialog()->text().contains(QStringLiteral("missing.json")));
    findErrorDialog()->close();
    EXPECT_EQ(plot->studyPoints().size(), 2u);
}

}  // namespace
}  // namespace mdbf::studio
