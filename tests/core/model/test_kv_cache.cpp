// Incremental decoding against the full-window forward: the prompt as one step, then one token at
// a time, must give the logits of forward() over the whole sequence at every position.

#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/io/package.h"
#include "mdbf/kernels/kernel_path.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/half_dense_linear.h"
#include "mdbf/model/transformer.h"
#include "../deploy/deploy_test_util.h"
#include "test_fixtures.h"

namespace mdbf::model {
namespace {

/// Row by row: |a − b| <= tol · (|b| + max|row of b|), i.e. tol relative to the row's scale.
::testing::AssertionResult rowsClose(const RowMatrixF& actual, const RowMatrixF& expected, double tol = 1e-4)
{
    if (actual.rows() != expected.rows() || actual.cols() != expected.cols()) {
        return ::testing::AssertionFailure() << "shape " << actual.rows() << "x" << actual.cols() << " vs "
                                             << expected.rows() << "x" << expected.cols();
    }
    for (Eigen::Index t = 0; t < actual.rows(); ++t) {
        const double scale = expected.row(t).cwiseAbs().maxCoeff();
        auto result = test::allClose(actual.row(t), expected.row(t), tol, tol * scale);
        if (!result) return result << " at position " << t;
    }
    return ::testing::AssertionSuccess();
}

/// Steps: the first `promptLength` ids as one window, then one id at a time; returns every
/// position's logits, stacked.
RowMatrixF decodeIncrementally(const Transformer& model, const std::vector<std::int32_t>& ids, int promptLength,
                               int threads)
{
    KvCache cache = model.newCache(static_cast<int>(ids.size()));
    RowMatrixF all(static_cast<Eigen::Index>(ids.size()), model.config().vocabSize);
    const std::span<const std::int32_t> span(ids);
    all.topRows(promptLength) =
        model.extend(cache, span.first(static_cast<std::size_t>(promptLength)), threads, Transformer::Logits::All);
    for (std::size_t t = static_cast<std::size_t>(promptLength); t < ids.size(); ++t) {
        all.row(static_cast<Eigen::Index>(t)) = model.extend(cache, span.subspan(t, 1), threads);
    }
    EXPECT_EQ(cache.length(), static_cast<int>(ids.size()));
    return all;
}

std::vector<std::int32_t> randomIds(int count, int vocab, std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(count));
    for (std::int32_t& id : ids) id = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(vocab));
    return ids;
}

void checkFixture(const std::string& name, int length)
{
    const test::ModelFixture fx = test::modelFixture(name);
    if (!fx.available) GTEST_SKIP() << "fixture model '" << name << "' not found at " << fx.modelDir;
    const Transformer model = Transformer::load(fx.modelDir);
    const std::vector<std::int32_t> ids = randomIds(length, model.config().vocabSize, 7);
    const RowMatrixF full = model.forward(ids, 2);
    EXPECT_TRUE(rowsClose(decodeIncrementally(model, ids, 5, 2), full));
    EXPECT_TRUE(rowsClose(decodeIncrementally(model, ids, 1, 1), full));

    // The same weights kept at their stored 16-bit precision: the same model up to summation order,
    // with its 16-bit embedding, projections and (tied or not) head.
    const Transformer stored = Transformer::load(fx.modelDir, {}, Transformer::Weights::Stored);
    for (const char* layer : {"lm_head", "model.layers.0.mlp.up_proj"}) {
        const std::string kind = stored.linear(layer).kind();
        EXPECT_TRUE(kind == "dense BF16" || kind == "dense F16") << layer << ": " << kind;
    }
    EXPECT_TRUE(rowsClose(stored.forward(ids, 2), full));
    EXPECT_TRUE(rowsClose(decodeIncrementally(stored, ids, 5, 2), full));
}

