// The full activation-aware objective (docs/ALGORITHM.md §6.3) on synthetic layers: the reported error is
// sqrt(tr(E H Eᵀ) / tr(W H Wᵀ)) of what is deployed (checked against a long-double reference),
// minimising it beats the plain and diagonal objectives on it, the closed form reproduces W at full
// rank, H = c·I is the plain objective, bad matrices are refused, the decomposition of H agrees with
// an independent eigensolver and a stop is honoured.

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <utility>
#include <random>
#include <stop_token>

#include <Eigen/Eigenvalues>

#include "factor_test_util.h"
#include "random_matrix.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor {
namespace {

// XᵀX / N for activations with correlated channels of very different scales (as real inputs have).
Eigen::MatrixXd correlatedGram(Eigen::Index m, unsigned seed)
{
    const Eigen::Index tokens = 4 * m;
    Eigen::MatrixXd x = test::gaussianMatrix(tokens, 6, seed).cast<double>() * test::gaussianMatrix(6, m, seed + 1).cast<double>();
    x += 0.3 * test::gaussianMatrix(tokens, m, seed + 2).cast<double>();
    std::mt19937 gen(seed + 3);
    std::lognormal_distribution<double> scale(0.0, 1.0);
    for (Eigen::Index j = 0; j < m; ++j) x.col(j) *= scale(gen);
    return x.transpose() * x / static_cast<double>(tokens);
}

// sqrt(tr(E H Eᵀ) / tr(W H Wᵀ)) with H damped by eps·mean(diag H), in long double.
double referenceGramError(const RowMatrixF& W, const RowMatrixF& approx, const Eigen::MatrixXd& h, double eps = 1e-3)
{
    using MatrixL = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
    MatrixL hd = h.cast<long double>();
    hd.diagonal().array() += static_cast<long double>(eps * h.diagonal().mean());
    const MatrixL w = W.cast<long double>();
    const MatrixL e = w - approx.cast<long double>();
    const long double num = ((e * hd).array() * e.array()).sum();
    const long double den = ((w * hd).array() * w.array()).sum();
    return static_cast<double>(std::sqrt(num / den));
}

/// A layer-like n×m matrix from `seed` and a correlated m×m Gram matrix from seed + 1.
std::pair<RowMatrixF, Eigen::MatrixXd> gramLayer(Eigen::Index n, Eigen::Index m, unsigned seed)
{
    return {test::layerLikeMatrix(n, m, seed), correlatedGram(m, seed + 1)};
}

double plainError(const RowMatrixF& W, const RowMatrixF& approx)
{
    return std::sqrt((W - approx).cast<double>().squaredNorm() / W.cast<double>().squaredNorm());
}

TEST(GramObjective, NamesRoundTrip)
{
    EXPECT_EQ(objectiveName(Objective::Gram), "gram");
    EXPECT_EQ(parseObjective("gram"), Objective::Gram);
    EXPECT_THROW(parseObjective("full"), InvalidArgument);
}

TEST(GramObjective, ReportedErrorIsTheWeightedTraceOfTheDeployedLayer)
{
    const auto [W, h] = gramLayer(45, 70, 11u);
    FactorizerOptions o = gramOptions(2, 20, 40, h);
    const FactorResult r = Factorizer(o).run(W);
    ASSERT_NE(r.termination, Termination::Failed) << r.message;
    EXPECT_EQ(r.objective, Objective::Gram);
    EXPECT_EQ(r.errorLabel(), "rel_error (gram)");
    EXPECT_EQ(r.iterations, 40);
    const RowMatrixF approx = reconstruct(r.paths);
    EXPECT_NEAR(r.finalError, referenceGramError(W, approx, h), 1e-5);
    EXPECT_NEAR(r.finalPlainError, plainError(W, approx), 1e-5);
    EXPECT_NEAR(relativeError(W, approx, o), r.finalError, 1e-6);
    EXPECT_LE(r.finalError, r.initialError);
    EXPECT_LT(r.finalError, 0.9 * r.initialError) << "refinement should improve on the closed form";
    // The history is measured before FP16 rounding of the envelopes.
    ASSERT_EQ(r.errorHistory.size(), 40u);
    EXPECT_NEAR(r.errorHistory.back(), r.finalError, 2e-3);
}

TEST(GramObjective, BeatsPlainAndDiagonalObjectivesOnItsOwnMetric)
{
    const auto [W, h] = gramLayer(64, 90, 21u);
    FactorizerOptions o = quickOptions(2, 24, 60);
    const FactorResult plain = Factorizer(o).run(W);
    o.objective = Objective::DiagonalWeighted;
    o.channelWeights = h.diagonal().cast<float>();
    const FactorResult diag = Factorizer(o).run(W);
    o.objective = Objective::Gram;
    o.inputGram = h;
    const FactorResult gram = Factorizer(o).run(W);
    const double ep = referenceGramError(W, reconstruct(plain.paths), h);
    const double ed = referenceGramError(W, reconstruct(diag.paths), h);
    const double eg = referenceGramError(W, reconstruct(gram.paths), h);
    EXPECT_LT(eg, 0.9 * ep) << "gram " << eg << ", plain " << ep;
    EXPECT_LT(eg, ed) << "gram " << eg << ", diag " << ed;
    // And it pays for it on the unweighted error.
    EXPECT_GT(gram.finalPlainError, plain.finalError);
}

TEST(GramObjective, FullRankClosedFormReproducesTheLayer)
{
    const Eigen::Index n = 30, m = 24;
    const RowMatrixF W = test::layerLikeMatrix(n, m, 31u);
    FactorizerOptions o = gramOptions(static_cast<int>(m), m, 0, correlatedGram(m, 32u));
    const FactorResult r = Factorizer(o).run(W);
    // U'V'ᵀ = U Σ Vᵀ R⁻¹ = W exactly; only the FP16 envelopes remain.
    EXPECT_LT(r.initialError, 2e-3);
    EXPECT_LT(r.finalPlainError, 2e-3);
}

TEST(GramObjective, ScaledIdentityIsThePlainObjective)
{
    const RowMatrixF W = test::layerLikeMatrix(40, 56, 41u);
    FactorizerOptions o = quickOptions(2, 16, 25);
    const FactorResult plain = Factorizer(o).run(W);
    o.objective = Objective::Gram;
    o.inputGram = 3.7 * Eigen::MatrixXd::Identity(56, 56);
    const FactorResult gram = Factorizer(o).run(W);
    EXPECT_NEAR(gram.initialError, plain.initialError, 1e-5);
    EXPECT_NEAR(gram.finalError, plain.finalError, 2e-3);
    EXPECT_NEAR(gram.finalError, gram.finalPlainError, 1e-6);
}

TEST(GramObjective, SeveralPathsAndDbf)
{
    const auto [W, h] = gramLayer(48, 40, 51u);
    FactorizerOptions o = gramOptions(1, 12, 20, h);
    const FactorResult one = Factorizer(o).run(W);
    o.paths = 2;
    const FactorResult two = Factorizer(o).run(W);
    EXPECT_EQ(two.paths.size(), 2u);
    EXPECT_NEAR(two.finalError, referenceGramError(W, reconstruct(two.paths), h), 1e-5);
    EXPECT_LT(two.finalError, one.finalError);
    o.paths = 1;
    o.method = Method::Dbf;
    const FactorResult dbf = Factorizer(o).run(W);
    EXPECT_NEAR(dbf.finalError, referenceGramError(W, reconstruct(dbf.paths), h), 1e-5);
}

TEST(GramObjective, UnusableGramMatricesAreRefused)
{
    const RowMatrixF W = test::layerLikeMatrix(20, 16, 61u);
    FactorizerOptions o = quickOptions(1, 4, 2);
    o.objective = Objective::Gram;
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);  // none given
    o.inputGram = Eigen::MatrixXd::Identity(15, 15);
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
    o.inputGram = Eigen::MatrixXd::Zero(16, 16);
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
    o.inputGram = Eigen::MatrixXd::Identity(16, 16);
    o.inputGram(3, 3) = std::nan("");
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
    o.inputGram = Eigen::MatrixXd::Identity(16, 16);
    o.inputGram(2, 2) = -1.0;
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
    // Rank one without damping is singular; with the default damping it is usable.
    const Eigen::VectorXd v = Eigen::VectorXd::LinSpaced(16, 1.0, 2.0);
    o.inputGram = v * v.transpose();
    o.damping = 0.0;
    EXPECT_THROW(Factorizer(o).run(W), InvalidArgument);
    o.damping = 1e-3;
    EXPECT_NO_THROW(Factorizer(o).run(W));
    FactorizerOptions none;
    none.objective = Objective::Gram;
    EXPECT_THROW(relativeError(W, W, none), InvalidArgument);
}

