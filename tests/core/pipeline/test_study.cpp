// The study on the demo model: sequential quantization against one calibration, the layer and record
// caches (a repeated point is read back, not recomputed, and gives the same figures),
// and the written files agreeing with each other.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stop_token>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "error_expect.h"
#include "mdbf/pipeline/study.h"
#include "mdbf/pipeline/study_file.h"
#include "test_fixtures.h"

namespace mdbf::pipeline {
namespace {

namespace fs = std::filesystem;

/// Calibration and evaluation on disjoint halves of eval-small (split at a line break).
struct SplitText {
    fs::path calib;
    fs::path eval;
};

SplitText splitEvalSmall(const test::TempDir& dir)
{
    const std::string text = readUtf8File(test::testData() / "eval-small.txt");
    const std::size_t cut = text.find('\n', text.size() / 2) + 1;
    SplitText s{dir / "calib.txt", dir / "eval.txt"};
    test::writeTextFile(s.calib, text.substr(0, cut));
    test::writeTextFile(s.eval, text.substr(cut));
    return s;
}

StudyPoint point(factor::Method method, int l, factor::Objective objective, bool sequential, int iterations)
{
    StudyPoint p;
    p.method = method;
    p.l = l;
    p.bpw = factor::Bpw::parse("1.5");
    p.objective = objective;
    p.sequential = sequential;
    p.iterations = iterations;
    return p;
}

// Sequential Gram quantization fits every layer to the original model's outputs given the inputs the
// partly quantized model really produces. On the demo model at 1.5 bpw single runs scatter by about
// ±15% from seed to seed, and which of the two wins depends on the seeds and on the machine's
// floating-point paths (AVX2 or AVX-512): 321.6 against 333.9 on one machine, 373.7 against 341.4 on
// another, for the same two seeds. The geometric mean over two seeds must stay within that scatter.
TEST(StudySlow, SequentialGramQuantizationStaysWithinTheSeedScatterOfNonSequential)
{
    test::TempDir dir;
    const SplitText text = splitEvalSmall(dir);
    double logOnce = 0.0, logSequential = 0.0;
    for (const std::uint64_t seed : {0u, 1u}) {
        StudySpec spec;
        spec.modelDir = test::demoModel();
        spec.evalText = text.eval;
        spec.ctx = 128;
        spec.calibText = text.calib;
        spec.calibCtx = 128;
        spec.seed = seed;
        spec.points = {point(factor::Method::Mdbf, 2, factor::Objective::Gram, false, 20),
                       point(factor::Method::Mdbf, 2, factor::Objective::Gram, true, 20)};
        const StudyResult r = runStudy(spec, RunContext{{}, {}, 2});
        ASSERT_EQ(r.points.size(), 2u);
        std::printf("seed %llu: original %.3f, gram non-sequential %.3f, gram sequential %.3f\n",
                    static_cast<unsigned long long>(seed), r.originalPpl, r.points[0].ppl, r.points[1].ppl);
        for (const StudyPointResult& p : r.points) {
            ASSERT_TRUE(std::isfinite(p.ppl));
            EXPECT_GT(p.ppl, r.originalPpl);
        }
        // Block 0 sees the unmodified embeddings either way, so its output-matching target is W itself
        // and its layers come out exactly as without sequential calibration; every later block sees
        // the partly quantized model's inputs and comes out differently.
        ASSERT_EQ(r.points[0].layers.size(), 29u);
        int laterBlocksDiffering = 0;
        for (std::size_t i = 0; i < 28; ++i) {
            const StudyLayer& a = r.points[0].layers[i];
            const StudyLayer& b = r.points[1].layers[i];
            ASSERT_EQ(a.name, b.name);
            EXPECT_EQ(a.k, b.k);
            if (a.name.rfind("model.layers.0.", 0) == 0) {
                EXPECT_EQ(a.relError, b.relError) << a.name;
            } else {
                laterBlocksDiffering += a.relError != b.relError ? 1 : 0;
            }
        }
        EXPECT_EQ(laterBlocksDiffering, 21);
        logOnce += std::log(r.points[0].ppl) / 2.0;
        logSequential += std::log(r.points[1].ppl) / 2.0;
    }
    std::printf("geometric means: non-sequential %.3f, sequential %.3f\n", std::exp(logOnce), std::exp(logSequential));
    EXPECT_LE(logSequential, logOnce + std::log(1.15));
}

TEST(StudySlow, RepeatedRunReadsLayersFromTheCacheAndWritesConsistentFiles)
{
    test::TempDir dir;
    StudySpec spec;
    spec.modelDir = test::demoModel();
    spec.evalText = test::testData() / "eval-small.txt";
    spec.ctx = 128;
    spec.cacheDir = dir / "cache";
    spec.points = {point(factor::Method::Dbf, 1, factor::Objective::Plain, false, 3),
                   point(factor::Method::Mdbf, 2, factor::Objective::Plain, false, 3)};
    spec.layerViewBpw = {factor::Bpw::parse("1.5")};
    spec.layerViewLs = {1, 2};
    spec.layerViewIterations = 2;
    const StudyResult first = runStudy(spec);
    const StudyResult second = runStudy(spec);  // every record read back
    std::filesystem::remove_all(dir / "cache" / "records");
    const StudyResult third = runStudy(spec);  // the points re-evaluated from the cached layers
    spec.ctx = 64;
    const StudyResult otherWindow = runStudy(spec);  // a point's record is keyed by the window too

    // The original perplexity is the transformers reference (tests/data).
    std::ifstream refFile(test::testData() / "tiny-llama" / "tiny-llama.reference.json");
    const nlohmann::json ref = nlohmann::json::parse(refFile);
    EXPECT_NEAR(first.originalPpl, ref["ppl_eval_small_ctx128"].get<double>(), 1e-3 * first.originalPpl);
    EXPECT_DOUBLE_EQ(first.originalBpw, 16.0);  // tiny-llama is stored in F16

    ASSERT_EQ(second.points.size(), 2u);
    ASSERT_EQ(third.points.size(), 2u);
    ASSERT_EQ(otherWindow.points.size(), 2u);
    EXPECT_EQ(second.originalPpl, first.originalPpl);
    EXPECT_EQ(second.layerView.size(), first.layerView.size());
    for (std::size_t i = 0; i < first.layerView.size(); ++i) {
        EXPECT_EQ(second.layerView[i].k, first.layerView[i].k);
        if (first.layerView[i].k > 0) {
            EXPECT_EQ(second.layerView[i].relError, first.layerView[i].relError);
        }
    }
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(first.points[i].cachedLayers, 0);
        EXPECT_FALSE(first.points[i].fromCache);
        EXPECT_TRUE(second.points[i].fromCache);
        EXPECT_FALSE(third.points[i].fromCache);
        EXPECT_FALSE(otherWindow.points[i].fromCache);
        for (const StudyResult* again : {&second, &third, &otherWindow}) {
            EXPECT_EQ(again->points[i].cachedLayers, 28);  // every projection but the dense head
            EXPECT_EQ(again->points[i].modelBpw, first.points[i].modelBpw);
            ASSERT_EQ(again->points[i].layers.size(), first.points[i].layers.size());
            for (std::size_t j = 0; j < first.points[i].layers.size(); ++j) {
                EXPECT_EQ(again->points[i].layers[j].k, first.points[i].layers[j].k);
                EXPECT_EQ(again->points[i].layers[j].relError, first.points[i].layers[j].relError);
            }
        }
        EXPECT_EQ(second.points[i].ppl, first.points[i].ppl);
        EXPECT_EQ(third.points[i].ppl, first.points[i].ppl);
        EXPECT_NE(otherWindow.points[i].ppl, first.points[i].ppl);
    }
    EXPECT_NE(otherWindow.originalPpl, first.originalPpl);
    // At equal bpw DBF gets the larger k (its envelope is the merged rank-1 form).
    EXPECT_GT(first.points[0].layers[0].k, first.points[1].layers[0].k);

