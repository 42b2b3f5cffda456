// Warm starts on a real layer (tiny-llama): a result at one budget or envelope rank started from
// another of the same layer reaches at least the cold start's error after the same few iterations.

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "factor_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/io/checkpoint.h"
#include "test_fixtures.h"

namespace mdbf::factor {
namespace {

constexpr int kPrevious = 30;  // iterations of the result warm starts begin from
constexpr int kAfter = 8;      // iterations of both the cold and the warm run compared

using Layer = DemoLayer;

const Layer& layer()
{
    static const Layer l = loadDemoLayer("model.layers.0.self_attn.q_proj.weight");
    return l;
}

FactorizerOptions options(Method method, int l, const char* bpw, int iterations)
{
    FactorizerOptions o = budgetOptions(bpw, iterations);
    o.method = method;
    o.l = l;
    return o;
}

RunContext twoThreads()
{
    RunContext ctx;
    ctx.threads = 2;
    return ctx;
}

// Cold and warm errors after kAfter iterations at (method, l, bpw) from `previous`. The warm start
// may not be worse than the cold start by more than 1e-4 (absolute, relative error ≈ 0.4).
void expectWarmNoWorse(const FactorResult& previous, Method method, int l, const char* bpw)
{
    const Layer& L = layer();
    const Factorizer f(options(method, l, bpw, kAfter));
    const FactorResult cold = f.run(L.W, L.svd, twoThreads());
    const FactorResult warm = f.refineFrom(L.W, L.svd, previous, twoThreads());
    SCOPED_TRACE(std::string(methodName(method)) + " l=" + std::to_string(l) + " @ " + bpw);
    EXPECT_EQ(warm.k, cold.k);
    EXPECT_EQ(warm.iterations, kAfter);
    EXPECT_NEAR(warm.finalError, relativeError(L.W, reconstruct(warm.paths), FactorizerOptions{}), 1e-6);
    std::printf("[warm start] %s l=%d @ %s bpw (k %lld -> %lld): cold %.4f, warm %.4f after %d iterations "
                "(starts: cold %.4f, warm %.4f)\n",
                std::string(methodName(method)).c_str(), l, bpw, static_cast<long long>(previous.k),
                static_cast<long long>(warm.k), cold.finalError, warm.finalError, kAfter, cold.initialError,
                warm.initialError);
    EXPECT_LE(warm.finalError, cold.finalError + 1e-4);
}

TEST(FactorWarmStart, BudgetChangesReachTheColdError)
{
    const Layer& L = layer();
    for (Method method : {Method::Mdbf, Method::Dbf}) {
        const FactorResult previous = Factorizer(options(method, 1, "1.5", kPrevious)).run(L.W, L.svd, twoThreads());
        expectWarmNoWorse(previous, method, 1, "1.25");
        expectWarmNoWorse(previous, method, 1, "2");
    }
}

TEST(FactorWarmStart, EnvelopeRankChangeReachesTheColdError)
{
    const Layer& L = layer();
    const FactorResult previous = Factorizer(options(Method::Mdbf, 1, "1.5", kPrevious)).run(L.W, L.svd, twoThreads());
    expectWarmNoWorse(previous, Method::Mdbf, 2, "1.5");
    expectWarmNoWorse(previous, Method::Mdbf, 2, "2");
}

TEST(FactorWarmStart, SameShapeWithoutIterationsReproducesThePrevious)
{
    const Layer& L = layer();
    for (int l : {1, 2}) {
        const FactorResult previous = Factorizer(options(Method::Mdbf, l, "1.5", kPrevious)).run(L.W, L.svd, twoThreads());
        const FactorResult again = Factorizer(options(Method::Mdbf, l, "1.5", 0)).refineFrom(L.W, L.svd, previous);
        EXPECT_EQ(again.k, previous.k);
        // Only the FP16 rounding of re-balanced envelopes differs.
        EXPECT_NEAR(again.finalError, previous.finalError, 2e-4 * previous.finalError) << "l=" << l;
        EXPECT_LT(again.finalError, previous.initialError - 0.01);
    }
}

TEST(FactorWarmStart, RefusesAResultOfAnotherLayerOrObjective)
{
    const Layer& L = layer();
    const FactorResult previous = Factorizer(options(Method::Mdbf, 1, "1.5", 0)).run(L.W, L.svd);
    const RowMatrixF other = L.W.topRows(L.W.rows() / 2);
    const Factorizer f(options(Method::Mdbf, 1, "1.5", 0));
    EXPECT_THROW(f.refineFrom(other, LayerSvd::compute(other), previous), InvalidArgument);
    FactorizerOptions diag = options(Method::Mdbf, 1, "1.5", 0);
    diag.objective = Objective::DiagonalWeighted;
    diag.channelWeights = VectorF::Ones(L.W.cols());
    EXPECT_THROW(Factorizer(diag).refineFrom(L.W, L.svd, previous), InvalidArgument);
}

}  // namespace
}  // namespace mdbf::factor
