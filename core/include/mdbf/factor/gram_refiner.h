#pragma once
// Alternating ADMM refinement of one path under the full activation-aware objective (docs/ALGORITHM.md §6.3):
//     min_{F,G} tr((W − F G) H (W − F G)ᵀ) = ‖(W − F G) R‖_F²,   R = H^{1/2} (see InputGram).
// The schedule is AdmmRefiner's (§5): T outer iterations of an F-step then a G-step, `inner` ADMM
// steps per half-step with the auxiliary Z and dual Γ kept per side, ρ_t ramped in the first solve
// only, Π_l after every solve. Only the least-squares parts change:
//   F-step: C = (G R)ᵀ with the rows of G scaled so that diag(G H Gᵀ) = 1 and target (W R)ᵀ, i.e.
//           CᵀC = G H Gᵀ and CᵀY = G (W H)ᵀ: a k×k Cholesky solve as in the plain case,
//           λ = reg · mean(diag CᵀC).
//   G-step: C = F with unit-norm columns; the normal equations
//               FᵀF G H + (λ + ρ) G = Fᵀ W H + ρ (Z − Γ),   λ = reg · mean(diag FᵀF) · mean(diag H),
//           are solved through FᵀF = P Λ_F Pᵀ and H = Q Λ_H Qᵀ:
//               G = P [ (Pᵀ B Q) ⊘ (λ_F λ_Hᵀ + λ + ρ) ] Qᵀ.
// F and G stay in the layer's own coordinates, so the result is read off exactly as for plain.

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/admm_refiner.h"
#include "mdbf/factor/input_gram.h"

namespace mdbf::factor {

/// Refines one path under the Gram objective. Stateless between calls; refine() may run
/// concurrently on different data.
class GramRefiner {
public:
    /// Throws InvalidArgument when options.validate() reports a problem.
    explicit GramRefiner(AdmmOptions options);

    const AdmmOptions& options() const { return m_options; }

    /// Refines the start (F0 n×k, G0 k×m) for the layer target W (n×m) weighted by `gram` (m×m).
    /// The history holds sqrt(tr(E H Eᵀ)) / errorScale after each outer iteration, E = W − F G
    /// (pass sqrt(tr(W H Wᵀ)) of the whole layer so multi-path histories stay comparable). Threads,
    /// stop polling, progress ("refine", iteration, T) and the outcome's meaning are as for
    /// AdmmRefiner::refine. Throws InvalidArgument when the shapes disagree or errorScale ≤ 0.
    AdmmOutcome refine(const Eigen::Ref<const RowMatrixF>& W, const InputGram& gram, MatrixF F0, MatrixF G0,
                       double errorScale, const RunContext& ctx,
                       const AdmmRefiner::IterationCallback& onIteration = {}) const;

private:
    AdmmOptions m_options;
};

}  // namespace mdbf::factor