    // Per-layer view: four shapes in tiny-llama × (dbf, l = 1, l = 2).
    EXPECT_EQ(first.layerView.size(), 4u * 3u);
    for (const LayerViewCell& c : first.layerView) {
        if (c.k == 0) {
            EXPECT_TRUE(std::isnan(c.relError));
        } else {
            EXPECT_GT(c.relError, 0.0);
            EXPECT_LT(c.relError, 1.0);
            EXPECT_LE(c.achievedBpw, 1.5);
        }
    }

    writeStudyFiles({first}, dir / "out");
    std::ifstream in(dir / "out" / "study.json");
    const nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_EQ(j["format"], "mdbf-study");
    ASSERT_EQ(j["models"].size(), 1u);
    const nlohmann::json& points = j["models"][0]["points"];
    ASSERT_EQ(points.size(), 2u);
    std::istringstream csv(readUtf8File(dir / "out" / "points.csv"));
    std::string line;
    std::getline(csv, line);
    EXPECT_EQ(line.rfind("model,method,l,bpw_requested", 0), 0u);
    for (const nlohmann::json& p : points) {
        ASSERT_TRUE(std::getline(csv, line));
        std::ostringstream ppl;
        ppl.precision(9);
        ppl << p["ppl"].get<double>();
        EXPECT_NE(line.find("tiny-llama," + p["method"].get<std::string>() + ","), std::string::npos) << line;
        EXPECT_NE(line.find("," + ppl.str() + ","), std::string::npos) << line << " vs " << ppl.str();
    }
    EXPECT_FALSE(std::getline(csv, line));
    std::istringstream view(readUtf8File(dir / "out" / "layer_view.csv"));
    int rows = -1;
    while (std::getline(view, line)) ++rows;
    EXPECT_EQ(rows, 12);

