#pragma once
// Products of a bit-packed ±1 matrix with float activations (docs/ALGORITHM.md §2.4), the only heavy
// operation of DBF/MDBF inference. The signs are never unpacked to floats: the kernels add or
// subtract activations according to the bits.
//
// Threads split the rows of S evenly (mdbf::parallelChunks); every row is computed by one thread
// with an order of operations that does not depend on the thread count, so results are
// bit-identical for any `threads`. All functions are reentrant and may be called concurrently.

#include <cstdint>
#include <span>

#include "mdbf/base/matrix.h"
#include "mdbf/kernels/kernel_path.h"
#include "mdbf/kernels/packed_signs.h"

namespace mdbf::kernels {

/// y = S x for S of rows × cols: x has cols entries, y receives rows entries.
/// Throws InvalidArgument on a size mismatch, or when path is Avx2/Avx512 and the CPU lacks it.
void binaryGemv(const PackedSigns& S, std::span<const float> x, std::span<float> y, int threads = 1,
                KernelPath path = KernelPath::Auto);

/// Y = X Sᵀ for a window of tokens: X is T × cols (one row per token), Y is resized to T × rows
/// with Y(t, i) = Σ_j S(i, j) X(t, j). X and Y must not alias.
/// Throws InvalidArgument when X.cols() != S.cols(), or when path is Avx2/Avx512 and the CPU lacks it.
void binaryGemm(const PackedSigns& S, const RowMatrixF& X, RowMatrixF& Y, int threads = 1,
                KernelPath path = KernelPath::Auto);

/// The raw form of binaryGemm for callers holding strided buffers: T tokens, token t at
/// X + t·ldx (cols floats, ldx ≥ cols), result row t at Y + t·ldy (rows floats, ldy ≥ rows).
/// Throws like binaryGemm.
void binaryGemm(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
                std::int64_t ldy, int threads = 1, KernelPath path = KernelPath::Auto);

/// y ≈ S x through lookup tables, the fast path of one token: every 4 columns of x have their 16
/// signed sums quantized to 18-bit integers with one scale per set of two 128-column halves (the
/// halves 4u + c and 4u + 2 + c, c = 0, 1, of every 512 columns), and each row adds the entries
/// its sign bits select. Error: |y_i − (S x)_i| ≤ Σ_sets 32 · M_s / 131071 (half a step per 4
/// columns; M_s = the set's largest |±x_a ± x_b ± x_c ± x_d|) plus float rounding; measured at most
/// 2.2e-5 of |S x| (root mean square over rows) for Gaussian activations with a few large outliers.
/// The SIMD paths read the bits in an order of their own (PackedSigns::derivedLayout: as many bytes
/// again as the words), built by prepareGemvTables or else on the first call, and kept with the
/// matrix. Every code path returns the same bits for any thread count; non-finite x give NaN rows.
/// Throws like binaryGemv.
void binaryGemvTables(const PackedSigns& S, std::span<const float> x, std::span<float> y, int threads = 1,
                      KernelPath path = KernelPath::Auto);

/// Builds now the bit order in which the SIMD table kernels of `path` read S and keeps it with S
/// (as many bytes again as its words; nothing on the scalar path), so that the first
/// binaryGemvTables call after a model is loaded does not pay for it. Thread-safe; throws
/// InvalidArgument when path is Avx2/Avx512 and the CPU lacks it.
void prepareGemvTables(const PackedSigns& S, KernelPath path = KernelPath::Auto);

/// binaryGemvTables for each of T tokens in strided buffers (as the raw binaryGemm); meant for
/// a few tokens, since S is read once per token. Throws like binaryGemm.
void binaryGemmTables(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
                      std::int64_t ldy, int threads = 1, KernelPath path = KernelPath::Auto);

}  // namespace mdbf::kernels
