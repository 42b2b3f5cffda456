// Whole-model quantization of the tiny-llama demo model: exact model-level accounting, the package
// reproducing the factorized layers bit for bit, and the model run from the package alone matching
// the model with dense-reconstructed weights.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <map>
#include <stop_token>

#include <gtest/gtest.h>

#include "deploy_test_util.h"
#include "error_expect.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/deploy/package_model.h"
#include "mdbf/factor/decomposition_cache.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/half_dense_linear.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

factor::QuantConfig tinyConfig(const char* bpw, int l, int iterations)
{
    factor::LayerQuantSettings s;
    s.method = factor::Method::Mdbf;
    s.bpw = factor::Bpw::parse(bpw);
    s.l = l;
    s.iterations = iterations;
    return factor::QuantConfig::uniform(s);
}

// docs/ALGORITHM.md §3.1 written out again, independently of factor::storageBits.
std::int64_t mdbfBits(std::int64_t n, std::int64_t m, std::int64_t k, std::int64_t l, std::int64_t paths)
{
    return paths * (k * (n + m) + 16 * l * (n + m + 2 * k));
}

class TinyQuantize : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_fixture = test::modelFixture("tiny-llama");
        if (!m_fixture.available) GTEST_SKIP() << "tiny-llama not found at " << m_fixture.modelDir;
    }
    /// The demo model quantized in closed form at 1.25 bpw: its checkpoint, the result, the package.
    struct ClosedForm {
        io::Checkpoint ckpt;
        pipeline::QuantizeResult result;
        io::Package pkg;
    };
    ClosedForm closedForm() const
    {
        const io::ModelConfig config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
        io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
        pipeline::QuantizeOptions options;
        options.config = tinyConfig("1.25", 1, 0);
        pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options);
        io::Package pkg = pipeline::makePackage(m_fixture.modelDir, ckpt, result, options.config);
        return {std::move(ckpt), std::move(result), std::move(pkg)};
    }

    test::ModelFixture m_fixture;
};

// With a decomposition cache, the first run stores every factorized layer's decomposition and the
// second reads them all back (and computes none), giving the same layers bit for bit.
TEST_F(TinyQuantize, DecompositionCacheServesTheSecondRun)
{
    const io::ModelConfig config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    const test::TempDir dir;
    pipeline::QuantizeOptions options;
    options.config = tinyConfig("1.25", 1, 0);
    options.engine.decompositions.cache = std::make_shared<const factor::DecompositionCache>(dir.path() / "svd");
    const pipeline::QuantizeResult first = pipeline::quantizeCheckpoint(config, ckpt, options);
    const pipeline::QuantizeResult second = pipeline::quantizeCheckpoint(config, ckpt, options);
    ASSERT_EQ(first.layers.size(), second.layers.size());
    int factorized = 0;
    for (std::size_t i = 0; i < first.layers.size(); ++i) {
        const pipeline::LayerQuantResult& a = first.layers[i];
        const pipeline::LayerQuantResult& b = second.layers[i];
        SCOPED_TRACE(a.name);
        if (a.keptDense) continue;
        ++factorized;
        EXPECT_FALSE(a.decompositionCached);
        EXPECT_TRUE(b.decompositionCached);
        EXPECT_EQ(a.k, b.k);
        EXPECT_EQ(a.relError, b.relError);
        ASSERT_TRUE(a.layer && b.layer);
        EXPECT_EQ(a.layer->reconstruct(), b.layer->reconstruct());
    }
    EXPECT_EQ(factorized, 28);
    EXPECT_EQ(static_cast<int>(std::distance(std::filesystem::directory_iterator(dir.path() / "svd"),
                                             std::filesystem::directory_iterator())),
              factorized);
}