TEST(KvCache, TinyLlamaDecodingEqualsFullForwardAtEveryPosition) { checkFixture("tiny-llama", 40); }
TEST(KvCache, SmallLlamaDecodingEqualsFullForwardAtEveryPosition) { checkFixture("small-llama", 40); }
TEST(KvCache, MediumLlamaDecodingEqualsFullForwardAtEveryPosition) { checkFixture("medium-llama", 40); }

enum class LayerKind { F32, BF16, F16, Factorized };

/// A small random model of `config` whose projections are all of `kind` (embedding and norms in
/// float32), with biases where the config asks for them.
Transformer syntheticModel(const nlohmann::json& configJson, LayerKind kind, std::uint64_t seed)
{
    const io::ModelConfig config = io::ModelConfig::fromJson(configJson, "synthetic config");
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const auto randomMatrix = [&](Eigen::Index rows, Eigen::Index cols, float scale) {
        RowMatrixF M(rows, cols);
        for (Eigen::Index i = 0; i < M.size(); ++i) M.data()[i] = scale * normal(rng);
        return M;
    };
    const auto randomVector = [&](Eigen::Index size, float center, float spread) {
        VectorF v(size);
        for (Eigen::Index i = 0; i < size; ++i) v(i) = center + spread * normal(rng);
        return v;
    };
    const auto linear = [&](std::int64_t n, std::int64_t m, bool bias) -> std::shared_ptr<const Linear> {
        VectorF b = bias ? randomVector(n, 0.0f, 0.1f) : VectorF();
        const float scale = 1.0f / std::sqrt(static_cast<float>(m));
        if (kind == LayerKind::Factorized) {
            kernels::FactorPath p = test::randomPath(n, m, 12, 2, rng, 0.3f);
            p.B *= scale;
            return std::make_shared<FactorizedLinear>(std::vector<kernels::FactorPath>{std::move(p)}, std::move(b));
        }
        RowMatrixF W = randomMatrix(n, m, scale);
        if (kind == LayerKind::F32) return std::make_shared<DenseLinear>(std::move(W), std::move(b));
        const io::DType dtype = kind == LayerKind::BF16 ? io::DType::BF16 : io::DType::F16;
        std::vector<std::uint16_t> bits(static_cast<std::size_t>(W.size()));
        for (std::size_t i = 0; i < bits.size(); ++i) {
            bits[i] = dtype == io::DType::BF16 ? floatToBf16(W.data()[i]) : floatToHalf(W.data()[i]);
        }
        return std::make_shared<HalfDenseLinear>(dtype, n, m, std::move(bits), std::move(b));
    };

    TransformerParts parts;
    parts.config = config;
    const std::int64_t h = config.hiddenSize;
    const std::int64_t qDim = static_cast<std::int64_t>(config.numHeads) * config.headDim;
    const std::int64_t kvDim = static_cast<std::int64_t>(config.numKvHeads) * config.headDim;
    parts.embedding = randomMatrix(config.vocabSize, h, 1.0f);
    parts.norms["model.norm.weight"] = randomVector(h, 1.0f, 0.1f);
    for (int i = 0; i < config.numLayers; ++i) {
        const std::string p = "model.layers." + std::to_string(i) + ".";
        parts.norms[p + "input_layernorm.weight"] = randomVector(h, 1.0f, 0.1f);
        parts.norms[p + "post_attention_layernorm.weight"] = randomVector(h, 1.0f, 0.1f);
        if (config.qkNorm) {
            parts.norms[p + "self_attn.q_norm.weight"] = randomVector(config.headDim, 1.0f, 0.1f);
            parts.norms[p + "self_attn.k_norm.weight"] = randomVector(config.headDim, 1.0f, 0.1f);
        }
        parts.linears[p + "self_attn.q_proj"] = linear(qDim, h, config.qkvBias);
        parts.linears[p + "self_attn.k_proj"] = linear(kvDim, h, config.qkvBias);
        parts.linears[p + "self_attn.v_proj"] = linear(kvDim, h, config.qkvBias);
        parts.linears[p + "self_attn.o_proj"] = linear(h, qDim, config.oBias);
        parts.linears[p + "mlp.gate_proj"] = linear(config.intermediateSize, h, config.mlpBias);
        parts.linears[p + "mlp.up_proj"] = linear(config.intermediateSize, h, config.mlpBias);
        parts.linears[p + "mlp.down_proj"] = linear(h, config.intermediateSize, config.mlpBias);
    }
    parts.linears["lm_head"] = linear(config.vocabSize, h, false);
    return Transformer::fromParts(std::move(parts), "synthetic model");
}

