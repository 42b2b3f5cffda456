// AVX2 kernel of the table product of one token (binaryGemvTables; the scheme and its exact
// arithmetic are in binary_product_impl.h, the scalar twin in binary_product_scalar.cpp). Compiled
// with -mavx2 -mfma -mf16c (core/CMakeLists.txt); only reached when avx2Available().
//
// vpshufb looks up 32 bytes at once in the 16-byte table of its 128-bit lane, so the 16 byte
// lanes of a half must hold the 4 sign bits of one group of columns for 16 different rows. Rows
// are stored row-major (the package layout), so every 256-column tile of 16 rows (16 × 32 bytes)
// is transposed in registers: four rounds of in-lane unpacks (8-, 16-, 32-, 64-bit) turn it into
// 16 vectors whose low half holds byte j of columns 0–127 of the 16 rows and whose high half byte
// j of columns 128–255; the low and high nibbles of every byte are two lookups. A table register
// holds group p of the tile in its low half and group 32 + p in its high half.
//
// The sums are 16-bit, stored as a table of low bytes and one of high bytes plus 128, both
// unsigned: q = 256·(hi − 128) + lo. A lookup vector holds rows 2i and 2i + 1 in the two bytes of
// 16-bit lane i; added as 16-bit words it accumulates Σ(even + 256·odd) modulo 2^16, and its odd
// bytes shifted down accumulate Σ odd, from which Σ even follows exactly, as long as both stay
// below 2^16: per tile a lane takes 32 lookups of at most 255, 8160 in all. After each tile the
// sums are combined exactly in 32 bits (lo + 256·hi, less the 32 · 128 added to the high bytes,
// both halves) and scaled into float. (Widening with vpmaddubsw against 0/1 masks instead
// measured about 10% slower: it needs four multiply-adds per lookup vector against two shifts.)
//
// Per 128 sign-additions (one lookup vector of 32 rows' nibbles): 2 shuffles, 2 shifts, 4 adds,
// and a share of the transpose (2 unpacks) and of the nibble extraction (1.5 ops). The tables
// (2 KiB per tile, built once per call, the tiles split among the threads) are read from L1/L2.
// Every row is computed in its own lanes with a fixed order of operations, independent of the
// block it lands in and of the thread count.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <omp.h>

#include "kernels/binary_product_impl.h"

#include "kernels/simd_intrinsics.h"