TEST_F(TinyQuantize, PackagePerplexityMatchesDenseReconstruction)
{
    const io::ModelConfig config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    pipeline::QuantizeOptions options;
    options.config = tinyConfig("1.5", 2, 8);
    int callbacks = 0;
    options.onLayer = [&](const pipeline::LayerQuantResult&, int index, int total) {
        EXPECT_EQ(index, callbacks);
        EXPECT_EQ(total, 29);
        ++callbacks;
    };
    std::vector<std::int64_t> layerReports;
    RunContext ctx;
    ctx.progress = [&](const Progress& p) {
        if (p.stage == "layer") layerReports.push_back(p.done);
    };
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options, ctx);
    EXPECT_EQ(callbacks, 29);
    ASSERT_EQ(layerReports.size(), 30u);
    EXPECT_EQ(layerReports.front(), 0);
    EXPECT_EQ(layerReports.back(), 29);

    // Per-layer results and the accounting, recomputed here from the shapes and k.
    ASSERT_EQ(result.layers.size(), 29u);
    std::int64_t factorizedBits = 0, factorizedWeights = 0;
    for (const pipeline::LayerQuantResult& r : result.layers) {
        SCOPED_TRACE(r.name);
        if (r.name == "lm_head") {
            EXPECT_TRUE(r.keptDense);
            EXPECT_EQ(r.bpw, 16.0);
            EXPECT_FALSE(r.layer);
            continue;
        }
        ASSERT_FALSE(r.keptDense);
        ASSERT_TRUE(r.layer);
        EXPECT_EQ(r.l, 2);
        EXPECT_EQ(r.paths, 1);
        EXPECT_EQ(r.iterations, 8);
        EXPECT_LE(r.bpw, 1.5);
        EXPECT_GT(r.bpw, 1.3);
        EXPECT_EQ(r.bpw, static_cast<double>(mdbfBits(r.n, r.m, r.k, 2, 1)) / static_cast<double>(r.n * r.m));
        EXPECT_GT(r.relError, 0.0);
        EXPECT_LT(r.relError, 1.0);
        // The factorized layer really is the reported approximation of the checkpoint's weight.
        const RowMatrixF W = ckpt.matrix(r.name + ".weight");
        const double err = (W - r.layer->reconstruct()).norm() / W.norm();
        EXPECT_NEAR(err, r.plainError, 1e-4);
        factorizedBits += mdbfBits(r.n, r.m, r.k, 2, 1);
        factorizedWeights += r.n * r.m;
    }
    EXPECT_EQ(result.factorizedBits, factorizedBits);
    EXPECT_EQ(result.factorizedWeights, factorizedWeights);
    std::int64_t totalWeights = 0, denseBits = 0;
    for (const io::TensorInfo& t : ckpt.tensors()) {
        totalWeights += t.elementCount();
        const bool replaced = t.name.find("_proj.weight") != std::string::npos;
        if (!replaced) denseBits += 16 * t.elementCount();  // tiny-llama is F16
    }
    EXPECT_EQ(result.totalWeights, totalWeights);
    EXPECT_EQ(result.totalBits, denseBits + factorizedBits);
    EXPECT_DOUBLE_EQ(result.modelBpw, static_cast<double>(denseBits + factorizedBits) / static_cast<double>(totalWeights));
    EXPECT_DOUBLE_EQ(result.factorizedBpw, static_cast<double>(factorizedBits) / static_cast<double>(factorizedWeights));

    // Package: write, read back, every factorized layer bit for bit.
    test::TempDir dir;
    const io::Package written = pipeline::makePackage(m_fixture.modelDir, ckpt, result, options.config);
    io::writePackage(written, dir / "tiny.h5");
    const io::Package package = io::readPackage(dir / "tiny.h5");
    test::expectSamePackage(package, written);
    ASSERT_EQ(package.layers.size(), 28u);
    for (std::size_t i = 0; i < package.layers.size(); ++i) {
        const auto& paths = result.layers[i].layer->paths();
        EXPECT_TRUE(package.layers[i].paths[0].sa == paths[0].sa);
        EXPECT_TRUE(test::sameMatrix(package.layers[i].paths[0].B, paths[0].B));
    }
    EXPECT_EQ(package.configJson, readBinaryFile(m_fixture.modelDir / "config.json"));

    // Perplexity from the package alone against the dense reconstruction in the checkpoint model.
    const Tokenizer tokenizer = Tokenizer::fromJsonText(package.tokenizerJson, "tiny.h5:/tokenizer.json");
    // The first 12 windows of eval-small keep the test quick; the comparison holds on any text.
    std::vector<std::int32_t> ids = tokenizer.encode(readUtf8File(m_fixture.evalSmall));
    ASSERT_GE(ids.size(), 12u * 128u);
    ids.resize(12 * 128);
    const model::Transformer fromPackage = deploy::transformerFromPackage(package, "tiny.h5");
    EXPECT_EQ(fromPackage.linear("lm_head").kind(), "dense F16");  // tied head at stored precision
    EXPECT_EQ(fromPackage.linear("model.layers.2.mlp.up_proj").kind().rfind("mdbf k=", 0), 0u);
    EXPECT_NE(dynamic_cast<const model::HalfDenseLinear*>(&fromPackage.linear("lm_head")), nullptr);

    model::Transformer reference = model::Transformer::load(m_fixture.modelDir);
    const double original = eval::perplexity(reference, ids, 128).ppl;
    for (const pipeline::LayerQuantResult& r : result.layers) {
        if (r.layer) reference.replaceLinear(r.name, std::make_shared<model::DenseLinear>(r.layer->reconstruct()));
    }
    const double reconstructed = eval::perplexity(reference, ids, 128).ppl;
    const double quantized = eval::perplexity(fromPackage, ids, 128, RunContext{{}, {}, 2}).ppl;
    std::printf("tiny-llama eval-small (first 12 windows) ctx 128: original ppl %.4f, 1.5 bpw mdbf l=2 (8 iterations) package ppl %.4f "
                "(dense reconstruction %.4f); model %.4f bpw, factorized %.4f bpw\n",
                original, quantized, reconstructed, result.modelBpw, result.factorizedBpw);
    EXPECT_TRUE(std::isfinite(quantized));
    EXPECT_NEAR(quantized, reconstructed, 1e-3 * reconstructed);
    EXPECT_GT(quantized, original);  // 1.5 bits cost something on a model this small

    // Replacing the layers in a loaded model gives the same logits as the package.
    model::Transformer applied = model::Transformer::load(m_fixture.modelDir);
    pipeline::applyQuantization(applied, result);
    const std::span<const std::int32_t> window(ids.data(), 64);
    const RowMatrixF expected = applied.forward(window, 1);
    const RowMatrixF actual = fromPackage.forward(window, 1);
    EXPECT_LE((actual - expected).norm(), 1e-4 * expected.norm());
}

