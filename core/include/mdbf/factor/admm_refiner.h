#pragma once
// Alternating ADMM refinement of one path (docs/ALGORITHM.md §5).
//
// For T outer iterations: an F-step (target Yᵀ, fixed C = Gᵀ with unit-norm rows of G, free Z = Fᵀ)
// then a G-step (target Y, fixed C = F with unit-norm columns, free Z = G). Each half-step solves
//     min_Z ‖Y − C Z‖² + λ‖Z‖²,  λ = reg · mean(diag CᵀC),  Z constrained to sign ⊙ rank-l,
// by `inner` ADMM steps with the auxiliary Z and dual Γ kept per side across outer iterations:
//     L = (CᵀC + λI + ρ_t I)⁻¹ (CᵀY + ρ_t (Z − Γ)),   ρ_t = 0.03 + 0.97 · min(1, t/(T−3))³
//     repeat: Z = Π_l(L + Γ); Γ += L − Z; L = (CᵀC + λI + I)⁻¹ (CᵀY + Z − Γ)
//     finally Z = Π_l(L + Γ); Γ += L − Z.
// Two Cholesky factorizations per side and outer iteration, reused across the inner steps.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/low_rank.h"

namespace mdbf::factor {

/// Iterations over which AdmmOptions::stallTolerance is judged.
inline constexpr int kStallWindow = 8;

/// Parameters of the refinement. validate() lists what is wrong.
struct AdmmOptions {
    int l = 1;                    ///< envelope rank of the constraint set (≥ 1)
    int outerIterations = 260;    ///< T (≥ 0; 0 returns the start unchanged)
    int innerIterations = 3;      ///< ADMM steps per half-step (≥ 1)
    double reg = 0.03;            ///< ridge factor of λ (≥ 0)
    std::uint64_t seed = 0;       ///< seeds every projection's power-iteration start
    int powerIterations = 5;      ///< block power iterations inside Π_l (≥ 1)
    int oversample = 4;           ///< extra block columns inside Π_l (≥ 0)
    double rhoStart = 0.03;       ///< ρ_0 of the ramp ρ_t = ρ_0 + (1 − ρ_0)·min(1, t/(T−3))^p, in (0, 1]
    double rhoPower = 3.0;        ///< p of the ramp, in [0.25, 8]
    double relaxation = 1.0;      ///< α of over-relaxed ADMM: Π_l(α L + (1 − α) Z + Γ), in [1, 2)
    /// Stops when each of the last kStallWindow iterations lowered the error by less than this
    /// fraction of it (0 never stops early), in [0, 0.01].
    double stallTolerance = 1e-5;

    /// Empty when valid, otherwise a one-line description of the first problem.
    std::string validate() const;
};

/// What one refinement produced. F·G is the approximation whose error is the last history entry.
struct AdmmOutcome {
    MatrixF F;                    ///< n×k with unit-norm columns; empty when no iteration completed
    MatrixF G;                    ///< k×m, carrying the scale; empty when no iteration completed
    std::vector<double> history;  ///< ‖Y − F·G‖_F / errorScale after each complete outer iteration
    int iterations = 0;           ///< complete outer iterations (= history.size())
    bool stalled = false;         ///< ended before T because the error stalled (AdmmOptions::stallTolerance)
    bool cancelled = false;       ///< stopped early; F, G are those of the last complete iteration
    bool failed = false;          ///< a factorization failed or values became non-finite; F, G as for cancelled
    std::string message;          ///< why it failed, empty otherwise
};

/// Refines one path. Stateless between calls; const methods may run concurrently on different data.
class AdmmRefiner {
public:
    /// Per-iteration observer: (1-based outer iteration, relative error). Called on the calling
    /// thread; must not throw.
    using IterationCallback = std::function<void(int iteration, double relError)>;

    /// Throws InvalidArgument when options.validate() reports a problem.
    explicit AdmmRefiner(AdmmOptions options);

    const AdmmOptions& options() const { return m_options; }

    /// Refines the start (F0 n×k, G0 k×m, taken over: pass them moved where memory counts) against
    /// the target Y (n×m). Errors are divided by
    /// errorScale (> 0; pass ‖W‖_F of the whole layer so multi-path histories stay comparable).
    /// Uses ctx.threadCount() threads, polls ctx.stop between row/column blocks of every large
    /// product (a stop returns within a fraction of a second, with the last complete iterate), and
    /// reports progress as ("refine", iteration, T). Deterministic for a given seed and thread count.
    /// Throws InvalidArgument when the shapes disagree or errorScale ≤ 0.
    AdmmOutcome refine(const Eigen::Ref<const RowMatrixF>& Y, MatrixF F0, MatrixF G0, double errorScale,
                       const RunContext& ctx, const IterationCallback& onIteration = {}) const;

private:
    AdmmOptions m_options;
};

}  // namespace mdbf::factor
