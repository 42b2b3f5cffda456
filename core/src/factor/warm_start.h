#pragma once
// Starting a factorization from a previous result of the same layer (docs/ALGORITHM.md §5.7),
// and reading path parameters off dense factors, which both the warm start and the end of a
// refinement do (not installed).

#include <cstdint>
#include <optional>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor::detail {

/// Signs of F (n×k) and G (k×m), then rank-l envelopes of |F| and |G| (Π_l with the accurate fit).
kernels::FactorPath extractPath(const MatrixF& F, const MatrixF& G, int l);

/// The start of a (k, l) factorization from `previous` (same n×m layer, objective and path count;
/// InvalidArgument otherwise), in the refiner's coordinates: those of `target` = W·D^{1/2} for
/// Plain and DiagonalWeighted (sqrtD the D^{1/2} folded out of the deployed B), of W under Gram.
/// Keeps the k most important components of each path when shrinking, appends the closed-form
/// components k_prev..k−1 of `svd` (path 1) or of the residual's leading SVD (paths 2..P) when
/// growing, and projects every path's magnitudes to rank l. Float envelopes (not rounded).
std::vector<kernels::FactorPath> warmStartPaths(const FactorResult& previous, const Eigen::Ref<const RowMatrixF>& target,
                                                const LayerSvd& svd, const std::optional<VectorF>& sqrtD,
                                                const InputGram* gram, std::int64_t k, int l, const RunContext& ctx);

}  // namespace mdbf::factor::detail
