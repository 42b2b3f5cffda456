#pragma once
// The thin SVD of a layer through LAPACK (OpenBLAS): the symmetric eigendecomposition of the
// smaller Gram matrix, formed in double, and one GEMM for the singular vectors of the other side.

#include <cstdint>

#include "mdbf/base/matrix.h"

namespace mdbf::factor::detail {

/// W = U diag(σ) Vᵀ for W n×m (row-major float, finite, not all zero), r = min(n, m):
/// U n×r and V m×r with orthonormal columns, σ descending and ≥ 0.
///
/// With X the eigenvectors of the r×r Gram matrix of the short side (W·Wᵀ or Wᵀ·W, accumulated
/// in double by DGEMM, decomposed by DSYEVD in double on one thread), the long side's vectors are W·x / ‖W·x‖
/// (one SGEMM). Singular values come from the eigenvalues: their absolute error is about
/// ε_double·σ_max²/σ, far below the float SVD's ε_float·σ_max. Long-side vectors of σ_i below
/// 1e-3·σ_max are re-orthogonalized (their float error grows like ε_float·σ_max/σ_i), and those
/// below 1e-6·σ_max (numerical rank deficiency, no information) are replaced by a completion of
/// the orthonormal basis. Uses `threads` threads (OpenBLAS follows the OpenMP thread count).
/// Throws Error when LAPACK reports a failure (it does not for finite input).
void gramSvd(const Eigen::Ref<const RowMatrixF>& W, int threads, MatrixF& U, VectorF& sigma, MatrixF& V);

/// The leading k triplets only (1 ≤ k ≤ r), everything in float: the Gram matrix by SGEMM blocks,
/// SSYTRD + SSTEDC on one thread, the back-transform (SORMTR) of the k wanted eigenvectors and the
/// long side (SGEMM) in column blocks on `threads` threads. σ_i = ‖W·x_i‖ (second-order accurate in
/// the eigenvector error), sorted descending; U_k Σ_k V_kᵀ is then the projection of W onto the
/// computed short-side subspace. The eigenvectors carry a backward error of a few ε_float·‖W‖₂², so
/// σ_i has a relative error of about ε_float·(σ_max/σ_i)² and the long-side vectors an orthogonality
/// error of about ε_float·σ_max²/(σ_i σ_j) (tests/core/factor/test_layer_svd_accuracy.cpp states the
/// bounds checked). Throws Error when LAPACK reports a failure.
void gramSvdLeading(const Eigen::Ref<const RowMatrixF>& W, Eigen::Index k, int threads, MatrixF& U, VectorF& sigma,
                    MatrixF& V);

}  // namespace mdbf::factor::detail