TEST(GramObjective, PreparedWeightingIsConsistent)
{
    const Eigen::MatrixXd h = correlatedGram(33, 71u);
    const InputGram g = InputGram::prepare(h, 1e-3);
    ASSERT_EQ(g.size(), 33);
    EXPECT_NEAR(g.matrix().diagonal().mean(), 1.0f, 1e-5f);
    EXPECT_LT((g.sqrt() * g.sqrt() - g.matrix()).norm(), 1e-4f * g.matrix().norm());
    EXPECT_LT((g.sqrt() * g.inverseSqrt() - MatrixF::Identity(33, 33)).norm(), 1e-3f);
    EXPECT_GT(g.eigenvalues().minCoeff(), 0.0f);
    const RowMatrixF e = test::gaussianMatrix(7, 33, 72u);
    const double direct = ((e.cast<double>() * g.matrix().cast<double>()).array() * e.cast<double>().array()).sum();
    EXPECT_NEAR(g.weightedSquaredNorm(e, 2), direct, 1e-4 * direct);
}

// The decomposition behind R, R⁻¹ and the G-step (LAPACK's divide and conquer) against Eigen's QR
// iteration on the same damped, rescaled matrix, at a size where divide and conquer splits many
// times: eigenvalues within 1e-5·λ_max, Q orthonormal and H·Q = Q·Λ within 1e-5 (float storage).
TEST(GramObjective, PreparedEigendecompositionMatchesAnIndependentSolver)
{
    const Eigen::Index m = 300;
    const double damping = 1e-3;
    const Eigen::MatrixXd gram = correlatedGram(m, 91u);
    const InputGram g = InputGram::prepare(gram, damping);

    Eigen::MatrixXd h = 0.5 * (gram + gram.transpose());
    h.diagonal().array() += damping * gram.diagonal().mean();
    h /= h.diagonal().mean();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> reference(h);
    ASSERT_EQ(reference.info(), Eigen::Success);
    const Eigen::VectorXd lambda = g.eigenvalues().cast<double>();
    const double top = reference.eigenvalues().maxCoeff();
    EXPECT_LT((lambda - reference.eigenvalues()).cwiseAbs().maxCoeff(), 1e-5 * top);

    const Eigen::MatrixXd q = g.eigenvectors().cast<double>();
    EXPECT_LT((q.transpose() * q - Eigen::MatrixXd::Identity(m, m)).cwiseAbs().maxCoeff(), 1e-5);
    EXPECT_LT((h * q - q * lambda.asDiagonal()).norm(), 1e-5 * h.norm());
}