namespace mdbf::kernels::detail {

#if defined(__AVX2__) && defined(__FMA__)

namespace {

constexpr int kBlockRows = 16;                                      // rows per transposed block
constexpr std::int64_t kTileWords = kTableTileCols / SignRows::kWordBits;  // 4: one 32-byte load per row
constexpr std::int64_t kTileTableBytes = kTableTileGroups / 2 * 64;       // 32 pairs of (lo, hi) registers
constexpr std::int64_t kEntries = 16;
static_assert(kTileWords == 4 && kTableTileGroups == 64);

// Index of the vector holding byte j after transpose16: its bits reversed.
constexpr int reverse4(int j) { return ((j & 1) << 3) | ((j & 2) << 1) | ((j & 4) >> 1) | ((j & 8) >> 3); }

// One round of transpose16: the 8 pairs of vectors whose indices differ in bit `Bit` interleave
// their Bit-byte units (low halves into the first, high halves into the second).
template <int Bit>
[[gnu::always_inline]] inline void transposeRound(__m256i (&d)[kBlockRows])
{
#pragma GCC unroll 8
    for (int p = 0; p < kBlockRows / 2; ++p) {
        const int s = p / Bit * 2 * Bit + p % Bit;
        const __m256i a = d[s], b = d[s + Bit];
        if constexpr (Bit == 1) {
            d[s] = _mm256_unpacklo_epi8(a, b), d[s + Bit] = _mm256_unpackhi_epi8(a, b);
        } else if constexpr (Bit == 2) {
            d[s] = _mm256_unpacklo_epi16(a, b), d[s + Bit] = _mm256_unpackhi_epi16(a, b);
        } else if constexpr (Bit == 4) {
            d[s] = _mm256_unpacklo_epi32(a, b), d[s + Bit] = _mm256_unpackhi_epi32(a, b);
        } else {
            d[s] = _mm256_unpacklo_epi64(a, b), d[s + Bit] = _mm256_unpackhi_epi64(a, b);
        }
    }
}

// Within each 128-bit lane, a 16 × 16 byte transpose: afterwards byte r of d[reverse4(j)] is the
// former byte j of d[r]. Round k pairs the vectors that differ in bit k of their index.
[[gnu::always_inline]] inline void transpose16(__m256i (&d)[kBlockRows])
{
    transposeRound<1>(d);
    transposeRound<2>(d);
    transposeRound<4>(d);
    transposeRound<8>(d);
}

// The tables of tiles [tileBegin, tileEnd) of x (zero-padded to whole tiles at xp): tile t at
// tab + t · kTileTableBytes, pair p at +64·p: 32 bytes of low bytes (group p, then group 32 + p),
// 32 of high bytes + 128; scales[t].
void buildTables(const float* xp, std::int64_t tileBegin, std::int64_t tileEnd, std::uint8_t* tab, float* scales)
{
    alignas(32) float sums[kTableTileGroups * kEntries];
    const __m256 s0 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s1 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 inf = _mm256_set1_ps(__builtin_inff());
    // Per 128-bit lane: the low bytes of 8 int16 values, then their high bytes.
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10,
                                           12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    // After packs and split, dwords hold entries (0–3, 8–11) low, high, (4–7, 12–15) low, high.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (std::int64_t t = tileBegin; t < tileEnd; ++t) {
        const float* x = xp + t * kTableTileCols;
        __m256 maxAbs = _mm256_setzero_ps();
        __m256 bad = _mm256_setzero_ps();
        for (std::int64_t g = 0; g < kTableTileGroups; ++g) {
            const float* c = x + 4 * g;
            // Products with ±1 are exact: lo = fl(σ0·x0 + σ1·x1), hi = fl(σ2·x2 ± x3), entries 0–7
            // with σ3 = +1 and 8–15 with σ3 = −1.
            const __m256 lo = _mm256_fmadd_ps(_mm256_broadcast_ss(c + 1), s1, _mm256_mul_ps(_mm256_broadcast_ss(c), s0));
            const __m256 x2 = _mm256_mul_ps(_mm256_broadcast_ss(c + 2), s2);
            const __m256 x3 = _mm256_broadcast_ss(c + 3);
            const __m256 e0 = _mm256_add_ps(lo, _mm256_add_ps(x2, x3));
            const __m256 e1 = _mm256_add_ps(lo, _mm256_sub_ps(x2, x3));
            _mm256_store_ps(sums + g * kEntries, e0);
            _mm256_store_ps(sums + g * kEntries + 8, e1);
            const __m256 a0 = _mm256_and_ps(e0, absMask);
            const __m256 a1 = _mm256_and_ps(e1, absMask);
            maxAbs = _mm256_max_ps(maxAbs, _mm256_max_ps(a0, a1));
            bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(a0, inf, _CMP_NLT_UQ), _mm256_cmp_ps(a1, inf, _CMP_NLT_UQ)));
        }
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, maxAbs);
        const float tileMax = *std::max_element(lanes, lanes + 8);
        const TileScale ts = tableTileScale(tileMax, _mm256_movemask_ps(bad) != 0);
        scales[t] = ts.scale;
        const __m256 inverse = _mm256_set1_ps(ts.inverse);
        std::uint8_t* dst = tab + t * kTileTableBytes;
        for (std::int64_t g = 0; g < kTableTileGroups; ++g) {
            const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(sums + g * kEntries), inverse));
            const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(sums + g * kEntries + 8), inverse));
            const __m256i bytes =
                _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_packs_epi32(q0, q1), split), order);
            std::uint8_t* pair = dst + (g % 32) * 64 + (g / 32) * 16;
            _mm_store_si128(reinterpret_cast<__m128i*>(pair), _mm256_castsi256_si128(bytes));
            _mm_store_si128(reinterpret_cast<__m128i*>(pair + 32),
                            _mm_xor_si128(_mm256_extracti128_si256(bytes, 1), _mm_set1_epi8(-128)));
        }
    }
}

