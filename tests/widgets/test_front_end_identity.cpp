// One configuration through the three front ends — the studio's Apply and Export, `mdbf quantize`
// and a study point — must give the same bits: they all run layers through the core pipeline.

#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <QSignalSpy>
#include <QTemporaryDir>

#include "cli_runner.h"
#include "deploy_test_util.h"
#include "factor_control_bar.h"
#include "job_runner.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "mdbf/io/package.h"
#include "mdbf/pipeline/study.h"
#include "factorization_service.h"
#include "model_apply_panel.h"
#include "studio_test_support.h"
#include "test_fixtures.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

namespace fs = std::filesystem;
using mdbf::test::openDemo;
using mdbf::test::waitUntil;

/// Every layer of the cached one-layer packages a study keeps under `directory`.
std::map<std::string, io::PackageLayer> studyLayers(const fs::path& directory)
{
    std::map<std::string, io::PackageLayer> layers;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(directory)) {
        if (e.path().extension() != ".h5") continue;
        io::Package package = io::readPackage(e.path());
        for (io::PackageLayer& layer : package.layers) layers.emplace(layer.name, std::move(layer));
    }
    return layers;
}

TEST(FrontEnds, StudioApplyQuantizeAndStudyPointGiveBitIdenticalResults)
{
    auto window = openDemo();
    LayerInspectorPanel* inspector = window->inspector();
    inspector->cancelRefinement();
    ASSERT_TRUE(waitUntil([&] { return !inspector->isBusy(); }, 60000));
    FactorSettings s;
    s.method = factor::Method::Mdbf;
    s.l = 2;
    s.bpw = factor::Bpw::parse("1.5");
    s.iterations = 4;
    inspector->setSettings(s);

    // The studio: every projection (the default set), then the package and its configuration.
    FactorizationService* service = window->factorizationService();
    QSignalSpy ended(service, &FactorizationService::applyEnded);
    ASSERT_TRUE(window->commands()->applySettingsToAllLayers());
    ASSERT_TRUE(waitUntil([&] { return ended.count() == 1 && !service->isApplying(); }, 300000));
    QTemporaryDir dir;
    const fs::path root = dir.path().toStdString();
    ASSERT_TRUE(window->exportConfigurationJson(QString::fromStdString((root / "config.json").string())));
    QSignalSpy exported(window.get(), &MainWindow::packageExported);
    ASSERT_NE(window->commands()->exportPackage(QString::fromStdString((root / "studio.h5").string())), nullptr);
    ASSERT_TRUE(waitUntil([&] { return exported.count() == 1; }, 120000)) << window->lastError().toStdString();
    const io::Package studio = io::readPackage(root / "studio.h5");
    EXPECT_EQ(studio.layers.size(), window->configuration().size());
    for (const io::PackageLayer& layer : studio.layers) EXPECT_NE(layer.name, "lm_head");  // dense by default

    // `mdbf quantize` with the configuration the studio wrote, on the studio's worker thread count.
    const test::CliResult cli =
        test::runCli({"--threads", std::to_string(JobRunner::workerThreads()), "quantize", "--model",
                      test::demoModel().string(), "--config", (root / "config.json").string(), "--out",
                      (root / "cli.h5").string()});
    ASSERT_EQ(cli.exitCode, 0) << cli.err;
    const io::Package quantized = io::readPackage(root / "cli.h5");
    test::expectSamePackage(studio, quantized);

    // A study point of the same settings: its cached layers are the same factorizations.
    pipeline::StudySpec spec;
    spec.modelDir = test::demoModel();
    spec.evalText = test::testData() / "eval-small.txt";
    spec.ctx = 64;
    spec.cacheDir = root / "study";
    spec.points.push_back({factor::Method::Mdbf, 2, factor::Bpw::parse("1.5"), factor::Objective::Plain, false, 4});
    RunContext ctx;
    ctx.threads = JobRunner::workerThreads();
    const pipeline::StudyResult result = pipeline::runStudy(spec, ctx);
    ASSERT_EQ(result.points.size(), 1u);
    EXPECT_EQ(result.points.front().modelBpw, quantized.modelBpw);
    const std::map<std::string, io::PackageLayer> study = studyLayers(spec.cacheDir);
    ASSERT_EQ(study.size(), quantized.layers.size());
    for (const io::PackageLayer& expected : quantized.layers) {
        SCOPED_TRACE(expected.name);
        const auto it = study.find(expected.name);
        ASSERT_NE(it, study.end());
        ASSERT_EQ(it->second.paths.size(), expected.paths.size());
        for (std::size_t p = 0; p < expected.paths.size(); ++p) {
            const kernels::FactorPath& a = it->second.paths[p];
            const kernels::FactorPath& e = expected.paths[p];
            EXPECT_TRUE(a.sa.words() == e.sa.words() && a.sb.words() == e.sb.words());
            EXPECT_TRUE(test::sameMatrix(a.A, e.A) && test::sameMatrix(a.Qa, e.Qa));
            EXPECT_TRUE(test::sameMatrix(a.Qb, e.Qb) && test::sameMatrix(a.B, e.B));
        }
    }
}

}  // namespace
}  // namespace mdbf::studio