nlohmann::json baseConfig(const char* architecture)
{
    return {{"architectures", {architecture}}, {"hidden_size", 48},      {"intermediate_size", 72},
            {"num_hidden_layers", 2},          {"num_attention_heads", 6}, {"num_key_value_heads", 2},
            {"head_dim", 16},                  {"vocab_size", 97},       {"max_position_embeddings", 64},
            {"rms_norm_eps", 1e-5},            {"rope_theta", 10000.0}};
}

struct ArchitectureCase {
    const char* label;
    nlohmann::json config;
};

std::vector<ArchitectureCase> architectureCases()
{
    nlohmann::json llama3 = baseConfig("LlamaForCausalLM");
    llama3["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", 8.0},
                              {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 16}};
    llama3["attention_bias"] = true;
    llama3["mlp_bias"] = true;
    nlohmann::json linear = baseConfig("MistralForCausalLM");
    linear["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    return {{"llama3 rope, biases", llama3},
            {"mistral, linear rope", linear},
            {"qwen2 (q/k/v biases)", baseConfig("Qwen2ForCausalLM")},
            {"qwen3 (q/k norms)", baseConfig("Qwen3ForCausalLM")}};
}

TEST(KvCache, EveryArchitectureAndLayerKindDecodesLikeTheFullForward)
{
    // Factorized layers on every code path the CPU has: their one-token steps take the table
    // kernels (binary_product.h), the windows the float kernels of each path.
    std::vector<kernels::KernelPath> tablePaths = {kernels::KernelPath::Scalar};
    if (kernels::avx2Available()) tablePaths.push_back(kernels::KernelPath::Avx2);
    if (kernels::avx512Available()) tablePaths.push_back(kernels::KernelPath::Avx512);
    for (const ArchitectureCase& c : architectureCases()) {
        for (const LayerKind kind : {LayerKind::F32, LayerKind::BF16, LayerKind::F16, LayerKind::Factorized}) {
            const Transformer model = syntheticModel(c.config, kind, 11);
            ASSERT_EQ(model.config().numKvHeads, 2);
            const std::vector<std::int32_t> ids = randomIds(33, model.config().vocabSize, 3);
            const auto paths = kind == LayerKind::Factorized ? tablePaths
                                                             : std::vector<kernels::KernelPath>{kernels::KernelPath::Auto};
            for (const kernels::KernelPath path : paths) {
                SCOPED_TRACE(std::string(c.label) + ", layer kind " + std::to_string(static_cast<int>(kind)) +
                             ", path " + kernels::kernelPathName(path));
                kernels::setAutoKernelPath(path);
                const RowMatrixF full = model.forward(ids, 2);
                // Measured between 1.5e-5 and 2.5e-5 of the logits' scale at most with factorized
                // layers, 6e-7 elsewhere.
                EXPECT_TRUE(rowsClose(decodeIncrementally(model, ids, 4, 2), full));
            }
            kernels::setAutoKernelPath(kernels::KernelPath::Auto);
        }
    }
}

