#pragma once
// Inference with factorized layers (docs/ALGORITHM.md §2.4) without forming F or G:
//     G x = Σ_j Qb[:,j] ⊙ ( S_b · (B[:,j] ⊙ x) )
//     F z = Σ_i A[:,i]  ⊙ ( S_a · (Qa[:,i] ⊙ z) )
//     y   = Σ_p F_p (G_p x)
// For a window of T tokens the l scaled copies of every token are batched into one binary GEMM
// with T·l columns per sign matrix, so each packed S is streamed once per call.

#include <span>

#include "mdbf/base/matrix.h"
#include "mdbf/kernels/factor_path.h"
#include "mdbf/kernels/kernel_path.h"

namespace mdbf::kernels {

/// Checks that the shapes of a path agree (sa n×k, sb k×m, A n×l, Qa k×l, Qb k×l, B m×l, l ≥ 1).
/// Throws InvalidArgument naming the first inconsistent field.
void validateFactorPath(const FactorPath& path);

/// Y = X Ŵᵀ with Ŵ = Σ_p F_p G_p, for X of T × m (one row per token); Y is resized to T × n.
/// All paths must share n and m; X and Y must not alias. Results do not depend on `threads`.
/// Throws InvalidArgument for an empty path list, inconsistent shapes, or an unavailable path.
void applyFactorPaths(std::span<const FactorPath> paths, const RowMatrixF& X, RowMatrixF& Y, int threads = 1,
                      KernelPath path = KernelPath::Auto);

/// y = Ŵ x for one token: x has m entries, y receives n entries. Throws like the window form.
void applyFactorPaths(std::span<const FactorPath> paths, std::span<const float> x, std::span<float> y,
                      int threads = 1, KernelPath path = KernelPath::Auto);

/// Builds now, for every S_a and S_b of the paths, what the one-token products of `path` read
/// besides the packed words (prepareGemvTables: as many bytes again as the words on the SIMD
/// paths), so that decoding starts at full speed. Thread-safe; throws InvalidArgument when path is
/// Avx2/Avx512 and the CPU lacks it.
void prepareFactorPaths(std::span<const FactorPath> paths, KernelPath path = KernelPath::Auto);

/// Ŵ = F·G of one path as a dense n×m matrix, F = S_a ⊙ (A Qaᵀ), G = S_b ⊙ (Qb Bᵀ).
/// A reference for tests and tools only (it unpacks the signs); throws like validateFactorPath.
RowMatrixF reconstructDense(const FactorPath& path);

}  // namespace mdbf::kernels