// y[0 .. valid) for the 16 rows at base + r · wordsPerRow; `next`, when not null, is the following
// block, prefetched meanwhile (each row is read in a few 64-byte steps, too few for the hardware
// prefetchers to lock on).
void rowBlock(const std::uint64_t* base, std::int64_t wordsPerRow, std::int64_t tiles, const std::uint8_t* tab,
              const float* scales, float* y, int valid, const std::uint64_t* next)
{
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const __m256i loHi = _mm256_set1_epi32(0x01000001);  // int16 pairs (1, 256): lo + 256·hi
    const __m256i bias = _mm256_set1_epi16(128 * 32);
    __m256 accEven = _mm256_setzero_ps();
    __m256 accOdd = _mm256_setzero_ps();
    for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t w0 = t * kTileWords;
        const std::int64_t words = std::min(kTileWords, wordsPerRow - w0);
        __m256i d[kBlockRows];
        if (words == kTileWords) {
#pragma GCC unroll 16
            for (int r = 0; r < kBlockRows; ++r)
                d[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + r * wordsPerRow + w0));
        } else {
            // The masked load never touches words past the end of a row; missing words are zero.
            const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(words), _mm256_setr_epi64x(0, 1, 2, 3));
#pragma GCC unroll 16
            for (int r = 0; r < kBlockRows; ++r)
                d[r] = _mm256_maskload_epi64(reinterpret_cast<const long long*>(base + r * wordsPerRow + w0), mask);
        }
        if (next != nullptr)
#pragma GCC unroll 16
            for (int r = 0; r < kBlockRows; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(next + r * wordsPerRow + w0), _MM_HINT_T0);
        transpose16(d);

        // Per 16-bit lane: Σ(even + 256·odd) mod 2^16 and Σ odd, of the low and high bytes.
        __m256i loAll = _mm256_setzero_si256(), loOdd = _mm256_setzero_si256();
        __m256i hiAll = _mm256_setzero_si256(), hiOdd = _mm256_setzero_si256();
        const std::uint8_t* tt = tab + t * kTileTableBytes;
#pragma GCC unroll 16
        for (int j = 0; j < kBlockRows; ++j) {
            const __m256i v = d[reverse4(j)];
            const __m256i idx[2] = {_mm256_and_si256(v, nibble), _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)};
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                const std::uint8_t* pair = tt + (2 * j + h) * 64;
                const __m256i lo = _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(pair)), idx[h]);
                const __m256i hi =
                    _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(pair + 32)), idx[h]);
                loAll = _mm256_add_epi16(loAll, lo);
                loOdd = _mm256_add_epi16(loOdd, _mm256_srli_epi16(lo, 8));
                hiAll = _mm256_add_epi16(hiAll, hi);
                hiOdd = _mm256_add_epi16(hiOdd, _mm256_srli_epi16(hi, 8));
            }
            // Integer adds may be reassociated: without this GCC computes all lookups first and
            // spills them. The empty asm keeps the running sums in registers, step by step.
            asm("" : "+x"(loAll), "+x"(loOdd), "+x"(hiAll), "+x"(hiOdd));
        }
        // 16-bit lane i of each half: rows 2i (even) and 2i + 1 (odd). The high bytes were stored
        // + 128, so 32 lookups added 4096 to each of their sums.
        const __m256i loEven = _mm256_sub_epi16(loAll, _mm256_slli_epi16(loOdd, 8));
        const __m256i hiEven = _mm256_sub_epi16(_mm256_sub_epi16(hiAll, _mm256_slli_epi16(hiOdd, 8)), bias);
        hiOdd = _mm256_sub_epi16(hiOdd, bias);
        const __m256i e03 = _mm256_madd_epi16(_mm256_unpacklo_epi16(loEven, hiEven), loHi);  // rows 0, 2, 4, 6
        const __m256i e47 = _mm256_madd_epi16(_mm256_unpackhi_epi16(loEven, hiEven), loHi);  // rows 8 … 14
        const __m256i o03 = _mm256_madd_epi16(_mm256_unpacklo_epi16(loOdd, hiOdd), loHi);    // rows 1 … 7
        const __m256i o47 = _mm256_madd_epi16(_mm256_unpackhi_epi16(loOdd, hiOdd), loHi);    // rows 9 … 15
        // Both halves of a vector hold the same rows (columns 0–127 and 128–255): add them.
        const __m256i evenRows = _mm256_add_epi32(_mm256_permute2x128_si256(e03, e47, 0x20),
                                                  _mm256_permute2x128_si256(e03, e47, 0x31));
        const __m256i oddRows = _mm256_add_epi32(_mm256_permute2x128_si256(o03, o47, 0x20),
                                                 _mm256_permute2x128_si256(o03, o47, 0x31));
        const __m256 scale = _mm256_broadcast_ss(scales + t);
        accEven = _mm256_fmadd_ps(_mm256_cvtepi32_ps(evenRows), scale, accEven);
        accOdd = _mm256_fmadd_ps(_mm256_cvtepi32_ps(oddRows), scale, accOdd);
    }
    const __m256 lo = _mm256_unpacklo_ps(accEven, accOdd);  // rows 0–3 | 8–11
    const __m256 hi = _mm256_unpackhi_ps(accEven, accOdd);  // rows 4–7 | 12–15
    alignas(32) float out[kBlockRows];
    _mm256_store_ps(out, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_store_ps(out + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    std::memcpy(y, out, static_cast<std::size_t>(valid) * sizeof(float));
}


// Rows [rb, re) of y; rb is a multiple of 16.
void rowRange(const SignRows& S, std::int64_t tiles, const std::uint8_t* tab, const float* scales, float* y,
              std::int64_t rb, std::int64_t re)
{
    const std::int64_t wordsPerRow = S.wordsPerRow;
    std::int64_t i = rb;
    for (; i + kBlockRows <= re; i += kBlockRows) {
        const std::uint64_t* next = i + 2 * kBlockRows <= re ? S.row(i + kBlockRows) : nullptr;
        rowBlock(S.row(i), wordsPerRow, tiles, tab, scales, y + i, kBlockRows, next);
    }
    if (i < re) {
        // A last partial block from a zero-padded copy; a row's result does not depend on its block.
        thread_local AlignedScratch rowScratch;
        auto* padded =
            reinterpret_cast<std::uint64_t*>(rowScratch.floats(static_cast<std::size_t>(2 * kBlockRows * wordsPerRow)));
        const std::int64_t nrows = re - i;
        std::memset(padded, 0, static_cast<std::size_t>(kBlockRows * wordsPerRow) * sizeof(std::uint64_t));
        std::memcpy(padded, S.row(i), static_cast<std::size_t>(nrows * wordsPerRow) * sizeof(std::uint64_t));
        rowBlock(padded, wordsPerRow, tiles, tab, scales, y + i, static_cast<int>(nrows), nullptr);
    }
}

}  // namespace

