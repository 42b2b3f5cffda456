#pragma once
// Helpers shared by the factor sources (not installed): thread scoping for Eigen's OpenMP GEMMs,
// seeded Gaussian blocks, block power iteration, sign unpacking.

#include <algorithm>
#include <cstdint>

#include <omp.h>

#include "mdbf/base/matrix.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor::detail {

/// Sets the OpenMP thread count of the calling thread (which Eigen's GEMMs follow unless
/// Eigen::setNbThreads was called) for the lifetime of the object, then restores it. Other threads
/// are unaffected, so concurrent jobs with different thread counts do not interfere.
class ThreadScope {
public:
    explicit ThreadScope(int threads) : m_previous(omp_get_max_threads()) { omp_set_num_threads(std::max(1, threads)); }
    ~ThreadScope() { omp_set_num_threads(m_previous); }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    int m_previous;
};

/// A well-mixed 64-bit seed from a base seed and up to three stream indices (splitmix64 finaliser).
std::uint64_t mixSeed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0);

/// Fills `out` with standard normal values from a portable generator (same values on every platform).
void fillGaussian(MatrixF& out, std::uint64_t seed);

/// Replaces X (rows×b, rows ≥ b) by an orthonormal basis of its column space (Householder QR).
void orthonormalize(MatrixF& X);

/// Leading rank-l structure of A (rows×cols) by block power iteration: A ≈ U · diag(sigma) · Vᵀ with
/// U rows×l and V cols×l orthonormal. Requires 1 ≤ l ≤ min(rows, cols); the block has
/// min(l + oversample, min(rows, cols)) columns.
void blockPower(const MatrixF& A, int l, const RankApproxOptions& options, MatrixF& U, VectorF& sigma, MatrixF& V);

/// Unpacks signs into a dense ±1 column-major matrix.
MatrixF unpackSigns(const kernels::PackedSigns& signs);

/// Negates the entries of M (same shape as `signs`) whose sign bit is set.
void applySigns(const kernels::PackedSigns& signs, MatrixF& M);

/// Sum of squares of all entries, accumulated in double.
double squaredNorm(const MatrixF& M);

/// True if every entry is finite.
bool allFinite(const MatrixF& M);

}  // namespace mdbf::factor::detail
