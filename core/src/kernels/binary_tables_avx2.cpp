// AVX2 kernel of the table product of one token (binaryGemvTables; the scheme and its exact
// arithmetic are in binary_product_impl.h, the scalar twin in binary_product_scalar.cpp). Compiled
// with -mavx2 -mfma -mf16c (core/CMakeLists.txt); only reached when avx2Available().
//
// vpshufb looks up 32 bytes at once in the 16-byte table of its 128-bit lane, so the 16 byte lanes
// of a half must hold the 4 sign bits of one group of columns for 16 different rows. The bits are
// therefore read from the block layout of binary_product_impl.h, built once per matrix: a 32-byte
// load gives, per row, the bits of columns 8j … 8j + 7 in the low lane and 128 + 8j … in the high
// lane, and its low and high nibbles are the indices of two lookups, with no shuffling of the bits
// in the loop. A table register holds group p of a tile in its low lane and group 32 + p in its
// high lane, so each lane accumulates one half (one scale set) of the tile; the registers are
// stored in the order of binary_tables_simd.h, which the AVX-512 kernel shares.
//
// The 18-bit entries u = q + 2^17 are stored as three tables of 6-bit digits (u = 4096·hi + 64·mid
// + lo). Four lookups of a digit table (both nibbles of two loads, the same rows) add up in bytes
// to at most 252; these byte sums of rows 2i and 2i + 1 sit in 16-bit lane i and are added as
// words, Σ(even + 256·odd) modulo 2^16, while their odd bytes shifted down accumulate Σ odd, from
// which Σ even follows exactly (both stay below 4032). After each pair of tiles (one scale set per
// lane) the digit sums are combined exactly in 32 bits, the bias 32 · 2^17 per half and tile
// having been taken off by the start values, and scaled into float.
//
// Per 128 sign-additions (one lookup of 32 rows' nibbles): 3 shuffles, 2.25 byte adds, 0.75 word
// shifts and 1.5 word adds, plus 1.5 ops of nibble extraction; 16-bit tables with two 8-bit digits
// need 2 shuffles but 2 shifts and 4 adds (no byte pre-sums), so the extra 2 bits of precision
// cost no time. That mix of 36 operations per 512 sign-additions is what bounds the kernel: on Zen 5
// it runs at about 12.6 operations per ns on its own (bench_kernels prints it), about 1.8× the
// memory-bandwidth bound of one thread, and the loop reaches about 94% of it (docs/GENERATION.md,
// "The one-token kernels' ceiling"). The tables (3 KiB per tile,
// built once per call, the tile pairs split among the threads) are used a panel of 8 tiles
// (24 KiB) at a time, which stays in L1 while every row block passes; each block carries its
// accumulators from panel to panel. Every row is computed in its own lanes with a fixed order of
// operations, independent of the thread count.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <omp.h>

#include "kernels/binary_product_impl.h"
#include "kernels/binary_tables_simd.h"

#include "kernels/simd_intrinsics.h"