void gemvTablesAvx2(const SignRows& S, const float* x, float* y, int threads)
{
    const std::int64_t tiles = (S.cols + kTableTileCols - 1) / kTableTileCols;
    const std::int64_t paddedCols = tiles * kTableTileCols;
    // One buffer: padded x, scales, tables (2 KiB per tile).
    thread_local AlignedScratch scratch;
    const std::int64_t tableFloats = tiles * kTileTableBytes / static_cast<std::int64_t>(sizeof(float));
    const std::int64_t scaleFloats = (tiles + 15) / 16 * 16;
    float* xp = scratch.floats(static_cast<std::size_t>(paddedCols + scaleFloats + tableFloats));
    float* scales = xp + paddedCols;
    auto* tab = reinterpret_cast<std::uint8_t*>(scales + scaleFloats);
    std::memcpy(xp, x, static_cast<std::size_t>(S.cols) * sizeof(float));
    std::fill(xp + S.cols, xp + paddedCols, 0.0f);

    // Whole 16-row blocks per thread; tables built by all threads (tiles split among them), then
    // shared after a barrier, so that the call is a single parallel region.
    const std::int64_t blocks = (S.rows + kBlockRows - 1) / kBlockRows;
    const int team = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, blocks)));
    if (team == 1) {
        buildTables(xp, 0, tiles, tab, scales);
        rowRange(S, tiles, tab, scales, y, 0, S.rows);
        return;
    }
#pragma omp parallel num_threads(team)
    {
        const std::int64_t id = omp_get_thread_num();
        const std::int64_t nt = omp_get_num_threads();
        buildTables(xp, tiles * id / nt, tiles * (id + 1) / nt, tab, scales);
#pragma omp barrier
        const std::int64_t rb = blocks * id / nt * kBlockRows;
        const std::int64_t re = std::min(S.rows, blocks * (id + 1) / nt * kBlockRows);
        rowRange(S, tiles, tab, scales, y, rb, re);
    }
}

#endif

}  // namespace mdbf::kernels::detail
