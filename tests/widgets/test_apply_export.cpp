// Apply to Model and Export on the demo model, checked against the core run independently: the
// factorizer for the errors, pipeline::quantizeCheckpoint for the model-level bit accounting and the
// kept-dense layers, io::readPackage and factor::QuantConfig for what was written.

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>

#include <gtest/gtest.h>

#include <QAbstractButton>
#include <QApplication>
#include <QItemSelectionModel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTreeView>

#include <nlohmann/json.hpp>

#include "configuration_exporter.h"
#include "factor_control_bar.h"
#include "job_runner.h"
#include "layer_browser_dock.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/package.h"
#include "mdbf/model/transformer.h"
#include "mdbf/widgets/layer_error_bar_plot.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "factorization_service.h"
#include "model_apply_panel.h"
#include "model_session.h"
#include "test_fixtures.h"
#include "studio_test_support.h"
#include "widget_test_support.h"
#include "mdbf/model/architecture.h"

namespace mdbf::studio {
namespace {

using mdbf::test::findAction;
using mdbf::test::openDemo;
using mdbf::test::waitUntil;

/// Stops the inspector's first refinement, sets its controls to `s` (without refactorizing its
/// layer) and empties the configuration, so that what follows starts from a model with no
/// factorized layer and an empty result cache for `s`.
void useSettings(MainWindow& window, const FactorSettings& s)
{
    LayerInspectorPanel* inspector = window.inspector();
    inspector->cancelRefinement();
    ASSERT_TRUE(waitUntil([&] { return !inspector->isBusy(); }, 60000));
    inspector->setSettings(s);
    QAction* revertAll = findAction(window, QStringLiteral("Revert &All Layers"));
    ASSERT_NE(revertAll, nullptr);
    revertAll->trigger();
    ASSERT_TRUE(window.configuration().empty());
}

using mdbf::test::settingsOf;

/// The factorizer run in the test, as the studio's job runs it (same options, seed and threads).
factor::FactorResult referenceFactorization(const std::string& tensor, const FactorSettings& s)
{
    return mdbf::test::coreFactorization(mdbf::test::demoModel(), tensor, s);
}

/// A quantization config, written in the test, that factorizes exactly `layers` with `s`.
factor::QuantConfig configFor(const std::set<std::string>& layers, const FactorSettings& s, int iterations)
{
    nlohmann::json rules = nlohmann::json::array();
    for (const std::string& name : layers) rules.push_back({{"pattern", name}, {"dense", false}});
    const nlohmann::json json = {{"defaults",
                                  {{"method", std::string(factor::methodName(s.method))},
                                   {"bpw", s.bpw.text()},
                                   {"l", s.effectiveL()},
                                   {"iterations", iterations}}},
                                 {"dense", {"*"}},
                                 {"rules", rules}};
    return factor::QuantConfig::fromJson(json, "test");
}

std::set<std::string> configuredLayers(const MainWindow& window)
{
    std::set<std::string> out;
    for (const auto& [key, f] : window.configuration()) out.insert(key.toStdString());
    return out;
}

/// Every bar of the chart is a configured layer at its result's error, and vice versa; the layer
/// tree shows the same results.
void expectChartAndTreeMatchConfiguration(MainWindow& window)
{
    const widgets::LayerErrorBarPlot* plot = window.applyPanel()->plot();
    EXPECT_EQ(plot->barCount(), static_cast<int>(window.configuration().size()));
    for (const auto& [key, f] : window.configuration()) {
        const auto bar = plot->plottedError(key);
        ASSERT_TRUE(bar.has_value()) << key.toStdString();
        EXPECT_EQ(*bar, f->result->finalError) << key.toStdString();
        const auto summary = window.layerBrowser()->model()->factorization(key);
        ASSERT_TRUE(summary.has_value()) << key.toStdString();
        EXPECT_EQ(summary->k, f->result->k);
        EXPECT_EQ(summary->l, f->result->l);
        EXPECT_EQ(summary->bpw, f->result->bpw);
        EXPECT_EQ(summary->error, f->result->finalError);
    }
    EXPECT_EQ(window.layerBrowser()->model()->factorizedCount(), static_cast<int>(window.configuration().size()));
}

/// The whole-model accounting of pipeline::quantizeCheckpoint for the configured layers (closed forms
/// suffice: bits depend on k only).
pipeline::QuantizeResult evalAccounting(const MainWindow& window, const FactorSettings& s)
{
    pipeline::QuantizeOptions options;
    options.config = configFor(configuredLayers(window), s, 0);
    return pipeline::quantizeCheckpoint(window.session()->config(), window.session()->checkpoint(), options);
}

void selectInBrowser(MainWindow& window, const QStringList& keys)
{
    LayerBrowserDock* browser = window.layerBrowser();
    QItemSelectionModel* selection = browser->view()->selectionModel();
    selection->clearSelection();
    for (const QString& key : keys) {
        const QModelIndex index = browser->proxy()->mapFromSource(browser->model()->indexOfLayer(key));
        ASSERT_TRUE(index.isValid()) << key.toStdString();
        selection->select(index, QItemSelectionModel::Select | QItemSelectionModel::Rows);
    }
}

TEST(ApplyToModel, SelectionThenAllLayersMatchTheEngineAndEvalAccounting)
{
    auto window = openDemo();
    // l = 4 at 1.5 bpw cannot pay for k ≥ 4 on the 64×128 k/v projections: they must stay dense.
    const FactorSettings s = settingsOf(factor::Method::Mdbf, 4, "1.5", 4);
    useSettings(*window, s);
    ModelApplyPanel* panel = window->applyPanel();
    FactorizationService* service = window->factorizationService();
    QSignalSpy ended(service, &FactorizationService::applyEnded);

    const QString q = QStringLiteral("model.layers.1.self_attn.q_proj");
    const QString k = QStringLiteral("model.layers.1.self_attn.k_proj");
    const QString up = QStringLiteral("model.layers.1.mlp.up_proj");
    selectInBrowser(*window, {up, k, q});
    EXPECT_EQ(window->layerBrowser()->selectedLayers(), (QStringList{q, k, up}));  // model order
    QAction* applySelected = findAction(*window, QStringLiteral("Apply Settings to &Selected Layers"));
    ASSERT_NE(applySelected, nullptr);
    EXPECT_FALSE(applySelected->shortcut().isEmpty());
    applySelected->trigger();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1 && !service->isApplying(); }, 120000)) << panel->statusText().toStdString();
    EXPECT_FALSE(ended.at(0).at(0).toBool());

    EXPECT_EQ(configuredLayers(*window), (std::set<std::string>{q.toStdString(), up.toStdString()}));
    ASSERT_EQ(service->applyReport()->keptDense.size(), 1u);
    EXPECT_EQ(service->applyReport()->keptDense.front().first, k);
    EXPECT_FALSE(window->layerBrowser()->model()->factorization(k).has_value());
    const auto& entries = panel->plot()->entries();
    EXPECT_TRUE(std::any_of(entries.begin(), entries.end(), [&](const auto& e) { return e.name == k && e.dense; }));
    expectChartAndTreeMatchConfiguration(*window);

    // The bar of up_proj is the error the core factorizer reports for these settings.
    const factor::FactorResult ref = referenceFactorization(up.toStdString() + ".weight", s);
    const auto& applied = *window->configuration().at(up);
    EXPECT_TRUE(applied.refined && applied.complete);
    EXPECT_EQ(applied.result->k, factor::computeBitBudget(352, 128, s.bpw, s.method, 4, 1).k);
    EXPECT_EQ(applied.result->k, ref.k);
    EXPECT_EQ(applied.result->iterations, 4);
    EXPECT_NEAR(*panel->plot()->plottedError(up), ref.finalError, 1e-6 * ref.finalError);
    std::cout << "[ measured ] up_proj bar " << *panel->plot()->plottedError(up) << ", factorizer " << ref.finalError
              << "\n";
    const auto upResult = window->configuration().at(up).get();

    // All layers, through the menu's confirmation.
    QAction* applyAll = findAction(*window, QStringLiteral("Apply Settings to &All Layers…"));
    ASSERT_NE(applyAll, nullptr);
    applyAll->trigger();
    QMessageBox* confirm = window->findChild<QMessageBox*>(QStringLiteral("applyAllDialog"));
    ASSERT_NE(confirm, nullptr);
    QAbstractButton* yes = nullptr;
    for (QAbstractButton* b : confirm->buttons())
        if (confirm->buttonRole(b) == QMessageBox::AcceptRole) yes = b;
    ASSERT_NE(yes, nullptr);
    yes->click();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 2 && !service->isApplying(); }, 300000)) << panel->statusText().toStdString();

    // The two layers done before were reused, not recomputed.
    EXPECT_EQ(window->configuration().at(up).get(), upResult);
    EXPECT_TRUE(panel->statusText().contains(QStringLiteral("(2 reused)"))) << panel->statusText().toStdString();

    // eval's accounting of the same layer set: which layers stay dense, and the model's bpw.
    const pipeline::QuantizeResult all = [&] {
        pipeline::QuantizeOptions options;
        // Apply to all layers covers the projections; the head stays dense, as in the default configuration.
        nlohmann::json json = {{"defaults", {{"method", "mdbf"}, {"bpw", "1.5"}, {"l", 4}, {"iterations", 0}}},
                               {"dense", nlohmann::json::array({"lm_head"})}};
        options.config = factor::QuantConfig::fromJson(json, "test");
        return pipeline::quantizeCheckpoint(window->session()->config(), window->session()->checkpoint(), options);
    }();
    std::set<std::string> evalFactorized;
    std::set<QString> evalDense;
    for (const auto& layer : all.layers) {
        if (layer.name == "lm_head") continue;
        if (layer.keptDense) evalDense.insert(QString::fromStdString(layer.name));
        else evalFactorized.insert(layer.name);
    }
    EXPECT_EQ(evalDense.size(), 8u);  // k_proj and v_proj of every block
    EXPECT_EQ(configuredLayers(*window), evalFactorized);
    std::set<QString> panelDense;
    for (const auto& [key, reason] : service->applyReport()->keptDense) panelDense.insert(key);
    EXPECT_EQ(panelDense, evalDense);
    for (const auto& layer : all.layers) {
        if (layer.keptDense) continue;  // the head included
        EXPECT_EQ(window->configuration().at(QString::fromStdString(layer.name))->result->k, layer.k) << layer.name;
    }
    EXPECT_DOUBLE_EQ(window->modelBpw(), all.modelBpw);
    EXPECT_TRUE(window->modelSummaryText().contains(QStringLiteral("model %1 bpw").arg(all.modelBpw, 0, 'f', 3)))
        << window->modelSummaryText().toStdString();
    EXPECT_TRUE(window->modelSummaryText().contains(QStringLiteral("20/29 layers factorized")));
    expectChartAndTreeMatchConfiguration(*window);
    for (const auto& [key, f] : window->configuration()) {
        EXPECT_TRUE(f->refined && f->complete) << key.toStdString();
        EXPECT_EQ(f->settings, s);
    }

    // Clicking a bar shows its layer in the inspector.
    emit panel->plot()->barClicked(up);
    EXPECT_EQ(window->layerBrowser()->currentLayer(), up);
}