// A weighting prepared once by the caller gives the run exactly what the run prepares itself, and
// one prepared for another layer or damping is refused.
TEST(GramObjective, PreparedWeightingFromTheCallerGivesTheSameResult)
{
    const RowMatrixF W = test::layerLikeMatrix(40, 48, 95u);
    FactorizerOptions o = gramOptions(2, 16, 6, correlatedGram(48, 96u));
    const FactorResult own = Factorizer(o).run(W);
    o.preparedGram = std::make_shared<const InputGram>(InputGram::prepare(o.inputGram, o.damping));
    EXPECT_EQ(o.preparedGram->damping(), o.damping);
    const FactorResult shared = Factorizer(o).run(W);
    EXPECT_EQ(shared.finalError, own.finalError);
    EXPECT_EQ(shared.initialError, own.initialError);
    EXPECT_EQ(reconstruct(shared.paths), reconstruct(own.paths));

    FactorizerOptions otherDamping = o;
    otherDamping.damping = 2 * o.damping;
    EXPECT_THROW(Factorizer(otherDamping).run(W), InvalidArgument);
    FactorizerOptions otherSize = o;
    otherSize.preparedGram = std::make_shared<const InputGram>(InputGram::prepare(correlatedGram(47, 97u), o.damping));
    EXPECT_THROW(Factorizer(otherSize).run(W), InvalidArgument);
}

TEST(GramObjective, StopDuringRefinementReturnsTheBestIterateMarkedCancelled)
{
    const RowMatrixF W = test::layerLikeMatrix(50, 60, 81u);
    std::stop_source source;
    FactorizerOptions o = gramOptions(2, 16, 200, correlatedGram(60, 82u));
    o.onIteration = [&](const IterationReport& r) {
        if (r.iteration == 3) source.request_stop();
    };
    RunContext ctx;
    ctx.stop = source.get_token();
    const FactorResult r = Factorizer(o).run(W, ctx);
    EXPECT_EQ(r.termination, Termination::Cancelled);
    EXPECT_GE(r.iterations, 3);
    EXPECT_LT(r.iterations, 200);
    EXPECT_NEAR(r.finalError, referenceGramError(W, reconstruct(r.paths), o.inputGram), 1e-5);
}

}  // namespace
}  // namespace mdbf::factor
