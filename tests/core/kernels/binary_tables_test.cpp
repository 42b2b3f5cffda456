// The table product of one token (binaryGemvTables): every SIMD path equals the scalar twin bit
// for bit, and the scalar twin stays within the quantization bound of the exact product.

#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/kernels/binary_product.h"

namespace mdbf::kernels::test {
namespace {

using Shape = std::pair<std::int64_t, std::int64_t>;  // rows × cols of S

// Partial and full 16-row blocks, partial and full 256-column tiles, single words.
const std::vector<Shape> kTableShapes = {{1, 1},    {7, 13},    {16, 256}, {17, 257}, {200, 1},   {65, 129},
                                    {33, 1000}, {130, 2100}, {48, 4096}, {5, 520}, {31, 11008}};

// Activations like a model's: Gaussian with a few features 30–60 times larger.
RowMatrixF heavyTailed(std::int64_t cols, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> big(30.0f, 60.0f);
    std::bernoulli_distribution outlier(0.005);
    RowMatrixF x(1, cols);
    for (std::int64_t j = 0; j < cols; ++j) x(0, j) = normal(rng) * (outlier(rng) ? big(rng) : 1.0f);
    return x;
}

std::vector<float> tables(const PackedSigns& S, const RowMatrixF& x, int threads, KernelPath path)
{
    std::vector<float> y(static_cast<std::size_t>(S.rows()));
    binaryGemvTables(S, std::span<const float>(x.data(), static_cast<std::size_t>(x.size())), y, threads, path);
    return y;
}

// The worst-case error of the scheme (binary_product.h), computed independently in double: half a
// quantization step per group of 4 columns, the step being the largest Σ|x| over 4 columns of the
// scale set (the 128-column halves 4u + c and 4u + 2 + c) divided by 131071; plus float rounding of
// the group sums and of the accumulation.
double tableBound(const RowMatrixF& x)
{
    const std::int64_t cols = x.cols();
    const std::int64_t halves = (cols + 127) / 128;
    std::vector<double> halfMax(static_cast<std::size_t>(halves + 3), 0.0);
    double absSum = 0.0;
    for (std::int64_t g0 = 0; g0 < cols; g0 += 4) {
        double a = 0.0;
        for (std::int64_t j = g0; j < std::min(g0 + 4, cols); ++j) a += std::abs(static_cast<double>(x(0, j)));
        double& m = halfMax[static_cast<std::size_t>(g0 / 128)];
        m = std::max(m, a);
        absSum += a;
    }
    double bound = 0.0;
    for (std::int64_t h = 0; h < halves; h += 4)
        for (std::int64_t c = 0; c < 2; ++c) {
            const double setMax = std::max(halfMax[static_cast<std::size_t>(h + c)], halfMax[static_cast<std::size_t>(h + 2 + c)]);
            bound += 64 * 0.5 * setMax / 131071.0 * (1 + 1e-6);
        }
    return bound + (5 + static_cast<double>(halves)) * kFloatEps * absSum + 1e-30;
}

class BinaryTablesTest : public ::testing::TestWithParam<KernelPath> {
protected:
    void SetUp() override { MDBF_REQUIRE_KERNEL_PATH(GetParam()); }
};

TEST_P(BinaryTablesTest, EqualsTheScalarTwinBitForBit)
{
    for (const Shape& shape : kTableShapes) {
        const PackedSigns S = randomSigns(shape.first, shape.second, static_cast<std::uint32_t>(shape.first * 31 + shape.second));
        for (const RowMatrixF& x : {randomMatrix(1, shape.second, 7), heavyTailed(shape.second, 8)}) {
            const std::vector<float> twin = tables(S, x, 1, KernelPath::Scalar);
            EXPECT_EQ(tables(S, x, 1, GetParam()), twin) << shape.first << "x" << shape.second;
            EXPECT_EQ(tables(S, x, 3, GetParam()), twin) << shape.first << "x" << shape.second << ", 3 threads";
        }
    }
}

TEST_P(BinaryTablesTest, StaysWithinTheQuantizationBoundOfTheExactProduct)
{
    double worstRms = 0.0;
    for (const Shape& shape : kTableShapes) {
        const PackedSigns S = randomSigns(shape.first, shape.second, static_cast<std::uint32_t>(shape.second * 17 + 3));
        for (const RowMatrixF& x : {randomMatrix(1, shape.second, 9), heavyTailed(shape.second, 10)}) {
            const std::vector<float> y = tables(S, x, 2, GetParam());
            const RowMatrixD ref = denseProduct(S, x);
            const double bound = tableBound(x);
            double errSq = 0.0, refSq = 0.0;
            for (std::int64_t i = 0; i < S.rows(); ++i) {
                const double err = std::abs(static_cast<double>(y[static_cast<std::size_t>(i)]) - ref(0, i));
                ASSERT_LE(err, bound) << shape.first << "x" << shape.second << ", row " << i;
                errSq += err * err;
                refSq += ref(0, i) * ref(0, i);
            }
            if (shape.second >= 1000) worstRms = std::max(worstRms, std::sqrt(errSq / refSq));
        }
    }
    // Typical errors are far below the worst case: measured 2.2e-5 relative (root mean square over
    // rows) at most for activations like these; 4e-5 is the stated tolerance.
    EXPECT_LT(worstRms, 4e-5);
}

TEST_P(BinaryTablesTest, ModifiedSignsAreSeenByTheNextCall)
{
    // The SIMD paths keep the bits in their own order, built on the first call: a later change of
    // the words, or of a copy's words, must not reuse it.
    PackedSigns S = randomSigns(40, 700, 21);
    const RowMatrixF x = randomMatrix(1, 700, 22);
    const std::vector<float> before = tables(S, x, 1, GetParam());
    PackedSigns copy = S;
    copy.setNegative(3, 5);
    copy.words()[static_cast<std::size_t>(17 * copy.wordsPerRow() + 2)] ^= 0xF0F0;
    EXPECT_EQ(tables(copy, x, 1, GetParam()), tables(copy, x, 1, KernelPath::Scalar));
    EXPECT_EQ(tables(S, x, 1, GetParam()), before);
    S.words()[0] ^= 1;
    EXPECT_EQ(tables(S, x, 2, GetParam()), tables(S, x, 1, KernelPath::Scalar));
    EXPECT_NE(tables(S, x, 2, GetParam()), before);
}

TEST_P(BinaryTablesTest, PaddingBitsAreIgnored)
{
    for (const Shape& shape : {Shape{7, 13}, Shape{65, 129}, Shape{17, 257}, Shape{3, 1}}) {
        const PackedSigns S = randomSigns(shape.first, shape.second, 5);
        PackedSigns dirty = S;
        const std::uint64_t padding = ~std::uint64_t{0} << (shape.second % PackedSigns::kWordBits);
        for (std::int64_t i = 0; i < dirty.rows(); ++i)
            dirty.words()[static_cast<std::size_t>((i + 1) * dirty.wordsPerRow() - 1)] |= padding;
        ASSERT_NE(dirty, S);
        const RowMatrixF x = heavyTailed(shape.second, 6);
        EXPECT_EQ(tables(dirty, x, 2, GetParam()), tables(S, x, 2, GetParam())) << shape.first << "x" << shape.second;
    }
}

TEST_P(BinaryTablesTest, ZeroAndNonFiniteActivations)
{
    const PackedSigns S = randomSigns(40, 600, 12);
    EXPECT_EQ(tables(S, RowMatrixF::Zero(1, 600), 1, GetParam()), std::vector<float>(40, 0.0f));

    RowMatrixF x = randomMatrix(1, 600, 13);
    x(0, 300) = std::numeric_limits<float>::infinity();
    for (float v : tables(S, x, 1, GetParam())) EXPECT_TRUE(std::isnan(v));
    x(0, 300) = std::numeric_limits<float>::quiet_NaN();
    for (float v : tables(S, x, 1, GetParam())) EXPECT_TRUE(std::isnan(v));
    // Finite activations whose sums overflow: the same signs give an infinite entry.
    x(0, 300) = 3e38f;
    x(0, 301) = 3e38f;
    for (float v : tables(S, x, 1, GetParam())) EXPECT_TRUE(std::isnan(v));
    // Large ones whose sums stay finite under every sign are kept.
    x(0, 300) = 1.5e38f;
    x(0, 301) = -1.5e38f;
    EXPECT_EQ(tables(S, x, 1, GetParam()), tables(S, x, 1, KernelPath::Scalar));
    for (float v : tables(S, x, 1, GetParam())) EXPECT_TRUE(std::isfinite(v));
}

TEST_P(BinaryTablesTest, StridedTokensAndShapeErrors)
{
    const std::int64_t rows = 37, cols = 300, T = 3, ldx = 310, ldy = 41;
    StridedCase c = stridedCase(rows, cols, T, ldx, ldy);
    binaryGemmTables(c.S, c.Xs.data(), T, ldx, c.Ys.data(), ldy, 2, GetParam());
    for (std::int64_t t = 0; t < T; ++t) {
        const RowMatrixF x = c.Xs.row(t).leftCols(cols);
        const std::vector<float> y = tables(c.S, x, 1, GetParam());
        for (std::int64_t i = 0; i < rows; ++i) EXPECT_EQ(c.Ys(t, i), y[static_cast<std::size_t>(i)]);
        EXPECT_TRUE((c.Ys.row(t).rightCols(ldy - rows).array() == StridedCase::kGuard).all())
            << "wrote past the rows of Y";
    }
    std::vector<float> x9(9), y4(4);
    EXPECT_THROW(binaryGemvTables(randomSigns(5, 9, 2), x9, y4, 1, GetParam()), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Paths, BinaryTablesTest,
                         ::testing::Values(KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512), pathParamName);

}  // namespace
}  // namespace mdbf::kernels::test