TEST(ApplyToModel, CancelMidApplyKeepsTheLayersAlreadyDone)
{
    auto window = openDemo();
    const FactorSettings s = settingsOf(factor::Method::Mdbf, 2, "1", 1500);
    useSettings(*window, s);
    ModelApplyPanel* panel = window->applyPanel();
    FactorizationService* service = window->factorizationService();
    QSignalSpy applied(service, &FactorizationService::applyLayerDone);
    QSignalSpy ended(service, &FactorizationService::applyEnded);
    ASSERT_TRUE(window->commands()->applySettingsToAllLayers());
    EXPECT_TRUE(service->isApplying());
    ASSERT_TRUE(waitUntil([&] { return applied.count() >= 2; }, 300000));
    EXPECT_FALSE(panel->etaText().isEmpty());
    QAction* cancel = findAction(*window, QStringLiteral("Cancel Appl&y"));
    ASSERT_NE(cancel, nullptr);
    EXPECT_TRUE(cancel->isEnabled());
    cancel->trigger();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1; }, 60000));
    EXPECT_TRUE(ended.at(0).at(0).toBool());
    EXPECT_FALSE(service->isApplying());
    EXPECT_FALSE(cancel->isEnabled());
    EXPECT_TRUE(panel->statusText().contains(QStringLiteral("cancelled"))) << panel->statusText().toStdString();

    // Exactly the layers reported done are applied, each complete; the one in progress is not.
    std::set<std::string> done;
    for (const auto& args : applied) done.insert(args.at(0).toString().toStdString());
    EXPECT_LT(done.size(), 29u);
    std::cout << "[ measured ] cancelled after " << done.size() << " of 29 layers\n";
    EXPECT_EQ(configuredLayers(*window), done);
    for (const auto& [key, f] : window->configuration()) {
        EXPECT_TRUE(f->complete) << key.toStdString();
        // Complete: the whole schedule ran, or it ended early because the error stalled.
        EXPECT_GT(f->result->iterations, 0);
        EXPECT_LE(f->result->iterations, s.iterations);
        if (f->result->iterations < s.iterations) {
            EXPECT_EQ(f->result->termination, factor::Termination::Converged);
        }
        EXPECT_NE(f->result->termination, factor::Termination::Cancelled);
    }
    expectChartAndTreeMatchConfiguration(*window);
    EXPECT_DOUBLE_EQ(window->modelBpw(), evalAccounting(*window, s).modelBpw);
    EXPECT_EQ(window->jobRunner()->runningCount(), 0);

    // Applying again reuses the finished layers at once.
    const int reused = static_cast<int>(done.size());
    ASSERT_TRUE(window->commands()->applySettingsToAllLayers());
    EXPECT_TRUE(panel->statusText().contains(QStringLiteral("(%1 reused)").arg(reused))) << panel->statusText().toStdString();
    panel->cancelAction()->trigger();
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 2; }, 60000));
    EXPECT_GE(window->configuration().size(), done.size());
}

