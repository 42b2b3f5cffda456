#pragma once
// Closed-form initialization, the "multi-envelope SVD" of docs/ALGORITHM.md §4:
//   U' = U_k Σ_k^{1/2}, V' = V_k Σ_k^{1/2};  S_a = sign(U'), S_b = sign(V')ᵀ (sign(0) = +1);
//   |U'| ≈ A Qaᵀ and |V'| ≈ B Qbᵀ by rank-l truncated SVD with the √σ split, column-sum sign fix;
//   for P > 1 the next path repeats this on the residual W − Σ F_p G_p (with a fresh SVD).
// Under the Gram objective (§6.3) the SVD is that of W R (R = H^{1/2}) and V' = R⁻¹ V_k Σ_k^{1/2}.

#include <cstdint>
#include <stop_token>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor {

/// Accuracy of the rank-l envelope fits used by the closed form and by the final parameter
/// extraction (more iterations than the projection inside ADMM: these run once per layer).
inline constexpr RankApproxOptions kEnvelopeFitOptions{12, 8, 0x5eed};

/// One path from U' (n×k) and V' (m×k): signs, rank-l envelopes (float, not rounded). l ≥ 1; when
/// l ≥ k the envelopes reproduce |U'| and |V'| exactly, so F·G = U'V'ᵀ. Throws InvalidArgument when
/// the shapes disagree or l < 1, Cancelled when `stop` is requested (polled between the signs and
/// the two envelope fits, and once per power iteration: about half a second of work at 7B shapes).
/// Taken by value: a moved-in U' and V' become their magnitudes in place, so a 7B-sized layer's
/// closed form allocates no second copy of them.
kernels::FactorPath closedFormPath(MatrixF uPrime, MatrixF vPrime, int l, const std::stop_token& stop = {});

/// The P-path closed-form start for `target` (n×m): path 1 from `targetSvd` (which must be the SVD
/// of `target`), paths 2..P from fresh SVDs of the residual. Envelopes are float (not rounded to
/// FP16). Throws InvalidArgument when k, l, P or the SVD's shape do not fit the target, Cancelled
/// when ctx's stop is requested while a path is formed (closedFormPath; the P − 1 extra SVDs are
/// not interrupted). Runs with ctx.threadCount() threads.
std::vector<kernels::FactorPath> closedFormInit(const Eigen::Ref<const RowMatrixF>& target, const LayerSvd& targetSvd,
                                                std::int64_t k, int l, int paths, const RunContext& ctx = {});

/// The P-path closed-form start under the Gram objective: path 1 from `weightedSvd`, which must be
/// the SVD of W·R with R = gram.sqrt(), as U' = U_k Σ_k^{1/2} and V' = R⁻¹ V_k Σ_k^{1/2} (so that
/// U'V'ᵀ is the best rank-k fit of W in the weighted norm); paths 2..P the same on the weighted
/// residual (W − Σ F_p G_p) R. The factors are in W's own coordinates. Throws InvalidArgument when
/// k, l, P, the SVD's or the Gram matrix's shape do not fit W, Cancelled as closedFormInit.
std::vector<kernels::FactorPath> closedFormInitGram(const Eigen::Ref<const RowMatrixF>& W, const InputGram& gram,
                                                    const LayerSvd& weightedSvd, std::int64_t k, int l, int paths,
                                                    const RunContext& ctx = {});

}  // namespace mdbf::factor
