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

}  // namespace mdbf::kernels
