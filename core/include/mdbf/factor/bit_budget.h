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

#include "mdbf/base/vocabulary.h"

namespace mdbf::factor {

using mdbf::Method;
using mdbf::methodName;
using mdbf::parseMethod;
using mdbf::Bpw;

/// Bits per stored envelope value (FP16).
inline constexpr std::int64_t kEnvelopeBits = 16;

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

/// The shortest decimal budget that checkBitBudget resolves to exactly middle dimension k (so a
/// configuration can ask for a chosen k through its bpw field): the smallest multiple of 10^-d, for
/// the smallest d ≤ 12, that is at least storageBits(k)/(n·m) and below storageBits(k + 1)/(n·m).
/// Throws InvalidArgument unless max(1, l) ≤ k ≤ min(n, m) and the shape, l and P are valid.
Bpw budgetForK(std::int64_t n, std::int64_t m, std::int64_t k, Method method, int l, int paths);

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