namespace mdbf::kernels::detail {

#if defined(__AVX2__) && defined(__FMA__)

namespace {

constexpr std::int32_t kBias = 1 << 17;  // u = q + kBias in [1, 2^18 − 1]
static_assert(kTableLevels + 1.0f == float(kBias));

// The largest |T| of the groups of a 128-column half at x, folded into maxAbs, and whether one is
// not finite, into bad. Rounding is monotone and symmetric, so the largest |T| of a group is the
// sum under its own signs, fl(fl(|x0| + |x1|) + fl(|x2| + |x3|)), the very number the tables hold
// for that entry: no sum needs to be formed, let alone kept, before the scale is known; and it is
// infinite or NaN exactly when one of the group's sums is.
[[gnu::always_inline]] inline void halfMaxAbs(const float* x, __m256& maxAbs, __m256& bad)
{
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 inf = _mm256_set1_ps(__builtin_inff());
    for (std::int64_t c = 0; c < kTableHalfCols; c += 32) {
        __m256 a[4];
        for (int k = 0; k < 4; ++k) a[k] = _mm256_and_ps(_mm256_load_ps(x + c + 8 * k), absMask);
        // Pair sums of the 8 groups, then their group sums (lanes in a mixed order, which a
        // maximum does not see).
        const __m256 m = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        maxAbs = _mm256_max_ps(maxAbs, m);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(m, inf, _CMP_NLT_UQ));
    }
}

// The tables of the tiles of tile pairs [pairBegin, pairEnd) of x (zero-padded to whole tiles at
// xp; tiles at or past `tiles` are skipped): tile t at tab + t · kTileTableBytes, in the order of
// binary_tables_simd.h; scales[2u + c] for the scale set of halves 4u + c and 4u + 2 + c.
void buildTables(const float* xp, std::int64_t tiles, std::int64_t pairBegin, std::int64_t pairEnd, std::uint8_t* tab,
                 float* scales)
{
    const __m256 s0 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s1 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    const __m256i bias = _mm256_set1_epi32(kBias);
    const __m256i digit = _mm256_set1_epi32(63);
    // After packs and packus, dwords hold entries (0–3, 8–11) of two digits, then (4–7, 12–15).
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (std::int64_t u = pairBegin; u < pairEnd; ++u) {
        // Halves 4u … 4u + 3 that exist; half h belongs to set h % 2.
        const std::int64_t halves = 2 * std::min(kTableSetTiles, tiles - kTableSetTiles * u);
        const float* x0 = xp + 4 * u * kTableHalfCols;
        __m256 maxAbs[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256 bad[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (std::int64_t h = 0; h < halves; ++h) halfMaxAbs(x0 + h * kTableHalfCols, maxAbs[h % 2], bad[h % 2]);
        __m256 inverse[2];
        for (int c = 0; c < 2; ++c) {
            alignas(32) float lanes[8];
            _mm256_store_ps(lanes, maxAbs[c]);
            const float setMax = *std::max_element(lanes, lanes + 8);
            const TileScale ts = tableTileScale(setMax, _mm256_movemask_ps(bad[c]) != 0);
            scales[2 * u + c] = ts.scale;
            inverse[c] = _mm256_set1_ps(ts.inverse);
        }
        for (std::int64_t h = 0; h < halves; ++h) {
            const float* x = x0 + h * kTableHalfCols;
            std::uint8_t* dst = tab + (kTableSetTiles * u + h / 2) * kTileTableBytes + (h % 2) * 16;
            for (std::int64_t g = 0; g < kTableHalfGroups; ++g) {
                const float* c = x + 4 * g;
                // Products with ±1 are exact: lo = fl(σ0·x0 + σ1·x1), hi = fl(σ2·x2 ± x3), entries 0–7
                // with σ3 = +1 and 8–15 with σ3 = −1.
                const __m256 lo =
                    _mm256_fmadd_ps(_mm256_broadcast_ss(c + 1), s1, _mm256_mul_ps(_mm256_broadcast_ss(c), s0));
                const __m256 x2 = _mm256_mul_ps(_mm256_broadcast_ss(c + 2), s2);
                const __m256 x3 = _mm256_broadcast_ss(c + 3);
                const __m256 e0 = _mm256_add_ps(lo, _mm256_add_ps(x2, x3));
                const __m256 e1 = _mm256_add_ps(lo, _mm256_sub_ps(x2, x3));
                const __m256i u0 = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(e0, inverse[h % 2])), bias);
                const __m256i u1 = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(e1, inverse[h % 2])), bias);
                const __m256i hi = _mm256_packs_epi32(_mm256_srli_epi32(u0, 12), _mm256_srli_epi32(u1, 12));
                const __m256i mid = _mm256_packs_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 6), digit),
                                                       _mm256_and_si256(_mm256_srli_epi32(u1, 6), digit));
                const __m256i lo6 = _mm256_packs_epi32(_mm256_and_si256(u0, digit), _mm256_and_si256(u1, digit));
                const __m256i hiMid = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(hi, mid), order);
                const __m256i loLo = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(lo6, lo6), order);
                _mm_store_si128(reinterpret_cast<__m128i*>(dst + tableRegister(g, 0)), _mm256_castsi256_si128(hiMid));
                _mm_store_si128(reinterpret_cast<__m128i*>(dst + tableRegister(g, 1)), _mm256_extracti128_si256(hiMid, 1));
                _mm_store_si128(reinterpret_cast<__m128i*>(dst + tableRegister(g, 2)), _mm256_castsi256_si128(loLo));
            }
        }
    }
}

