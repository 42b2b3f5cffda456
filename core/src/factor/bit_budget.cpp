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

constexpr int kMaxFractionDigits = 12;
constexpr std::int64_t kMaxBpwInteger = 1'000'000;
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

std::int64_t pow10(int e)
{
    std::int64_t p = 1;
    for (int i = 0; i < e; ++i) p *= 10;
    return p;
}

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

std::string_view methodName(Method method)
{
    return method == Method::Dbf ? "dbf" : "mdbf";
}

Method parseMethod(std::string_view text)
{
    if (text == "dbf") return Method::Dbf;
    if (text == "mdbf") return Method::Mdbf;
    throw InvalidArgument("unknown factorization method '" + std::string(text) + "' (expected dbf or mdbf)");
}

Bpw Bpw::parse(std::string_view original)
{
    auto fail = [&](const std::string& why) -> InvalidArgument {
        return InvalidArgument("bit budget '" + std::string(original) + "': " + why);
    };
    std::string_view text = original;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    if (text.empty()) throw fail("empty");

    // value = digits × 10^exponent, collected without any floating point.
    std::string digits;
    int exponent = 0;
    std::size_t i = 0;
    bool anyDigit = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        digits.push_back(text[i++]);
        anyDigit = true;
    }
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            digits.push_back(text[i++]);
            --exponent;
            anyDigit = true;
        }
    }
    if (!anyDigit) throw fail("not a decimal number");
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        int sign = 1;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) sign = text[i++] == '-' ? -1 : 1;
        if (i == text.size()) throw fail("missing exponent");
        int e = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            e = e * 10 + (text[i++] - '0');
            if (e > 100) throw fail("exponent out of range");
        }
        exponent += sign * e;
    }
    if (i != text.size()) throw fail("unexpected character '" + std::string(1, text[i]) + "'");

    // Normalise: drop leading zeros, move trailing zeros into the exponent.
    const std::size_t first = digits.find_first_not_of('0');
    if (first == std::string::npos) throw fail("must be positive");
    digits.erase(0, first);
    while (digits.size() > 1 && digits.back() == '0') {
        digits.pop_back();
        ++exponent;
    }
    if (exponent < -kMaxFractionDigits)
        throw fail("more than " + std::to_string(kMaxFractionDigits) + " digits after the decimal point");
    if (static_cast<int>(digits.size()) + exponent > 7) throw fail("larger than 10^6 bits per weight");

    Int128 mantissa = 0;
    for (char c : digits) mantissa = mantissa * 10 + (c - '0');
    Int128 num = mantissa;
    Int128 den = 1;
    if (exponent >= 0) {
        for (int e = 0; e < exponent; ++e) num *= 10;
    } else {
        den = pow10(-exponent);
    }
    if (num > static_cast<Int128>(kMaxBpwInteger) * den) throw fail("larger than 10^6 bits per weight");
    const std::int64_t n64 = static_cast<std::int64_t>(num);
    const std::int64_t d64 = static_cast<std::int64_t>(den);
    const std::int64_t g = std::gcd(n64, d64);
    return Bpw(n64 / g, d64 / g);
}

Bpw Bpw::fromDouble(double value)
{
    if (!std::isfinite(value) || value <= 0.0)
        throw InvalidArgument("bit budget " + std::to_string(value) + " must be a finite positive number");
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, value);
    return parse(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
}

std::string Bpw::text() const
{
    std::string out = std::to_string(m_num / m_den);
    std::int64_t rest = m_num % m_den;
    if (rest == 0) return out;
    // The denominator divides 10^d for some d ≤ 12: print exactly d digits, then trim zeros.
    int d = 1;
    while (d <= kMaxFractionDigits && pow10(d) % m_den != 0) ++d;
    const std::int64_t scaled = rest * (pow10(d) / m_den);
    std::string frac = std::to_string(scaled);
    frac.insert(0, static_cast<std::size_t>(d) - frac.size(), '0');
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    return out + "." + frac;
}

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
            << methodName(method) << " l = " << l << ", P = " << paths << ": it leaves k = "
            << static_cast<long long>(std::max<Int128>(k128, std::numeric_limits<long long>::min())) << " < " << need << "; k = " << need << " needs "
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

std::string layoutText(Method method, std::int64_t k, int l, int paths)
{
    return std::string(methodName(method)) + " k=" + std::to_string(k) + " l=" + std::to_string(l) +
           (paths > 1 ? " P=" + std::to_string(paths) : "");
}

}  // namespace mdbf::factor
