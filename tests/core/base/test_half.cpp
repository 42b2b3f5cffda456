#include <cmath>
#include <cstring>
#include <random>

#include <gtest/gtest.h>
#include <cpuid.h>
#include <immintrin.h>

#include "mdbf/base/half.h"

namespace mdbf {
namespace {

// The F16C instructions are an independent reference for IEEE binary16 conversion.
__attribute__((target("f16c"))) float hardwareHalfToFloat(std::uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) std::uint16_t hardwareFloatToHalf(float f)
{
    return static_cast<std::uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}

// CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c").
bool haveF16c()
{
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

TEST(Half, DecodesEveryBitPatternLikeF16c)
{
    if (!haveF16c()) GTEST_SKIP() << "CPU lacks F16C";
    for (std::uint32_t h = 0; h <= 0xffff; ++h) {
        const float ours = halfToFloat(static_cast<std::uint16_t>(h));
        const float ref = hardwareHalfToFloat(static_cast<std::uint16_t>(h));
        if (std::isnan(ref)) {
            EXPECT_TRUE(std::isnan(ours)) << std::hex << h;
        } else {
            EXPECT_EQ(std::memcmp(&ours, &ref, sizeof ours), 0) << std::hex << h << ": " << ours << " vs " << ref;
        }
    }
}

TEST(Half, EncodesLikeF16cWithRoundToNearestEven)
{
    if (!haveF16c()) GTEST_SKIP() << "CPU lacks F16C";
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::uint32_t> bits;
    int checked = 0;
    for (int i = 0; i < 2000000; ++i) {
        std::uint32_t x = bits(rng);
        // Concentrate on the binary16 range (exponents around 2^-26 .. 2^17), including subnormals.
        x = (x & 0x807fffffu) | (((x >> 23) % 44 + 101) << 23);
        float f;
        std::memcpy(&f, &x, sizeof f);
        ASSERT_EQ(floatToHalf(f), hardwareFloatToHalf(f)) << f;
        ++checked;
    }
    for (float f : {0.0f, -0.0f, 65504.0f, 65520.0f, 1e9f, -1e9f, 5.96e-8f, 2.98e-8f, 2.99e-8f,
                    std::numeric_limits<float>::infinity()}) {
        EXPECT_EQ(floatToHalf(f), hardwareFloatToHalf(f)) << f;
    }
    EXPECT_GT(checked, 0);
}

TEST(BFloat16, RoundTripsAndRoundsToNearestEven)
{
    EXPECT_EQ(bf16ToFloat(0x3f80), 1.0f);
    EXPECT_EQ(bf16ToFloat(0xc040), -3.0f);
    EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
    // 1 + 2^-8 lies exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1).
    EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
    // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): ties to even.
    EXPECT_EQ(floatToBf16(1.0f + 3.0f * std::ldexp(1.0f, -8)), 0x3f82);
    EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::nanf("")))));
    for (std::uint32_t b = 0; b <= 0xffff; ++b) {
        const float f = bf16ToFloat(static_cast<std::uint16_t>(b));
        if (!std::isnan(f)) {
            ASSERT_EQ(floatToBf16(f), b);
        }
    }
}

TEST(Half, RoundToHalfIsIdempotent)
{
    for (float f : {0.1f, 3.14159f, -2.5e-6f, 1000.3f}) {
        const float r = roundToHalf(f);
        EXPECT_EQ(roundToHalf(r), r);
        EXPECT_NEAR(r, f, std::abs(f) * 1e-3 + 6e-8);
    }
}

}  // namespace
}  // namespace mdbf
