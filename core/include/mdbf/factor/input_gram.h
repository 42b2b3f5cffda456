#pragma once
// The weighting of the full activation-aware objective (docs/ALGORITHM.md §6.3). A layer's input Gram
// matrix H = XᵀX / N is damped by ε·mean(diag H), rescaled to mean(diag H) = 1 (neither the
// minimiser nor any relative error depends on the scale, and at unit scale the ADMM penalties keep
// the meaning they have for the plain objective) and decomposed once:
//     H = Q Λ Qᵀ,   R = H^{1/2} = Q Λ^{1/2} Qᵀ,   R⁻¹ = Q Λ^{-1/2} Qᵀ,
// so that tr(E H Eᵀ) = ‖E R‖_F² and the weighted problem's target is W R.

#include <Eigen/Core>

#include "mdbf/base/matrix.h"

namespace mdbf::factor {

/// A prepared Gram weighting of one layer (m×m). Immutable; safe to share between threads.
class InputGram {
public:
    /// An empty 0×0 weighting.
    InputGram() = default;

    /// Damps, rescales and decomposes `gram` (m×m, finite, diagonal ≥ 0; symmetrised as (H + Hᵀ)/2).
    /// `damping` is ε ≥ 0. Throws InvalidArgument for a non-square or empty matrix, a non-finite or
    /// negative-diagonal entry, an all-zero matrix, or one that is singular after damping.
    static InputGram prepare(const Eigen::MatrixXd& gram, double damping);

    Eigen::Index size() const { return m_h.rows(); }  ///< m
    double damping() const { return m_damping; }      ///< the ε it was prepared with

    const MatrixF& matrix() const { return m_h; }              ///< damped, rescaled H (m×m)
    const MatrixF& eigenvectors() const { return m_q; }        ///< Q (m×m, orthonormal columns)
    const VectorF& eigenvalues() const { return m_lambda; }    ///< Λ (m, ascending, > 0)
    const MatrixF& sqrt() const { return m_sqrt; }             ///< R = H^{1/2} (m×m, symmetric)
    const MatrixF& inverseSqrt() const { return m_inverseSqrt; }  ///< R⁻¹ (m×m, symmetric)

    /// tr(E H Eᵀ) = ‖E R‖_F² for E n×m (n ≥ 1), accumulated in double, the product on `threads`
    /// threads. Throws InvalidArgument when E does not have m columns.
    double weightedSquaredNorm(const Eigen::Ref<const RowMatrixF>& E, int threads) const;

private:
    MatrixF m_h;
    MatrixF m_q;
    VectorF m_lambda;
    MatrixF m_sqrt;
    MatrixF m_inverseSqrt;
    double m_damping = 0.0;
};

}  // namespace mdbf::factor
