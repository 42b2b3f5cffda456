// 16-bit dense GEMV and conversion on every code path: against a double-precision reference built
// from the scalar decoders of mdbf/base/half.h, against the scalar twin, for odd shapes (row tails
// of every length below the vector step, row counts off the 4-row blocks) and thread counts.

#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/kernels/half_product.h"

namespace mdbf::kernels::test {
namespace {

using Shape = std::pair<std::int64_t, std::int64_t>;  // rows × cols of W

// Column counts cover every tail length of the 16-column (AVX2) and 32-column (AVX-512) steps.
const std::vector<Shape> kHalfShapes = {{1, 1},  {3, 7},   {5, 15},  {4, 16},   {9, 17},   {13, 33},
                                    {7, 31}, {6, 47},  {64, 64}, {37, 301}, {130, 1000}};

struct Case {
    KernelPath path;
    HalfFormat format;
};

std::string caseName(const ::testing::TestParamInfo<Case>& info)
{
    return pathParamName({info.param.path, info.index}) + (info.param.format == HalfFormat::BF16 ? "Bf16" : "F16");
}

float decode(HalfFormat format, std::uint16_t bits)
{
    return format == HalfFormat::BF16 ? bf16ToFloat(bits) : halfToFloat(bits);
}

// Weights with values in [-2, 2] rounded to the format, as patterns.
std::vector<std::uint16_t> randomWeights(HalfFormat format, std::int64_t count, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<std::uint16_t> w(static_cast<std::size_t>(count));
    for (auto& b : w) b = format == HalfFormat::BF16 ? floatToBf16(u(rng)) : floatToHalf(u(rng));
    return w;
}

// Σ_j W(i, j) x_j in double, and the float32 bound (cols + 1)·u·Σ_j |W(i, j) x_j| covering one
// rounding per product and cols − 1 additions in any order.
struct Reference {
    std::vector<double> y;
    std::vector<double> bound;
};

Reference reference(HalfFormat format, const std::vector<std::uint16_t>& W, std::int64_t rows, std::int64_t cols,
                    const std::vector<float>& x)
{
    Reference r;
    for (std::int64_t i = 0; i < rows; ++i) {
        double sum = 0, mag = 0;
        for (std::int64_t j = 0; j < cols; ++j) {
            const double p = static_cast<double>(decode(format, W[static_cast<std::size_t>(i * cols + j)])) * x[j];
            sum += p;
            mag += std::abs(p);
        }
        r.y.push_back(sum);
        r.bound.push_back(static_cast<double>(cols + 1) * kFloatEps * 1.0001 * mag + 1e-30);
    }
    return r;
}

std::vector<float> randomVector(std::int64_t n, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& e : v) e = u(rng);
    return v;
}

class HalfProductTest : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override { MDBF_REQUIRE_KERNEL_PATH(GetParam().path); }
};

TEST_P(HalfProductTest, GemvMatchesDoubleReference)
{
    const auto [path, format] = GetParam();
    for (const auto& [rows, cols] : kHalfShapes) {
        const auto W = randomWeights(format, rows * cols, static_cast<std::uint32_t>(rows * 131 + cols));
        const auto x = randomVector(cols, static_cast<std::uint32_t>(cols));
        std::vector<float> y(static_cast<std::size_t>(rows));
        halfGemv(format, W, rows, cols, x, y, 1, path);
        const Reference ref = reference(format, W, rows, cols, x);
        for (std::int64_t i = 0; i < rows; ++i)
            ASSERT_LE(std::abs(y[i] - ref.y[i]), ref.bound[i]) << rows << "x" << cols << " row " << i;
    }
}

TEST_P(HalfProductTest, GemvAgreesWithScalarTwinAndIgnoresThreadCount)
{
    const auto [path, format] = GetParam();
    for (const auto& [rows, cols] : kHalfShapes) {
        const auto W = randomWeights(format, rows * cols, static_cast<std::uint32_t>(rows * 7 + cols * 3));
        const auto x = randomVector(cols, static_cast<std::uint32_t>(rows + 5));
        std::vector<float> scalar(static_cast<std::size_t>(rows)), one(scalar.size()), three(scalar.size());
        halfGemv(format, W, rows, cols, x, scalar, 1, KernelPath::Scalar);
        halfGemv(format, W, rows, cols, x, one, 1, path);
        halfGemv(format, W, rows, cols, x, three, 3, path);
        const Reference ref = reference(format, W, rows, cols, x);
        for (std::int64_t i = 0; i < rows; ++i) {
            // Both are within the bound of the exact value, hence within twice it of each other.
            ASSERT_LE(std::abs(one[i] - scalar[i]), 2.0 * ref.bound[i]) << rows << "x" << cols << " row " << i;
            ASSERT_EQ(one[i], three[i]) << rows << "x" << cols << " row " << i;
        }
    }
}

TEST_P(HalfProductTest, ConvertsEveryPatternExactly)
{
    const auto [path, format] = GetParam();
    std::vector<std::uint16_t> all(65536);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
    // An odd length from an odd offset: the vector tail and unaligned loads.
    const std::span<const std::uint16_t> src(all.data() + 1, all.size() - 4);
    std::vector<float> out(src.size());
    convertHalf(format, src, out, path);
    for (std::size_t i = 0; i < src.size(); ++i) {
        const float ref = decode(format, src[i]);
        if (std::isnan(ref))
            ASSERT_TRUE(std::isnan(out[i])) << src[i];
        else
            ASSERT_EQ(std::memcmp(&out[i], &ref, sizeof ref), 0) << src[i] << ": " << out[i] << " vs " << ref;
    }
}

TEST_P(HalfProductTest, RejectsMismatchedSizes)
{
    const auto [path, format] = GetParam();
    std::vector<std::uint16_t> W(6);
    std::vector<float> x3(3), x2(2), y2(2), y3(3);
    EXPECT_THROW(halfGemv(format, W, 2, 2, x2, y2, 1, path), InvalidArgument);  // 6 weights for 2×2
    EXPECT_THROW(halfGemv(format, W, 2, 3, x2, y2, 1, path), InvalidArgument);
    EXPECT_THROW(halfGemv(format, W, 2, 3, x3, y3, 1, path), InvalidArgument);
    EXPECT_NO_THROW(halfGemv(format, W, 2, 3, x3, y2, 1, path));
    EXPECT_THROW(convertHalf(format, W, y3, path), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Paths, HalfProductTest,
                         ::testing::Values(Case{KernelPath::Scalar, HalfFormat::F16},
                                           Case{KernelPath::Scalar, HalfFormat::BF16},
                                           Case{KernelPath::Avx2, HalfFormat::F16},
                                           Case{KernelPath::Avx2, HalfFormat::BF16},
                                           Case{KernelPath::Avx512, HalfFormat::F16},
                                           Case{KernelPath::Avx512, HalfFormat::BF16}),
                         caseName);

}  // namespace
}  // namespace mdbf::kernels::test
