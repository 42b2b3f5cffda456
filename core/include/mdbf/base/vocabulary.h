#pragma once
// The shared vocabulary of the engine, in one place: the element types a checkpoint stores, the two
// storage formats of a factorized layer, the objectives a factorization minimises, and the exact bit
// budget (docs/ALGORITHM.md §3). io, factor, pipeline and the front ends all speak these; the modules
// re-export them under their own namespaces (io::DType, factor::Method, factor::Objective, factor::Bpw).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mdbf {

/// Element types a checkpoint may store.
enum class DType { F32, F16, BF16 };

/// "F32", "F16" or "BF16", as in the safetensors header.
std::string_view dtypeName(DType dtype);

/// Bytes per element: 4 or 2.
std::size_t dtypeSize(DType dtype);

/// The two storage formats of a factorized layer. Dbf is the l = 1 algorithm stored in the merged
/// form of docs/ALGORITHM.md §2.1; Mdbf stores rank-l envelopes (also at l = 1).
enum class Method { Dbf, Mdbf };

/// "dbf" or "mdbf".
std::string_view methodName(Method method);

/// Parses "dbf" / "mdbf" (case-sensitive). Throws InvalidArgument naming the value otherwise.
Method parseMethod(std::string_view text);

/// What the factorization minimises (docs/ALGORITHM.md §6).
enum class Objective {
    Plain,             ///< ‖W − Ŵ‖_F
    DiagonalWeighted,  ///< ‖(W − Ŵ) D^{1/2}‖_F with per-input-channel weights d (damped)
    Gram,              ///< tr((W − Ŵ) H (W − Ŵ)ᵀ) with the input Gram matrix H = XᵀX / N (damped)
};

/// "plain", "diag" or "gram" (the names of the command line's --objective).
std::string_view objectiveName(Objective objective);

/// Parses "plain" / "diag" / "gram". Throws InvalidArgument naming the value otherwise.
Objective parseObjective(std::string_view text);

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

}  // namespace mdbf