TEST_F(TinyQuantize, InfeasibleBudgetsKeepLayersDense)
{
    const io::ModelConfig config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    pipeline::QuantizeOptions options;
    // 0.5 bpw at l = 2: k = floor((nm/2 − 32(n+m)) / (n+m+64)) by docs/ALGORITHM.md §3.2 is 0 for 128×128 and
    // negative for 64×128 (those stay dense), while 352×128 and 128×352 still fit.
    options.config = tinyConfig("0.5", 2, 0);
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options);
    int dense = 0;
    for (const auto& r : result.layers) {
        SCOPED_TRACE(r.name);
        const std::int64_t k = (r.n * r.m / 2 - 32 * (r.n + r.m)) / (r.n + r.m + 64);  // numerator ≥ 0 iff k ≥ 0
        const bool feasible = r.n * r.m / 2 - 32 * (r.n + r.m) >= 0 && k >= 2;
        if (r.name != "lm_head") {
            EXPECT_EQ(r.keptDense, !feasible);
        }
        if (r.keptDense && r.name != "lm_head") {
            EXPECT_NE(r.note.find("kept dense"), std::string::npos) << r.note;
            EXPECT_EQ(r.bpw, 16.0);
        }
        if (r.name.find("up_proj") != std::string::npos) {
            EXPECT_FALSE(r.keptDense);
            EXPECT_EQ(r.k, k);
        }
        dense += r.keptDense ? 1 : 0;
    }
    EXPECT_EQ(dense, 4 * 4 + 1);  // q, k, v, o of every block, and the head by configuration
    // Dense projections stay in the package as tensors and the model still runs from it.
    test::TempDir dir;
    io::writePackage(pipeline::makePackage(m_fixture.modelDir, ckpt, result, options.config), dir / "p.h5");
    const io::Package pkg = io::readPackage(dir / "p.h5");
    const model::Transformer model = deploy::transformerFromPackage(pkg, "p.h5");
    EXPECT_EQ(model.linear("model.layers.1.self_attn.k_proj").kind(), "dense F16");
    const std::vector<std::int32_t> ids = {1, 5, 9, 200, 7, 3};
    const RowMatrixF logits = model.forward(ids, 1);
    EXPECT_TRUE(logits.allFinite());
}

