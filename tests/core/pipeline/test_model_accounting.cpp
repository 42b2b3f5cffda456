// The model-level accounting against what is actually stored: the checkpoint's tensors, and the
// bytes of the deployment package a quantization produces (tied head factorized or not).

#include <cstdint>

#include <gtest/gtest.h>

#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/io/package.h"
#include "mdbf/pipeline/model_accounting.h"
#include "mdbf/pipeline/quantize.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

/// Bits a package holds, counted from its content: dense tensors by their bytes, factorized layers
/// by their sign bits (n·k + k·m per path) and 16 bits per envelope value.
std::int64_t packageBits(const io::Package& package)
{
    std::int64_t bits = 0;
    for (const io::PackageTensor& t : package.dense) bits += static_cast<std::int64_t>(t.data.size()) * 8;
    for (const io::PackageLayer& layer : package.layers) {
        for (const kernels::FactorPath& p : layer.paths) {
            bits += p.n() * p.k() + p.k() * p.m();
            bits += 16 * (p.A.size() + p.Qa.size() + p.Qb.size() + p.B.size());
        }
    }
    return bits;
}

class TinyAccounting : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_fixture = test::modelFixture("tiny-llama");
        if (!m_fixture.available) GTEST_SKIP() << "tiny-llama not found at " << m_fixture.modelDir;
    }

    /// tiny-llama quantized in closed form at 1.5 bpw (MDBF, l = 2), the tied head factorized or not.
    std::pair<pipeline::QuantizeResult, io::Package> quantize(bool factorizeHead) const
    {
        const io::ModelConfig config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
        const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
        nlohmann::json json = {{"format", "mdbf-quant-config"},
                               {"version", 1},
                               {"defaults", {{"method", "mdbf"}, {"bpw", "1.5"}, {"l", 2}, {"iterations", 0}}}};
        if (factorizeHead) json["rules"] = nlohmann::json::array({{{"pattern", "lm_head"}, {"dense", false}}});
        pipeline::QuantizeOptions options;
        options.config = factor::QuantConfig::fromJson(json, "test");
        pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(config, ckpt, options);
        io::Package package = pipeline::makePackage(m_fixture.modelDir, ckpt, result, options.config);
        return {std::move(result), std::move(package)};
    }

    test::ModelFixture m_fixture;
};

TEST_F(TinyAccounting, StoredModelCountsEveryTensorAtItsStoredPrecision)
{
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    std::int64_t weights = 0;
    std::int64_t bits = 0;
    for (const io::TensorInfo& t : ckpt.tensors()) {
        weights += t.elementCount();
        bits += static_cast<std::int64_t>(ckpt.raw(t.name).size()) * 8;
    }
    const pipeline::ModelBits stored = pipeline::accountModel(ckpt, {});
    EXPECT_EQ(stored.totalWeights, weights);
    EXPECT_EQ(stored.totalBits, bits);
    EXPECT_EQ(stored.factorizedWeights, 0);
    EXPECT_DOUBLE_EQ(stored.factorizedBpw(), 0.0);
}

TEST_F(TinyAccounting, TiedHeadIsDenseByDefaultAndCountedOnceWhenFactorized)
{
    const auto [dense, densePackage] = quantize(false);
    const auto [factorized, factorizedPackage] = quantize(true);

    // The default keeps the head at stored precision.
    const pipeline::LayerQuantResult& defaultHead = dense.layers.back();
    ASSERT_EQ(defaultHead.name, "lm_head");
    EXPECT_TRUE(defaultHead.keptDense);
    const pipeline::LayerQuantResult& head = factorized.layers.back();
    ASSERT_TRUE(head.layer) << head.note;

    // The embedding the head reads is one tensor: the model's weights do not change with the head.
    const io::Checkpoint ckpt = io::Checkpoint::open(m_fixture.modelDir);
    std::int64_t weights = 0;
    for (const io::TensorInfo& t : ckpt.tensors()) weights += t.elementCount();
    EXPECT_EQ(dense.totalWeights, weights);
    EXPECT_EQ(factorized.totalWeights, weights);

    // The accounting agrees with the bits the package stores (within 1%; the package adds nothing
    // the accounting leaves out, so it is exact here), and both grow when the tied head is factorized.
    const std::int64_t denseBits = packageBits(densePackage);
    const std::int64_t factorizedBits = packageBits(factorizedPackage);
    std::cout << "[ measured ] tiny-llama 1.5 bpw: head dense " << dense.modelBpw << " bpw, " << denseBits
              << " package bits; head factorized " << factorized.modelBpw << " bpw, " << factorizedBits << " bits\n";
    EXPECT_NEAR(static_cast<double>(dense.totalBits), static_cast<double>(denseBits), 0.01 * denseBits);
    EXPECT_NEAR(static_cast<double>(factorized.totalBits), static_cast<double>(factorizedBits), 0.01 * factorizedBits);
    EXPECT_GT(factorizedBits, denseBits);
    EXPECT_GT(factorized.modelBpw, dense.modelBpw);
    EXPECT_DOUBLE_EQ(factorized.modelBpw, static_cast<double>(factorized.totalBits) / static_cast<double>(weights));
}

}  // namespace
}  // namespace mdbf
