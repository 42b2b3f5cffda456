#pragma once
// Float reference products of factorized layers (docs/ALGORITHM.md §2.4): the dense factors, the dense
// reconstruction Ŵ = Σ_p F_p G_p, and y = Ŵx evaluated through the factors without forming Ŵ.
// The bit-packed fast kernels live in mdbf::kernels; these are their readable twins.

#include <stop_token>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor {

/// Throws InvalidArgument unless the path's shapes agree: sa n×k, sb k×m, A n×l, Qa k×l, Qb k×l,
/// B m×l with n, m, k, l ≥ 1.
void validatePath(const kernels::FactorPath& path);

/// Dense F = S_a ⊙ (A·Qaᵀ), n×k.
MatrixF denseF(const kernels::FactorPath& path);

/// Dense G = S_b ⊙ (Qb·Bᵀ), k×m.
MatrixF denseG(const kernels::FactorPath& path);

/// Ŵ = Σ_p F_p G_p (n×m, row-major like checkpoint weights), on `threads` threads (0 = the OpenMP
/// default of the calling thread). Throws InvalidArgument for an empty list or paths of different n×m,
/// Cancelled when `stop` is requested part way (polled between column blocks of the product).
RowMatrixF reconstruct(const std::vector<kernels::FactorPath>& paths, int threads = 0, const std::stop_token& stop = {});

/// The rows `rows` (indices in [0, n), any order, repeats allowed) of reconstruct(paths), rows.size()×m,
/// at rows.size()/n of its cost. Throws InvalidArgument as reconstruct() does and for an index out of range.
RowMatrixF reconstructRows(const std::vector<kernels::FactorPath>& paths, const std::vector<Eigen::Index>& rows,
                           int threads = 0);

/// y = Ŵx (n) through the factors: per path G x = Σ_j Qb_j ⊙ (S_b (B_j ⊙ x)), then
/// F z = Σ_i A_i ⊙ (S_a (Qa_i ⊙ z)), with the sign products done as additions/subtractions on the
/// packed bits. x has m entries; throws InvalidArgument on a size mismatch.
VectorF applyFactors(const std::vector<kernels::FactorPath>& paths, const VectorF& x);

/// Y = X Ŵᵀ (T×n) for a window X (T×m, one row per token), through the factors (l sign products
/// per side and path, as float GEMMs with the unpacked ±1 matrices). Throws InvalidArgument on a
/// size mismatch.
RowMatrixF applyFactorsWindow(const std::vector<kernels::FactorPath>& paths, const RowMatrixF& X);

/// Rounds every envelope value (A, Qa, Qb, B) to the nearest FP16 value, in place.
void roundEnvelopesToHalf(kernels::FactorPath& path);

}  // namespace mdbf::factor