// Adds the byte sums of one tile (16 vectors of the block layout at v, tables at tt) to s.
[[gnu::always_inline]] inline void tileSums(const __m256i* v, const std::uint8_t* tt, DigitSums& s)
{
    const __m256i nibble = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 8
    for (int j = 0; j < kBlockRows; j += 2) {
        const __m256i v0 = _mm256_loadu_si256(v + j);
        const __m256i v1 = _mm256_loadu_si256(v + j + 1);
        const __m256i idx[4] = {_mm256_and_si256(v0, nibble), _mm256_and_si256(_mm256_srli_epi16(v0, 4), nibble),
                                _mm256_and_si256(v1, nibble), _mm256_and_si256(_mm256_srli_epi16(v1, 4), nibble)};
#pragma GCC unroll 3
        for (int p = 0; p < kPlanes; ++p) {
            __m256i sum = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const auto* reg = reinterpret_cast<const __m256i*>(tt + tableRegister(2 * j + k, p));
                sum = _mm256_add_epi8(sum, _mm256_shuffle_epi8(_mm256_load_si256(reg), idx[k]));
            }
            s.all[p] = _mm256_add_epi16(s.all[p], sum);
            s.odd[p] = _mm256_add_epi16(s.odd[p], _mm256_srli_epi16(sum, 8));
        }
        // Integer adds may be reassociated: without this GCC computes all lookups first and
        // spills them. The empty asm keeps the running sums in registers, step by step.
        asm("" : "+x"(s.all[0]), "+x"(s.all[1]), "+x"(s.all[2]), "+x"(s.odd[0]), "+x"(s.odd[1]), "+x"(s.odd[2]));
    }
}

// The tiles of one panel for the 16 rows of a block: `ntiles` tiles at `blocks` (kTableBlockBytes
// each, `end` the end of the layout; the first tile of a pair), their tables at tab and the scales
// of their sets at scales; acc holds the four accumulators of the block (32 floats) and is updated.
void blockPanel(const std::uint8_t* blocks, const std::uint8_t* end, std::int64_t ntiles, const std::uint8_t* tab,
                const float* scales, float* accMem)
{
    __m256 acc[4];
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_load_ps(accMem + 8 * k);
    for (std::int64_t t0 = 0; t0 < ntiles; t0 += kTableSetTiles) {
        const std::int64_t n = std::min(kTableSetTiles, ntiles - t0);
        DigitSums s;
        s.all[0] = _mm256_set1_epi16(biasedAllStart(n));
        s.odd[0] = _mm256_set1_epi16(biasedOddStart(n));
        for (int p = 1; p < kPlanes; ++p) s.all[p] = _mm256_setzero_si256(), s.odd[p] = _mm256_setzero_si256();
        for (std::int64_t t = t0; t < t0 + n; ++t) {
            prefetchLayoutAhead(blocks, t, end);
            tileSums(reinterpret_cast<const __m256i*>(blocks + t * kTableBlockBytes), tab + t * kTileTableBytes, s);
        }
        scalePair(s, scales + t0, acc);
    }
    for (int k = 0; k < 4; ++k) _mm256_store_ps(accMem + 8 * k, acc[k]);
}

// y[0 .. valid) of a block from its accumulators: rows 0, 2, 4, 6 | 8 … 14 | 1 … 7 | 9 … 15, the
// two halves' lanes added.
void finishBlock(const float* accMem, float* y, int valid)
{
    __m128 rows[4];
    for (int k = 0; k < 4; ++k) rows[k] = _mm_add_ps(_mm_load_ps(accMem + 8 * k), _mm_load_ps(accMem + 8 * k + 4));
    alignas(32) float out[kBlockRows];
    _mm_store_ps(out, _mm_unpacklo_ps(rows[0], rows[2]));
    _mm_store_ps(out + 4, _mm_unpackhi_ps(rows[0], rows[2]));
    _mm_store_ps(out + 8, _mm_unpacklo_ps(rows[1], rows[3]));
    _mm_store_ps(out + 12, _mm_unpackhi_ps(rows[1], rows[3]));
    std::memcpy(y, out, static_cast<std::size_t>(valid) * sizeof(float));
}