TEST(ExportConfiguration, PackageAndJsonRoundTrip)
{
    auto window = openDemo();
    const FactorSettings mdbf = settingsOf(factor::Method::Mdbf, 2, "1.5", 3);
    useSettings(*window, mdbf);
    FactorizationService* service = window->factorizationService();
    QSignalSpy ended(service, &FactorizationService::applyEnded);
    const QStringList mdbfLayers = {QStringLiteral("model.layers.0.mlp.gate_proj"), QStringLiteral("model.layers.2.self_attn.o_proj"),
                                    QStringLiteral("lm_head")};
    ASSERT_TRUE(window->commands()->applySettingsToLayers(mdbfLayers));
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1 && !service->isApplying(); }, 120000));
    // A second group with other settings, so that the configuration needs rules.
    const FactorSettings dbf = settingsOf(factor::Method::Dbf, 1, "2", 3);
    window->inspector()->setSettings(dbf);
    const QStringList dbfLayers = {QStringLiteral("model.layers.3.mlp.down_proj")};
    ASSERT_TRUE(window->commands()->applySettingsToLayers(dbfLayers));
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 2 && !service->isApplying(); }, 120000));
    const ModelConfiguration config = window->configuration();
    ASSERT_EQ(config.size(), 4u);

    QTemporaryDir dir;
    const QString packagePath = dir.filePath(QStringLiteral("demo.h5"));
    QSignalSpy exported(window.get(), &MainWindow::packageExported);
    Job* job = window->commands()->exportPackage(packagePath);
    ASSERT_NE(job, nullptr);
    ASSERT_TRUE(waitUntil([&] { return exported.count() == 1; }, 120000)) << window->lastError().toStdString();
    EXPECT_EQ(exported.at(0).at(0).toString(), packagePath);

    const io::Package package = io::readPackage(packagePath.toStdString());
    std::set<std::string> packaged;
    for (const io::PackageLayer& layer : package.layers) {
        packaged.insert(layer.name);
        const auto it = config.find(QString::fromStdString(layer.name));
        ASSERT_NE(it, config.end()) << layer.name;
        const factor::FactorResult& r = *it->second->result;
        EXPECT_EQ(layer.k(), r.k);
        EXPECT_EQ(layer.l(), r.l);
        EXPECT_EQ(layer.n(), r.n);
        EXPECT_EQ(layer.m(), r.m);
        EXPECT_EQ(layer.method, r.method);
        ASSERT_EQ(layer.paths.size(), r.paths.size());
        EXPECT_EQ(layer.paths[0].sa, r.paths[0].sa);
        EXPECT_EQ(layer.paths[0].sb, r.paths[0].sb);
        EXPECT_EQ(layer.paths[0].A, r.paths[0].A);  // FP16 values survive the binary16 round trip
        EXPECT_EQ(layer.paths[0].B, r.paths[0].B);
    }
    EXPECT_EQ(packaged, configuredLayers(*window));
    // Every checkpoint tensor not replaced is there, dense; a tied head replaces no tensor.
    const auto checkpoint = io::Checkpoint::open(mdbf::test::demoModel());
    std::set<std::string> expectedDense;
    for (const auto& t : checkpoint.tensors())
        if (!config.count(QString::fromStdString(t.name).chopped(7)) || !t.name.ends_with(".weight")) expectedDense.insert(t.name);
    std::set<std::string> dense;
    for (const io::PackageTensor& t : package.dense) dense.insert(t.name);
    EXPECT_EQ(dense, expectedDense);
    EXPECT_TRUE(dense.count("model.embed_tokens.weight"));
    EXPECT_DOUBLE_EQ(package.modelBpw, window->modelBpw());

    // The configuration JSON resolves every projection to what is in use.
    const QString jsonPath = dir.filePath(QStringLiteral("config.json"));
    QSignalSpy jsonWritten(window.get(), &MainWindow::configurationExported);
    ASSERT_TRUE(window->exportConfigurationJson(jsonPath));
    EXPECT_EQ(jsonWritten.count(), 1);
    const factor::QuantConfig parsed = factor::QuantConfig::fromFile(jsonPath.toStdString());
    EXPECT_FALSE(parsed.rules().empty());
    const factor::QuantConfig embedded = factor::QuantConfig::fromJson(nlohmann::json::parse(package.quantConfigJson), "package");
    for (const std::string& name : model::projectionNames(window->session()->config())) {
        const factor::LayerQuantSettings s = parsed.resolve(name);
        const auto it = config.find(QString::fromStdString(name));
        if (it == config.end()) {
            EXPECT_TRUE(s.dense) << name;
            EXPECT_TRUE(embedded.resolve(name).dense) << name;
            continue;
        }
        const FactorSettings& used = it->second->settings;
        EXPECT_FALSE(s.dense) << name;
        EXPECT_EQ(s.method, used.method) << name;
        EXPECT_EQ(s.l, used.effectiveL()) << name;
        EXPECT_EQ(s.bpw, used.bpw) << name;
        EXPECT_EQ(s.iterations, it->second->refined ? used.iterations : 0) << name;
        EXPECT_EQ(embedded.resolve(name).bpw, used.bpw) << name;
    }
    // `mdbf quantize --config` semantics: the same layers, at the same k, and the same model bpw.
    pipeline::QuantizeOptions options;
    options.config = parsed;
    options.config.overrideIterations(0);
    const pipeline::QuantizeResult requant =
        pipeline::quantizeCheckpoint(window->session()->config(), window->session()->checkpoint(), options);
    for (const auto& layer : requant.layers) {
        const auto it = config.find(QString::fromStdString(layer.name));
        EXPECT_EQ(layer.keptDense, it == config.end()) << layer.name;
        if (it != config.end()) {
            EXPECT_EQ(layer.k, it->second->result->k) << layer.name;
        }
    }
    EXPECT_DOUBLE_EQ(requant.modelBpw, window->modelBpw());
}

