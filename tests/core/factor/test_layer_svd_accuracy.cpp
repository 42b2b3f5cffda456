// LayerSvd (Gram eigendecomposition through LAPACK) against Eigen's full SVD of the same matrix in
// double, on odd shapes, well- and ill-conditioned, and rank-deficient inputs.
//
// Tolerances, with σ_max the largest singular value:
// * singular values: |σ_i − σ_i^ref| ≤ 1e-5·σ_i + 1e-8·σ_max (the Gram matrix in double has an
//   absolute eigenvalue error of a few ε_double·σ_max², i.e. ε_double·σ_max²/σ_i on σ_i);
// * reconstruction: ‖W − U Σ Vᵀ‖_F ≤ 2e-6·‖W‖_F (float storage of the factors);
// * orthonormality: ‖UᵀU − I‖_max and ‖VᵀV − I‖_max ≤ 2e-5 on the columns with σ ≥ 1e-2·σ_max
//   (the long side is W·x/σ in float, so its error grows like ε_float·σ_max/σ_i), ≤ 1e-3 over all
//   (columns below 1e-3·σ_max are re-orthogonalized);
// * subspaces: the sine of the largest principal angle between span(U_k) and span(U_k^ref) (and the
//   same for V) ≤ 1e-4 where the spectrum has a relative gap of at least 1% at k.
//
// The leading triplets in float (computeLeading, k of r), on the same inputs:
// * singular values: |σ_i − σ_i^ref| ≤ 1e-5·σ_i·(σ_1/σ_i)² (float eigensolver, Rayleigh quotients);
// * rank-k truncation error within 1e-4 relative of the optimum sqrt(Σ_{i>k} σ_i²);
// * orthonormality of U_k and V_k ≤ 1e-4·(σ_1/σ_k)²; ‖W‖_F to 1e-6 relative.

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <Eigen/QR>
#include <Eigen/SVD>

#include "random_matrix.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/layer_svd.h"

