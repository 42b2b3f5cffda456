// The exact polish of stored parameters (docs/ALGORITHM.md §10) on a tiny-llama layer: its error
// history never rises and ends at the error of the parameters it returns, the outer envelope it
// leaves is a least-squares optimum (zero gradient, computed here from the reconstruction), and the
// factorizer's option is never worse than the same run without it.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "factor_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/envelope_polish.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/io/checkpoint.h"
#include "test_fixtures.h"

namespace mdbf::factor {
namespace {

// 128×352 (out × in): a non-square shape, not a multiple of 64.
const DemoLayer& polishLayer()
{
    static const DemoLayer l = loadDemoLayer("model.layers.1.mlp.down_proj.weight");
    return l;
}

double norm(const RowMatrixF& x) { return std::sqrt(x.cast<double>().squaredNorm()); }

// The closed form at k = 37, l = 2, as float parameters (FP16 rounding does not matter here).
kernels::FactorPath closedForm()
{
    const DemoLayer& L = polishLayer();
    const FactorResult r = Factorizer(quickOptions(2, 37, 0)).run(L.W, L.svd);
    return r.paths.front();
}

TEST(FactorEnvelopePolish, HistoryFallsAndEndsAtTheReturnedError)
{
    const DemoLayer& L = polishLayer();
    kernels::FactorPath p = closedForm();
    const double normW = norm(L.W);
    const double start = norm(L.W - reconstruct({p})) / normW;
    PolishOptions o;
    o.sweeps = 3;
    const PolishOutcome out = polishPath(L.W, p, o, normW);
    ASSERT_EQ(out.sweeps, 3);
    ASSERT_EQ(out.history.size(), 4u);
    EXPECT_NEAR(out.history.front(), start, 1e-5);
    for (std::size_t i = 1; i < out.history.size(); ++i) EXPECT_LE(out.history[i], out.history[i - 1] + 1e-6);
    const double end = norm(L.W - reconstruct({p})) / normW;
    EXPECT_NEAR(out.history.back(), end, 1e-5);
    std::printf("[polish] closed form %.4f -> %.4f after 3 sweeps, %d flips\n", start, end, out.flips);
    // The closed form is far from a local optimum: exact block steps take a clear share off.
    EXPECT_LT(end, 0.97 * start);
    EXPECT_GT(out.flips, 0);
}

TEST(FactorEnvelopePolish, OuterEnvelopeIsALeastSquaresOptimum)
{
    // One sweep with only the outer-envelope steps: the G side goes last, so B minimises
    // ‖W − F G‖² for the returned F, Qb and signs: ∂/∂B[c,p] = −2 Σ_j S_b[j,c] Qb[j,p] (Fᵀ E)[j,c] = 0.
    const DemoLayer& L = polishLayer();
    kernels::FactorPath p = closedForm();
    PolishOptions o{.sweeps = 1, .flipPasses = 0, .cgIterations = 0};
    polishPath(L.W, p, o, norm(L.W));
    const MatrixF F = denseF(p);
    const MatrixF G = denseG(p);
    const MatrixF E = L.W - F * G;
    const MatrixF FtE = F.transpose() * E;                      // k×m
    const MatrixF signs = p.sb.toFloat();  // S_b, k×m
    const MatrixF gradient = signs.cwiseProduct(FtE).transpose() * p.Qb;  // m×l
    const MatrixF FtW = F.transpose() * L.W;
    const MatrixF scale = signs.cwiseProduct(FtW).transpose() * p.Qb;
    EXPECT_LT(gradient.norm(), 1e-3 * scale.norm());
}

TEST(FactorEnvelopePolish, FactorizerOptionIsNoWorseAndRefusedUnderGram)
{
    const DemoLayer& L = polishLayer();
    RunContext ctx;
    ctx.threads = 2;
    FactorizerOptions o = budgetOptions("1.5", 8);
    o.l = 2;
    const FactorResult plain = Factorizer(o).run(L.W, L.svd, ctx);
    o.polish.sweeps = 2;
    const FactorResult polished = Factorizer(o).run(L.W, L.svd, ctx);
    EXPECT_EQ(polished.k, plain.k);
    EXPECT_EQ(polished.polishHistory.size(), 3u);
    EXPECT_NEAR(polished.finalError, relativeError(L.W, reconstruct(polished.paths), FactorizerOptions{}), 1e-6);
    std::printf("[polish] mdbf l=2 @ 1.5 bpw, 8 iterations: %.4f, polished %.4f\n", plain.finalError,
                polished.finalError);
    EXPECT_LE(polished.finalError, plain.finalError + 1e-4);

    FactorizerOptions g = gramOptions(2, 37, 4, Eigen::MatrixXd::Identity(L.W.cols(), L.W.cols()));
    g.polish.sweeps = 1;
    EXPECT_THROW(Factorizer{g}, InvalidArgument);
}

}  // namespace
}  // namespace mdbf::factor
