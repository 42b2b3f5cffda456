// The plan at a budget (docs/ALGORITHM.md §9) on tiny-llama: the budget holds in exact integers
// recomputed here term by term, the plan is deterministic, whole-model quantization of its
// configuration reproduces the planned layers, and bad options are refused.

#include <cstdint>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/architecture.h"
#include "mdbf/pipeline/plan.h"
#include "mdbf/pipeline/quantize.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

using factor::Bpw;
using factor::Method;

/// Storage of one path written out per component (docs/ALGORITHM.md §3.1).
std::int64_t referenceBits(std::int64_t n, std::int64_t m, std::int64_t k, int l, Method method)
{
    const std::int64_t signs = k * n + k * m;
    return method == Method::Dbf ? signs + 16 * (n + k + m) : signs + 16 * l * (n + 2 * k + m);
}

class TinyPlan : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_fixture = test::modelFixture("tiny-llama");
        if (!m_fixture.available) GTEST_SKIP() << "tiny-llama not found at " << m_fixture.modelDir;
        m_config = io::ModelConfig::fromFile(m_fixture.modelDir / "config.json");
        m_checkpoint = std::make_unique<io::Checkpoint>(io::Checkpoint::open(m_fixture.modelDir));
    }

    /// Few trials and iterations: the tests check bookkeeping, not quality.
    static pipeline::PlanOptions quickOptions(const std::string& budget)
    {
        pipeline::PlanOptions o;
        o.budget = Bpw::parse(budget);
        o.ls = {2};
        o.gridPoints = 4;
        o.trialIterations = 1;
        o.iterations = 0;
        return o;
    }

    pipeline::ModelPlan plan(const pipeline::PlanOptions& options) const
    {
        RunContext ctx;
        ctx.threads = 1;
        return pipeline::planModel(m_config, *m_checkpoint, options, ctx);
    }

    test::ModelFixture m_fixture;
    io::ModelConfig m_config;
    std::unique_ptr<io::Checkpoint> m_checkpoint;
};

TEST_F(TinyPlan, BudgetHoldsExactlyOverTheDefaultLayers)
{
    // The second budget counts every layer once: another allocation, the same accounting.
    for (const char* budget : {"1.25", "0.9"}) {
        const Bpw bpw = Bpw::parse(budget);
        pipeline::PlanOptions options = quickOptions(budget);
        if (bpw != Bpw::parse("1.25")) options.weighting = pipeline::PlanWeighting::Layers;
        const pipeline::ModelPlan p = plan(options);
        // The head stays dense: every block projection is planned, nothing else.
        ASSERT_EQ(p.layers.size(), 28u);
        std::int64_t bits = 0;
        std::int64_t weights = 0;
        for (const pipeline::PlannedLayer& layer : p.layers) {
            EXPECT_NE(layer.name, "lm_head");
            const pipeline::PlanPoint& c = layer.choice;
            EXPECT_EQ(c.bits, referenceBits(layer.n, layer.m, c.k, c.format.l, c.format.method)) << layer.name;
            // The configuration's decimal resolves to the planned k.
            const factor::LayerQuantSettings s = p.config.resolve(layer.name);
            EXPECT_FALSE(s.dense) << layer.name;
            EXPECT_EQ(s.method, c.format.method) << layer.name;
            EXPECT_EQ(factor::computeBitBudget(layer.n, layer.m, s.bpw, s.method, s.l, 1).k, c.k) << layer.name;
            bits += c.bits;
            weights += layer.n * layer.m;
        }
        EXPECT_TRUE(p.config.resolve("lm_head").dense);
        EXPECT_EQ(p.bits.factorizedBits, bits);
        EXPECT_EQ(p.bits.factorizedWeights, weights);
        // bits / weights ≤ p / q, in integers.
        EXPECT_LE(static_cast<long double>(bits) * bpw.denominator(), static_cast<long double>(bpw.numerator()) * weights)
            << budget;
        // And the budget is used: less than 1% of it is left over.
        EXPECT_GT(static_cast<long double>(bits) * 1.01L * bpw.denominator(),
                  static_cast<long double>(bpw.numerator()) * weights)
            << budget;
        EXPECT_FALSE(p.outputError);
        EXPECT_GT(p.trials, 0);
    }
}

TEST_F(TinyPlan, TwoRunsGiveTheSamePlan)
{
    const pipeline::ModelPlan a = plan(quickOptions("1.25"));
    const pipeline::ModelPlan b = plan(quickOptions("1.25"));
    EXPECT_EQ(a.config.toJson(), b.config.toJson());
    ASSERT_EQ(a.layers.size(), b.layers.size());
    for (std::size_t i = 0; i < a.layers.size(); ++i) {
        EXPECT_EQ(a.layers[i].choice.k, b.layers[i].choice.k);
        EXPECT_EQ(a.layers[i].choice.error, b.layers[i].choice.error);
    }
    EXPECT_EQ(a.predictedCost, b.predictedCost);
}