namespace mdbf::factor {
namespace {

struct Reference {
    Eigen::MatrixXd U, V;
    Eigen::VectorXd sigma;
};

Reference reference(const RowMatrixF& W)
{
    Eigen::BDCSVD<Eigen::MatrixXd> svd(W.cast<double>(), Eigen::ComputeThinU | Eigen::ComputeThinV);
    return {svd.matrixU(), svd.matrixV(), svd.singularValues()};
}

/// A random matrix with orthonormal columns (rows×cols, rows ≥ cols), in double.
Eigen::MatrixXd randomOrthonormal(Eigen::Index rows, Eigen::Index cols, unsigned seed)
{
    const Eigen::MatrixXd g = test::gaussianMatrix<Eigen::MatrixXf>(rows, cols, seed).cast<double>();
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
    return qr.householderQ() * Eigen::MatrixXd::Identity(rows, cols);
}

/// U diag(σ) Vᵀ with the given spectrum, rounded to float.
RowMatrixF withSpectrum(Eigen::Index n, Eigen::Index m, const Eigen::VectorXd& sigma, unsigned seed)
{
    const Eigen::Index r = sigma.size();
    const Eigen::MatrixXd W = randomOrthonormal(n, r, seed) * sigma.asDiagonal() * randomOrthonormal(m, r, seed + 1).transpose();
    return W.cast<float>();
}

/// sin of the largest principal angle between the column spans of orthonormal A and B.
double largestAngleSine(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B)
{
    const Eigen::MatrixXd residual = A - B * (B.transpose() * A);
    return Eigen::JacobiSVD<Eigen::MatrixXd>(residual).singularValues()(0);
}

double orthonormalityError(const MatrixF& Q, Eigen::Index cols)
{
    const Eigen::MatrixXd q = Q.leftCols(cols).cast<double>();
    return (q.transpose() * q - Eigen::MatrixXd::Identity(cols, cols)).cwiseAbs().maxCoeff();
}

void expectMatchesReference(const RowMatrixF& W, const std::string& label)
{
    SCOPED_TRACE(label);
    const LayerSvd svd = LayerSvd::compute(W);
    const Reference ref = reference(W);
    const Eigen::Index r = std::min(W.rows(), W.cols());
    ASSERT_EQ(svd.rank(), r);
    ASSERT_EQ(svd.u().rows(), W.rows());
    ASSERT_EQ(svd.v().rows(), W.cols());
    const double sigmaMax = ref.sigma[0];
    for (Eigen::Index i = 0; i < r; ++i) {
        EXPECT_NEAR(svd.singularValues()[i], ref.sigma[i], 1e-5 * ref.sigma[i] + 1e-8 * sigmaMax) << "σ_" << i;
        if (i > 0) {
            EXPECT_LE(svd.singularValues()[i], svd.singularValues()[i - 1]);
        }
        EXPECT_GE(svd.singularValues()[i], 0.0f);
    }

    const Eigen::MatrixXd rebuilt = svd.u().cast<double>() * svd.singularValues().cast<double>().asDiagonal() *
                                    svd.v().cast<double>().transpose();
    const double wNorm = W.cast<double>().norm();
    EXPECT_LE((W.cast<double>() - rebuilt).norm(), 2e-6 * wNorm);

    Eigen::Index strong = 0;
    while (strong < r && ref.sigma[strong] >= 1e-2 * sigmaMax) ++strong;
    EXPECT_LE(orthonormalityError(svd.u(), strong), 2e-5);
    EXPECT_LE(orthonormalityError(svd.v(), strong), 2e-5);
    EXPECT_LE(orthonormalityError(svd.u(), r), 1e-3);
    EXPECT_LE(orthonormalityError(svd.v(), r), 1e-3);

    for (Eigen::Index k = 1; k < r; k += std::max<Eigen::Index>(1, r / 16)) {
        if (ref.sigma[k] < 1e-3 * sigmaMax || ref.sigma[k - 1] - ref.sigma[k] < 0.01 * ref.sigma[k - 1]) continue;
        EXPECT_LE(largestAngleSine(svd.u().leftCols(k).cast<double>(), ref.U.leftCols(k)), 1e-4) << "U, k = " << k;
        EXPECT_LE(largestAngleSine(svd.v().leftCols(k).cast<double>(), ref.V.leftCols(k)), 1e-4) << "V, k = " << k;
    }
}

TEST(LayerSvdAccuracy, GaussianWideTallSquare)
{
    expectMatchesReference(test::gaussianMatrix(67, 203, 11u), "67x203");
    expectMatchesReference(test::gaussianMatrix(211, 53, 12u), "211x53");
    expectMatchesReference(test::gaussianMatrix(150, 150, 13u), "150x150");
    expectMatchesReference(test::layerLikeMatrix(97, 261, 14u), "layer-like 97x261");
}

TEST(LayerSvdAccuracy, IllConditioned)
{
    // Singular values log-spaced over six decades (condition number 1e6).
    for (const auto& [n, m] : {std::pair<Eigen::Index, Eigen::Index>{83, 149}, {149, 83}}) {
        const Eigen::Index r = std::min(n, m);
        Eigen::VectorXd sigma(r);
        for (Eigen::Index i = 0; i < r; ++i) sigma[i] = std::pow(10.0, -6.0 * double(i) / double(r - 1));
        expectMatchesReference(withSpectrum(n, m, sigma, 21u), std::to_string(n) + "x" + std::to_string(m) + " cond 1e6");
    }
}

TEST(LayerSvdAccuracy, RankDeficientCompletesOrthonormalBases)
{
    // Rank 20 of 90: the last 70 singular values are zero up to rounding, and both bases must
    // still be orthonormal.
    for (const auto& [n, m] : {std::pair<Eigen::Index, Eigen::Index>{90, 131}, {131, 90}}) {
        SCOPED_TRACE(std::to_string(n) + "x" + std::to_string(m));
        const RowMatrixF W = test::gaussianMatrix(n, 20, 31u) * test::gaussianMatrix(20, m, 32u);
        const LayerSvd svd = LayerSvd::compute(W);
        const Reference ref = reference(W);
        for (Eigen::Index i = 0; i < 20; ++i) EXPECT_NEAR(svd.singularValues()[i], ref.sigma[i], 1e-5 * ref.sigma[i]);
        for (Eigen::Index i = 20; i < 90; ++i) EXPECT_LE(svd.singularValues()[i], 1e-5 * ref.sigma[0]);
        EXPECT_LE(orthonormalityError(svd.u(), 90), 1e-5);
        EXPECT_LE(orthonormalityError(svd.v(), 90), 1e-5);
        EXPECT_LE(largestAngleSine(svd.u().leftCols(20).cast<double>(), ref.U.leftCols(20)), 1e-4);
        EXPECT_LE(largestAngleSine(svd.v().leftCols(20).cast<double>(), ref.V.leftCols(20)), 1e-4);
        const double wNorm = W.cast<double>().norm();
        EXPECT_LE((W.cast<double>() - svd.truncated(20).cast<double>()).norm(), 2e-6 * wNorm);
    }
}

TEST(LayerSvdAccuracy, TruncationErrorMatchesTail)
{
    const RowMatrixF W = test::layerLikeMatrix(120, 77, 41u);
    const LayerSvd svd = LayerSvd::compute(W);
    const Reference ref = reference(W);
    for (Eigen::Index k : {1, 8, 30, 76}) {
        const double err = (W.cast<double>() - svd.truncated(k).cast<double>()).norm();
        const double best = ref.sigma.tail(ref.sigma.size() - k).norm();
        EXPECT_NEAR(err, best, 1e-4 * best + 1e-6 * ref.sigma[0]) << "k = " << k;
    }
}

TEST(LayerSvdAccuracy, ThreadCountDoesNotChangeTheResult)
{
    const RowMatrixF W = test::gaussianMatrix(130, 301, 51u);
    RunContext one;
    one.threads = 1;
    RunContext two;
    two.threads = 2;
    const LayerSvd a = LayerSvd::compute(W, one);
    const LayerSvd b = LayerSvd::compute(W, two);
    for (Eigen::Index i = 0; i < a.rank(); ++i)
        EXPECT_NEAR(a.singularValues()[i], b.singularValues()[i], 1e-6 * a.singularValues()[0]);
    const double wNorm = W.cast<double>().norm();
    EXPECT_LE((a.truncated(60) - b.truncated(60)).cast<double>().norm(), 1e-5 * wNorm);
}

void expectLeadingMatchesReference(const RowMatrixF& W, Eigen::Index k, const std::string& label)
{
    SCOPED_TRACE(label + ", k = " + std::to_string(k));
    const LayerSvd svd = LayerSvd::computeLeading(W, k);
    const Reference ref = reference(W);
    ASSERT_EQ(svd.rank(), k);
    EXPECT_FALSE(svd.complete());
    EXPECT_TRUE(svd.covers(k));
    EXPECT_FALSE(svd.covers(k + 1));
    EXPECT_THROW(svd.truncated(k + 1), InvalidArgument);
    ASSERT_EQ(svd.u().rows(), W.rows());
    ASSERT_EQ(svd.v().rows(), W.cols());
    const double wNorm = W.cast<double>().norm();
    EXPECT_NEAR(svd.frobeniusNorm(), wNorm, 1e-6 * wNorm);
    const double s1 = ref.sigma[0];
    for (Eigen::Index i = 0; i < k; ++i) {
        const double ratio = s1 / ref.sigma[i];
        EXPECT_NEAR(svd.singularValues()[i], ref.sigma[i], 1e-5 * ref.sigma[i] * ratio * ratio) << "σ_" << i;
        if (i > 0) {
            EXPECT_LE(svd.singularValues()[i], svd.singularValues()[i - 1]);
        }
    }
    const double best = ref.sigma.tail(ref.sigma.size() - k).norm();
    const double err = (W.cast<double>() - svd.truncated(k).cast<double>()).norm();
    EXPECT_NEAR(err, best, 1e-4 * best);
    const double ratio = s1 / ref.sigma[k - 1];
    EXPECT_LE(orthonormalityError(svd.u(), k), 1e-4 * ratio * ratio);
    EXPECT_LE(orthonormalityError(svd.v(), k), 1e-4 * ratio * ratio);
}

TEST(LayerSvdAccuracy, LeadingTripletsInFloat)
{
    expectLeadingMatchesReference(test::gaussianMatrix(67, 203, 11u), 40, "67x203");
    expectLeadingMatchesReference(test::gaussianMatrix(211, 53, 12u), 35, "211x53");
    expectLeadingMatchesReference(test::layerLikeMatrix(97, 261, 14u), 70, "layer-like 97x261");
    expectLeadingMatchesReference(test::layerLikeMatrix(300, 120, 15u), 90, "layer-like 300x120");
    // Two decades of spectrum above k.
    Eigen::VectorXd sigma(110);
    for (Eigen::Index i = 0; i < sigma.size(); ++i) sigma[i] = std::pow(10.0, -3.0 * double(i) / 109.0);
    expectLeadingMatchesReference(withSpectrum(110, 170, sigma, 16u), 70, "110x170 cond 1e3");
}

TEST(LayerSvdAccuracy, LeadingTripletsArgumentsAndZeroMatrix)
{
    const RowMatrixF W = test::gaussianMatrix(20, 30, 17u);
    EXPECT_THROW(LayerSvd::computeLeading(W, 0), InvalidArgument);
    EXPECT_THROW(LayerSvd::computeLeading(W, 21), InvalidArgument);
    // k = min(n, m) is the complete decomposition.
    EXPECT_TRUE(LayerSvd::computeLeading(W, 20).complete());
    const LayerSvd zero = LayerSvd::computeLeading(RowMatrixF::Zero(20, 30), 5);
    EXPECT_EQ(zero.rank(), 5);
    EXPECT_EQ(zero.frobeniusNorm(), 0.0);
    EXPECT_LE(orthonormalityError(zero.u(), 5), 1e-6);
}

}  // namespace
}  // namespace mdbf::factor
