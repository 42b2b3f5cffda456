#include "mdbf/factor/bit_budget.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>

#include "mdbf/base/error.h"

namespace mdbf::factor {

namespace {

// GCC's 128-bit integer, spelled so that -Wpedantic accepts it; used only to detect overflow.
__extension__ typedef __int128 Int128;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// floor(a / b) for b > 0, any sign of a.
Int128 floorDiv(Int128 a, Int128 b)
{
    Int128 q = a / b;
    if ((a % b != 0) && (a < 0)) --q;
    return q;
}

std::string shapeText(std::int64_t n, std::int64_t m)
{
    return std::to_string(n) + "x" + std::to_string(m);
}

std::string formatBpw(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

// Validation shared by every entry point; returns an empty string when the arguments are usable.
std::string checkShape(std::int64_t n, std::int64_t m, int l, int paths, Method method)
{
    if (n < 1 || m < 1) return "layer shape " + shapeText(n, m) + " is empty";
    if (l < 1) return "envelope rank l = " + std::to_string(l) + " must be at least 1";
    if (paths < 1) return "path count P = " + std::to_string(paths) + " must be at least 1";
    if (method == Method::Dbf && l != 1) return "method dbf has envelope rank 1 (got l = " + std::to_string(l) + ")";
    if (l > std::min(n, m))
        return "envelope rank l = " + std::to_string(l) + " exceeds min(n, m) = " + std::to_string(std::min(n, m)) +
               " of the " + shapeText(n, m) + " layer";
    return {};
}

Int128 storageBits128(std::int64_t n, std::int64_t m, std::int64_t k, int l, int paths, Method method)
{
    const Int128 nm = static_cast<Int128>(n) + m;
    const Int128 signs = static_cast<Int128>(k) * nm;
    const Int128 envelopes = method == Method::Dbf ? kEnvelopeBits * (nm + k)
                                                   : static_cast<Int128>(kEnvelopeBits) * l * (nm + 2 * static_cast<Int128>(k));
    return static_cast<Int128>(paths) * (signs + envelopes);
}

BitBudget makeBudget(std::int64_t n, std::int64_t m, std::int64_t k, Method method, int l, int paths)
{
    BitBudget b;
    b.n = n;
    b.m = m;
    b.method = method;
    b.l = l;
    b.paths = paths;
    b.k = k;
    b.unclampedK = k;
    b.bits = storageBits(n, m, k, l, paths, method);
    b.bpw = static_cast<double>(b.bits) / (static_cast<double>(n) * static_cast<double>(m));
    return b;
}

}  // namespace

std::int64_t storageBits(std::int64_t n, std::int64_t m, std::int64_t k, int l, int paths, Method method)
{
    if (n < 1 || m < 1 || k < 0 || l < 1 || paths < 1)
        throw InvalidArgument("storage of a " + shapeText(n, m) + " layer: invalid k = " + std::to_string(k) +
                              ", l = " + std::to_string(l) + " or P = " + std::to_string(paths));
    if (method == Method::Dbf && l != 1) throw InvalidArgument("method dbf has envelope rank 1");
    const Int128 bits = storageBits128(n, m, k, l, paths, method);
    if (bits > kInt64Max) throw InvalidArgument("storage of a " + shapeText(n, m) + " layer overflows 64 bits");
    return static_cast<std::int64_t>(bits);
}

double bitsPerWeight(std::int64_t n, std::int64_t m, std::int64_t k, int l, int paths, Method method)
{
    return static_cast<double>(storageBits(n, m, k, l, paths, method)) / (static_cast<double>(n) * static_cast<double>(m));
}

BudgetCheck checkBitBudget(std::int64_t n, std::int64_t m, const Bpw& bpw, Method method, int l, int paths)
{
    BudgetCheck out;
    if (std::string why = checkShape(n, m, l, paths, method); !why.empty()) {
        out.message = why;
        return out;
    }
    // k = floor((p·n·m − q·P·s·L·(n+m)) / (q·P·((n+m) + s·L'))) with L = l, L' = 2l for mdbf and
    // L = 1, L' = 1 for dbf.
    const Int128 p = bpw.numerator();
    const Int128 q = bpw.denominator();
    const Int128 nm = static_cast<Int128>(n) + m;
    const Int128 prod = static_cast<Int128>(n) * m;
    const Int128 envRank = method == Method::Dbf ? 1 : l;
    const Int128 perK = method == Method::Dbf ? nm + kEnvelopeBits : nm + 2 * kEnvelopeBits * static_cast<Int128>(l);
    const Int128 numerator = p * prod - q * paths * kEnvelopeBits * envRank * nm;
    const Int128 denominator = q * paths * perK;
    const Int128 k128 = floorDiv(numerator, denominator);

    const std::int64_t need = std::max(1, l);
    const std::int64_t cap = std::min(n, m);
    if (k128 < need) {
        std::ostringstream msg;
        msg << "a budget of " << bpw.text() << " bpw is too small for the " << shapeText(n, m) << " layer with "
            << methodName(method) << " l = " << l << ", P = " << paths << ": "
            // A negative k means the envelopes alone cost more than the budget: say that, not "k = -54".
            << (k128 < 0 ? std::string("the envelopes alone take more bits than that")
                         : "it leaves k = " + std::to_string(static_cast<long long>(k128)) + " < " + std::to_string(need))
            << "; k = " << need << " needs "
            << formatBpw(bitsPerWeight(n, m, need, l, paths, method)) << " bpw";
        out.message = msg.str();
        return out;
    }
    const std::int64_t unclamped = k128 > kInt64Max ? kInt64Max : static_cast<std::int64_t>(k128);
    BitBudget b = makeBudget(n, m, std::min(unclamped, cap), method, l, paths);
    b.requested = bpw;
    b.unclampedK = unclamped;
    b.clamped = unclamped > cap;
    out.budget = b;
    return out;
}

BitBudget computeBitBudget(std::int64_t n, std::int64_t m, const Bpw& bpw, Method method, int l, int paths)
{
    BudgetCheck check = checkBitBudget(n, m, bpw, method, l, paths);
    if (!check.budget) throw InvalidArgument(check.message);
    return *check.budget;
}

BitBudget bitBudgetForK(std::int64_t n, std::int64_t m, std::int64_t k, Method method, int l, int paths)
{
    if (std::string why = checkShape(n, m, l, paths, method); !why.empty()) throw InvalidArgument(why);
    if (k < std::max(1, l) || k > std::min(n, m))
        throw InvalidArgument("middle dimension k = " + std::to_string(k) + " is outside [" +
                              std::to_string(std::max(1, l)) + ", " + std::to_string(std::min(n, m)) + "] for the " +
                              shapeText(n, m) + " layer");
    return makeBudget(n, m, k, method, l, paths);
}

Bpw budgetForK(std::int64_t n, std::int64_t m, std::int64_t k, Method method, int l, int paths)
{
    const BitBudget at = bitBudgetForK(n, m, k, method, l, paths);
    const Int128 weights = static_cast<Int128>(n) * m;
    // Above min(n, m) the budget is clamped, so any amount beyond storage(k) still resolves to k.
    const bool top = k == std::min(n, m);
    const Int128 next = top ? 0 : storageBits128(n, m, k + 1, l, paths, method);
    Int128 scale = 1;
    for (int digits = 0; digits <= 12; ++digits, scale *= 10) {
        // The smallest multiple of 10^-digits that pays for k: ceil(bits·10^d / (n·m)).
        const Int128 units = (static_cast<Int128>(at.bits) * scale + weights - 1) / weights;
        if (!top && units * weights >= next * scale) continue;
        const Bpw bpw = Bpw::parse(std::to_string(static_cast<long long>(units)) + "e-" + std::to_string(digits));
        const BudgetCheck check = checkBitBudget(n, m, bpw, method, l, paths);
        if (check.budget && check.budget->k == k) return bpw;
    }
    throw InvalidArgument("no decimal budget with at most 12 digits resolves the " + shapeText(n, m) +
                          " layer to k = " + std::to_string(k));
}

std::string layoutText(Method method, std::int64_t k, int l, int paths)
{
    return std::string(methodName(method)) + " k=" + std::to_string(k) + " l=" + std::to_string(l) +
           (paths > 1 ? " P=" + std::to_string(paths) : "");
}

}  // namespace mdbf::factor
