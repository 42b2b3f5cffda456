// The factorized apply of docs/ALGORITHM.md §2.4 against x ↦ Ŵ x with Ŵ the dense reconstruction, and the
// reconstruction itself against the element-wise definition of F and G.

#include <vector>

#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/kernels/factor_apply.h"

namespace mdbf::kernels::test {
namespace {

/// Random signs and envelopes; envelope entries in [0.1, 1] on the n/m sides (A, B) and [-1, 1]
/// on the k sides so that l ≥ 2 envelopes mix signs as they may after refinement.
FactorPath randomPath(std::int64_t n, std::int64_t m, std::int64_t k, std::int64_t l, std::uint32_t seed)
{
    FactorPath p;
    p.sa = randomSigns(n, k, seed);
    p.sb = randomSigns(k, m, seed + 1);
    p.A = (randomMatrix(n, l, seed + 2).array() * 0.45f + 0.55f).matrix();
    p.Qa = randomMatrix(k, l, seed + 3);
    p.Qb = randomMatrix(k, l, seed + 4);
    p.B = (randomMatrix(m, l, seed + 5).array() * 0.45f + 0.55f).matrix();
    return p;
}

std::vector<FactorPath> randomPaths(std::int64_t n, std::int64_t m, std::int64_t k, std::int64_t l, int P,
                                    std::uint32_t seed)
{
    std::vector<FactorPath> paths;
    for (int p = 0; p < P; ++p) paths.push_back(randomPath(n, m, k, l, seed + 100 * static_cast<std::uint32_t>(p)));
    return paths;
}

RowMatrixD denseSum(const std::vector<FactorPath>& paths)
{
    RowMatrixD W = reconstructDense(paths.front()).cast<double>();
    for (std::size_t p = 1; p < paths.size(); ++p) W += reconstructDense(paths[p]).cast<double>();
    return W;
}

/// Per-token relative error ‖y − ŷ‖ / ‖ŷ‖ ≤ rel for every token.
::testing::AssertionResult relativeRowsClose(const RowMatrixF& Y, const RowMatrixD& R, double rel)
{
    if (Y.rows() != R.rows() || Y.cols() != R.cols())
        return ::testing::AssertionFailure() << "shape " << Y.rows() << "x" << Y.cols() << " vs " << R.rows()
                                             << "x" << R.cols();
    for (Eigen::Index t = 0; t < R.rows(); ++t) {
        const double err = (Y.row(t).cast<double>() - R.row(t)).norm() / R.row(t).norm();
        if (!(err <= rel)) return ::testing::AssertionFailure() << "token " << t << ": relative error " << err;
    }
    return ::testing::AssertionSuccess();
}

TEST(ReconstructDense, MatchesElementwiseDefinition)
{
    const std::int64_t n = 9, m = 14, k = 6, l = 3;
    const FactorPath p = randomPath(n, m, k, l, 7);
    const RowMatrixF W = reconstructDense(p);
    RowMatrixD expected = RowMatrixD::Zero(n, m);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < m; ++j)
            for (std::int64_t r = 0; r < k; ++r) {
                double f = 0.0, g = 0.0;
                for (std::int64_t q = 0; q < l; ++q) {
                    f += static_cast<double>(p.A(i, q)) * p.Qa(r, q);
                    g += static_cast<double>(p.Qb(r, q)) * p.B(j, q);
                }
                const double sa = p.sa.isNegative(i, r) ? -1.0 : 1.0;
                const double sb = p.sb.isNegative(r, j) ? -1.0 : 1.0;
                expected(i, j) += sa * f * sb * g;
            }
    EXPECT_TRUE(mdbf::test::allClose(W, expected, 1e-6, 1e-6));
}

struct ApplyCase {
    std::int64_t n, m, k;
};

class FactorApplyTest : public ::testing::TestWithParam<KernelPath> {
protected:
    void SetUp() override { MDBF_REQUIRE_KERNEL_PATH(GetParam()); }
};

TEST_P(FactorApplyTest, WindowMatchesDenseReconstruction)
{
    for (const ApplyCase& c : {ApplyCase{70, 45, 33}, ApplyCase{130, 201, 67}, ApplyCase{5, 3, 2}}) {
        for (std::int64_t l : {1, 2, 4}) {
            if (l > c.k) continue;
            for (int P : {1, 2}) {
                const auto paths = randomPaths(c.n, c.m, c.k, l, P, static_cast<std::uint32_t>(c.n + 10 * l + P));
                const RowMatrixD W = denseSum(paths);
                // 70 tokens span two passes of the token-blocked apply.
                for (std::int64_t T : {1, 3, 17, 70}) {
                    const RowMatrixF X = randomMatrix(T, c.m, static_cast<std::uint32_t>(T * 31 + l));
                    RowMatrixF Y;
                    applyFactorPaths(paths, X, Y, 2, GetParam());
                    const RowMatrixD R = X.cast<double>() * W.transpose();
                    EXPECT_TRUE(relativeRowsClose(Y, R, 1e-4))
                        << c.n << "x" << c.m << " k " << c.k << " l " << l << " P " << P << " T " << T;
                    EXPECT_TRUE(mdbf::test::allClose(Y, R, 1e-4, 1e-4 * R.cwiseAbs().maxCoeff()))
                        << c.n << "x" << c.m << " k " << c.k << " l " << l << " P " << P << " T " << T;
                }
            }
        }
    }
}

TEST_P(FactorApplyTest, SingleTokenMatchesDenseReconstruction)
{
    const std::int64_t n = 130, m = 201, k = 67;
    for (std::int64_t l : {1, 2, 4}) {
        for (int P : {1, 2}) {
            const auto paths = randomPaths(n, m, k, l, P, static_cast<std::uint32_t>(l * 13 + P));
            const RowMatrixF x = randomMatrix(1, m, static_cast<std::uint32_t>(l + 5 * P));
            RowMatrixF y(1, n);
            applyFactorPaths(paths, std::span<const float>(x.data(), x.size()),
                             std::span<float>(y.data(), y.size()), 1, GetParam());
            const RowMatrixD R = x.cast<double>() * denseSum(paths).transpose();
            EXPECT_TRUE(relativeRowsClose(y, R, 1e-4)) << "l " << l << " P " << P;
            EXPECT_TRUE(mdbf::test::allClose(y, R, 1e-4, 1e-4 * R.cwiseAbs().maxCoeff())) << "l " << l << " P " << P;
        }
    }
}

TEST_P(FactorApplyTest, ThreadCountDoesNotChangeResults)
{
    const auto paths = randomPaths(130, 201, 67, 2, 2, 99);
    for (std::int64_t T : {1, 3, 17, 40, 70}) {
        const RowMatrixF X = randomMatrix(T, 201, static_cast<std::uint32_t>(T));
        RowMatrixF one, two;
        applyFactorPaths(paths, X, one, 1, GetParam());
        applyFactorPaths(paths, X, two, 2, GetParam());
        EXPECT_EQ(one, two) << "T " << T;
    }
}

TEST_P(FactorApplyTest, RejectsInconsistentInput)
{
    std::vector<FactorPath> paths = randomPaths(10, 12, 5, 2, 1, 3);
    RowMatrixF Y;
    EXPECT_THROW(applyFactorPaths(paths, RowMatrixF::Zero(2, 11), Y, 1, GetParam()), InvalidArgument);
    EXPECT_THROW(applyFactorPaths(std::span<const FactorPath>(), RowMatrixF::Zero(2, 12), Y, 1, GetParam()),
                 InvalidArgument);

    paths.push_back(randomPath(10, 13, 5, 2, 4));
    EXPECT_THROW(applyFactorPaths(paths, RowMatrixF::Zero(2, 12), Y, 1, GetParam()), InvalidArgument);

    FactorPath bad = randomPath(10, 12, 5, 2, 5);
    bad.Qa = MatrixF::Zero(4, 2);
    EXPECT_THROW(validateFactorPath(bad), InvalidArgument);
    EXPECT_THROW(applyFactorPaths(std::span<const FactorPath>(&bad, 1), RowMatrixF::Zero(1, 12), Y, 1, GetParam()),
                 InvalidArgument);

    const FactorPath good = randomPath(10, 12, 5, 2, 6);
    std::vector<float> x(12), y(9);
    EXPECT_THROW(applyFactorPaths(std::span<const FactorPath>(&good, 1), x, y, 1, GetParam()), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Paths, FactorApplyTest,
                         ::testing::Values(KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512), pathParamName);

}  // namespace
}  // namespace mdbf::kernels::test