    // The reader gives back what was written.
    const std::vector<StudyResult> read = readStudyFile(dir / "out" / "study.json");
    ASSERT_EQ(read.size(), 1u);
    EXPECT_EQ(read[0].model, first.model);
    EXPECT_EQ(read[0].ctx, first.ctx);
    EXPECT_EQ(read[0].originalPpl, first.originalPpl);
    ASSERT_EQ(read[0].points.size(), first.points.size());
    for (std::size_t i = 0; i < first.points.size(); ++i) {
        EXPECT_EQ(read[0].points[i].point.label(), first.points[i].point.label());
        EXPECT_EQ(read[0].points[i].ppl, first.points[i].ppl);
        EXPECT_EQ(read[0].points[i].modelBpw, first.points[i].modelBpw);
        ASSERT_EQ(read[0].points[i].layers.size(), first.points[i].layers.size());
        EXPECT_EQ(read[0].points[i].layers.back().k, first.points[i].layers.back().k);
    }
    ASSERT_EQ(read[0].layerView.size(), first.layerView.size());
    for (std::size_t i = 0; i < first.layerView.size(); ++i) {
        EXPECT_EQ(read[0].layerView[i].k, first.layerView[i].k);
        EXPECT_EQ(std::isnan(read[0].layerView[i].relError), std::isnan(first.layerView[i].relError));
    }
}

// Warm starts: with spec.warmStart a point's layers are refined from the cached cold result of
// another point at the nearest k, reach at least the cold error at the same iteration count, are
// kept apart from the cold results (a cold run of the same point computes afresh), and say where
// they started in the record and in study.json.
TEST(Study, WarmStartRefinesFromTheNearestCachedResultAndKeepsItApart)
{
    test::TempDir dir;
    StudySpec spec;
    spec.modelDir = test::demoModel();
    // A short evaluation text: the figures under test are the layers', the perplexity only has to exist.
    spec.evalText = dir / "eval.txt";
    test::writeTextFile(spec.evalText, readUtf8File(test::testData() / "eval-small.txt").substr(0, 600));
    spec.ctx = 64;
    spec.cacheDir = dir / "cache";
    StudyPoint from = point(factor::Method::Mdbf, 2, factor::Objective::Plain, false, 4);
    StudyPoint to = from;
    to.bpw = factor::Bpw::parse("1.25");
    RunContext run;
    run.threads = 2;
    spec.points = {from};
    const StudyResult source = runStudy(spec, run);
    spec.points = {from, to};
    spec.warmStart = true;
    const StudyResult warm = runStudy(spec, run);
    const StudyResult warmAgain = runStudy(spec, run);
    spec.points = {to};
    spec.warmStart = false;
    const StudyResult cold = runStudy(spec, run);

    ASSERT_EQ(source.points.size(), 1u);
    ASSERT_EQ(warm.points.size(), 2u);
    ASSERT_EQ(cold.points.size(), 1u);
    // The source point is its own cold result, read back; the other starts from it.
    EXPECT_TRUE(warm.points[0].warmStart);
    EXPECT_EQ(warm.points[0].cachedLayers, 28);
    const StudyPointResult& w = warm.points[1];
    const StudyPointResult& c = cold.points[0];
    EXPECT_TRUE(w.warmStart);
    EXPECT_FALSE(c.warmStart);
    EXPECT_EQ(w.cachedLayers, 0);
    EXPECT_EQ(c.cachedLayers, 0);  // the warm results are not the cold point's
    ASSERT_EQ(w.layers.size(), c.layers.size());
    ASSERT_EQ(w.layers.size(), source.points[0].layers.size());
    double warmSum = 0.0, coldSum = 0.0;
    int factorized = 0, worse = 0;
    double worst = -1.0;  // the largest excess of a warm layer's error over its cold one
    for (std::size_t i = 0; i < w.layers.size(); ++i) {
        const StudyLayer& a = w.layers[i];
        const StudyLayer& b = c.layers[i];
        EXPECT_EQ(a.k, b.k) << a.name;
        EXPECT_EQ(source.points[0].layers[i].warmStartK, 0) << a.name;
        EXPECT_EQ(b.warmStartK, 0) << a.name;
        if (a.keptDense) continue;
        ++factorized;
        EXPECT_EQ(a.warmStartK, source.points[0].layers[i].k) << a.name;
        EXPECT_GT(a.warmStartK, a.k) << a.name;  // 1.5 bpw holds more components than 1.25
        worse += a.relError > b.relError + 1e-4 ? 1 : 0;
        worst = std::max(worst, a.relError - b.relError);
        warmSum += a.relError;
        coldSum += b.relError;
    }
    EXPECT_EQ(factorized, 28);
    // The acceptance bound, on the point: at the same iterations its layers' mean error warm is no
    // worse than cold (1e-4 absolute). Single layers may end a little above their cold error: the
    // start is better, not every layer's path from it.
    EXPECT_LE(warmSum / factorized, coldSum / factorized + 1e-4);
    std::printf("warm start 1.5 -> 1.25 bpw, T=%d: mean rel_error over %d layers cold %.5f, warm %.5f; "
                "%d layers warm > cold + 1e-4, largest excess %.5f\n",
                to.iterations, factorized, coldSum / factorized, warmSum / factorized, worse, worst);

    // A repeated warm study reads the point back with where each layer started.
    ASSERT_EQ(warmAgain.points.size(), 2u);
    EXPECT_TRUE(warmAgain.points[1].fromCache);
    EXPECT_TRUE(warmAgain.points[1].warmStart);
    EXPECT_EQ(warmAgain.points[1].ppl, w.ppl);
    for (std::size_t i = 0; i < w.layers.size(); ++i)
        EXPECT_EQ(warmAgain.points[1].layers[i].warmStartK, w.layers[i].warmStartK);

    const nlohmann::json json = studyToJson({warm});
    const nlohmann::json& points = json["models"][0]["points"];
    EXPECT_EQ(points[1]["warm_start"], true);
    EXPECT_EQ(points[1]["layers"][0]["warm_start_k"], w.layers[0].warmStartK);
    EXPECT_TRUE(points[1]["layers"].back()["warm_start_k"].is_null());  // the dense head
    EXPECT_EQ(studyToJson({cold})["models"][0]["points"][0]["warm_start"], false);
    EXPECT_FALSE(studyToJson({cold})["models"][0]["points"][0]["layers"][0].contains("warm_start_k"));
    writeStudyFiles({warm}, dir / "out");
    const std::vector<StudyResult> back = readStudyFile(dir / "out" / "study.json");
    ASSERT_EQ(back.size(), 1u);
    ASSERT_EQ(back[0].points.size(), 2u);
    EXPECT_TRUE(back[0].points[1].warmStart);
    EXPECT_EQ(back[0].points[1].layers[0].warmStartK, w.layers[0].warmStartK);

    // Warm starts refine results of the layer cache: without one the study is refused.
    spec.warmStart = true;
    spec.cacheDir.clear();
    EXPECT_THROW(runStudy(spec, run), InvalidArgument);
}

TEST(Study, ReaderNamesTheFileAndThePlaceOfAProblem)
{
    test::TempDir dir;
    const fs::path file = dir / "study.json";
    test::writeTextFile(file, R"({"format": "something else"})");
    test::expectErrorContaining([&] { (void)readStudyFile(file); }, {"study.json", "not a study file"});
    test::writeTextFile(file, R"({"format": "mdbf-study", "version": 1, "models": [{"model": "m", "eval_text": "e",
        "ctx": 8, "eval_tokens": 10, "original_ppl": 3.5, "original_bpw": 16, "cancelled": false,
        "points": [{"method": "mdbf", "l": 2}], "layer_view": []}]})");
    test::expectErrorContaining([&] { (void)readStudyFile(file); },
                                {"study.json", "models[0].points[0]", "bpw_requested"});
}

