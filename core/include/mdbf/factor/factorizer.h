#pragma once
// The factorization engine's façade: options → FactorResult (docs/ALGORITHM.md).
//
//   1. bit accounting (§3) gives k;  2. closed-form start from the layer SVD (§4);
//   3. ADMM refinement per path on the residual of the others (§5);  4. parameters read off the
//   refined factors (signs, rank-l envelopes), the objective's D^{-1/2} folded into B (§6.2), dbf
//   merged to a, c, b, envelopes rounded to FP16;  5. errors of what is deployed.
// The Gram objective (§6.3) cannot be folded into an envelope: its closed form starts from the SVD
// of W·H^{1/2} and its refinement is GramRefiner's, both in the layer's own coordinates.
// dbf is the l = 1 case of the same algorithm, stored and accounted in the merged form.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/envelope_polish.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/layer_svd.h"

namespace mdbf::factor {

namespace detail {
struct ObjectiveWeighting;  // the objective's weighting of one layer (defined in factorizer.cpp)
}

/// One entry of the per-iteration feed (for convergence plots).
struct IterationReport {
    int iteration = 0;      ///< 1-based, counted over all paths
    int path = 0;           ///< 0-based path being refined
    double relError = 0.0;  ///< relative error under the objective after this iteration (unrounded)
    double seconds = 0.0;   ///< since run() started
};

/// Everything that shapes a factorization. validate() checks what can be checked without the layer.
struct FactorizerOptions {
    Method method = Method::Mdbf;
    int l = 1;                        ///< envelope rank; must be 1 for dbf
    int paths = 1;                    ///< P additive paths
    Bpw bpw;                          ///< bit budget (1 bpw by default); ignored when k > 0
    std::int64_t k = 0;               ///< explicit middle dimension overriding the budget (0 = from bpw)
    int outerIterations = 260;        ///< T per path; 0 gives the closed form alone
    int innerIterations = 3;          ///< ADMM steps per half-step
    std::uint64_t seed = 0;           ///< seeds the power iterations; same seed + threads ⇒ same result
    double reg = 0.03;                ///< λ = reg · mean(diag CᵀC)
    int powerIterations = 5;          ///< block power iterations in each projection Π_l
    int oversample = 4;               ///< extra block columns in each projection
    double rhoStart = 0.03;           ///< ρ_0 of the penalty ramp (§5.2), in (0, 1]
    double rhoPower = 3.0;            ///< power of the penalty ramp (§5.2)
    double relaxation = 1.0;          ///< over-relaxation α of the plain/diag refinement (§5.2), in [1, 2)
    Objective objective = Objective::Plain;
    VectorF channelWeights;           ///< DiagonalWeighted: d_j = mean(x_j²), m entries, finite, ≥ 0
    Eigen::MatrixXd inputGram;        ///< Gram: H = XᵀX / N (m×m, symmetric, finite, diagonal ≥ 0)
    /// Gram: InputGram::prepare(inputGram, damping), made once by a caller that factorizes one layer
    /// several times (a plan's trials, a budget change in the studio); null: every run prepares it,
    /// an m×m eigendecomposition and two m×m products (16 s at m = 4096, 5 min at 11008 on 2 cores).
    /// Its size and damping must match the layer and `damping` (InvalidArgument otherwise).
    std::shared_ptr<const InputGram> preparedGram;
    double damping = 1e-3;            ///< ε of d_j + ε·mean(d), and of H + ε·mean(diag H)·I
    double convergenceTolerance = 1e-3;  ///< Converged when the last 5 error changes are below tol·error
    /// A path's refinement ends early when 8 iterations in a row each lowered its error by less than
    /// this fraction (0: always the whole schedule); docs/ALGORITHM.md §5.8. In [0, 0.01].
    double stallTolerance = 1e-5;
    /// With outerIterations = 0 only: the closed form's errors estimated from this many evenly
    /// spaced rows of Ŵ instead of all n (a preview at that fraction of the cost of forming Ŵ;
    /// FactorResult::errorSampleRows says so). 0, the default, or ≥ n: exact. At least 0. A stop
    /// requested while such a preview is formed throws Cancelled: a preview is replaced, not kept.
    std::int64_t errorSampleRows = 0;
    /// Exact block-coordinate polish of the refined parameters (§10); sweeps = 0 (the default) skips
    /// it. Plain and diagonal objectives only.
    PolishOptions polish{.sweeps = 0};
    std::function<void(const IterationReport&)> onIteration;  ///< optional; called on the worker thread

