// FactorizedLinear against x ↦ Ŵx of the dense reconstruction, and HalfDenseLinear against a
// float32 dense layer holding the same values.

#include <random>

#include <gtest/gtest.h>

#include "deploy_test_util.h"
#include "matrix_compare.h"
#include "mdbf/base/error.h"
#include "mdbf/kernels/kernel_path.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/half_dense_linear.h"

namespace mdbf {
namespace {

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Ŵ = Σ_p (S_a ⊙ A Qaᵀ)(S_b ⊙ Qb Bᵀ) in double, built entry by entry from the signs (independent
// of the kernels and of kernels::reconstructDense).
RowMatrixD referenceWeight(const std::vector<kernels::FactorPath>& paths)
{
    const auto& first = paths.front();
    RowMatrixD W = RowMatrixD::Zero(first.n(), first.m());
    for (const auto& p : paths) {
        RowMatrixD F(p.n(), p.k()), G(p.k(), p.m());
        for (std::int64_t i = 0; i < p.n(); ++i)
            for (std::int64_t j = 0; j < p.k(); ++j)
                F(i, j) = p.sa.sign(i, j) * p.A.row(i).cast<double>().dot(p.Qa.row(j).cast<double>());
        for (std::int64_t i = 0; i < p.k(); ++i)
            for (std::int64_t j = 0; j < p.m(); ++j)
                G(i, j) = p.sb.sign(i, j) * p.Qb.row(i).cast<double>().dot(p.B.row(j).cast<double>());
        W += F * G;
    }
    return W;
}

RowMatrixF randomActivations(std::int64_t T, std::int64_t m, std::mt19937_64& rng)
{
    std::normal_distribution<float> normal(0.0f, 1.0f);
    RowMatrixF X(T, m);
    for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
    return X;
}

// Relative Frobenius error and an element-wise bound scaled by the output's magnitude.
void expectCloseRelative(const RowMatrixF& Y, const RowMatrixD& ref, double rtol)
{
    const double scale = ref.cwiseAbs().maxCoeff();
    EXPECT_LE((Y.cast<double>() - ref).norm(), rtol * ref.norm());
    EXPECT_TRUE(test::allClose(Y, ref.cast<float>(), rtol, rtol * scale));
}

TEST(FactorizedLinear, MatchesDenseReconstructionForOneTokenAndAWindow)
{
    std::mt19937_64 rng(11);
    std::vector<kernels::FactorPath> paths;
    paths.push_back(test::randomPath(77, 93, 29, 3, rng));
    paths.push_back(test::randomPath(77, 93, 29, 3, rng));
    VectorF bias = VectorF::Random(77);
    const RowMatrixD W = referenceWeight(paths);
    const model::FactorizedLinear layer(paths, bias);
    EXPECT_EQ(layer.outFeatures(), 77);
    EXPECT_EQ(layer.inFeatures(), 93);
    EXPECT_EQ(layer.kind(), "factorized k=29 l=3 P=2");

    for (const std::int64_t T : {1, 7, 33}) {
        SCOPED_TRACE(T);
        const RowMatrixF X = randomActivations(T, 93, rng);
        const RowMatrixD ref = (X.cast<double>() * W.transpose()).rowwise() + bias.cast<double>().transpose();
        for (const int threads : {1, 2}) {
            RowMatrixF Y;
            layer.forward(X, Y, threads);
            ASSERT_EQ(Y.rows(), T);
            ASSERT_EQ(Y.cols(), 77);
            expectCloseRelative(Y, ref, 1e-4);
        }
    }
}

TEST(FactorizedLinear, DecodeAndPrefillAgree)
{
    std::mt19937_64 rng(12);
    const model::FactorizedLinear layer({test::randomPath(64, 130, 65, 2, rng)});
    const RowMatrixF X = randomActivations(9, 130, rng);
    // One token runs the 18-bit table kernels (binary_product.h), a window the float kernels:
    // within the tables' error, about 2e-5 of the output.
    using kernels::KernelPath;
    for (const KernelPath path : {KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512}) {
        if ((path == KernelPath::Avx2 && !kernels::avx2Available()) ||
            (path == KernelPath::Avx512 && !kernels::avx512Available()))
            continue;
        SCOPED_TRACE(kernels::kernelPathName(path));
        kernels::setAutoKernelPath(path);
        RowMatrixF window;
        layer.forward(X, window, 2);
        for (Eigen::Index t = 0; t < X.rows(); ++t) {
            RowMatrixF one;
            layer.forward(X.row(t), one, 1);
            EXPECT_TRUE(test::allClose(one, window.row(t), 2e-4, 2e-4 * window.cwiseAbs().maxCoeff()));
        }
    }
    kernels::setAutoKernelPath(KernelPath::Auto);
}

TEST(FactorizedLinear, ReconstructEqualsReference)
{
    std::mt19937_64 rng(13);
    std::vector<kernels::FactorPath> paths{test::randomPath(31, 17, 5, 2, rng), test::randomPath(31, 17, 5, 2, rng)};
    const model::FactorizedLinear layer(paths);
    const RowMatrixD ref = referenceWeight(paths);
    EXPECT_TRUE(test::allClose(layer.reconstruct(), ref.cast<float>(), 1e-5, 1e-5 * ref.cwiseAbs().maxCoeff()));
}

TEST(FactorizedLinear, RejectsInconsistentInput)
{
    std::mt19937_64 rng(14);
    EXPECT_THROW(model::FactorizedLinear({}), InvalidArgument);
    EXPECT_THROW(model::FactorizedLinear({test::randomPath(8, 9, 3, 1, rng)}, VectorF::Zero(9)), InvalidArgument);
    EXPECT_THROW(model::FactorizedLinear({test::randomPath(8, 9, 3, 1, rng), test::randomPath(8, 10, 3, 1, rng)}),
                 InvalidArgument);
    kernels::FactorPath bad = test::randomPath(8, 9, 3, 2, rng);
    bad.Qb.resize(4, 2);
    EXPECT_THROW(model::FactorizedLinear({bad}), InvalidArgument);
}

class HalfDenseLinearTest : public ::testing::TestWithParam<io::DType> {};

TEST_P(HalfDenseLinearTest, MatchesFloatDenseLayer)
{
    const io::DType dtype = GetParam();
    std::mt19937_64 rng(21);
    const std::int64_t n = 131, m = 75;  // several tiles, odd sizes
    const io::PackageTensor t = test::randomTensor("w", dtype, {n, m}, rng);
    std::vector<std::uint16_t> bits(static_cast<std::size_t>(n * m));
    std::memcpy(bits.data(), t.data.data(), t.data.size());
    RowMatrixF W(n, m);
    for (std::int64_t i = 0; i < n * m; ++i) {
        const std::uint16_t b = bits[static_cast<std::size_t>(i)];
        W.data()[i] = dtype == io::DType::F16 ? halfToFloat(b) : bf16ToFloat(b);
    }
    const VectorF bias = VectorF::Random(n);
    const model::HalfDenseLinear half(dtype, n, m, bits, bias);
    const model::DenseLinear dense(W, bias);
    EXPECT_EQ(half.kind(), "dense " + std::string(io::dtypeName(dtype)));
    EXPECT_TRUE(half.toFloat() == W);

    for (const std::int64_t T : {1, 5, 70}) {
        SCOPED_TRACE(T);
        const RowMatrixF X = randomActivations(T, m, rng);
        RowMatrixF expected;
        dense.forward(X, expected, 1);
        for (const int threads : {1, 2}) {
            RowMatrixF Y;
            half.forward(X, Y, threads);
            EXPECT_TRUE(test::allClose(Y, expected, 1e-5, 1e-5 * expected.cwiseAbs().maxCoeff()));
        }
    }
    std::vector<float> row(static_cast<std::size_t>(m));
    half.row(100, row);
    for (std::int64_t j = 0; j < m; ++j) EXPECT_EQ(row[static_cast<std::size_t>(j)], W(100, j));
    EXPECT_THROW(half.row(n, row), InvalidArgument);
    EXPECT_THROW(half.row(-1, row), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Formats, HalfDenseLinearTest, ::testing::Values(io::DType::F16, io::DType::BF16),
                         [](const auto& info) { return std::string(io::dtypeName(info.param)); });

TEST(HalfDenseLinear, ConvertsEveryF16PatternExactly)
{
    std::vector<std::uint16_t> all(65536);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
    std::vector<float> out(all.size());
    model::convertHalfBits(io::DType::F16, all.data(), all.size(), out.data());
    for (std::size_t i = 0; i < all.size(); ++i) {
        const float ref = halfToFloat(all[i]);
        if (std::isnan(ref)) {
            EXPECT_TRUE(std::isnan(out[i])) << i;
        } else {
            EXPECT_EQ(out[i], ref) << i;
        }
    }
}

TEST(HalfDenseLinear, RejectsBadInput)
{
    EXPECT_THROW(model::HalfDenseLinear(io::DType::F32, 2, 2, std::vector<std::uint16_t>(4)), InvalidArgument);
    EXPECT_THROW(model::HalfDenseLinear(io::DType::F16, 2, 2, std::vector<std::uint16_t>(3)), InvalidArgument);
    EXPECT_THROW(model::HalfDenseLinear(io::DType::F16, 2, 2, std::vector<std::uint16_t>(4), VectorF::Zero(3)),
                 InvalidArgument);
    const model::HalfDenseLinear ok(io::DType::BF16, 2, 2, std::vector<std::uint16_t>(4));
    RowMatrixF Y;
    EXPECT_THROW(ok.forward(RowMatrixF::Zero(1, 3), Y, 1), InvalidArgument);
}

}  // namespace
}  // namespace mdbf