// Rows [16·blockBegin, min(rows, 16·blockEnd)) of y, panel after panel.
void rowRange(const SignRows& S, std::int64_t tiles, const std::uint8_t* tab, const float* scales, float* y,
              std::int64_t blockBegin, std::int64_t blockEnd, TableBlockPanel panel)
{
    if (blockBegin >= blockEnd) return;
    const std::int64_t blocks = (S.rows + kBlockRows - 1) / kBlockRows;
    const std::uint8_t* end = S.blocks + blocks * tiles * kTableBlockBytes;
    constexpr std::int64_t kAccFloats = 32;
    thread_local AlignedScratch accScratch;
    float* acc = accScratch.floats(static_cast<std::size_t>((blockEnd - blockBegin) * kAccFloats));
    std::fill(acc, acc + (blockEnd - blockBegin) * kAccFloats, 0.0f);
    for (std::int64_t first = 0; first < tiles; first += kTablePanelTiles) {
        const std::int64_t ntiles = std::min(kTablePanelTiles, tiles - first);
        for (std::int64_t b = blockBegin; b < blockEnd; ++b)
            panel(S.blocks + tableBlockOffset(blocks, tiles, b, first), end, ntiles, tab + first * kTileTableBytes,
                  scales + first, acc + (b - blockBegin) * kAccFloats);
    }
    for (std::int64_t b = blockBegin; b < blockEnd; ++b) {
        const int valid = static_cast<int>(std::min<std::int64_t>(kBlockRows, S.rows - b * kBlockRows));
        finishBlock(acc + (b - blockBegin) * kAccFloats, y + b * kBlockRows, valid);
    }
}

}  // namespace

void gemvTablesWith(const SignRows& S, const float* x, float* y, int threads, TableBlockPanel panel)
{
    const std::int64_t tiles = (S.cols + kTableTileCols - 1) / kTableTileCols;
    const std::int64_t paddedCols = tiles * kTableTileCols;
    const std::int64_t pairs = (tiles + kTableSetTiles - 1) / kTableSetTiles;
    // One buffer: padded x, scales (two per tile pair), tables (3 KiB per tile).
    thread_local AlignedScratch scratch;
    const std::int64_t tableFloats = tiles * kTileTableBytes / static_cast<std::int64_t>(sizeof(float));
    const std::int64_t scaleFloats = (2 * pairs + 15) / 16 * 16;
    float* xp = scratch.floats(static_cast<std::size_t>(paddedCols + scaleFloats + tableFloats));
    float* scales = xp + paddedCols;
    auto* tab = reinterpret_cast<std::uint8_t*>(scales + scaleFloats);
    std::memcpy(xp, x, static_cast<std::size_t>(S.cols) * sizeof(float));
    std::fill(xp + S.cols, xp + paddedCols, 0.0f);

    // Whole 16-row blocks per thread; tables built by all threads (tile pairs split among them), then
    // shared after a barrier, so that the call is a single parallel region.
    const std::int64_t blocks = (S.rows + kBlockRows - 1) / kBlockRows;
    const int team = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, blocks)));
    if (team == 1) {
        buildTables(xp, tiles, 0, pairs, tab, scales);
        rowRange(S, tiles, tab, scales, y, 0, blocks, panel);
        return;
    }
#pragma omp parallel num_threads(team)
    {
        const std::int64_t id = omp_get_thread_num();
        const std::int64_t nt = omp_get_num_threads();
        buildTables(xp, tiles, pairs * id / nt, pairs * (id + 1) / nt, tab, scales);
#pragma omp barrier
        rowRange(S, tiles, tab, scales, y, blocks * id / nt, blocks * (id + 1) / nt, panel);
    }
}

void gemvTablesAvx2(const SignRows& S, const float* x, float* y, int threads)
{
    gemvTablesWith(S, x, y, threads, &blockPanel);
}

#endif

}  // namespace mdbf::kernels::detail
