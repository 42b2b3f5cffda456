#include "mdbf/base/vocabulary.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>

#include "mdbf/base/error.h"

namespace mdbf {

namespace {

// GCC's 128-bit integer, spelled so that -Wpedantic accepts it; used only to detect overflow.
__extension__ typedef __int128 Int128;

constexpr int kMaxFractionDigits = 12;
constexpr std::int64_t kMaxBpwInteger = 1'000'000;

std::int64_t pow10(int e)
{
    std::int64_t p = 1;
    for (int i = 0; i < e; ++i) p *= 10;
    return p;
}

}  // namespace

std::string_view dtypeName(DType dtype)
{
    switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    }
    return "?";
}

std::size_t dtypeSize(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

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

std::string_view objectiveName(Objective objective)
{
    switch (objective) {
    case Objective::Plain: return "plain";
    case Objective::DiagonalWeighted: return "diag";
    case Objective::Gram: return "gram";
    }
    return "plain";
}

Objective parseObjective(std::string_view text)
{
    if (text == "plain") return Objective::Plain;
    if (text == "diag") return Objective::DiagonalWeighted;
    if (text == "gram") return Objective::Gram;
    throw InvalidArgument("unknown objective '" + std::string(text) + "' (expected plain, diag or gram)");
}

}  // namespace mdbf
