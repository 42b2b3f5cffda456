// Sign packing, rank-l fits, Π_l, dense products of paths and envelope spectra, checked against
// dense double-precision references written out here.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stop_token>

#include <Eigen/SVD>

#include "random_matrix.h"
#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/factor/closed_form_init.h"
#include "mdbf/factor/envelope_spectra.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/kernels/packed_signs.h"

namespace mdbf::factor {
namespace {

// A random path with positive-ish envelopes.
kernels::FactorPath randomPath(Eigen::Index n, Eigen::Index m, Eigen::Index k, Eigen::Index l, unsigned seed)
{
    kernels::FactorPath p;
    p.sa = kernels::PackedSigns::fromSigns(test::gaussianMatrix<MatrixF>(n, k, seed));
    p.sb = kernels::PackedSigns::fromSigns(test::gaussianMatrix<MatrixF>(k, m, seed + 1));
    p.A = test::gaussianMatrix<MatrixF>(n, l, seed + 2).cwiseAbs();
    p.Qa = test::gaussianMatrix<MatrixF>(k, l, seed + 3).cwiseAbs();
    p.Qb = test::gaussianMatrix<MatrixF>(k, l, seed + 4).cwiseAbs();
    p.B = test::gaussianMatrix<MatrixF>(m, l, seed + 5).cwiseAbs();
    return p;
}

// Ŵ of a path in double, entry by entry from the definition F = S_a ⊙ (A Qaᵀ), G = S_b ⊙ (Qb Bᵀ).
Eigen::MatrixXd referenceW(const kernels::FactorPath& p)
{
    const Eigen::Index n = p.n(), m = p.m(), k = p.k(), l = p.l();
    Eigen::MatrixXd F(n, k), G(k, m);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < k; ++j) {
            double amp = 0.0;
            for (Eigen::Index r = 0; r < l; ++r) amp += static_cast<double>(p.A(i, r)) * p.Qa(j, r);
            F(i, j) = p.sa.sign(i, j) * amp;
        }
    for (Eigen::Index i = 0; i < k; ++i)
        for (Eigen::Index j = 0; j < m; ++j) {
            double amp = 0.0;
            for (Eigen::Index r = 0; r < l; ++r) amp += static_cast<double>(p.Qb(i, r)) * p.B(j, r);
            G(i, j) = p.sb.sign(i, j) * amp;
        }
    return F * G;
}

TEST(PackedSignsRoundTrip, OddSizes)
{
    for (auto [rows, cols] : {std::pair{1, 1}, {3, 63}, {5, 64}, {7, 65}, {37, 131}, {2, 200}}) {
        MatrixF m = test::gaussianMatrix<MatrixF>(rows, cols, 7u + static_cast<unsigned>(cols));
        // Exact zeros (and negative zero) count as +1.
        m(0, 0) = 0.0f;
        if (cols > 2) m(rows - 1, cols - 1) = -0.0f;
        const kernels::PackedSigns p = kernels::PackedSigns::fromSigns(m);
        const RowMatrixF back = p.toFloat();
        for (Eigen::Index i = 0; i < rows; ++i)
            for (Eigen::Index j = 0; j < cols; ++j) EXPECT_EQ(back(i, j), m(i, j) < 0.0f ? -1.0f : 1.0f);
        // Padding bits past the last column stay clear.
        const int used = cols % 64;
        if (used != 0) {
            for (Eigen::Index i = 0; i < rows; ++i) EXPECT_EQ(p.row(i)[p.wordsPerRow() - 1] >> used, 0u);
        }
    }
}

TEST(LowRank, RankApproxMatchesTruncatedSvd)
{
    // Both the exact branch (small) and the block-power branch (large) against a double SVD.
    for (auto [rows, cols, l] : {std::tuple{9, 13, 2}, std::tuple{300, 211, 3}}) {
        MatrixF M = test::gaussianMatrix<MatrixF>(rows, cols, 3u).cwiseAbs();
        // Make the spectrum decay so that the leading subspace is well defined.
        M += 4.0f * test::gaussianMatrix<MatrixF>(rows, 1, 4u).cwiseAbs() * test::gaussianMatrix<MatrixF>(1, cols, 5u).cwiseAbs();
        const RankApprox a = rankApprox(M, l, RankApproxOptions{12, 8, 1});
        ASSERT_EQ(a.left.cols(), l);
        Eigen::BDCSVD<Eigen::MatrixXd> svd(M.cast<double>(), Eigen::ComputeThinU | Eigen::ComputeThinV);
        const Eigen::MatrixXd best = svd.matrixU().leftCols(l) * svd.singularValues().head(l).asDiagonal() *
                                     svd.matrixV().leftCols(l).transpose();
        const double bestErr = (M.cast<double>() - best).norm();
        const double err = (M.cast<double>() - (a.left * a.right.transpose()).cast<double>()).norm();
        EXPECT_LE(err, bestErr * 1.001 + 1e-4) << rows << "x" << cols;
        for (int i = 0; i < l; ++i) EXPECT_NEAR(a.sigma[i], svd.singularValues()[i], 3e-3 * svd.singularValues()[0]);
    }
}

TEST(LowRank, ExactlyLowRankIsReproducedAndSignsFixed)
{
    const MatrixF M = test::gaussianMatrix<MatrixF>(400, 2, 11u).cwiseAbs() * test::gaussianMatrix<MatrixF>(2, 500, 12u).cwiseAbs().eval();
    RankApprox a = rankApprox(M, 2);
    fixEnvelopeSigns(a.left, a.right);
    EXPECT_TRUE(test::allClose(a.left * a.right.transpose(), M, 1e-3, 1e-4 * M.maxCoeff()));
    for (int j = 0; j < 2; ++j) EXPECT_GE(a.left.col(j).sum(), 0.0f);
}

TEST(LowRank, SignRankProject)
{
    const MatrixF M = test::gaussianMatrix<MatrixF>(40, 90, 21u);
    // l ≥ min(rows, cols): identity.
    EXPECT_EQ(signRankProject(M, 40), M);
    // l = 1: signs of M with a rank-1 magnitude that fits |M| as well as its best rank-1 SVD.
    const MatrixF Z = signRankProject(M, 1);
    for (Eigen::Index i = 0; i < M.size(); ++i) EXPECT_EQ(Z.data()[i] < 0.0f, M.data()[i] < 0.0f);
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(Z.cwiseAbs().cast<double>());
    EXPECT_LT(svd.singularValues()[1], 1e-4 * svd.singularValues()[0]);
    Eigen::JacobiSVD<Eigen::MatrixXd> svdM(M.cwiseAbs().cast<double>());
    const double best = std::sqrt(svdM.singularValues().tail(svdM.singularValues().size() - 1).squaredNorm());
    EXPECT_LE((Z.cwiseAbs() - M.cwiseAbs()).norm(), best * 1.001);
}

TEST(PathProducts, ReconstructionAndFactoredProducts)
{
    const kernels::FactorPath p1 = randomPath(37, 53, 19, 2, 100u);
    const kernels::FactorPath p2 = randomPath(37, 53, 19, 2, 200u);
    const std::vector<kernels::FactorPath> paths{p1, p2};
    const Eigen::MatrixXd ref = referenceW(p1) + referenceW(p2);
    const RowMatrixF W = reconstruct(paths);
    EXPECT_TRUE(test::allClose(W.cast<double>(), ref, 1e-5, 1e-5 * ref.cwiseAbs().maxCoeff()));
    // Dense F·G of one path equals its reconstruction.
    const MatrixF fg = denseF(p1) * denseG(p1);
    EXPECT_TRUE(test::allClose(fg.cast<double>(), referenceW(p1), 1e-5, 1e-5 * ref.cwiseAbs().maxCoeff()));

    const VectorF x = test::gaussianMatrix<MatrixF>(53, 1, 300u);
    const Eigen::VectorXd yRef = ref * x.cast<double>();
    const VectorF y = applyFactors(paths, x);
    EXPECT_TRUE(test::allClose(y.cast<double>(), yRef, 1e-4, 1e-5 * yRef.cwiseAbs().maxCoeff()));

    const RowMatrixF X = test::gaussianMatrix<MatrixF>(5, 53, 400u);
    const Eigen::MatrixXd YRef = X.cast<double>() * ref.transpose();
    const RowMatrixF Y = applyFactorsWindow(paths, X);
    ASSERT_EQ(Y.rows(), 5);
    ASSERT_EQ(Y.cols(), 37);
    EXPECT_TRUE(test::allClose(Y.cast<double>(), YRef, 1e-4, 1e-5 * YRef.cwiseAbs().maxCoeff()));

    EXPECT_THROW(applyFactors(paths, VectorF::Zero(52)), InvalidArgument);
    kernels::FactorPath broken = p1;
    broken.B = MatrixF::Zero(52, 2);
    EXPECT_THROW(validatePath(broken), InvalidArgument);
}

TEST(PathProducts, RoundEnvelopesToHalf)
{
    kernels::FactorPath p = randomPath(4, 5, 3, 1, 9u);
    p.A(0, 0) = 1.0f + 1e-5f;
    roundEnvelopesToHalf(p);
    EXPECT_EQ(p.A(0, 0), 1.0f);
    for (Eigen::Index i = 0; i < p.B.size(); ++i) EXPECT_EQ(p.B.data()[i], roundToHalf(p.B.data()[i]));
}

TEST(ClosedForm, FullRankEnvelopeReproducesW)
{
    // l ≥ k = min(n, m): the envelopes are exact and F·G is the full SVD, i.e. W itself.
    for (auto [n, m] : {std::pair{23, 37}, std::pair{41, 17}}) {
        const RowMatrixF W = test::gaussianMatrix<MatrixF>(n, m, 55u);
        const LayerSvd svd = LayerSvd::compute(W);
        const Eigen::Index k = std::min(n, m);
        const auto paths = closedFormInit(W, svd, k, static_cast<int>(k), 1);
        ASSERT_EQ(paths.size(), 1u);
        const RowMatrixF approx = reconstruct(paths);
        EXPECT_TRUE(test::allClose(approx, W, 1e-4, 1e-4)) << n << "x" << m;
    }
}

TEST(ClosedForm, SignsAndEnvelopesFollowTheSvd)
{
    const RowMatrixF W = test::gaussianMatrix<MatrixF>(60, 45, 66u);
    const LayerSvd svd = LayerSvd::compute(W);
    const MatrixF up = svd.leftFactor(20);
    const MatrixF vp = svd.rightFactor(20);
    const kernels::FactorPath p = closedFormPath(up, vp, 1);
    for (Eigen::Index i = 0; i < up.rows(); ++i)
        for (Eigen::Index j = 0; j < 20; ++j) EXPECT_EQ(p.sa.isNegative(i, j), up(i, j) < 0.0f);
    for (Eigen::Index i = 0; i < 20; ++i)
        for (Eigen::Index j = 0; j < vp.rows(); ++j) EXPECT_EQ(p.sb.isNegative(i, j), vp(j, i) < 0.0f);
    // Rank-1 envelopes of non-negative matrices: non-negative after the column-sum fix.
    EXPECT_GE(p.A.minCoeff(), -1e-6f);
    EXPECT_GE(p.B.minCoeff(), -1e-6f);
    // The envelope is the best rank-1 fit of |U'|.
    Eigen::JacobiSVD<Eigen::MatrixXd> s(up.cwiseAbs().cast<double>());
    const double best = std::sqrt(s.singularValues().tail(s.singularValues().size() - 1).squaredNorm());
    EXPECT_NEAR((up.cwiseAbs() - p.A * p.Qa.transpose()).norm(), best, 1e-3 * best);
}

TEST(LayerSvdTest, FactorsAndNorm)
{
    const RowMatrixF W = test::gaussianMatrix<MatrixF>(30, 50, 77u);
    const LayerSvd svd = LayerSvd::compute(W);
    EXPECT_EQ(svd.rank(), 30);
    EXPECT_NEAR(svd.frobeniusNorm(), W.cast<double>().norm(), 1e-4 * W.cast<double>().norm());
    EXPECT_TRUE(test::allClose(svd.truncated(30), W, 1e-4, 1e-4));
    const MatrixF uv = svd.leftFactor(30) * svd.rightFactor(30).transpose();
    EXPECT_TRUE(test::allClose(uv, W, 1e-4, 1e-4));
    EXPECT_THROW(svd.leftFactor(31), InvalidArgument);
    RowMatrixF bad = W;
    bad(3, 4) = std::nanf("");
    EXPECT_THROW(LayerSvd::compute(bad), InvalidArgument);
}

TEST(EnvelopeSpectraTest, SharesAndEnergies)
{
    const RowMatrixF W = test::gaussianMatrix<MatrixF>(80, 120, 88u);
    const LayerSvd svd = LayerSvd::compute(W);
    const EnvelopeSpectra s = EnvelopeSpectra::ofSvd(svd, 40, 2, 10);
    ASSERT_EQ(s.sigmaF.size(), 10);
    // ‖U_k Σ_k^{1/2}‖_F² = Σ_{i<k} σ_i, an independent value for the energy.
    const double sumSigma = svd.singularValues().head(40).cast<double>().sum();
    EXPECT_NEAR(s.energyF, sumSigma, 1e-4 * sumSigma);
    EXPECT_NEAR(s.energyG, sumSigma, 1e-4 * sumSigma);
    for (Eigen::Index i = 1; i < s.sigmaF.size(); ++i) EXPECT_LE(s.sigmaF[i], s.sigmaF[i - 1] * (1 + 1e-5));
    const double head = s.sigmaF[0] * s.sigmaF[0] + s.sigmaF[1] * s.sigmaF[1];
    EXPECT_NEAR(s.shareF, head / s.energyF, 1e-6);
    EXPECT_GT(s.shareF, 0.0);
    EXPECT_LT(s.shareF, 1.0);
    // A deployed l = 1 path: |F| = |A Qaᵀ| is rank 1, so the rank-1 share is 1.
    const kernels::FactorPath p = randomPath(30, 40, 12, 1, 5u);
    const EnvelopeSpectra ps = EnvelopeSpectra::ofPath(p, 5);
    EXPECT_NEAR(ps.shareF, 1.0, 1e-5);
    EXPECT_NEAR(ps.shareG, 1.0, 1e-5);
    EXPECT_LT(ps.sigmaF[1], 1e-3 * ps.sigmaF[0]);
}

TEST(EnvelopeSpectraTest, AStopRequestCancelsThePowerIteration)
{
    // Large enough for block power iteration (an exact SVD is not interrupted).
    const MatrixF F = test::gaussianMatrix<MatrixF>(300, 150, 91u);
    const MatrixF G = test::gaussianMatrix<MatrixF>(150, 260, 92u);
    std::stop_source running;
    const EnvelopeSpectra free = EnvelopeSpectra::ofFactors(F, G, 2);
    const EnvelopeSpectra polled = EnvelopeSpectra::ofFactors(F, G, 2, kSpectrumValues, running.get_token());
    EXPECT_EQ(polled.sigmaF, free.sigmaF);
    EXPECT_EQ(polled.sigmaG, free.sigmaG);
    ASSERT_EQ(free.sigmaF.size(), kSpectrumValues);

    std::stop_source stopped;
    stopped.request_stop();
    EXPECT_THROW(EnvelopeSpectra::ofFactors(F, G, 2, kSpectrumValues, stopped.get_token()), Cancelled);
    EXPECT_THROW(leadingSingularValues(G, 8, kEnvelopeFitOptions, stopped.get_token()), Cancelled);
}

}  // namespace
}  // namespace mdbf::factor
