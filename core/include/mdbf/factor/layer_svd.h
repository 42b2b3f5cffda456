#pragma once
// The thin SVD of one layer, W = U Σ Vᵀ (docs/ALGORITHM.md §4.1). It depends neither on the bit budget nor on
// l, so it is computed once per layer and reused for every closed-form start (any k, any l).

#include <algorithm>
#include <cstdint>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"

namespace mdbf::factor {

/// Thin SVD of an n×m matrix in float: U n×r, σ (r, descending), V m×r, either complete
/// (r = min(n, m), compute()) or its leading r triplets only (computeLeading()).
/// Immutable after construction; safe to share between threads.
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

    /// The leading k triplets of W (n×m, 1 ≤ k ≤ min(n, m)), computed in float throughout (the
    /// closed form needs k ≈ 0.5–0.75·min(n, m) of them to modest accuracy): several times faster
    /// than compute() at 7B shapes (README, Benchmarks). σ_i carries a relative error of about
    /// 1e-7·(σ_1/σ_i)², and U_k Σ_k V_kᵀ is the projection of W onto span(U_k), so the rank-k
    /// truncation error is within a relative 1e-4 of the optimum (docs/ALGORITHM.md §4.1). A larger k
    /// later needs a new call (or compute()); covers(k) tells. Throws InvalidArgument for an empty
    /// matrix, a non-finite entry or k out of range, Cancelled when a stop is already requested.
    static LayerSvd computeLeading(const Eigen::Ref<const RowMatrixF>& W, std::int64_t k, const RunContext& ctx = {});

    /// A decomposition from stored parts (e.g. read back from a DecompositionCache): U n×r, σ (r),
    /// V m×r with 1 ≤ r ≤ min(n, m). `frobeniusNorm` is ‖W‖_F; when ≤ 0 it is taken as sqrt(Σσ²), which
    /// is right only for a complete decomposition. Throws InvalidArgument when the shapes disagree.
    static LayerSvd fromParts(MatrixF u, VectorF sigma, MatrixF v, double seconds = 0.0, double frobeniusNorm = 0.0);

    std::int64_t rows() const { return m_u.rows(); }  ///< n
    std::int64_t cols() const { return m_v.rows(); }  ///< m
    std::int64_t rank() const { return m_sigma.size(); }  ///< r, the count of stored triplets (≤ min(n, m))

    /// True when all min(n, m) triplets are stored (compute()), false for a leading part.
    bool complete() const { return rank() == std::min(rows(), cols()); }

    /// True when the stored triplets suffice for a rank-k closed form (0 ≤ k ≤ rank()).
    bool covers(std::int64_t k) const { return k >= 0 && k <= rank(); }

    const MatrixF& u() const { return m_u; }                  ///< n×r, orthonormal columns
    const VectorF& singularValues() const { return m_sigma; }  ///< r, descending, ≥ 0
    const MatrixF& v() const { return m_v; }                  ///< m×r, orthonormal columns

    /// U' = U_k Σ_k^{1/2} (n×k). Throws InvalidArgument unless 0 ≤ k ≤ rank().
    MatrixF leftFactor(std::int64_t k) const;

    /// V' = V_k Σ_k^{1/2} (m×k). Throws InvalidArgument unless 0 ≤ k ≤ rank().
    MatrixF rightFactor(std::int64_t k) const;

    /// The rank-k truncation U_k Σ_k V_kᵀ (n×m). Throws InvalidArgument unless 0 ≤ k ≤ rank().
    MatrixF truncated(std::int64_t k) const;

    /// ‖W‖_F of the decomposed matrix (sqrt(Σ σ²) over all min(n, m) values, in double), also when
    /// only the leading triplets are stored.
    double frobeniusNorm() const { return m_norm; }

    /// Wall-clock seconds compute() took.
    double seconds() const { return m_seconds; }

private:
    static LayerSvd decompose(const Eigen::Ref<const RowMatrixF>& W, std::int64_t k, const RunContext& ctx);
    void checkK(std::int64_t k) const;

    MatrixF m_u;
    VectorF m_sigma;
    MatrixF m_v;
    double m_seconds = 0.0;
    double m_norm = 0.0;
};

}  // namespace mdbf::factor
