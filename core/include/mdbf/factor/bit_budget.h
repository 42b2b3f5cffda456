#pragma once
// Exact bit accounting of factorized layers (docs/ALGORITHM.md §3).
//
// Per path, signs cost k(n+m) bits. `mdbf` stores the four envelopes A, Qa, Qb, B in FP16:
// s·l·(n+m+2k) bits; `dbf` stores the merged vectors a, c, b of §2.1: s·(n+m+k) bits. With P paths
//     mdbf: k = floor((bpw·n·m/P − s·l·(n+m)) / ((n+m) + 2·s·l))
//     dbf:  k = floor((bpw·n·m/P − s·(n+m))   / ((n+m) + s))
// computed in exact rational arithmetic from the decimal the user typed, then clamped to min(n, m).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mdbf::factor {

/// The two storage formats of a factorized layer. Dbf is the l = 1 algorithm stored in the merged
/// form of §2.1; Mdbf stores rank-l envelopes (also at l = 1).
enum class Method { Dbf, Mdbf };

/// "dbf" or "mdbf".
std::string_view methodName(Method method);

/// Parses "dbf" / "mdbf" (case-sensitive). Throws InvalidArgument naming the value otherwise.
Method parseMethod(std::string_view text);

/// Bits per stored envelope value (FP16).
inline constexpr std::int64_t kEnvelopeBits = 16;

/// A positive bit budget held exactly as a reduced fraction numerator/denominator whose denominator
/// divides a power of ten, i.e. the decimal the user typed.
class Bpw {
public:
    /// 1 bit per weight.
    Bpw() = default;

    /// Parses a decimal such as "1", "1.5", "0.75", ".5" or "2.5e-1" (at most 12 digits after the
    /// point once the exponent is applied, value in (0, 10^6]). Throws InvalidArgument naming the text
    /// for anything else (empty, sign, garbage, zero, too many digits).
    static Bpw parse(std::string_view text);

    /// Converts a double through its shortest round-tripping decimal (0.1 → "0.1" → 1/10), so a
    /// value typed into a spin box keeps its decimal meaning. Throws InvalidArgument for values that
    /// are not finite and positive or need more than 12 fractional digits.
    static Bpw fromDouble(double value);

    std::int64_t numerator() const { return m_num; }
    std::int64_t denominator() const { return m_den; }

    /// The nearest double.
    double value() const { return static_cast<double>(m_num) / static_cast<double>(m_den); }

    /// Canonical decimal text ("1.5", "2", "0.125").
    std::string text() const;

    bool operator==(const Bpw&) const = default;

private:
    Bpw(std::int64_t num, std::int64_t den) : m_num(num), m_den(den) {}

    std::int64_t m_num = 1;
    std::int64_t m_den = 1;
};

/// The outcome of the accounting for one n×m layer.
struct BitBudget {
    std::int64_t n = 0;             ///< out_features
    std::int64_t m = 0;             ///< in_features
    Method method = Method::Mdbf;
    int l = 1;                      ///< envelope rank (1 for dbf)
    int paths = 1;                  ///< P
    std::optional<Bpw> requested;   ///< the budget asked for; empty when k was given explicitly
    std::int64_t unclampedK = 0;    ///< the floor() of the formula before clamping (may exceed min(n, m))
    std::int64_t k = 0;             ///< the chosen middle dimension, l ≤ k ≤ min(n, m)
    bool clamped = false;           ///< true when unclampedK > min(n, m)
    std::int64_t bits = 0;          ///< exact storage of all paths at k (signs + envelopes)
    double bpw = 0.0;               ///< bits / (n·m): the achieved budget, from integers
};

/// A budget that may be infeasible: `budget` is empty and `message` says why (k < max(1, l), or
/// invalid shape/rank/paths). Used by whole-model quantization to keep such a layer dense.
struct BudgetCheck {
    std::optional<BitBudget> budget;
    std::string message;
};

/// Exact storage in bits of P paths of an n×m layer at middle dimension k and envelope rank l.
/// For Dbf l must be 1. Throws InvalidArgument for non-positive sizes or overflow.
std::int64_t storageBits(std::int64_t n, std::int64_t m, std::int64_t k, int l, int paths, Method method);

/// The layout of a factorized layer as model::Linear::kind() reports it: "mdbf k=51 l=2", with
/// " P=<paths>" when there is more than one path.
std::string layoutText(Method method, std::int64_t k, int l, int paths);

/// storageBits(...) / (n·m) as a double (the division is the only rounding).
double bitsPerWeight(std::int64_t n, std::int64_t m, std::int64_t k, int l, int paths, Method method);

/// Non-throwing accounting for a requested budget. Shapes, l ≥ 1, paths ≥ 1 and (dbf ⇒ l = 1) are
/// checked too; every failure is reported through `message`.
BudgetCheck checkBitBudget(std::int64_t n, std::int64_t m, const Bpw& bpw, Method method, int l, int paths);

/// Same, throwing InvalidArgument with the message when the budget is infeasible.
BitBudget computeBitBudget(std::int64_t n, std::int64_t m, const Bpw& bpw, Method method, int l, int paths);

/// Accounting for an explicitly chosen k (e.g. to compare methods at equal k). Throws
/// InvalidArgument unless max(1, l) ≤ k ≤ min(n, m).
BitBudget bitBudgetForK(std::int64_t n, std::int64_t m, std::int64_t k, Method method, int l, int paths);

}  // namespace mdbf::factor
