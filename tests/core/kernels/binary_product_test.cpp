// Binary GEMV/GEMM against the dense product of the unpacked signs (double precision), for odd
// shapes, every code path, padding bits and thread counts.

#include <array>
#include <limits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/kernels/binary_product.h"

namespace mdbf::kernels::test {
namespace {

using Shape = std::pair<std::int64_t, std::int64_t>;  // rows × cols of S

// {33, 2100}: 33 words per row, four full 512-column blocks of the AVX-512 transpose and one
// partial, with two full 16-row blocks and one single row.
const std::vector<Shape> kShapes = {{1, 1},   {7, 13},    {8, 8},     {1, 200}, {200, 1},  {64, 64},
                                    {65, 129}, {130, 1000}, {333, 517}, {5, 257}, {33, 2100}};
const std::vector<std::int64_t> kTokenCounts = {1, 2, 3, 4, 7, 8, 10, 17};

class BinaryProductTest : public ::testing::TestWithParam<KernelPath> {
protected:
    void SetUp() override { MDBF_REQUIRE_KERNEL_PATH(GetParam()); }
};

std::uint32_t seedOf(const Shape& s, std::int64_t extra = 0)
{
    return static_cast<std::uint32_t>(s.first * 7919 + s.second * 104729 + extra);
}

TEST_P(BinaryProductTest, GemvMatchesDenseReference)
{
    for (const Shape& shape : kShapes) {
        const PackedSigns S = randomSigns(shape.first, shape.second, seedOf(shape));
        const RowMatrixF x = randomMatrix(1, shape.second, seedOf(shape, 1));
        RowMatrixF y(1, shape.first);
        binaryGemv(S, std::span<const float>(x.data(), x.size()), std::span<float>(y.data(), y.size()), 1,
                   GetParam());
        EXPECT_TRUE(withinBound(y, denseProduct(S, x), summationBound(x), 1.0))
            << shape.first << "x" << shape.second;
    }
}

TEST_P(BinaryProductTest, GemmMatchesDenseReference)
{
    for (const Shape& shape : kShapes) {
        const PackedSigns S = randomSigns(shape.first, shape.second, seedOf(shape));
        for (std::int64_t T : kTokenCounts) {
            const RowMatrixF X = randomMatrix(T, shape.second, seedOf(shape, T));
            RowMatrixF Y;
            binaryGemm(S, X, Y, 1, GetParam());
            ASSERT_EQ(Y.rows(), T);
            ASSERT_EQ(Y.cols(), shape.first);
            EXPECT_TRUE(withinBound(Y, denseProduct(S, X), summationBound(X), 1.0))
                << shape.first << "x" << shape.second << ", T = " << T;
        }
    }
}

// Integer activations make every partial sum exact, so any misplaced bit, column or token shows
// up as an exact mismatch rather than hiding inside a rounding tolerance.
TEST_P(BinaryProductTest, IntegerActivationsGiveExactResults)
{
    for (const Shape& shape : kShapes) {
        const PackedSigns S = randomSigns(shape.first, shape.second, seedOf(shape, 5));
        for (std::int64_t T : kTokenCounts) {
            const RowMatrixF X = randomIntegerMatrix(T, shape.second, seedOf(shape, 50 + T));
            RowMatrixF Y;
            binaryGemm(S, X, Y, 2, GetParam());
            const RowMatrixD R = denseProduct(S, X);
            EXPECT_TRUE(withinBound(Y, R, Eigen::VectorXd::Zero(T), 0.0))
                << shape.first << "x" << shape.second << ", T = " << T;
        }
    }
}

TEST_P(BinaryProductTest, GemmRowsMatchGemvOfEachToken)
{
    const Shape shape{130, 1000};
    const PackedSigns S = randomSigns(shape.first, shape.second, 11);
    const RowMatrixF X = randomMatrix(17, shape.second, 12);
    RowMatrixF Y;
    binaryGemm(S, X, Y, 1, GetParam());
    const Eigen::VectorXd bound = summationBound(X);
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        const RowMatrixF x = X.row(t);
        RowMatrixF y(1, shape.first);
        binaryGemv(S, std::span<const float>(x.data(), x.size()), std::span<float>(y.data(), y.size()), 1,
                   GetParam());
        // Both are within the bound of the exact value, hence within twice it of each other.
        EXPECT_TRUE(withinBound(y, Y.row(t).cast<double>(), bound.segment(t, 1), 2.0)) << "token " << t;
    }
}

TEST_P(BinaryProductTest, PaddingBitsAreIgnored)
{
    for (const Shape& shape : {Shape{7, 13}, Shape{65, 129}, Shape{333, 517}, Shape{3, 1}}) {
        const PackedSigns S = randomSigns(shape.first, shape.second, seedOf(shape, 3));
        PackedSigns dirty = S;
        const std::int64_t used = shape.second % PackedSigns::kWordBits;
        ASSERT_NE(used, 0) << "shape chosen to have padding";
        const std::uint64_t padding = ~std::uint64_t{0} << used;
        for (std::int64_t i = 0; i < dirty.rows(); ++i)
            dirty.words()[static_cast<std::size_t>((i + 1) * dirty.wordsPerRow() - 1)] |= padding;
        ASSERT_NE(dirty, S);
        for (std::int64_t T : {1, 2, 5, 8, 17}) {
            const RowMatrixF X = randomMatrix(T, shape.second, seedOf(shape, 30 + T));
            RowMatrixF clean, withPadding;
            binaryGemm(S, X, clean, 2, GetParam());
            binaryGemm(dirty, X, withPadding, 2, GetParam());
            EXPECT_EQ(clean, withPadding) << shape.first << "x" << shape.second << ", T = " << T;
        }
    }
}

TEST_P(BinaryProductTest, ThreadCountDoesNotChangeResults)
{
    for (const Shape& shape : {Shape{333, 517}, Shape{5, 257}, Shape{130, 1000}}) {
        const PackedSigns S = randomSigns(shape.first, shape.second, seedOf(shape, 4));
        for (std::int64_t T : {1, 2, 5, 8, 17}) {
            const RowMatrixF X = randomMatrix(T, shape.second, seedOf(shape, 40 + T));
            RowMatrixF one, two, three;
            binaryGemm(S, X, one, 1, GetParam());
            binaryGemm(S, X, two, 2, GetParam());
            binaryGemm(S, X, three, 3, GetParam());
            EXPECT_EQ(one, two) << shape.first << "x" << shape.second << ", T = " << T;
            EXPECT_EQ(one, three) << shape.first << "x" << shape.second << ", T = " << T;
        }
    }
}

TEST_P(BinaryProductTest, StridedBuffersAreRespected)
{
    const std::int64_t rows = 37, cols = 75, T = 11, ldx = 80, ldy = 41;
    StridedCase c = stridedCase(rows, cols, T, ldx, ldy);
    binaryGemm(c.S, c.Xs.data(), T, ldx, c.Ys.data(), ldy, 2, GetParam());
    const RowMatrixF X = c.Xs.leftCols(cols);
    EXPECT_TRUE(withinBound(c.Ys.leftCols(rows), denseProduct(c.S, X), summationBound(X), 1.0));
    EXPECT_TRUE((c.Ys.rightCols(ldy - rows).array() == StridedCase::kGuard).all()) << "wrote past the rows of Y";
}

TEST_P(BinaryProductTest, DegenerateShapes)
{
    RowMatrixF Y;
    binaryGemm(PackedSigns(4, 0), RowMatrixF(3, 0), Y, 1, GetParam());
    EXPECT_EQ(Y.rows(), 3);
    EXPECT_EQ(Y.cols(), 4);
    EXPECT_TRUE((Y.array() == 0.0f).all());

    binaryGemm(randomSigns(6, 9, 1), RowMatrixF(0, 9), Y, 1, GetParam());
    EXPECT_EQ(Y.rows(), 0);
    EXPECT_EQ(Y.cols(), 6);
}

TEST_P(BinaryProductTest, ShapeMismatchThrows)
{
    const PackedSigns S = randomSigns(5, 9, 2);
    RowMatrixF Y;
    EXPECT_THROW(binaryGemm(S, RowMatrixF::Zero(2, 8), Y, 1, GetParam()), InvalidArgument);
    std::vector<float> x(9), y(4);
    EXPECT_THROW(binaryGemv(S, x, y, 1, GetParam()), InvalidArgument);
    std::vector<float> y5(5), x8(8);
    EXPECT_THROW(binaryGemv(S, x8, y5, 1, GetParam()), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Paths, BinaryProductTest,
                         ::testing::Values(KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512), pathParamName);

// The SIMD paths against their scalar twin: both are within the summation bound of the exact
// value, hence within twice it of each other.
class SimdTwinTest : public ::testing::TestWithParam<KernelPath> {
protected:
    void SetUp() override { MDBF_REQUIRE_KERNEL_PATH(GetParam()); }
};

TEST_P(SimdTwinTest, AgreesWithScalarWithinRoundingBound)
{
    for (const Shape& shape : kShapes) {
        const PackedSigns S = randomSigns(shape.first, shape.second, seedOf(shape, 9));
        for (std::int64_t T : kTokenCounts) {
            const RowMatrixF X = randomMatrix(T, shape.second, seedOf(shape, 90 + T));
            RowMatrixF scalar, simd;
            binaryGemm(S, X, scalar, 1, KernelPath::Scalar);
            binaryGemm(S, X, simd, 1, GetParam());
            EXPECT_TRUE(withinBound(simd, scalar.cast<double>(), summationBound(X), 2.0))
                << shape.first << "x" << shape.second << ", T = " << T;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Paths, SimdTwinTest, ::testing::Values(KernelPath::Avx2, KernelPath::Avx512), pathParamName);

TEST(BinaryProductPaths, AutoFollowsTheProcessSetting)
{
    const KernelPath best = resolveKernelPath(KernelPath::Auto);
    setAutoKernelPath(KernelPath::Scalar);
    EXPECT_EQ(resolveKernelPath(KernelPath::Auto), KernelPath::Scalar);
    if (avx2Available()) {
        EXPECT_EQ(resolveKernelPath(KernelPath::Avx2), KernelPath::Avx2) << "an explicit path is not overridden";
    }
    setAutoKernelPath(KernelPath::Auto);
    EXPECT_EQ(resolveKernelPath(KernelPath::Auto), best);
    if (!avx512Available()) {
        EXPECT_THROW(setAutoKernelPath(KernelPath::Avx512), InvalidArgument);
    }
    EXPECT_EQ(resolveKernelPath(KernelPath::Auto), best);
    EXPECT_EQ(parseKernelPath("avx2"), KernelPath::Avx2);
    EXPECT_EQ(parseKernelPath("auto"), KernelPath::Auto);
    EXPECT_THROW(parseKernelPath("sse4"), InvalidArgument);
}

TEST(BinaryProductPaths, AutoResolvesToAvailablePath)
{
    const KernelPath best = avx512Available() ? KernelPath::Avx512
                            : avx2Available() ? KernelPath::Avx2
                                              : KernelPath::Scalar;
    EXPECT_EQ(resolveKernelPath(KernelPath::Auto), best);
    EXPECT_EQ(resolveKernelPath(KernelPath::Scalar), KernelPath::Scalar);
    if (avx2Available())
        EXPECT_EQ(resolveKernelPath(KernelPath::Avx2), KernelPath::Avx2);
    else
        EXPECT_THROW(resolveKernelPath(KernelPath::Avx2), InvalidArgument);
    if (avx512Available())
        EXPECT_EQ(resolveKernelPath(KernelPath::Avx512), KernelPath::Avx512);
    else
        EXPECT_THROW(resolveKernelPath(KernelPath::Avx512), InvalidArgument);
    EXPECT_STREQ(kernelPathName(KernelPath::Avx2), "avx2");
    EXPECT_STREQ(kernelPathName(KernelPath::Avx512), "avx512");
    EXPECT_STREQ(kernelPathName(KernelPath::Scalar), "scalar");
}

}  // namespace
}  // namespace mdbf::kernels::test

namespace mdbf::kernels::test {
namespace {

TEST(PackedSignsPacking, EveryStorageOrderPacksTheSignOfEachEntry)
{
    // 70 columns: one full word and a partial one per row; zeros and NaN pack as +1.
    MatrixF columns = MatrixF::Random(37, 70);
    columns(3, 5) = 0.0f;
    columns(4, 69) = -0.0f;
    columns(36, 64) = std::numeric_limits<float>::quiet_NaN();
    const RowMatrixF rows = columns;
    for (const PackedSigns& p : {PackedSigns::fromSigns(columns), PackedSigns::fromSigns(rows)}) {
        ASSERT_EQ(p.rows(), 37);
        ASSERT_EQ(p.cols(), 70);
        for (Eigen::Index i = 0; i < 37; ++i)
            for (Eigen::Index j = 0; j < 70; ++j) ASSERT_EQ(p.isNegative(i, j), columns(i, j) < 0.0f) << i << "," << j;
        for (Eigen::Index i = 0; i < 37; ++i) EXPECT_EQ(p.row(i)[1] >> 6, 0u);  // padding bits stay clear
    }
    const PackedSigns t = PackedSigns::fromSigns(columns.transpose());
    for (Eigen::Index i = 0; i < 70; ++i)
        for (Eigen::Index j = 0; j < 37; ++j) ASSERT_EQ(t.isNegative(i, j), columns(j, i) < 0.0f);
}

}  // namespace
}  // namespace mdbf::kernels::test
