// Bit accounting (docs/ALGORITHM.md §3): hand-computed cases, checked again against an independent
// search that walks k upward with the storage cost written out term by term.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <limits>

#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"

namespace mdbf::factor {
namespace {

// Storage of P paths in bits, spelled out per component (long double holds these integers exactly:
// they stay far below 2^64).
long double referenceBits(long double n, long double m, long double k, int l, int paths, bool dbf)
{
    const long double signBits = k * n + k * m;
    const long double envelopeBits = dbf ? 16.0L * n + 16.0L * k + 16.0L * m  // a, c, b
                                         : 16.0L * l * n + 16.0L * l * k + 16.0L * l * k + 16.0L * l * m;  // A, Qa, Qb, B
    return paths * (signBits + envelopeBits);
}

// Largest k with referenceBits(k) ≤ bpw·n·m, bpw = num/den, found by walking k up from 0.
long long largestFittingK(long long n, long long m, long long num, long long den, int l, int paths, bool dbf)
{
    const long double budget = static_cast<long double>(num) * n * m;  // budget in bits × den
    EXPECT_LT(budget, 1.0e18L) << "reference arithmetic would not be exact";
    if (referenceBits(n, m, 0, l, paths, dbf) * den > budget) return -1;
    long long k = 0;
    while (referenceBits(n, m, k + 1, l, paths, dbf) * den <= budget) ++k;
    return k;
}

TEST(BitBudget, Square4096AtOneBit)
{
    // mdbf, l = 1: (16777216 − 16·8192) / (8192 + 32) = 16646144 / 8224 = 2024.09…
    BitBudget b = computeBitBudget(4096, 4096, Bpw::parse("1.0"), Method::Mdbf, 1, 1);
    EXPECT_EQ(b.k, 2024);
    EXPECT_FALSE(b.clamped);
    EXPECT_EQ(b.bits, 16776448);  // 2024·8192 + 16·(8192 + 2·2024)
    EXPECT_DOUBLE_EQ(b.bpw, 16776448.0 / 16777216.0);
    EXPECT_EQ(b.k, largestFittingK(4096, 4096, 1, 1, 1, 1, false));

    // mdbf, l = 4: (16777216 − 64·8192) / (8192 + 128) = 16252928 / 8320 = 1953.48…
    b = computeBitBudget(4096, 4096, Bpw::parse("1"), Method::Mdbf, 4, 1);
    EXPECT_EQ(b.k, 1953);
    EXPECT_EQ(b.bits, 16773248);  // 1953·8192 + 64·(8192 + 2·1953)
    EXPECT_EQ(b.k, largestFittingK(4096, 4096, 1, 1, 4, 1, false));

    // dbf (merged a, c, b): (16777216 − 16·8192) / (8192 + 16) = 16646144 / 8208 = 2028.03…
    b = computeBitBudget(4096, 4096, Bpw::parse("1.0"), Method::Dbf, 1, 1);
    EXPECT_EQ(b.k, 2028);
    EXPECT_EQ(b.bits, 16776896);  // 2028·8192 + 16·(8192 + 2028)
    EXPECT_EQ(b.k, largestFittingK(4096, 4096, 1, 1, 1, 1, true));

    // dbf has no l = 4 form.
    EXPECT_THROW(computeBitBudget(4096, 4096, Bpw::parse("1"), Method::Dbf, 4, 1), InvalidArgument);
}

TEST(BitBudget, ClampedLayer)
{
    // 11008×4096 at 1.5: (67633152 − 241664) / 15136 = 4452.4… → clamped to 4096.
    const BitBudget b = computeBitBudget(11008, 4096, Bpw::parse("1.5"), Method::Mdbf, 1, 1);
    EXPECT_EQ(b.unclampedK, 4452);
    EXPECT_EQ(b.unclampedK, largestFittingK(11008, 4096, 3, 2, 1, 1, false));
    EXPECT_EQ(b.k, 4096);
    EXPECT_TRUE(b.clamped);
    EXPECT_EQ(b.bits, 62238720);  // 4096·15104 + 16·(15104 + 8192)
    EXPECT_NEAR(b.bpw, 1.380, 5e-4);
}

TEST(BitBudget, ExactQuotient)
{
    // 352×128 at 1.5, l = 1: (67584 − 7680) / 512 = 117 exactly, which uses the whole budget.
    const BitBudget b = computeBitBudget(352, 128, Bpw::parse("1.5"), Method::Mdbf, 1, 1);
    EXPECT_EQ(b.k, 117);
    EXPECT_EQ(b.k, largestFittingK(352, 128, 3, 2, 1, 1, false));
    EXPECT_EQ(b.bits, 67584);
    EXPECT_DOUBLE_EQ(b.bpw, 1.5);
}

TEST(BitBudget, SmallLlamaReferenceKs)
{
    struct Case {
        long long n, m, num, den;
        long long ks[3];
    };
    const Case cases[] = {{384, 384, 1, 1, {168, 147, 109}}, {128, 384, 3, 2, {120, 99, 64}}, {384, 1024, 1, 1, {257, 236, 197}}};
    const int ls[3] = {1, 2, 4};
    for (const auto& c : cases) {
        for (int i = 0; i < 3; ++i) {
            const Bpw bpw = c.den == 1 ? Bpw::parse("1") : Bpw::parse("1.5");
            const BitBudget b = computeBitBudget(c.n, c.m, bpw, Method::Mdbf, ls[i], 1);
            EXPECT_EQ(b.k, c.ks[i]) << c.n << "x" << c.m << " l=" << ls[i];
            EXPECT_EQ(b.k, largestFittingK(c.n, c.m, c.num, c.den, ls[i], 1, false));
        }
    }
}

TEST(BitBudget, PathsAndOddShapesMatchTheSearch)
{
    const long long shapes[][2] = {{37, 101}, {101, 37}, {1000, 3}, {513, 777}};
    for (const auto& s : shapes) {
        for (int paths : {1, 2, 3}) {
            for (int l : {1, 2}) {
                const BudgetCheck c = checkBitBudget(s[0], s[1], Bpw::parse("7.25"), Method::Mdbf, l, paths);
                const long long ref = largestFittingK(s[0], s[1], 29, 4, l, paths, false);
                if (ref < l) {
                    EXPECT_FALSE(c.budget.has_value());
                } else {
                    ASSERT_TRUE(c.budget.has_value()) << c.message;
                    EXPECT_EQ(c.budget->unclampedK, ref);
                    EXPECT_EQ(c.budget->k, std::min<long long>(ref, std::min(s[0], s[1])));
                    EXPECT_EQ(c.budget->bits, static_cast<std::int64_t>(referenceBits(s[0], s[1], c.budget->k, l, paths, false)));
                }
            }
        }
    }
}

TEST(BitBudget, TooSmallBudgetIsRefusedWithAMessage)
{
    const BudgetCheck c = checkBitBudget(64, 64, Bpw::parse("0.5"), Method::Mdbf, 4, 1);
    EXPECT_FALSE(c.budget.has_value());
    EXPECT_NE(c.message.find("too small"), std::string::npos) << c.message;
    EXPECT_NE(c.message.find("64x64"), std::string::npos) << c.message;
    EXPECT_THROW(computeBitBudget(64, 64, Bpw::parse("0.5"), Method::Mdbf, 4, 1), InvalidArgument);
    // l beyond min(n, m) can never fit.
    EXPECT_FALSE(checkBitBudget(3, 100, Bpw::parse("1000"), Method::Mdbf, 4, 1).budget.has_value());
    // A 1×1 layer needs k = 1: 1·2 + 16·(2 + 2) = 66 bits.
    EXPECT_FALSE(checkBitBudget(1, 1, Bpw::parse("65.9"), Method::Mdbf, 1, 1).budget.has_value());
    const BudgetCheck one = checkBitBudget(1, 1, Bpw::parse("66"), Method::Mdbf, 1, 1);
    ASSERT_TRUE(one.budget.has_value());
    EXPECT_EQ(one.budget->k, 1);
}

TEST(BitBudget, ExplicitK)
{
    const BitBudget b = bitBudgetForK(352, 128, 117, Method::Mdbf, 1, 1);
    EXPECT_EQ(b.k, 117);
    EXPECT_DOUBLE_EQ(b.bpw, 1.5);
    EXPECT_FALSE(b.requested.has_value());
    EXPECT_THROW(bitBudgetForK(352, 128, 129, Method::Mdbf, 1, 1), InvalidArgument);
    EXPECT_THROW(bitBudgetForK(352, 128, 3, Method::Mdbf, 4, 1), InvalidArgument);
    EXPECT_DOUBLE_EQ(bitsPerWeight(352, 128, 117, 1, 1, Method::Dbf), (117.0 * 480 + 16.0 * (480 + 117)) / 45056.0);
}

TEST(Bpw, ParsesDecimalsExactly)
{
    const Bpw a = Bpw::parse("1.5");
    EXPECT_EQ(a.numerator(), 3);
    EXPECT_EQ(a.denominator(), 2);
    EXPECT_EQ(a.text(), "1.5");
    const Bpw b = Bpw::parse(" 0.10 ");
    EXPECT_EQ(b.numerator(), 1);
    EXPECT_EQ(b.denominator(), 10);
    EXPECT_EQ(Bpw::parse("2.5e-1"), Bpw::parse(".25"));
    EXPECT_EQ(Bpw::parse("2"), Bpw::parse("2.000"));
    EXPECT_EQ(Bpw::parse("1.125").text(), "1.125");
    EXPECT_EQ(Bpw::parse("0.000001").text(), "0.000001");
    EXPECT_EQ(Bpw::fromDouble(0.1), Bpw::parse("0.1"));
    EXPECT_EQ(Bpw::fromDouble(1.5), Bpw::parse("1.5"));
    EXPECT_EQ(Bpw::fromDouble(1.38), Bpw::parse("1.38"));
    for (const char* bad : {"", "abc", "-1", "0", "0.0", "1.5x", "1e", "1.0000000000001", "1e7", "+1", ". "})
        EXPECT_THROW(Bpw::parse(bad), InvalidArgument) << bad;
    EXPECT_THROW(Bpw::fromDouble(std::numeric_limits<double>::quiet_NaN()), InvalidArgument);
    EXPECT_THROW(Bpw::fromDouble(-1.0), InvalidArgument);
}

TEST(BitBudget, BudgetForKResolvesToThatKWithTheShortestDecimal)
{
    // Every k of a few shapes and formats: the decimal returned pays for k (checked against the
    // term-by-term reference), not for k + 1, and one digit fewer would not do.
    struct Case {
        long long n, m;
        int l;
        bool dbf;
    };
    for (const Case c : {Case{352, 128, 1, true}, Case{128, 352, 2, false}, Case{64, 64, 4, false}, Case{7, 300, 1, false}}) {
        const Method method = c.dbf ? Method::Dbf : Method::Mdbf;
        for (long long k = std::max(1, c.l); k <= std::min(c.n, c.m); ++k) {
            const Bpw bpw = budgetForK(c.n, c.m, k, method, c.l, 1);
            EXPECT_EQ(std::min(largestFittingK(c.n, c.m, bpw.numerator(), bpw.denominator(), c.l, 1, c.dbf),
                               std::min(c.n, c.m)),
                      k)
                << c.n << "x" << c.m << " " << bpw.text();
            const BitBudget resolved = computeBitBudget(c.n, c.m, bpw, method, c.l, 1);
            EXPECT_EQ(resolved.k, k) << c.n << "x" << c.m << " " << bpw.text();
            // Shortest: the same value rounded up at one digit fewer gives another k (or needs none).
            const std::string text = bpw.text();
            const std::size_t point = text.find('.');
            if (point != std::string::npos && text.size() - point - 1 >= 2) {
                const long double scale = std::pow(10.0L, static_cast<long double>(text.size() - point - 2));
                const long double shorter = std::ceil(static_cast<long double>(bpw.numerator()) /
                                                      static_cast<long double>(bpw.denominator()) * scale - 1e-9L) / scale;
                const long double exact = referenceBits(c.n, c.m, k, c.l, 1, c.dbf) / (c.n * c.m);
                const long double next = referenceBits(c.n, c.m, k + 1, c.l, 1, c.dbf) / (c.n * c.m);
                EXPECT_TRUE(shorter < exact || (shorter >= next && k < std::min(c.n, c.m))) << text;
            }
        }
    }
    EXPECT_THROW(budgetForK(64, 64, 0, Method::Dbf, 1, 1), InvalidArgument);
    EXPECT_THROW(budgetForK(64, 64, 65, Method::Dbf, 1, 1), InvalidArgument);
    EXPECT_THROW(budgetForK(64, 64, 3, Method::Mdbf, 4, 1), InvalidArgument);
}

TEST(BitBudget, MethodNames)
{
    EXPECT_EQ(parseMethod("dbf"), Method::Dbf);
    EXPECT_EQ(parseMethod("mdbf"), Method::Mdbf);
    EXPECT_EQ(methodName(Method::Mdbf), "mdbf");
    EXPECT_THROW(parseMethod("DBF"), InvalidArgument);
}

}  // namespace
}  // namespace mdbf::factor