// The one-token kernels' copy of the sign bits is built for generation only: windows (perplexity,
// calibration, prefill) read the packed words, and prepareForDecoding builds the copy ahead of the
// first token.
TEST(KvCache, OnlyDecodingBuildsTheSignLayout)
{
    if (!kernels::avx2Available()) GTEST_SKIP() << "the scalar path keeps no second copy";
    kernels::setAutoKernelPath(kernels::KernelPath::Auto);
    const Transformer model = syntheticModel(architectureCases().front().config, LayerKind::Factorized, 5);
    const auto& layer = dynamic_cast<const FactorizedLinear&>(model.linear("model.layers.0.mlp.down_proj"));
    const kernels::FactorPath& path = layer.paths().front();
    EXPECT_FALSE(path.sa.hasDerivedLayout());
    (void)model.forward(randomIds(8, model.config().vocabSize, 1), 2);
    EXPECT_FALSE(path.sa.hasDerivedLayout()) << "a window built the one-token layout";
    model.prepareForDecoding();
    EXPECT_TRUE(path.sa.hasDerivedLayout());
    EXPECT_TRUE(path.sb.hasDerivedLayout());
}

TEST(KvCache, LastLogitsEqualTheLastRowOfAllLogits)
{
    const Transformer model = Transformer::load(test::demoModel());
    const std::vector<std::int32_t> ids = randomIds(17, model.config().vocabSize, 5);
    KvCache all = model.newCache(17);
    KvCache last = model.newCache(17);
    const RowMatrixF every = model.extend(all, ids, 1, Transformer::Logits::All);
    const RowMatrixF final = model.extend(last, ids, 1, Transformer::Logits::Last);
    ASSERT_EQ(final.rows(), 1);
    // The head runs as a product of one row instead of 17: equal up to summation order.
    EXPECT_TRUE(rowsClose(final, every.bottomRows(1)));
}

TEST(KvCache, ResetStartsANewSequence)
{
    const Transformer model = Transformer::load(test::demoModel());
    const std::vector<std::int32_t> a = randomIds(9, model.config().vocabSize, 1);
    const std::vector<std::int32_t> b = randomIds(6, model.config().vocabSize, 2);
    KvCache cache = model.newCache(16);
    model.extend(cache, a, 1);
    cache.reset();
    EXPECT_EQ(cache.length(), 0);
    const RowMatrixF afterReset = model.extend(cache, b, 1, Transformer::Logits::All);
    EXPECT_TRUE(rowsClose(afterReset, model.forward(b, 1)));
}

TEST(KvCache, ContextLimitsAreClearErrorsAndLeaveTheCacheUsable)
{
    const Transformer model = Transformer::load(test::demoModel());
    const int maxPositions = model.config().maxPositionEmbeddings;
    ASSERT_GT(maxPositions, 0);
    try {
        (void)model.newCache(maxPositions + 1);
        FAIL() << "a cache beyond max_position_embeddings was accepted";
    } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("max_position_embeddings"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)model.newCache(0), InvalidArgument);

    KvCache cache = model.newCache(4);
    const std::vector<std::int32_t> three = {1, 2, 3};
    model.extend(cache, three, 1);
    const std::vector<std::int32_t> two = {4, 5};
    EXPECT_THROW(model.extend(cache, two, 1), InvalidArgument);
    EXPECT_EQ(cache.length(), 3);
    const std::vector<std::int32_t> bad = {-1};
    EXPECT_THROW(model.extend(cache, bad, 1), InvalidArgument);
    EXPECT_EQ(cache.length(), 3);
    const std::vector<std::int32_t> one = {4};
    const RowMatrixF next = model.extend(cache, one, 1);
    const std::vector<std::int32_t> whole = {1, 2, 3, 4};
    EXPECT_TRUE(rowsClose(next, model.forward(whole, 1).bottomRows(1)));
}

TEST(KvCache, ACacheOfAnotherModelIsRefused)
{
    const Transformer tiny = Transformer::load(test::demoModel());
    const Transformer other = syntheticModel(baseConfig("LlamaForCausalLM"), LayerKind::F32, 1);
    KvCache cache = other.newCache(8);
    const std::vector<std::int32_t> ids = {1, 2};
    EXPECT_THROW(tiny.extend(cache, ids, 1), InvalidArgument);
}

}  // namespace
}  // namespace mdbf::model
