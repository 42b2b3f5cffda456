// Calibration statistics (docs/ALGORITHM.md §6.4) on the demo model: d_j and H against independent
// recomputations, the model left as it was, clear errors for unusable texts, cancellation, and the
// disk cache (hits, misses, corrupt files).

#include <cmath>
#include <fstream>
#include <stop_token>

#include <gtest/gtest.h>

#include "calibration_test_util.h"
#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/eval/calibration_cache.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/model/dense_linear.h"

namespace mdbf::eval {
namespace {

namespace fs = std::filesystem;
using test::allClose;

constexpr int kCtx = 128;
const std::string kFirstQ = "model.layers.0.self_attn.q_proj";

std::string slurp(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The first ~`bytes` bytes of eval-small.txt, cut before a character boundary (the text is UTF-8).
std::string evalPrefix(std::size_t bytes)
{
    const std::string text = slurp(test::testData() / "eval-small.txt");
    while (bytes < text.size() && (static_cast<unsigned char>(text[bytes]) & 0xC0) == 0x80) --bytes;
    return text.substr(0, bytes);
}

// The input of the first block's q/k/v projections computed from the checkpoint alone:
// RMSNorm(embedding[id]) ⊙ input_layernorm weight, one row per token, in double.
Eigen::MatrixXd firstBlockInputs(std::span<const std::int32_t> ids, double eps)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(test::demoModel());
    const RowMatrixF embedding = ckpt.matrix("model.embed_tokens.weight");
    const std::vector<float> norm = ckpt.toFloat("model.layers.0.input_layernorm.weight");
    Eigen::MatrixXd x(static_cast<Eigen::Index>(ids.size()), embedding.cols());
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
        const Eigen::RowVectorXd e = embedding.row(ids[static_cast<std::size_t>(t)]).cast<double>();
        const double inv = 1.0 / std::sqrt(e.squaredNorm() / static_cast<double>(e.size()) + eps);
        for (Eigen::Index j = 0; j < x.cols(); ++j) x(t, j) = e[j] * inv * norm[static_cast<std::size_t>(j)];
    }
    return x;
}

TEST(Calibration, FirstBlockStatisticsMatchEmbeddingAndRmsNorm)
{
    model::Transformer model = model::Transformer::load(test::demoModel());
    const std::vector<std::int32_t> all = test::demoTokens();
    // 5 full windows and a partial one, which must be dropped.
    const std::span<const std::int32_t> ids(all.data(), 5 * kCtx + 57);
    CalibrationOptions options;
    options.ctx = kCtx;
    options.gram = true;
    options.layers = {kFirstQ + ".weight", "model.layers.0.self_attn.v_proj"};
    RunContext run;
    run.threads = 2;
    const CalibrationStats stats = collectCalibration(model, ids, options, run);
    EXPECT_EQ(stats.windows, 5);
    EXPECT_EQ(stats.tokens, 5 * kCtx);
    EXPECT_EQ(stats.ctx, kCtx);
    EXPECT_TRUE(stats.hasGram);
    ASSERT_EQ(stats.layers.size(), 2u);

    const Eigen::MatrixXd x = firstBlockInputs(ids.first(5 * kCtx), model.config().rmsNormEps);
    const double n = static_cast<double>(x.rows());
    const Eigen::VectorXd d = x.array().square().colwise().sum().transpose() / n;
    const Eigen::MatrixXd h = x.transpose() * x / n;
    const LayerCalibration& q = stats.layer(kFirstQ);
    EXPECT_TRUE(allClose(q.secondMoments, d, 1e-5, 1e-7 * d.maxCoeff()));
    EXPECT_TRUE(allClose(q.gram, h, 1e-5, 1e-6 * h.cwiseAbs().maxCoeff()));
    EXPECT_TRUE(allClose(q.gram.diagonal(), q.secondMoments, 1e-12, 0.0));
    // q and v read the same normalised activations.
    EXPECT_TRUE(allClose(stats.layer("model.layers.0.self_attn.v_proj").secondMoments, q.secondMoments, 0.0, 0.0));
    EXPECT_THROW(stats.layer("model.layers.1.mlp.up_proj"), InvalidArgument);
}

TEST(Calibration, DeepLayerMomentsMatchAnIndependentCaptureAndTheModelIsRestored)
{
    const std::vector<std::int32_t> all = test::demoTokens();
    const std::span<const std::int32_t> ids(all.data(), 6 * kCtx);
    const std::string layer = "model.layers.2.mlp.down_proj";

    model::Transformer reference = model::Transformer::load(test::demoModel());
    const auto capturing = test::capture(reference, layer);
    test::runWindows(reference, ids, kCtx);
    ASSERT_EQ(capturing->rows(), 6 * kCtx);

    model::Transformer model = model::Transformer::load(test::demoModel());
    const RowMatrixF before = model.forward(ids.first(kCtx), 2);
    CalibrationOptions options;
    options.ctx = kCtx;
    RunContext run;
    run.threads = 2;
    std::int64_t lastDone = -1, lastTotal = -1;
    run.progress = [&](const Progress& p) {
        EXPECT_EQ(p.stage, "calibration");
        lastDone = p.done;
        lastTotal = p.total;
    };
    const CalibrationStats stats = collectCalibration(model, ids, options, run);
    EXPECT_EQ(lastDone, 6);
    EXPECT_EQ(lastTotal, 6);
    EXPECT_EQ(stats.layers.size(), model.linearNames().size());  // every projection by default
    EXPECT_FALSE(stats.hasGram);
    EXPECT_EQ(stats.layer(layer).gram.size(), 0);
    const Eigen::VectorXd expected = capturing->meanSquares();
    EXPECT_TRUE(allClose(stats.layer(layer).secondMoments, expected, 1e-6, 1e-9 * expected.maxCoeff()));
    EXPECT_GT(expected.minCoeff(), 0.0);

    // The recording wrappers are gone and the model computes what it computed before.
    EXPECT_EQ(model.linear(layer).kind(), "dense F32");
    EXPECT_TRUE(allClose(model.forward(ids.first(kCtx), 2), before, 0.0, 0.0));
}

// The demo model with block 0's down projection halved: every later block sees different inputs.
model::Transformer perturbedDemo()
{
    model::Transformer model = model::Transformer::load(test::demoModel());
    const std::string name = "model.layers.0.mlp.down_proj";
    const auto& dense = dynamic_cast<const model::DenseLinear&>(model.linear(name));
    model.replaceLinear(name, std::make_shared<model::DenseLinear>(RowMatrixF(dense.weight() * 0.5f), dense.bias()));
    return model;
}

TEST(Calibration, PairedRunCrossMomentsMatchIndependentCapturesOfBothModels)
{
    const std::vector<std::int32_t> all = test::demoTokens();
    const std::span<const std::int32_t> ids(all.data(), 4 * kCtx);
    const std::string deep = "model.layers.2.mlp.down_proj";

    // Test-owned captures of the same layer in both models.
    model::Transformer referenceCopy = model::Transformer::load(test::demoModel());
    model::Transformer perturbedCopy = perturbedDemo();
    const auto clean = test::capture(referenceCopy, deep);
    const auto shifted = test::capture(perturbedCopy, deep);
    test::runWindows(referenceCopy, ids, kCtx);
    test::runWindows(perturbedCopy, ids, kCtx);
    const double N = static_cast<double>(4 * kCtx);
    const Eigen::MatrixXd expectedCross = shifted->allRows().transpose() * clean->allRows() / N;
    const Eigen::MatrixXd expectedGram = shifted->outerSum() / N;

    model::Transformer reference = model::Transformer::load(test::demoModel());
    model::Transformer perturbed = perturbedDemo();
    const RowMatrixF before = perturbed.forward(ids.first(kCtx), 2);
    CalibrationOptions options;
    options.ctx = kCtx;
    options.layers = {deep, kFirstQ};
    RunContext run;
    run.threads = 2;
    const CalibrationStats stats = collectPairedCalibration(reference, perturbed, ids, options, run);
    EXPECT_EQ(stats.tokens, 4 * kCtx);
    EXPECT_TRUE(stats.hasGram);
    const LayerCalibration& d = stats.layer(deep);
    const double scale = expectedGram.cwiseAbs().maxCoeff();
    EXPECT_TRUE(allClose(d.gram, expectedGram, 1e-6, 1e-9 * scale));
    EXPECT_TRUE(allClose(d.cross, expectedCross, 1e-6, 1e-9 * scale));
    // The inputs really differ there, so C is not H.
    EXPECT_GT((d.cross - d.gram).norm(), 1e-3 * d.gram.norm());
    // Before the perturbation both models see the same inputs: C is H to the bit.
    const LayerCalibration& q = stats.layer(kFirstQ);
    EXPECT_TRUE(q.cross == q.gram);

    // Both models are whole again.
    EXPECT_EQ(reference.linear(deep).kind(), "dense F32");
    EXPECT_EQ(perturbed.linear(deep).kind(), "dense F32");
    EXPECT_TRUE(allClose(perturbed.forward(ids.first(kCtx), 2), before, 0.0, 0.0));

    // Unpaired runs carry no cross moments.
    EXPECT_EQ(collectCalibration(perturbed, ids, options, run).layer(deep).cross.size(), 0);
}

TEST(Calibration, TooFewTokensAndEmptyTextsAreClearErrors)
{
    model::Transformer model = model::Transformer::load(test::demoModel());
    const std::vector<std::int32_t> all = test::demoTokens();
    CalibrationOptions options;
    options.ctx = kCtx;
    try {
        collectCalibration(model, std::span<const std::int32_t>(all.data(), kCtx - 1), options);
        FAIL() << "expected InvalidArgument";
    } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("127 tokens"), std::string::npos) << e.what();
    }
    options.ctx = 0;
    EXPECT_THROW(collectCalibration(model, all, options), InvalidArgument);
    options.ctx = kCtx;
    options.layers = {"model.layers.9.mlp.up_proj"};
    EXPECT_THROW(collectCalibration(model, all, options), InvalidArgument);
    EXPECT_EQ(model.linear("model.layers.0.mlp.up_proj").kind(), "dense F32");

    test::TempDir dir;
    options.layers.clear();
    test::writeTextFile(dir / "empty.txt", "");
    test::writeTextFile(dir / "short.txt", "Only a few words.");
    for (const char* name : {"empty.txt", "short.txt"}) {
        const fs::path file = dir / name;
        try {
            calibrateModel(test::demoModel(), file, options);
            FAIL() << "expected InvalidArgument for " << name;
        } catch (const InvalidArgument& e) {
            EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(calibrateModel(test::demoModel(), dir / "missing.txt", options), IoError);
}

TEST(Calibration, StopRequestThrowsCancelledAndRestoresTheModel)
{
    model::Transformer model = model::Transformer::load(test::demoModel());
    const std::vector<std::int32_t> ids = test::demoTokens();
    std::stop_source source;
    RunContext run;
    run.stop = source.get_token();
    run.progress = [&](const Progress& p) {
        if (p.done == 2) source.request_stop();
    };
    CalibrationOptions options;
    options.ctx = kCtx;
    EXPECT_THROW(collectCalibration(model, ids, options, run), Cancelled);
    for (const std::string& name : model.linearNames()) EXPECT_EQ(model.linear(name).kind(), "dense F32") << name;
}

void expectSameStats(const CalibrationStats& a, const CalibrationStats& b)
{
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.windows, b.windows);
    EXPECT_EQ(a.ctx, b.ctx);
    EXPECT_EQ(a.hasGram, b.hasGram);
    ASSERT_EQ(a.layers.size(), b.layers.size());
    for (const auto& [name, layer] : a.layers) {
        const LayerCalibration& other = b.layer(name);
        EXPECT_TRUE(layer.secondMoments == other.secondMoments) << name;
        EXPECT_TRUE(layer.gram == other.gram) << name;
    }
}

