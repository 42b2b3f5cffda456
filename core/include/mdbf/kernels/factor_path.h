#pragma once
// The parameters of one MDBF path (docs/ALGORITHM.md §2.2), as deployed:
//     W_p ≈ F · G,   F = S_a ⊙ (A · Qaᵀ),   G = S_b ⊙ (Qb · Bᵀ)
// DBF's merged form (a, c, b of §2.1) is the l = 1 case with A = a, Qa = c, Qb = 1, B = b.

#include "mdbf/base/matrix.h"
#include "mdbf/kernels/packed_signs.h"

namespace mdbf::kernels {

/// One path of a factorized n×m layer with middle dimension k and envelope rank l.
/// Envelope values are float32 holding FP16-representable values once rounded for deployment.
struct FactorPath {
    PackedSigns sa;  ///< n×k
    PackedSigns sb;  ///< k×m
    MatrixF A;       ///< n×l
    MatrixF Qa;      ///< k×l
    MatrixF Qb;      ///< k×l
    MatrixF B;       ///< m×l

    std::int64_t n() const { return sa.rows(); }
    std::int64_t k() const { return sa.cols(); }
    std::int64_t m() const { return sb.cols(); }
    std::int64_t l() const { return A.cols(); }
};

}  // namespace mdbf::kernels
