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
// kernels, which compute exactly the same numbers. Columns are cut into halves of kTableHalfCols
// (the token zero past `cols`); every group of 4 columns has the 16 signed sums
//   T[e] = fl(fl(σ0·x0 + σ1·x1) + fl(σ2·x2 + σ3·x3)),  σb = (bit b of e ? −1 : +1).
// Halves share scales in sets of two: of every 512 columns (halves 4u … 4u + 3), halves 4u + c and
// 4u + 2 + c form set s = 2u + c (c = 0, 1), 64 groups. With M the largest |T| of the set, scale
// and inverse from tableTileScale(M, …), every sum is stored as the integer
// q = nearbyint(fl(T · inverse)), |q| ≤ kTableLevels (fl is monotone, so fl(M · fl(kTableLevels / M))
// stays below kTableLevels + 1/2). A row's set result is the exact integer Q = Σ_groups q[its 4 sign
// bits] (|Q| ≤ 64 · kTableLevels < 2^23, so float(Q) is exact); sets alternate between two
// accumulators, acc[s % 2] = fma(float(Q_s), scale_s, acc[s % 2]) from 0 in increasing s, and
// y = acc[0] + acc[1]. (Two halves 256 columns apart, not one, per scale: the SIMD kernel adds the
// digits of two tiles before it widens and scales them.)
inline constexpr std::int64_t kTableHalfCols = 128;
inline constexpr std::int64_t kTableHalfGroups = kTableHalfCols / 4;
inline constexpr std::int64_t kTableTileCols = 2 * kTableHalfCols;  // the unit of the sign layout below
inline constexpr std::int64_t kTableSetTiles = 2;                    // tiles whose halves share scales
inline constexpr float kTableLevels = 131071.0f;                     // 2^17 − 1: q + 2^17 has 18 bits

// The order in which the SIMD table kernel streams the bits (built once per matrix, see
// PackedSigns::derivedLayout): blocks of kTableBlockRows rows × one tile of 256 columns, 512 bytes
// each. Tiles are grouped in panels of kTablePanelTiles (the last one may be shorter), whose tables
// stay in L1 while all row blocks pass: panel after panel, block after block, tile after tile, so
// block b, tile t of panel P (tiles 8P …, nP of them) starts at byte
//   512 · (blocks · 8P + b · nP + t − 8P).
// Inside a block, 32-byte vector j holds in byte r the bits of columns 8j … 8j + 7 of row r and in
// byte 16 + r those of columns 128 + 8j …; rows past `rows` and columns past the words are zero.
inline constexpr std::int64_t kTableBlockRows = 16;
inline constexpr std::int64_t kTableBlockBytes = kTableBlockRows * kTableTileCols / 8;
inline constexpr std::int64_t kTablePanelTiles = 8;

/// Byte offset of block b, tile t in the layout above, for a matrix of `blocks` blocks × `tiles` tiles.
inline std::int64_t tableBlockOffset(std::int64_t blocks, std::int64_t tiles, std::int64_t b, std::int64_t t)
{
    const std::int64_t first = t / kTablePanelTiles * kTablePanelTiles;
    const std::int64_t panelTiles = tiles - first < kTablePanelTiles ? tiles - first : kTablePanelTiles;
    return kTableBlockBytes * (blocks * first + b * panelTiles + t - first);
}

/// Scale (M / kTableLevels) and inverse (kTableLevels / M) of a scale set whose largest |T| is
/// maxAbs. A set with a non-finite sum gets scale NaN (its rows come out NaN); one with maxAbs below
/// 2^-100 gets scale and inverse 0 (its at most 64 · maxAbs per row is dropped). Defined in a
/// source without ISA flags so that every path calls the same code.
struct TileScale {
    float scale;
    float inverse;
};
TileScale tableTileScale(float maxAbs, bool nonFinite);

/// y[i] ≈ Σ_j S(i, j) x[j] through 18-bit tables (the scheme above), portable loops.
void gemvTablesScalar(const SignRows& S, const float* x, float* y, int threads);

/// The same numbers, bit for bit, with AVX2 byte shuffles; only call when avx2Available() and
/// S.blocks holds the layout above.
void gemvTablesAvx2(const SignRows& S, const float* x, float* y, int threads);

/// The same numbers with AVX-512 byte shuffles of 64 bytes (the AVX2 kernel's tables and
/// driver); only call when avx512Available() and S.blocks holds the layout above.
void gemvTablesAvx512(const SignRows& S, const float* x, float* y, int threads);

/// The rows of one 16-row block over one panel of `ntiles` tiles for a SIMD table kernel: the
/// block's tiles at `blocks` (`end`: the end of the layout, for prefetching), their tables at tab
/// and the scales of their sets at scales; acc holds the block's 32 accumulators and is updated.
using TableBlockPanel = void (*)(const std::uint8_t* blocks, const std::uint8_t* end, std::int64_t ntiles,
                                 const std::uint8_t* tab, const float* scales, float* acc);

/// The SIMD table product around a block-panel kernel: builds the tables of x (AVX2), splits the
/// row blocks among the threads and runs `panel` over them; only call when avx2Available().
void gemvTablesWith(const SignRows& S, const float* x, float* y, int threads, TableBlockPanel panel);

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
