// The factorizer façade on synthetic layers: invariants of the result, dbf ≡ mdbf(l = 1),
// planted structure, the diagonal objective, cancellation, determinism and degenerate inputs.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <stop_token>
#include <thread>

#include "factor_test_util.h"
#include "random_matrix.h"
#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor {
namespace {

using Clock = std::chrono::steady_clock;

// ‖(W − Ŵ) D^{1/2}‖ / ‖W D^{1/2}‖ in double with d damped as d_j + ε·mean(d) (d empty: plain).
double referenceError(const RowMatrixF& W, const RowMatrixF& approx, const VectorF& d = VectorF(), double eps = 1e-3)
{
    double mean = 0.0;
    for (Eigen::Index j = 0; j < d.size(); ++j) mean += d[j];
    if (d.size() > 0) mean /= static_cast<double>(d.size());
    long double num = 0.0L, den = 0.0L;
    for (Eigen::Index i = 0; i < W.rows(); ++i)
        for (Eigen::Index j = 0; j < W.cols(); ++j) {
            const long double s = d.size() > 0 ? std::sqrt(static_cast<long double>(d[j]) + eps * mean) : 1.0L;
            const long double e = (static_cast<long double>(W(i, j)) - approx(i, j)) * s;
            num += e * e;
            den += static_cast<long double>(W(i, j)) * W(i, j) * s * s;
        }
    return static_cast<double>(std::sqrt(num / den));
}

bool halfValued(const MatrixF& m)
{
    for (Eigen::Index i = 0; i < m.size(); ++i)
        if (m.data()[i] != roundToHalf(m.data()[i])) return false;
    return true;
}

void expectValidResult(const FactorResult& r, Eigen::Index n, Eigen::Index m)
{
    ASSERT_EQ(r.n, n);
    ASSERT_EQ(r.m, m);
    ASSERT_EQ(static_cast<int>(r.paths.size()), r.pathCount);
    for (const auto& p : r.paths) {
        validatePath(p);
        EXPECT_EQ(p.n(), n);
        EXPECT_EQ(p.m(), m);
        EXPECT_EQ(p.k(), r.k);
        EXPECT_EQ(p.l(), r.l);
        EXPECT_TRUE(halfValued(p.A) && halfValued(p.Qa) && halfValued(p.Qb) && halfValued(p.B));
    }
    EXPECT_EQ(static_cast<int>(r.errorHistory.size()), r.iterations);
    EXPECT_TRUE(std::isfinite(r.finalError));
}

TEST(Factorizer, ResultMatchesItsOwnReconstruction)
{
    const RowMatrixF W = test::layerLikeMatrix(70, 110, 1u);
    FactorizerOptions o = budgetOptions("2", 30);
    o.l = 2;
    const FactorResult r = Factorizer(o).run(W);
    expectValidResult(r, 70, 110);
    EXPECT_EQ(r.k, computeBitBudget(70, 110, Bpw::parse("2"), Method::Mdbf, 2, 1).k);
    EXPECT_EQ(r.iterations, 30);
    const RowMatrixF approx = reconstruct(r.paths);
    EXPECT_NEAR(r.finalError, referenceError(W, approx), 1e-6);
    EXPECT_DOUBLE_EQ(r.finalPlainError, r.finalError);
    EXPECT_LT(r.finalError, r.initialError);
    // The history is measured before re-extraction and FP16 rounding; both change little.
    EXPECT_NEAR(r.errorHistory.back(), r.finalError, 0.01);
    EXPECT_TRUE(r.termination == Termination::Converged || r.termination == Termination::IterationLimit);
    EXPECT_EQ(r.errorLabel(), "rel_error (plain)");
    // y = Ŵx through the factors equals the dense product.
    const VectorF x = test::gaussianMatrix(110, 1, 9u);
    const Eigen::VectorXd ref = approx.cast<double>() * x.cast<double>();
    EXPECT_TRUE(test::allClose(applyFactors(r.paths, x).cast<double>(), ref, 1e-4, 1e-5 * ref.cwiseAbs().maxCoeff()));
}

TEST(Factorizer, DbfEqualsMdbfWithOneEnvelopeAtEqualK)
{
    const RowMatrixF W = test::layerLikeMatrix(64, 96, 2u);
    FactorizerOptions o = quickOptions(1, 30, 20);
    const FactorResult mdbf = Factorizer(o).run(W);
    o.method = Method::Dbf;
    const FactorResult dbf = Factorizer(o).run(W);
    ASSERT_EQ(mdbf.k, 30);
    ASSERT_EQ(dbf.k, 30);
    // Merged form: Qb is all ones, c carries both middle scales.
    EXPECT_TRUE((dbf.paths[0].Qb.array() == 1.0f).all());
    const RowMatrixF a = reconstruct(mdbf.paths);
    const RowMatrixF b = reconstruct(dbf.paths);
    // Same refinement; the reconstructions differ only by the FP16 rounding of the envelopes.
    EXPECT_LT((a - b).norm() / a.norm(), 3e-3);
    EXPECT_NEAR(mdbf.finalError, dbf.finalError, 3e-3);
    // dbf stores s·(n+m+k) envelope bits, mdbf s·(n+m+2k).
    EXPECT_NEAR((mdbf.bpw - dbf.bpw) * 64 * 96, 16.0 * 30, 1e-6);
}

TEST(Factorizer, PlantedStructureIsRecovered)
{
    // W = F0 G0 with F0, G0 sign ⊙ rank-2 envelopes, against a Gaussian matrix of the same norm.
    const Eigen::Index n = 120, m = 200, k = 24;
    const int l = 2;
    kernels::FactorPath planted;
    planted.sa = kernels::PackedSigns::fromSigns(test::gaussianMatrix(n, k, 31u));
    planted.sb = kernels::PackedSigns::fromSigns(test::gaussianMatrix(k, m, 32u));
    planted.A = test::gaussianMatrix(n, l, 33u).cwiseAbs().array() + 0.5f;
    planted.Qa = test::gaussianMatrix(k, l, 34u).cwiseAbs().array() + 0.5f;
    planted.Qb = test::gaussianMatrix(k, l, 35u).cwiseAbs().array() + 0.5f;
    planted.B = test::gaussianMatrix(m, l, 36u).cwiseAbs().array() + 0.5f;
    const RowMatrixF Wp = reconstruct({planted});
    RowMatrixF Wr = test::gaussianMatrix(n, m, 37u);
    Wr *= static_cast<float>(Wp.norm() / Wr.norm());
    const FactorizerOptions o = quickOptions(l, k, 80);
    const FactorResult rp = Factorizer(o).run(Wp);
    const FactorResult rr = Factorizer(o).run(Wr);
    EXPECT_LT(rp.finalError, 0.5 * rr.finalError) << rp.finalError << " vs " << rr.finalError;
    EXPECT_GT(rr.finalError, 0.5);
}

TEST(Factorizer, DiagonalObjectiveFoldsWeightsIntoB)
{
    const Eigen::Index n = 60, m = 80;
    const RowMatrixF W = test::layerLikeMatrix(n, m, 4u);
    VectorF d(m);
    std::mt19937 gen(5u);
    std::normal_distribution<float> dist(0.0f, 1.5f);
    for (Eigen::Index j = 0; j < m; ++j) d[j] = std::exp(dist(gen));
    d[3] = 0.0f;  // a channel that never fires: damping keeps it finite

    FactorizerOptions o = quickOptions(2, 20, 40);
    const FactorResult plain = Factorizer(o).run(W);
    o.objective = Objective::DiagonalWeighted;
    o.channelWeights = d;
    const FactorResult diag = Factorizer(o).run(W);
    expectValidResult(diag, n, m);
    EXPECT_EQ(diag.errorLabel(), "rel_error (diag)");

    const RowMatrixF approxDiag = reconstruct(diag.paths);
    const RowMatrixF approxPlain = reconstruct(plain.paths);
    EXPECT_NEAR(diag.finalError, referenceError(W, approxDiag, d), 1e-6);
    EXPECT_NEAR(diag.finalPlainError, referenceError(W, approxDiag), 1e-6);
    EXPECT_NEAR(relativeError(W, approxDiag, o), diag.finalError, 1e-9);
    // Minimising the weighted error does better on it than the plain factorization.
    EXPECT_LT(referenceError(W, approxDiag, d), 0.95 * referenceError(W, approxPlain, d));

    o.channelWeights = VectorF::Ones(m - 1);
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
    o.channelWeights = VectorF::Zero(m);
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
}

TEST(Factorizer, MultiplePaths)
{
    const RowMatrixF W = test::layerLikeMatrix(64, 96, 6u);
    FactorizerOptions o = budgetOptions("3", 15);
    o.paths = 2;
    std::vector<IterationReport> reports;
    o.onIteration = [&](const IterationReport& r) { reports.push_back(r); };
    std::int64_t lastProgress = 0, progressTotal = 0;
    RunContext ctx;
    ctx.progress = [&](const Progress& p) {
        if (p.stage == "refine") {
            lastProgress = p.done;
            progressTotal = p.total;
        }
    };
    const FactorResult r = Factorizer(o).run(W, ctx);
    expectValidResult(r, 64, 96);
    EXPECT_EQ(r.paths.size(), 2u);
    EXPECT_EQ(r.k, computeBitBudget(64, 96, Bpw::parse("3"), Method::Mdbf, 1, 2).k);
    EXPECT_EQ(r.iterations, 30);
    ASSERT_EQ(reports.size(), 30u);
    for (std::size_t i = 0; i < reports.size(); ++i) {
        EXPECT_EQ(reports[i].iteration, static_cast<int>(i) + 1);
        EXPECT_EQ(reports[i].path, i < 15 ? 0 : 1);
        EXPECT_DOUBLE_EQ(reports[i].relError, r.errorHistory[i]);
    }
    EXPECT_EQ(lastProgress, 30);
    EXPECT_EQ(progressTotal, 30);
    EXPECT_NEAR(r.finalError, referenceError(W, reconstruct(r.paths)), 1e-6);
    EXPECT_LT(r.finalError, r.initialError);
}

TEST(Factorizer, ClosedFormOnlyReusesTheSvd)
{
    const RowMatrixF W = test::layerLikeMatrix(50, 70, 7u);
    const LayerSvd svd = LayerSvd::compute(W);
    FactorizerOptions o = budgetOptions("3", 0);
    for (int l : {1, 2, 3}) {
        o.l = l;
        const FactorResult r = Factorizer(o).run(W, svd);
        expectValidResult(r, 50, 70);
        EXPECT_EQ(r.iterations, 0);
        EXPECT_EQ(r.termination, Termination::IterationLimit);
        EXPECT_DOUBLE_EQ(r.finalError, r.initialError);
        EXPECT_NEAR(r.initialError, referenceError(W, reconstruct(r.paths)), 1e-6);
    }
    // An SVD of another matrix is refused.
    const LayerSvd other = LayerSvd::compute(test::gaussianMatrix(50, 70, 8u));
    EXPECT_THROW(Factorizer(o).run(W, other), InvalidArgument);
}

TEST(Factorizer, DeterministicForSeedAndThreads)
{
    const RowMatrixF W = test::layerLikeMatrix(90, 130, 10u);
    FactorizerOptions o = quickOptions(2, 40, 12);
    o.seed = 1234;
    RunContext ctx;
    ctx.threads = 2;
    const FactorResult a = Factorizer(o).run(W, ctx);
    const FactorResult b = Factorizer(o).run(W, ctx);
    ASSERT_EQ(a.errorHistory, b.errorHistory);
    ASSERT_EQ(a.paths.size(), b.paths.size());
    EXPECT_TRUE(a.paths[0].sa == b.paths[0].sa);
    EXPECT_TRUE(a.paths[0].sb == b.paths[0].sb);
    EXPECT_EQ(a.paths[0].A, b.paths[0].A);
    EXPECT_EQ(a.paths[0].Qa, b.paths[0].Qa);
    EXPECT_EQ(a.paths[0].Qb, b.paths[0].Qb);
    EXPECT_EQ(a.paths[0].B, b.paths[0].B);
    EXPECT_EQ(a.finalError, b.finalError);
}

TEST(Factorizer, CancellationFromAnotherThreadIsPrompt)
{
    const RowMatrixF W = test::layerLikeMatrix(400, 640, 11u);
    const LayerSvd svd = LayerSvd::compute(W);
    FactorizerOptions o = budgetOptions("1", 100000);
    o.stallTolerance = 0.0;  // a run that only a stop request ends (its slow ramp stalls early)
    std::stop_source source;
    RunContext ctx;
    ctx.threads = 2;
    ctx.stop = source.get_token();
    std::atomic<int> seen{0};
    o.onIteration = [&](const IterationReport& r) { seen = r.iteration; };
    FactorResult result;
    std::thread worker([&] { result = Factorizer(o).run(W, svd, ctx); });
    while (seen.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto requested = Clock::now();
    source.request_stop();
    worker.join();
    const double latency = std::chrono::duration<double>(Clock::now() - requested).count();
    EXPECT_LT(latency, 1.0) << "returned " << latency << " s after the stop request";
    EXPECT_EQ(result.termination, Termination::Cancelled);
    expectValidResult(result, 400, 640);
    EXPECT_GE(result.iterations, 3);
    EXPECT_LE(result.finalError, result.initialError);
    EXPECT_NEAR(result.finalError, referenceError(W, reconstruct(result.paths)), 1e-6);
}

TEST(Factorizer, StopBeforeStart)
{
    const RowMatrixF W = test::layerLikeMatrix(40, 60, 12u);
    std::stop_source source;
    source.request_stop();
    RunContext ctx;
    ctx.stop = source.get_token();
    FactorizerOptions o = quickOptions(1, 10, 50);
    // Without an SVD there is nothing to return.
    EXPECT_THROW(Factorizer(o).run(W, ctx), Cancelled);
    // With one, the closed form comes back at once.
    const FactorResult r = Factorizer(o).run(W, LayerSvd::compute(W), ctx);
    EXPECT_EQ(r.termination, Termination::Cancelled);
    EXPECT_EQ(r.iterations, 0);
    EXPECT_DOUBLE_EQ(r.finalError, r.initialError);
    expectValidResult(r, 40, 60);
}

TEST(Factorizer, NonFiniteWeightsAreRejected)
{
    RowMatrixF W = test::layerLikeMatrix(10, 12, 13u);
    W(2, 3) = std::numeric_limits<float>::quiet_NaN();
    const Factorizer f(quickOptions(1, 4, 5));
    EXPECT_THROW(f.run(W), InvalidArgument);
    W(2, 3) = std::numeric_limits<float>::infinity();
    EXPECT_THROW(f.run(W), InvalidArgument);
    EXPECT_THROW(f.run(RowMatrixF(0, 5)), InvalidArgument);
}

TEST(Factorizer, AllZeroWeights)
{
    const RowMatrixF W = RowMatrixF::Zero(17, 29);
    const FactorResult r = Factorizer(quickOptions(2, 5, 10)).run(W);
    expectValidResult(r, 17, 29);
    EXPECT_EQ(r.finalError, 0.0);
    EXPECT_EQ(r.initialError, 0.0);
    EXPECT_EQ(r.termination, Termination::Converged);
    EXPECT_EQ(reconstruct(r.paths).norm(), 0.0f);
}

TEST(Factorizer, TinyShapesAreExactAtFullRank)
{
    // 1×1 and 1×m are rank 1: k = 1 reproduces them up to FP16 rounding of the envelopes.
    RowMatrixF one(1, 1);
    one(0, 0) = -3.0f;
    const FactorResult r1 = Factorizer(quickOptions(1, 1, 10)).run(one);
    expectValidResult(r1, 1, 1);
    EXPECT_LT(r1.finalError, 2e-3);
    const RowMatrixF row = test::gaussianMatrix(1, 50, 14u);
    const FactorResult r2 = Factorizer(quickOptions(1, 1, 10)).run(row);
    expectValidResult(r2, 1, 50);
    EXPECT_LT(r2.finalError, 2e-3);
    const RowMatrixF col = test::gaussianMatrix(50, 1, 15u);
    const FactorResult r3 = Factorizer(quickOptions(1, 1, 10)).run(col);
    EXPECT_LT(r3.finalError, 2e-3);
}

TEST(Factorizer, TallWideAndBudgetExtremes)
{
    for (auto [n, m] : {std::pair{70, 30}, std::pair{30, 70}}) {
        FactorizerOptions o = budgetOptions("4", 20);
        o.l = 2;
        const FactorResult r = Factorizer(o).run(test::layerLikeMatrix(n, m, 16u));
        expectValidResult(r, n, m);
        EXPECT_LE(r.finalError, r.initialError);
    }
    // A huge budget clamps k to min(n, m).
    const FactorResult r = Factorizer(budgetOptions("1000", 10)).run(test::layerLikeMatrix(20, 30, 17u));
    EXPECT_TRUE(r.clamped);
    EXPECT_EQ(r.k, 20);
    EXPECT_GT(r.unclampedK, 20);
    expectValidResult(r, 20, 30);
    EXPECT_LE(r.finalError, r.initialError);
    // A tiny one is refused, as are bad options.
    FactorizerOptions tiny;
    tiny.bpw = Bpw::parse("0.1");
    tiny.l = 4;
    EXPECT_THROW(Factorizer(tiny).run(test::layerLikeMatrix(20, 30, 18u)), InvalidArgument);
    FactorizerOptions badK = quickOptions(1, 31, 5);
    EXPECT_THROW(Factorizer(badK).run(test::layerLikeMatrix(20, 30, 18u)), InvalidArgument);
    FactorizerOptions dbfL2;
    dbfL2.method = Method::Dbf;
    dbfL2.l = 2;
    EXPECT_THROW(Factorizer{dbfL2}, InvalidArgument);
    FactorizerOptions noInner;
    noInner.innerIterations = 0;
    EXPECT_THROW(Factorizer{noInner}, InvalidArgument);
}

}  // namespace
}  // namespace mdbf::factor