TEST_F(TinyQuantize, CancelledRunThrowsAndLeavesTheModelUntouched)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    model::Transformer model = model::Transformer::load(m_fixture.modelDir);
    std::stop_source stop;
    RunContext ctx;
    ctx.stop = stop.get_token();
    pipeline::QuantizeOptions options;
    options.config = tinyConfig("1.5", 1, 5);
    int done = 0;
    options.onLayer = [&](const pipeline::LayerQuantResult&, int, int) {
        if (++done == 3) stop.request_stop();
    };
    EXPECT_THROW(pipeline::quantizeModel(model, ckpt, options, ctx), Cancelled);
    EXPECT_EQ(done, 3);
    for (const std::string& name : model.linearNames()) EXPECT_EQ(model.linear(name).kind(), "dense F32") << name;
}

TEST_F(TinyQuantize, ObjectiveWithoutStatisticsIsRefused)
{
    const io::ModelConfig config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    factor::LayerQuantSettings s;
    s.objective = factor::Objective::DiagonalWeighted;
    s.iterations = 0;
    pipeline::QuantizeOptions options;
    options.config = factor::QuantConfig::uniform(s);
    EXPECT_THROW(pipeline::quantizeCheckpoint(config, ckpt, options), InvalidArgument);
}

TEST(PackageModel, MissingPiecesAreFormatErrors)
{
    io::Package pkg = test::syntheticPackage();
    EXPECT_THROW(deploy::transformerFromPackage(pkg, "synthetic.h5"), FormatError);  // config lacks required fields
    pkg.configJson = "{not json";
    try {
        deploy::transformerFromPackage(pkg, "synthetic.h5");
        ADD_FAILURE();
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("synthetic.h5"), std::string::npos);
    }
}

}  // namespace
}  // namespace mdbf

