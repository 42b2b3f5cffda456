#pragma once
// Helpers shared by the factor sources (not installed): thread scoping for Eigen's OpenMP GEMMs,
// seeded Gaussian blocks, block power iteration, sign unpacking.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <stop_token>

#include <omp.h>

#include "mdbf/base/matrix.h"
#include "mdbf/base/thread_scope.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor::detail {

using mdbf::ThreadScope;

/// Threads for work of `entries` matrix entries: 1 below 2^16 (a parallel region costs more).
inline int threadsFor(double entries, int threads)
{
    return entries >= 65536.0 ? std::max(1, threads) : 1;
}

/// Runs body(task) for every task in [0, tasks) on `threads` OpenMP threads, handing tasks out one
/// at a time (dynamic schedule) so uneven tasks balance. Polls `stop` before each task and skips the
/// rest once it is requested; returns false then.
template <typename Body>
bool parallelTasks(int tasks, int threads, const std::stop_token& stop, Body&& body)
{
    bool stopped = false;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(|| : stopped)
    for (int task = 0; task < tasks; ++task) {
        if (stop.stop_requested()) {
            stopped = true;
            continue;
        }
        body(task);
    }
    return !stopped;
}

/// How parallelProduct combines the product with the destination.
enum class Combine { Assign, Add, Subtract };

/// out (op) lhs · rhs, with op "=", "+=" or "-=", computed in column blocks of rhs that are
/// spread over `threads` threads, each block a single-threaded Eigen GEMM. Eigen's own parallel
/// GEMM synchronises its threads inside every product and collapses when the cores are shared;
/// independent blocks do not, and every column is computed the same way whatever the thread count.
/// Polls `stop` before each block; returns false (out partly written) when it was requested.
template <typename Lhs, typename Rhs, typename Dest>
bool parallelProduct(const Lhs& lhs, const Rhs& rhs, Dest& out, int threads, Combine combine = Combine::Assign,
                     const std::stop_token& stop = {})
{
    const Eigen::Index q = rhs.cols();
    if (q == 0) return !stop.stop_requested();
    const int t = threadsFor(static_cast<double>(lhs.rows()) * static_cast<double>(lhs.cols()) * static_cast<double>(q) / 64.0,
                             threads);
    const Eigen::Index chunk = std::clamp<Eigen::Index>((q + 4 * t - 1) / (4 * t), 64, 512);
    const int tasks = static_cast<int>((q + chunk - 1) / chunk);
    return parallelTasks(tasks, t, stop, [&](int task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * chunk;
        const Eigen::Index c = std::min(chunk, q - c0);
        auto block = out.middleCols(c0, c);
        if (combine == Combine::Subtract) block.noalias() -= lhs * rhs.middleCols(c0, c);
        else if (combine == Combine::Add) block.noalias() += lhs * rhs.middleCols(c0, c);
        else block.noalias() = lhs * rhs.middleCols(c0, c);
    });
}

/// K = Z Zᵀ (k×k) for Z k×q: lower-triangle column blocks on `threads` threads, then mirrored.
/// Returns false (K incomplete) when `stop` was requested.
bool parallelGram(const MatrixF& z, MatrixF& k, int threads, const std::stop_token& stop = {});

/// A well-mixed 64-bit seed from a base seed and up to three stream indices (splitmix64 finaliser).
std::uint64_t mixSeed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0);

/// Fills `out` with standard normal values from a portable generator (same values on every platform).
void fillGaussian(MatrixF& out, std::uint64_t seed);

/// Replaces X (rows×b, rows ≥ b) by an orthonormal basis of its column space (Householder QR).
void orthonormalize(MatrixF& X);

/// Leading rank-l structure of A (rows×cols) by block power iteration: A ≈ U · diag(sigma) · Vᵀ with
/// U rows×l and V cols×l orthonormal. Requires 1 ≤ l ≤ min(rows, cols); the block has
/// min(l + oversample, min(rows, cols)) columns. The products with A run on `threads` threads.
/// Throws Cancelled when `stop` is requested (polled once per iteration).
void blockPower(const MatrixF& A, int l, const RankApproxOptions& options, MatrixF& U, VectorF& sigma, MatrixF& V,
                int threads, const std::stop_token& stop = {});

/// Unpacks signs into a dense ±1 column-major matrix.
MatrixF unpackSigns(const kernels::PackedSigns& signs);

/// Negates the entries of M (same shape as `signs`) whose sign bit is set.
void applySigns(const kernels::PackedSigns& signs, MatrixF& M);

/// Calls negate(j) for every set bit j < count of the packed words at `bits` (bit j in word j / 64,
/// least significant first): the sign bits of one stretch of a PackedSigns row. Bits at or past
/// `count` (the next stretch, or the row's padding) are not visited.
template <class Negate>
void forEachSetBit(const std::uint64_t* bits, std::int64_t count, Negate&& negate)
{
    constexpr std::int64_t kBits = kernels::PackedSigns::kWordBits;
    const std::int64_t words = (count + kBits - 1) / kBits;
    for (std::int64_t w = 0; w < words; ++w) {
        for (std::uint64_t word = bits[w]; word != 0; word &= word - 1) {
            const std::int64_t j = w * kBits + std::countr_zero(word);
            if (j >= count) break;
            negate(j);
        }
    }
}

/// Sum of squares of all entries, accumulated in double.
double squaredNorm(const MatrixF& M);

/// True if every entry is finite.
bool allFinite(const MatrixF& M);

}  // namespace mdbf::factor::detail