TEST(CalibrationCache, HitReturnsIdenticalStatisticsAndCorruptFilesAreRecomputed)
{
    test::TempDir dir;
    const fs::path text = dir / "calib.txt";
    test::writeTextFile(text, evalPrefix(6000));
    const CalibrationCache cache(dir / "cache");
    CalibrationOptions options;
    options.ctx = kCtx;
    options.gram = true;
    options.layers = {"model.layers.1.mlp.down_proj", kFirstQ};

    const CalibrationStats first = calibrateModel(test::demoModel(), text, options, &cache);
    EXPECT_FALSE(first.fromCache);
    EXPECT_TRUE(first.cacheNote.empty()) << first.cacheNote;
    const std::string key = CalibrationCache::key(test::demoModel(), slurp(text), options);
    const fs::path file = cache.fileFor(key);
    EXPECT_EQ(first.cacheFile, file);
    ASSERT_TRUE(fs::is_regular_file(file));
    // Only the file itself: the temporary was renamed into place.
    EXPECT_EQ(std::distance(fs::directory_iterator(dir / "cache"), fs::directory_iterator()), 1);

    const CalibrationStats second = calibrateModel(test::demoModel(), text, options, &cache);
    EXPECT_TRUE(second.fromCache);
    expectSameStats(second, first);

    // Any change of the request is another key.
    CalibrationOptions other = options;
    other.ctx = 64;
    EXPECT_NE(CalibrationCache::key(test::demoModel(), slurp(text), other), key);
    other = options;
    other.gram = false;
    EXPECT_NE(CalibrationCache::key(test::demoModel(), slurp(text), other), key);
    EXPECT_NE(CalibrationCache::key(test::demoModel(), slurp(text) + " ", options), key);
    other = options;
    other.layers = {kFirstQ};
    EXPECT_FALSE(cache.load(CalibrationCache::key(test::demoModel(), slurp(text), other)).has_value());

    // A flipped byte in the middle: detected, ignored, recomputed and rewritten.
    std::string bytes = slurp(file);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
    test::writeTextFile(file, bytes);
    std::string note;
    EXPECT_FALSE(cache.load(key, &note).has_value());
    EXPECT_NE(note.find(file.string()), std::string::npos) << note;
    const CalibrationStats third = calibrateModel(test::demoModel(), text, options, &cache);
    EXPECT_FALSE(third.fromCache);
    EXPECT_NE(third.cacheNote.find("ignored"), std::string::npos) << third.cacheNote;
    expectSameStats(third, first);
    EXPECT_TRUE(calibrateModel(test::demoModel(), text, options, &cache).fromCache);

    // A truncated file and a file of garbage are ignored too.
    test::writeTextFile(file, slurp(file).substr(0, 100));
    EXPECT_FALSE(cache.load(key).has_value());
    test::writeTextFile(file, "not a cache file");
    EXPECT_FALSE(cache.load(key).has_value());
    const CalibrationStats fourth = calibrateModel(test::demoModel(), text, options, &cache);
    EXPECT_FALSE(fourth.fromCache);
    expectSameStats(fourth, first);
}