namespace mdbf {
namespace {

TEST_F(TinyQuantize, ExportedSafetensorsHoldTheReconstructedModel)
{
    const ClosedForm closed = closedForm();
    const io::Checkpoint& ckpt = closed.ckpt;
    const pipeline::QuantizeResult& result = closed.result;
    const io::Package& pkg = closed.pkg;

    test::TempDir dir;
    io::exportSafetensors(pkg, dir / "hf");
    const io::Checkpoint exported = io::Checkpoint::open(dir / "hf");
    EXPECT_EQ(exported.tensors().size(), ckpt.tensors().size());
    for (const pipeline::LayerQuantResult& r : result.layers) {
        SCOPED_TRACE(r.name);
        if (!r.layer) continue;
        const io::TensorInfo& info = exported.info(r.name + ".weight");
        EXPECT_EQ(info.dtype, io::DType::F32);
        EXPECT_TRUE(exported.matrix(r.name + ".weight") == r.layer->reconstruct());
    }
    for (const io::PackageTensor& t : pkg.dense) {
        const auto raw = exported.raw(t.name);
        EXPECT_TRUE(std::equal(raw.begin(), raw.end(), t.data.begin(), t.data.end())) << t.name;
    }
    EXPECT_EQ(readBinaryFile(dir / "hf" / "config.json"), pkg.configJson);
    EXPECT_EQ(readBinaryFile(dir / "hf" / "tokenizer.json"), pkg.tokenizerJson);

    const model::Transformer fromExport = model::Transformer::load(dir / "hf");
    const model::Transformer fromPackage = deploy::transformerFromPackage(pkg, "p.h5");
    const std::vector<std::int32_t> ids = {5, 17, 300, 2, 2047, 9, 64, 128, 1000, 7};
    const RowMatrixF expected = fromExport.forward(ids, 1);
    EXPECT_LE((fromPackage.forward(ids, 2) - expected).norm(), 1e-4 * expected.norm());

    // A cancelled export leaves no weights file and no temporary.
    std::stop_source stop;
    stop.request_stop();
    RunContext ctx;
    ctx.stop = stop.get_token();
    EXPECT_THROW(io::exportSafetensors(pkg, dir / "cancelled", ctx), Cancelled);
    EXPECT_TRUE(std::filesystem::is_empty(dir / "cancelled"));
}

// The acceptance case on a model with untied BF16 head and 6 blocks: 1.5 bpw mdbf l = 2. Few
// iterations keep it short; the package/dense equivalence does not depend on how well layers fit.
TEST(SmallQuantizeSlow, PackagePerplexityMatchesDenseReconstruction)
{
    const test::ModelFixture fx = test::modelFixture("small-llama");
    MDBF_REQUIRE_MODEL_FIXTURE(fx, "small-llama");
    const io::ModelConfig config = io::ModelConfig::fromFile(fx.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(fx.modelDir);
    pipeline::QuantizeOptions options;
    options.config = tinyConfig("1.5", 2, 8);
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options, RunContext{{}, {}, 2});
    ASSERT_EQ(result.layers.size(), 43u);  // 6 blocks × 7 projections + lm_head
    for (const pipeline::LayerQuantResult& r : result.layers) EXPECT_EQ(r.keptDense, r.name == "lm_head") << r.name;

    test::TempDir dir;
    const io::Package written = pipeline::makePackage(fx.modelDir, ckpt, result, options.config);
    io::writePackage(written, dir / "small.h5");
    const io::Package package = io::readPackage(dir / "small.h5");
    test::expectSamePackage(package, written);
    // write → read → write: the second file holds the same datasets as the first.
    io::writePackage(package, dir / "again.h5");
    test::expectSamePackage(io::readPackage(dir / "again.h5"), written);

    const Tokenizer tokenizer = Tokenizer::fromJsonText(package.tokenizerJson, "small.h5:/tokenizer.json");
    std::vector<std::int32_t> ids = tokenizer.encode(readUtf8File(fx.evalSmall));
    ASSERT_GE(ids.size(), 8u * 256u);
    ids.resize(8 * 256);
    const model::Transformer fromPackage = deploy::transformerFromPackage(package, "small.h5");
    EXPECT_EQ(fromPackage.linear("lm_head").kind(), "dense BF16");
    model::Transformer reference = model::Transformer::load(fx.modelDir);
    const double original = eval::perplexity(reference, ids, 256, RunContext{{}, {}, 2}).ppl;
    for (const pipeline::LayerQuantResult& r : result.layers) {
        if (r.layer) reference.replaceLinear(r.name, std::make_shared<model::DenseLinear>(r.layer->reconstruct()));
    }
    const double reconstructed = eval::perplexity(reference, ids, 256, RunContext{{}, {}, 2}).ppl;
    const double quantized = eval::perplexity(fromPackage, ids, 256, RunContext{{}, {}, 2}).ppl;
    std::printf("small-llama eval-small (first 8 windows) ctx 256: original ppl %.4f, 1.5 bpw mdbf l=2 (8 iterations) "
                "package ppl %.4f (dense reconstruction %.4f); model %.4f bpw, factorized %.4f bpw\n",
                original, quantized, reconstructed, result.modelBpw, result.factorizedBpw);
    EXPECT_TRUE(std::isfinite(quantized));
    EXPECT_NEAR(quantized, reconstructed, 1e-3 * reconstructed);
    EXPECT_GT(quantized, original);
}

}  // namespace
}  // namespace mdbf

namespace mdbf {
namespace {

TEST_F(TinyQuantize, StoredConfigMustAgreeWithTheBiasDatasets)
{
    const io::Package pkg = closedForm().pkg;
    EXPECT_NO_THROW((void)deploy::transformerFromPackage(pkg, "p.h5"));

    // The model folder refuses attention_bias without bias tensors; the package must too.
    nlohmann::json stored = nlohmann::json::parse(pkg.configJson);
    stored["attention_bias"] = true;
    io::Package biased = pkg;
    biased.configJson = stored.dump();
    test::expectErrorContaining([&] { (void)deploy::transformerFromPackage(biased, "p.h5"); },
                                {"'p.h5'", "holds no tensor 'model.layers.0.self_attn.q_proj.bias'"});

    // A bias tensor the config does not give this model.
    std::mt19937_64 rng(3);
    io::Package extra = pkg;
    extra.dense.push_back(test::randomTensor("model.layers.1.mlp.up_proj.bias", io::DType::F32, {352}, rng));
    test::expectErrorContaining([&] { (void)deploy::transformerFromPackage(extra, "p.h5"); },
                                {"'p.h5'", "'model.layers.1.mlp.up_proj.bias'", "does not give"});
}

}  // namespace
}  // namespace mdbf
