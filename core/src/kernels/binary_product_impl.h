#pragma once
// Internal entry points of the binary-product kernels, one per code path. All take the raw
// strided form of binaryGemm with shapes already validated and T, rows, cols all ≥ 1.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "kernels/kernel_table.h"

namespace mdbf::kernels::detail {

/// Y(t, i) = Σ_j S(i, j) X(t, j) with portable loops.
void gemmScalar(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads);

/// The same product with AVX2/FMA kernels; only call when avx2Available().
void gemmAvx2(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
              int threads);

/// The same product with AVX-512 kernels (windows of 8 or more tokens use gemmAvx2); only call
/// when avx512Available().
void gemmAvx512(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads);

// The table scheme of binaryGemmTables (binary_product.h), shared by its scalar twin and SIMD
// kernels, which compute exactly the same numbers. Columns are cut into tiles of kTableTileCols
// (the token zero past `cols`); every group of 4 columns of a tile has the 16 signed sums
//   T[e] = fl(fl(σ0·x0 + σ1·x1) + fl(σ2·x2 + σ3·x3)),  σb = (bit b of e ? −1 : +1),
// and with M the largest |T| of the tile, scale and inverse from tableTileScale(M, …), every sum
// is stored as the integer q = nearbyint(fl(T · inverse)), |q| ≤ kTableLevels (fl is monotone, so
// fl(M · fl(kTableLevels / M)) stays below kTableLevels + 1/2). A row's tile result is the exact
// integer Q = Σ_groups q[its 4 sign bits], and y = Σ_tiles in order: acc = fma(float(Q), scale, acc)
// from acc = 0. Q stays below 64 · 32767 < 2^24, so float(Q) is exact.
inline constexpr std::int64_t kTableTileCols = 256;
inline constexpr std::int64_t kTableTileGroups = kTableTileCols / 4;
inline constexpr float kTableLevels = 32767.0f;

/// Scale (M / kTableLevels) and inverse (kTableLevels / M) of a tile whose largest |T| is maxAbs.
/// A tile with a non-finite sum gets scale NaN (its rows come out NaN); one with maxAbs below
/// 2^-100 gets scale and inverse 0 (its at most 64 · maxAbs per row is dropped). Defined in a
/// source without ISA flags so that every path calls the same code.
struct TileScale {
    float scale;
    float inverse;
};
TileScale tableTileScale(float maxAbs, bool nonFinite);

/// y[i] ≈ Σ_j S(i, j) x[j] through 16-bit tables (the scheme above), portable loops.
void gemvTablesScalar(const SignRows& S, const float* x, float* y, int threads);

/// The same numbers, bit for bit, with AVX2 byte shuffles; only call when avx2Available().
void gemvTablesAvx2(const SignRows& S, const float* x, float* y, int threads);

/// A growable 64-byte-aligned float buffer, reused across calls to keep allocations out of the
/// per-token path. Not thread-safe: keep one per thread (thread_local). Its functions are defined
/// in a source without ISA flags (see kernel_table.h).
class AlignedScratch {
public:
    /// A buffer of at least `count` floats; previous contents are not preserved on growth.
    /// Throws std::bad_alloc.
    float* floats(std::size_t count);

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> m_data;
    std::size_t m_capacity = 0;
};

}  // namespace mdbf::kernels::detail