TEST(ExportConfiguration, FailuresAndCancellationLeaveNoPartialFile)
{
    auto window = openDemo();
    QSignalSpy errors(window.get(), &MainWindow::errorReported);
    ASSERT_NE(window->commands()->exportPackage(QStringLiteral("/nonexistent-mdbf-dir/sub/model.h5")), nullptr);
    ASSERT_TRUE(waitUntil([&] { return errors.count() == 1; }, 60000));
    EXPECT_TRUE(errors.at(0).at(1).toString().contains(QStringLiteral("/nonexistent-mdbf-dir/sub/model.h5")));
    EXPECT_FALSE(window->exportConfigurationJson(QStringLiteral("/nonexistent-mdbf-dir/config.json")));
    EXPECT_EQ(errors.count(), 2);
    QMessageBox* box = nullptr;
    for (QMessageBox* b : window->findChildren<QMessageBox*>(QStringLiteral("errorDialog")))
        if (b->isVisible()) box = b;
    ASSERT_NE(box, nullptr);
    EXPECT_TRUE(box->text().contains(QStringLiteral("/nonexistent-mdbf-dir/config.json")));
    box->close();

    // A cancelled export writes nothing; one that won the race is a complete package.
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("cancelled.h5"));
    QSignalSpy cancelled(window->exporter(), &ConfigurationExporter::packageCancelled);
    QSignalSpy exported(window.get(), &MainWindow::packageExported);
    Job* job = window->commands()->exportPackage(path);
    ASSERT_NE(job, nullptr);
    job->cancel();
    ASSERT_TRUE(waitUntil([&] { return cancelled.count() + exported.count() == 1; }, 60000));
    std::cout << "[ measured ] export cancelled in time: " << (cancelled.count() == 1 ? "yes" : "no") << "\n";
    if (cancelled.count() == 1) {
        EXPECT_FALSE(std::filesystem::exists(path.toStdString()));
        EXPECT_TRUE(std::filesystem::is_empty(dir.path().toStdString()));
    } else {
        EXPECT_NO_THROW(io::readPackage(path.toStdString()));
    }
    EXPECT_EQ(errors.count(), 2);
}

}  // namespace
}  // namespace mdbf::studio