TEST(CalibrationCache, DefaultDirectoryFollowsXdg)
{
    const char* oldXdg = std::getenv("XDG_CACHE_HOME");
    const char* oldHome = std::getenv("HOME");
    const std::string savedXdg = oldXdg ? oldXdg : "";
    const std::string savedHome = oldHome ? oldHome : "";
    setenv("XDG_CACHE_HOME", "/tmp/xdg-cache", 1);
    setenv("HOME", "/home/someone", 1);
    EXPECT_EQ(CalibrationCache::defaultDirectory(), fs::path("/tmp/xdg-cache/mdbf"));
    setenv("XDG_CACHE_HOME", "", 1);
    EXPECT_EQ(CalibrationCache::defaultDirectory(), fs::path("/home/someone/.cache/mdbf"));
    setenv("XDG_CACHE_HOME", "relative/dir", 1);  // the XDG spec says to ignore relative paths
    EXPECT_EQ(CalibrationCache::defaultDirectory(), fs::path("/home/someone/.cache/mdbf"));
    if (oldXdg) setenv("XDG_CACHE_HOME", savedXdg.c_str(), 1); else unsetenv("XDG_CACHE_HOME");
    if (oldHome) setenv("HOME", savedHome.c_str(), 1); else unsetenv("HOME");
}

TEST(CalibrationCache, UnwritableDirectoryOnlyLeavesANote)
{
    test::TempDir dir;
    const fs::path text = dir / "calib.txt";
    test::writeTextFile(text, evalPrefix(3000));
    test::writeTextFile(dir / "blocker", "a file where the cache directory should be");
    const CalibrationCache cache(dir / "blocker" / "cache");
    CalibrationOptions options;
    options.ctx = kCtx;
    options.layers = {kFirstQ};
    const CalibrationStats stats = calibrateModel(test::demoModel(), text, options, &cache);
    EXPECT_FALSE(stats.fromCache);
    EXPECT_FALSE(stats.cacheNote.empty());
    EXPECT_GT(stats.tokens, 0);
}

}  // namespace
}  // namespace mdbf::eval
