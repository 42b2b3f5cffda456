#pragma once
// The thin SVD of one layer, W = U Σ Vᵀ (docs/ALGORITHM.md §4.1). It depends neither on the bit budget nor on
// l, so it is computed once per layer and reused for every closed-form start (any k, any l).

#include <cstdint>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"

namespace mdbf::factor {

/// Full thin SVD of an n×m matrix in float: U n×r, σ (r, descending), V m×r with r = min(n, m).
/// Immutable after compute(); safe to share between threads.
class LayerSvd {
public:
    /// An empty 0×0 decomposition.
    LayerSvd() = default;

    /// Decomposes W (n×m, any storage order) through LAPACK: the eigendecomposition of the smaller
    /// Gram matrix in double and one GEMM for the other side (see factor/gram_svd.h for accuracy),
    /// on ctx.threadCount() threads. Throws InvalidArgument for an empty matrix or a non-finite entry
    /// (naming its position), Cancelled when a stop is already requested on entry. It cannot be
    /// interrupted once started (README, Benchmarks, has its time at 7B shapes).
    static LayerSvd compute(const Eigen::Ref<const RowMatrixF>& W, const RunContext& ctx = {});

    /// A decomposition from stored parts (e.g. read back from a DecompositionCache): U n×r, σ (r),
    /// V m×r. Throws InvalidArgument when the shapes disagree or r ≠ min(n, m).
    static LayerSvd fromParts(MatrixF u, VectorF sigma, MatrixF v, double seconds = 0.0);

    std::int64_t rows() const { return m_u.rows(); }  ///< n
    std::int64_t cols() const { return m_v.rows(); }  ///< m
    std::int64_t rank() const { return m_sigma.size(); }  ///< r = min(n, m) (count of stored triplets)

    const MatrixF& u() const { return m_u; }                  ///< n×r, orthonormal columns
    const VectorF& singularValues() const { return m_sigma; }  ///< r, descending, ≥ 0
    const MatrixF& v() const { return m_v; }                  ///< m×r, orthonormal columns

    /// U' = U_k Σ_k^{1/2} (n×k). Throws InvalidArgument unless 0 ≤ k ≤ rank().
    MatrixF leftFactor(std::int64_t k) const;

    /// V' = V_k Σ_k^{1/2} (m×k). Throws InvalidArgument unless 0 ≤ k ≤ rank().
    MatrixF rightFactor(std::int64_t k) const;

    /// The rank-k truncation U_k Σ_k V_kᵀ (n×m). Throws InvalidArgument unless 0 ≤ k ≤ rank().
    MatrixF truncated(std::int64_t k) const;

    /// ‖W‖_F = sqrt(Σ σ²), accumulated in double.
    double frobeniusNorm() const;

    /// Wall-clock seconds compute() took.
    double seconds() const { return m_seconds; }

private:
    void checkK(std::int64_t k) const;

    MatrixF m_u;
    VectorF m_sigma;
    MatrixF m_v;
    double m_seconds = 0.0;
};

}  // namespace mdbf::factor