TEST_F(TinyPlan, QuantizingTheConfigurationReproducesThePlannedLayers)
{
    const pipeline::ModelPlan p = plan(quickOptions("1.25"));
    // The configuration goes through its file form, as `mdbf quantize --config` reads it.
    pipeline::QuantizeOptions options;
    options.config = factor::QuantConfig::fromJson(nlohmann::json::parse(p.config.toJson().dump()), "plan");
    RunContext ctx;
    ctx.threads = 1;
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(m_config, *m_checkpoint, options, ctx);
    std::map<std::string, const pipeline::PlannedLayer*> planned;
    for (const pipeline::PlannedLayer& layer : p.layers) planned[layer.name] = &layer;
    for (const pipeline::LayerQuantResult& r : result.layers) {
        const auto it = planned.find(r.name);
        if (it == planned.end()) {
            EXPECT_TRUE(r.keptDense) << r.name;
            continue;
        }
        const pipeline::PlanPoint& c = it->second->choice;
        ASSERT_FALSE(r.keptDense) << r.name;
        EXPECT_EQ(r.k, c.k) << r.name;
        EXPECT_EQ(r.l, c.format.l) << r.name;
        EXPECT_EQ(r.method, c.format.method) << r.name;
        EXPECT_EQ(r.iterations, 0) << r.name;
    }
    EXPECT_EQ(result.factorizedBits, p.bits.factorizedBits);
    EXPECT_EQ(result.factorizedWeights, p.bits.factorizedWeights);
    EXPECT_EQ(result.totalBits, p.bits.totalBits);
}

TEST_F(TinyPlan, IdentityStatisticsMeasureTheWeightError)
{
    // H = c·I makes the output error equal the weight error (docs/ALGORITHM.md §6.3), so the plan
    // with such statistics predicts the same errors as the plan on weights alone.
    pipeline::PlanOptions options = quickOptions("1.25");
    options.methods = {Method::Dbf};
    options.gridPoints = 3;
    const pipeline::ModelPlan weights = plan(options);
    for (const std::string& name : pipeline::plannedLayerNames(m_config)) {
        const auto [n, m] = model::projectionShape(m_config, model::identifyLayer(name)->role);
        options.inputGrams.emplace(name, 3.0 * Eigen::MatrixXd::Identity(m, m));
    }
    const pipeline::ModelPlan outputs = plan(options);
    EXPECT_TRUE(outputs.outputError);
    ASSERT_EQ(outputs.layers.size(), weights.layers.size());
    for (std::size_t i = 0; i < weights.layers.size(); ++i) {
        ASSERT_EQ(outputs.layers[i].curve.size(), weights.layers[i].curve.size());
        for (std::size_t j = 0; j < weights.layers[i].curve.size(); ++j) {
            EXPECT_NEAR(outputs.layers[i].curve[j].error, weights.layers[i].curve[j].error,
                        1e-4 * weights.layers[i].curve[j].error)
                << weights.layers[i].name;
        }
    }
}

TEST_F(TinyPlan, BadOptionsAreRefused)
{
    pipeline::PlanOptions noMethod = quickOptions("1.25");
    noMethod.methods.clear();
    EXPECT_THROW(plan(noMethod), InvalidArgument);
    pipeline::PlanOptions zeroL = quickOptions("1.25");
    zeroL.methods = {Method::Mdbf};
    zeroL.ls = {2, 0};
    EXPECT_THROW(plan(zeroL), InvalidArgument);
    pipeline::PlanOptions outside = quickOptions("1.25");
    outside.maxBpw = Bpw::parse("1");
    EXPECT_THROW(plan(outside), InvalidArgument);
    // No layer can pay for its envelopes at 0.05 bpw.
    pipeline::PlanOptions tiny = quickOptions("0.05");
    try {
        plan(tiny);
        ADD_FAILURE() << "a 0.05 bpw plan was accepted";
    } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("cannot take any format"), std::string::npos) << e.what();
    }
    // Every layer can take something at 2 bpw, but not all of them at once at 0.3.
    pipeline::PlanOptions low = quickOptions("0.3");
    low.maxBpw = Bpw::parse("2");
    try {
        plan(low);
        ADD_FAILURE() << "a 0.3 bpw plan was accepted";
    } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("below what the layers can take"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace mdbf