// A stop request between points keeps what finished: the per-layer view (run first) and the points
// before the stop, flagged as cancelled.
TEST(Study, StopRequestKeepsTheFinishedPoints)
{
    test::TempDir dir;
    StudySpec spec;
    spec.modelDir = test::demoModel();
    spec.evalText = splitEvalSmall(dir).eval;
    spec.ctx = 128;
    spec.points = {point(factor::Method::Dbf, 1, factor::Objective::Plain, false, 2),
                   point(factor::Method::Mdbf, 2, factor::Objective::Plain, false, 2)};
    spec.layerViewBpw = {factor::Bpw::parse("1.5")};
    spec.layerViewLs = {2};
    spec.layerViewIterations = 2;
    std::stop_source source;
    RunContext run;
    run.threads = 2;
    run.stop = source.get_token();
    int seen = 0;
    const StudyResult r = runStudy(spec, run, [&](const StudyPointResult&) {
        ++seen;
        source.request_stop();
    });
    EXPECT_TRUE(r.cancelled);
    EXPECT_EQ(seen, 1);
    ASSERT_EQ(r.points.size(), 1u);
    EXPECT_TRUE(std::isfinite(r.points[0].ppl));
    EXPECT_EQ(r.layerView.size(), 4u * 2u);  // four shapes × (dbf, mdbf l=2)
    EXPECT_EQ(studyToJson({r})["models"][0]["cancelled"], true);
}