    /// Empty when valid, otherwise a one-line description of the first problem (shape-independent).
    std::string validate() const;
};

/// Runs factorizations with fixed options. Stateless apart from the options; run() may be called
/// concurrently from several threads.
class Factorizer {
public:
    /// Throws InvalidArgument when options.validate() reports a problem.
    explicit Factorizer(FactorizerOptions options);

    const FactorizerOptions& options() const { return m_options; }

    /// The bit accounting for an n×m layer under these options (explicit k or bpw). Throws
    /// InvalidArgument when the budget leaves k < max(1, l) or k is out of range.
    BitBudget budget(std::int64_t n, std::int64_t m) const;

    /// The matrix whose SVD starts the factorization: W for Plain, W·D^{1/2} (damped) for
    /// DiagonalWeighted, W·H^{1/2} (damped, rescaled to mean(diag H) = 1) for Gram. Throws
    /// InvalidArgument for non-finite W or unusable channel weights or Gram matrix.
    RowMatrixF target(const RowMatrixF& W) const;

    /// Factorizes W (n×m, HF layout), computing the SVD of target(W) first (not interruptible; a stop
    /// requested before it starts throws Cancelled, one during it is honoured right after).
    /// Throws InvalidArgument for non-finite W, an infeasible budget or mismatched channel weights
    /// or Gram matrix.
    /// Everything else is reported in the result's termination.
    FactorResult run(const RowMatrixF& W, const RunContext& ctx = {}) const;

    /// Same with a precomputed SVD, which must be LayerSvd::compute(target(W)) (checked through its
    /// shape and Frobenius norm; InvalidArgument otherwise). With outerIterations = 0 this is the
    /// instant closed-form view. A stop request returns promptly with the best result so far, the
    /// closed form at the least (a preview, errorSampleRows, throws Cancelled instead).
    FactorResult run(const RowMatrixF& W, const LayerSvd& targetSvd, const RunContext& ctx = {}) const;

    /// The same, letting go of `targetSvd` once the start is formed: a caller that hands over the
    /// only reference has the decomposition's k·(n + m) floats back before the refinement, where the
    /// memory peaks (179 MB at 4096×11008, 1 bpw). Throws InvalidArgument for a null pointer and as
    /// run(W, const LayerSvd&) does.
    FactorResult run(const RowMatrixF& W, std::shared_ptr<const LayerSvd> targetSvd, const RunContext& ctx = {}) const;

    /// Warm start: the same as run(W, targetSvd, ctx) but starting from `previous`, a result for the
    /// same layer, objective and path count at another (or the same) k and l, instead of the closed
    /// form (docs/ALGORITHM.md §5.7). Shrinking k keeps each path's components of largest
    /// ‖F col‖·‖G row‖; growing it appends the closed-form components k_prev..k−1 of targetSvd
    /// (which must cover k) to path 1 and the residual's leading triplets to paths 2..P; every
    /// path's magnitudes are then projected to rank l. The result's initialError is the warm
    /// start's. Deterministic like run(). Throws InvalidArgument as run() does, and when `previous`
    /// does not fit the layer, the objective or the path count.
    FactorResult refineFrom(const RowMatrixF& W, const LayerSvd& targetSvd, const FactorResult& previous,
                            const RunContext& ctx = {}) const;

private:
    FactorResult runGiven(const RowMatrixF& W, std::shared_ptr<const LayerSvd> targetSvd, const FactorResult* previous,
                          const RunContext& ctx) const;
    FactorResult runWithSvd(const RowMatrixF& W, const RowMatrixF& target, const detail::ObjectiveWeighting& weighting,
                            std::shared_ptr<const LayerSvd> svd, const FactorResult* previous, const RunContext& ctx,
                            double startSeconds, double svdSeconds) const;

    FactorizerOptions m_options;
};

/// Relative error of a reconstruction under an objective: ‖(W − Ŵ)D^{1/2}‖_F / ‖W D^{1/2}‖_F with
/// D = I for Plain and the damped channel weights of `options` for DiagonalWeighted, and
/// sqrt(tr(E H Eᵀ) / tr(W H Wᵀ)), E = W − Ŵ, with the damped Gram matrix for Gram; 0 when both are 0
/// and +infinity when only the denominator is. Throws InvalidArgument on a shape mismatch or
/// unusable weights.
double relativeError(const RowMatrixF& W, const RowMatrixF& approx, const FactorizerOptions& options);

}  // namespace mdbf::factor
