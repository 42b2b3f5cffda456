#pragma once
// Rank-l approximations of magnitude matrices and the sign ⊙ rank-l map Π_l (docs/ALGORITHM.md §4.4, §5.3).
//
// Small problems use an exact SVD; larger ones use block power (subspace) iteration started from a
// Gaussian block drawn from a seeded generator, so results are deterministic for a given seed and
// thread count.

#include <cstdint>
#include <stop_token>

#include "mdbf/base/matrix.h"

namespace mdbf::factor {

/// How to compute a rank-l approximation.
struct RankApproxOptions {
    int powerIterations = 5;  ///< subspace iterations (each one product with M and one with Mᵀ)
    int oversample = 4;       ///< extra block columns beyond l
    std::uint64_t seed = 0;   ///< seed of the Gaussian start block
};

/// M ≈ left · rightᵀ with left = U_l Σ_l^{1/2} (rows×l) and right = V_l Σ_l^{1/2} (cols×l).
struct RankApprox {
    MatrixF left;
    MatrixF right;
    VectorF sigma;  ///< the l leading singular values (estimates when iterative), descending
};

/// Best rank-l approximation of M (rows×cols, any values) with the √σ split to both sides; l is
/// clamped to min(rows, cols) and missing columns are zero-padded so left/right always have l
/// columns. Uses an exact SVD when min(rows, cols) ≤ l + oversample or M is tiny. Throws only
/// Cancelled, when `stop` is requested during the power iteration.
RankApprox rankApprox(const MatrixF& M, int l, const RankApproxOptions& options = {}, const std::stop_token& stop = {});

/// Flips the sign of column j of `left` and `right` together whenever the column sum of `left` is
/// negative (the §4.2 convention making envelopes mostly non-negative). Shapes: rows×l and cols×l.
void fixEnvelopeSigns(MatrixF& left, MatrixF& right);

/// Π_l(M) = sign(M) ⊙ (rank-l approximation of |M|) with sign(0) = +1; returns a matrix of M's shape.
/// When l ≥ min(rows, cols) the approximation is exact and Π_l(M) = M.
MatrixF signRankProject(const MatrixF& M, int l, const RankApproxOptions& options = {});

/// The leading `count` singular values of M (descending, fewer if M is smaller), exact for small
/// matrices and from block power iteration with `options` otherwise. Throws Cancelled when `stop`
/// is requested during the iteration.
VectorF leadingSingularValues(const MatrixF& M, int count, const RankApproxOptions& options = {},
                              const std::stop_token& stop = {});

}  // namespace mdbf::factor