// A planned point quantizes exactly what planModel chooses for its budget (method, l and k of every
// layer), stays within the budget, is read back from its record and keeps its kind in study.json.
TEST(Study, PlannedPointQuantizesWhatThePlanChose)
{
    test::TempDir dir;
    StudySpec spec;
    spec.modelDir = test::demoModel();
    spec.evalText = splitEvalSmall(dir).eval;
    spec.ctx = 64;
    spec.cacheDir = dir / "cache";
    StudyPoint planned;
    planned.planned = true;
    planned.bpw = factor::Bpw::parse("1.25");
    planned.iterations = 1;
    spec.points = {planned};
    spec.plan.ls = {2};
    spec.plan.gridPoints = 3;
    spec.plan.trialIterations = 0;
    RunContext run;
    run.threads = 1;
    const StudyResult first = runStudy(spec, run);
    const StudyResult second = runStudy(spec, run);

    PlanOptions options = spec.plan;
    options.budget = planned.bpw;
    options.iterations = planned.iterations;
    const io::ModelConfig config = io::ModelConfig::fromFile(spec.modelDir / "config.json");
    const ModelPlan plan = planModel(config, io::Checkpoint::open(spec.modelDir), options, run);

    ASSERT_EQ(first.points.size(), 1u);
    const StudyPointResult& r = first.points[0];
    EXPECT_EQ(r.point.label(), "plan @1.25 plain T=1");
    EXPECT_LE(r.factorizedBpw, 1.25);
    EXPECT_DOUBLE_EQ(r.factorizedBpw, plan.bits.factorizedBpw());
    std::map<std::string, const StudyLayer*> byName;
    for (const StudyLayer& layer : r.layers) byName[layer.name] = &layer;
    ASSERT_EQ(plan.layers.size(), 28u);
    for (const PlannedLayer& p : plan.layers) {
        const auto it = byName.find(p.name);
        ASSERT_NE(it, byName.end()) << p.name;
        EXPECT_EQ(it->second->k, p.choice.k) << p.name;
        EXPECT_EQ(it->second->l, p.choice.format.l) << p.name;
        EXPECT_FALSE(it->second->keptDense) << p.name;
    }
    EXPECT_TRUE(std::isfinite(r.ppl));

    ASSERT_EQ(second.points.size(), 1u);
    EXPECT_TRUE(second.points[0].fromCache);
    EXPECT_TRUE(second.points[0].point.planned);
    EXPECT_EQ(second.points[0].ppl, r.ppl);
    writeStudyFiles({first}, dir / "out");
    const std::vector<StudyResult> back = readStudyFile(dir / "out" / "study.json");
    ASSERT_EQ(back.size(), 1u);
    ASSERT_EQ(back[0].points.size(), 1u);
    EXPECT_TRUE(back[0].points[0].point.planned);
    EXPECT_EQ(back[0].points[0].point.label(), r.point.label());

    // Plans take plain or gram: a diag planned point is refused before any work.
    spec.points[0].objective = factor::Objective::DiagonalWeighted;
    spec.calibText = spec.evalText;
    EXPECT_THROW(runStudy(spec, run), InvalidArgument);
}

TEST(Study, ActivationAwarePointWithoutCalibrationTextIsRefused)
{
    StudySpec spec;
    spec.modelDir = test::demoModel();
    spec.evalText = test::testData() / "eval-small.txt";
    spec.ctx = 128;
    spec.points = {point(factor::Method::Mdbf, 2, factor::Objective::DiagonalWeighted, false, 1)};
    EXPECT_THROW(runStudy(spec), InvalidArgument);
}

}  // namespace
}  // namespace mdbf::pipeline
