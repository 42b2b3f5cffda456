// AVX2/FMA kernels for products with bit-packed ±1 matrices. The only file of the binary products
// compiled with -mavx2 -mfma -mf16c (core/CMakeLists.txt); only reached when avx2Available().
//
// Two kernels, chosen by the number of tokens:
//  * row-lane permutes (one or two tokens, the decode case): the 8 lanes of a vector hold 8 rows
//    of S, and every 3 columns of a token have an 8-entry table of their signed sums,
//    T[e] = Σ_b (bit b of e ? −1 : +1) x[3g + b], which fills one 256-bit register. vpermps takes
//    the low 3 bits of each lane as its index, so with lane r holding sign bits of row r, one
//    shift, one permute and one add accumulate 3 columns × 8 rows (24 sign-additions); each
//    32-bit word of a row is 10 groups of 3 columns and one of 2. Row-major bits are brought into
//    that form by 8 × 8 transposes of 32-bit words (256 columns of 8 rows). Two row vectors share
//    every table load; the tables (1.4 KiB per token and 32 columns) are read from L1/L2 and S is
//    streamed once, with the next block prefetched. Measured on Zen 4 at one token: 65 additions
//    per ns on one core, against 40 for the former kernel (acc += x ⊙ ±1 with the sign vector of
//    8 columns looked up from a 256-entry table, limited by two loads per FMA), bound by the one
//    permute per cycle.
//  * nibble tables (blocks of 8 tokens): for every 4 columns the 16 possible signed sums of those
//    columns are precomputed for 8 tokens at once, so one vector add covers 4 columns × 8 tokens.
//    Tables are built per chunk of 256 columns (32 KiB, L1-resident) and shared by all rows of
//    the thread; building costs 24 vector ops per 4 columns against one add per row. A trailing
//    block of 3–7 tokens is zero-padded; 1–2 trailing tokens take the permute kernel.
// Within a row every kernel uses a fixed order of operations, independent of how rows are split
// among threads or blocked, so results are bit-identical for any thread count.

#include <algorithm>
#include <bit>
#include <cstring>

#include <omp.h>

#include "kernels/binary_product_impl.h"
#include "mdbf/base/parallel.h"

#include "kernels/simd_intrinsics.h"

namespace mdbf::kernels::detail {

#if defined(__AVX2__) && defined(__FMA__)

namespace {

constexpr std::int64_t kWordBits = SignRows::kWordBits;
constexpr std::int64_t kLanes = 8;            // floats per __m256
constexpr std::int64_t kTokenBlock = kLanes;  // tokens per nibble-table block
constexpr std::int64_t kLutMinTokens = 3;     // fewer leftover tokens take the permute kernel
constexpr std::int64_t kNibblesPerWord = kWordBits / 4;
constexpr std::int64_t kNibbleEntries = 16;
constexpr std::int64_t kGroupFloats = kNibbleEntries * kTokenBlock;  // one table per 4 columns
constexpr std::int64_t kChunkWords = 4;                              // 256 columns per table chunk
constexpr std::int64_t kTableFloats = kChunkWords * kNibblesPerWord * kGroupFloats;
constexpr int kLutRowBlock = 4;  // rows sharing one pass over a table chunk (8 add chains)
// Row-lane permute kernel (one or two tokens): lanes hold 8 rows, tiles of 4 words per row
// (256 columns) are transposed 8 × 8 in 32-bit words.
constexpr int kGroupsPerDword = 11;          // 10 groups of 3 columns and one of 2 per 32 bits
constexpr std::int64_t kPermTileWords = 4;   // 8 dwords: one 8 × 8 transpose
constexpr int kPermRowVectors = 2;           // row vectors sharing each table load
constexpr std::int64_t kPermRows = kPermRowVectors * kLanes;
static_assert(kGroupsPerDword == 32 / 3 + 1 && kPermTileWords * 2 == kLanes);

// Byte offset of a 32-byte table entry selected by the field of `word` starting at bit `shift`:
// ((word >> shift) & fieldMask) · 32 as one rotate (rorx where available) and one AND; `mask` is
// fieldMask << 5 and the field never wraps around, so rotating equals shifting here.
inline std::uint64_t entryOffset(std::uint64_t word, int shift, std::uint64_t mask)
{
    return std::rotr(word, (shift - 5) & 63) & mask;
}

// tab[(c·11 + g)·NT + t] (8 floats each) = Σ_b (bit b of e ? −1 : +1) x_t[32c + 3g + b] for the
// columns of group g of dword c (b < 3, or b < 2 for the last group); xs[t] zero-padded to
// 32·dwords columns.
template <int NT>
void buildPermTables(const float* const* xs, std::int64_t dwords, float* tab)
{
    const __m256 s0 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s1 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    for (std::int64_t c = 0; c < dwords; ++c) {
        float* dst = tab + c * kGroupsPerDword * NT * kLanes;
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
            const float* x = xs[t] + c * 32;
#pragma GCC unroll 10
            for (int g = 0; g < kGroupsPerDword - 1; ++g) {
                // Products with ±1 are exact: each entry is ((±x0 ± x1) ± x2), two roundings.
                const __m256 two =
                    _mm256_fmadd_ps(_mm256_broadcast_ss(x + 3 * g + 1), s1, _mm256_mul_ps(_mm256_broadcast_ss(x + 3 * g), s0));
                _mm256_store_ps(dst + (g * NT + t) * kLanes, _mm256_fmadd_ps(_mm256_broadcast_ss(x + 3 * g + 2), s2, two));
            }
            constexpr int g = kGroupsPerDword - 1;
            _mm256_store_ps(dst + (g * NT + t) * kLanes,
                            _mm256_fmadd_ps(_mm256_broadcast_ss(x + 31), s1, _mm256_mul_ps(_mm256_broadcast_ss(x + 30), s0)));
        }
    }
}

// In place: afterwards lane r of d[c] is 32-bit word c of the former d[r].
inline void transpose8(__m256i (&d)[kLanes])
{
    __m256i t[kLanes];
#pragma GCC unroll 4
    for (int i = 0; i < kLanes; i += 2) {
        t[i] = _mm256_unpacklo_epi32(d[i], d[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(d[i], d[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < kLanes; i += 4) {
        d[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        d[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        d[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        d[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm256_permute2x128_si256(d[i], d[i + 4], 0x20);
        t[i + 4] = _mm256_permute2x128_si256(d[i], d[i + 4], 0x31);
    }
#pragma GCC unroll 8
    for (int i = 0; i < kLanes; ++i) d[i] = t[i];
}

// Y[t·ldy + 8v + r] = row 8v + r of the R·8 rows at base + row·wordsPerRow, times token t, for
// rows below `valid`; `next`, when not null, is the following block, prefetched meanwhile (each
// row is read in a few 64-byte steps, too few for the hardware prefetchers to lock on).
template <int R, int NT>
void permRowBlock(const std::uint64_t* base, std::int64_t wordsPerRow, const float* tab, float* Y,
                                   std::int64_t ldy, int valid, const std::uint64_t* next)
{
    constexpr int P = NT == 1 ? 2 : 1;
    constexpr std::int64_t kDwordTableFloats = kGroupsPerDword * NT * kLanes;
    __m256 acc[R][NT][P];
#pragma GCC unroll 4
    for (int v = 0; v < R; ++v)
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
#pragma GCC unroll 2
            for (int p = 0; p < P; ++p) acc[v][t][p] = _mm256_setzero_ps();

    for (std::int64_t w0 = 0; w0 < wordsPerRow; w0 += kPermTileWords) {
        const int words = static_cast<int>(std::min(kPermTileWords, wordsPerRow - w0));
        // The masked load never touches words past the end of a row.
        const __m256i wordMask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(words), _mm256_setr_epi64x(0, 1, 2, 3));
        alignas(32) std::uint32_t transposed[R][kLanes * kLanes];
#pragma GCC unroll 4
        for (int v = 0; v < R; ++v) {
            __m256i d[kLanes];
#pragma GCC unroll 8
            for (int r = 0; r < kLanes; ++r)
                d[r] = _mm256_maskload_epi64(reinterpret_cast<const long long*>(base + (v * kLanes + r) * wordsPerRow + w0),
                                             wordMask);
            if (next != nullptr)
#pragma GCC unroll 8
                for (int r = 0; r < kLanes; ++r)
                    _mm_prefetch(reinterpret_cast<const char*>(next + (v * kLanes + r) * wordsPerRow + w0), _MM_HINT_T0);
            transpose8(d);
#pragma GCC unroll 8
            for (int c = 0; c < kLanes; ++c)
                _mm256_store_si256(reinterpret_cast<__m256i*>(transposed[v] + c * kLanes), d[c]);
        }
        const float* tab0 = tab + 2 * w0 * kDwordTableFloats;
        for (int c = 0; c < 2 * words; ++c) {
            __m256i bits[R];
#pragma GCC unroll 4
            for (int v = 0; v < R; ++v)
                bits[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(transposed[v] + c * kLanes));
            const float* tc = tab0 + c * kDwordTableFloats;
#pragma GCC unroll 11
            for (int g = 0; g < kGroupsPerDword; ++g) {
#pragma GCC unroll 4
                for (int t = 0; t < NT; ++t) {
                    const __m256 table = _mm256_load_ps(tc + (g * NT + t) * kLanes);
#pragma GCC unroll 4
                    for (int v = 0; v < R; ++v) {
                        // vpermps reads only the low 3 bits of each index lane: no masking needed.
                        const __m256i idx = g == 0 ? bits[v] : _mm256_srli_epi32(bits[v], 3 * g);
                        acc[v][t][g % P] = _mm256_add_ps(acc[v][t][g % P], _mm256_permutevar8x32_ps(table, idx));
                    }
                }
            }
        }
    }

#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        alignas(32) float out[R * kLanes];
#pragma GCC unroll 4
        for (int v = 0; v < R; ++v)
            _mm256_store_ps(out + v * kLanes, P == 2 ? _mm256_add_ps(acc[v][t][0], acc[v][t][P - 1]) : acc[v][t][0]);
        std::memcpy(Y + t * ldy, out, static_cast<std::size_t>(valid) * sizeof(float));
    }
}

// Rows [rb, re) for NT tokens held zero-padded at xr + t·colsPadded; writes Y rows tokenBegin + t.
// A last block of fewer than kPermRows rows is copied into `padded` (zero rows beyond it); a row
// computes the same operations in any lane, so this changes no result.
template <int NT>
void permRange(const SignRows& S, const float* xr, std::int64_t colsPadded, std::int64_t tokenBegin, float* Y,
               std::int64_t ldy, std::int64_t rb, std::int64_t re, float* tab, std::uint64_t* padded)
{
    const float* xs[NT];
    for (int t = 0; t < NT; ++t) xs[t] = xr + t * colsPadded;
    const std::int64_t wordsPerRow = S.wordsPerRow;
    buildPermTables<NT>(xs, 2 * wordsPerRow, tab);
    float* y = Y + tokenBegin * ldy;
    std::int64_t i = rb;
    for (; i + kPermRows <= re; i += kPermRows) {
        const std::uint64_t* next = i + 2 * kPermRows <= re ? S.row(i + kPermRows) : nullptr;
        permRowBlock<kPermRowVectors, NT>(S.row(i), wordsPerRow, tab, y + i, ldy, kPermRows, next);
    }
    if (i < re) {
        const std::int64_t nrows = re - i;
        std::memset(padded, 0, static_cast<std::size_t>(kPermRows * wordsPerRow) * sizeof(std::uint64_t));
        std::memcpy(padded, S.row(i), static_cast<std::size_t>(nrows * wordsPerRow) * sizeof(std::uint64_t));
        permRowBlock<kPermRowVectors, NT>(padded, wordsPerRow, tab, y + i, ldy, static_cast<int>(nrows), nullptr);
    }
}

// tab[16·g + e] (8 floats each) = Σ_b (bit b of e ? −1 : +1) · x[4g + b] for the 8 tokens of the
// block; xp holds 8 token values per column, 4·groups columns.
void buildNibbleTable(const float* xp, std::int64_t groups, float* tab)
{
    const __m256 negate = _mm256_set1_ps(-0.0f);
    for (std::int64_t g = 0; g < groups; ++g) {
        const float* c = xp + g * 4 * kLanes;
        const __m256 x0 = _mm256_load_ps(c);
        const __m256 x1 = _mm256_load_ps(c + kLanes);
        const __m256 x2 = _mm256_load_ps(c + 2 * kLanes);
        const __m256 x3 = _mm256_load_ps(c + 3 * kLanes);
        // Index bits 0/1 flip x0/x1, bits 2/3 flip x2/x3.
        const __m256 lo01 = _mm256_add_ps(x0, x1);
        const __m256 lo[4] = {lo01, _mm256_sub_ps(x1, x0), _mm256_sub_ps(x0, x1), _mm256_xor_ps(lo01, negate)};
        const __m256 hi23 = _mm256_add_ps(x2, x3);
        const __m256 hi[4] = {hi23, _mm256_sub_ps(x3, x2), _mm256_sub_ps(x2, x3), _mm256_xor_ps(hi23, negate)};
        float* t = tab + g * kGroupFloats;
#pragma GCC unroll 16
        for (int e = 0; e < kNibbleEntries; ++e) _mm256_store_ps(t + e * kLanes, _mm256_add_ps(lo[e & 3], hi[e >> 2]));
    }
}

// acc8[r] (8 tokens of row r) += Σ over `words` words of table lookups; rows[r] points at the
// chunk's first word. Even and odd nibbles use separate accumulators to hide add latency.
template <int R>
void lutRowBlock(const std::uint64_t* const* rows, std::int64_t words, const float* tab, float* acc8)
{
    __m256 a0[R], a1[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        a0[r] = _mm256_load_ps(acc8 + r * kLanes);
        a1[r] = _mm256_setzero_ps();
    }
    const char* group = reinterpret_cast<const char*>(tab);
    constexpr std::int64_t kGroupBytes = kGroupFloats * sizeof(float);
    for (std::int64_t w = 0; w < words; ++w) {
        std::uint64_t bits[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) bits[r] = rows[r][w];
#pragma GCC unroll 16
        for (int q = 0; q < kNibblesPerWord; ++q) {
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const __m256 v = _mm256_load_ps(
                    reinterpret_cast<const float*>(group + q * kGroupBytes + entryOffset(bits[r], 4 * q, 0xFu << 5)));
                if (q & 1)
                    a1[r] = _mm256_add_ps(a1[r], v);
                else
                    a0[r] = _mm256_add_ps(a0[r], v);
            }
        }
        group += kNibblesPerWord * kGroupBytes;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) _mm256_store_ps(acc8 + r * kLanes, _mm256_add_ps(a0[r], a1[r]));
}

// Rows [rb, re) for `blocks` token blocks packed at xp (colsPadded × 8 floats per block);
// ytmp holds 8 floats per row of S. Writes Y rows tokenBegin .. tokenEnd − 1.
void lutRange(const SignRows& S, const float* xp, std::int64_t blocks, std::int64_t colsPadded,
              std::int64_t tokenBegin, std::int64_t tokenEnd, float* Y, std::int64_t ldy, float* ytmp,
              std::int64_t rb, std::int64_t re)
{
    alignas(64) float tab[kTableFloats];
    const std::int64_t wordsPerRow = S.wordsPerRow;
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
        const float* xb = xp + blk * colsPadded * kTokenBlock;
        std::memset(ytmp + rb * kLanes, 0, static_cast<std::size_t>((re - rb) * kLanes) * sizeof(float));
        for (std::int64_t w0 = 0; w0 < wordsPerRow; w0 += kChunkWords) {
            const std::int64_t words = std::min(kChunkWords, wordsPerRow - w0);
            buildNibbleTable(xb + w0 * kWordBits * kTokenBlock, words * kNibblesPerWord, tab);
            std::int64_t i = rb;
            for (; i + kLutRowBlock <= re; i += kLutRowBlock) {
                const std::uint64_t* rows[kLutRowBlock];
                for (int r = 0; r < kLutRowBlock; ++r) rows[r] = S.row(i + r) + w0;
                lutRowBlock<kLutRowBlock>(rows, words, tab, ytmp + i * kLanes);
            }
            for (; i < re; ++i) {
                const std::uint64_t* rows[1] = {S.row(i) + w0};
                lutRowBlock<1>(rows, words, tab, ytmp + i * kLanes);
            }
        }
        const std::int64_t t0 = tokenBegin + blk * kTokenBlock;
        const std::int64_t nt = std::min(kTokenBlock, tokenEnd - t0);
        for (std::int64_t t = 0; t < nt; ++t) {
            float* y = Y + (t0 + t) * ldy;
            for (std::int64_t i = rb; i < re; ++i) y[i] = ytmp[i * kLanes + t];
        }
    }
}

}  // namespace

void gemmAvx2(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
              int threads)
{
    const std::int64_t rows = S.rows;
    const std::int64_t cols = S.cols;
    const std::int64_t colsPadded = S.wordsPerRow * kWordBits;

    // Tokens [0, lutTokens) go through nibble tables, the remaining 0–2 through the permute kernel.
    std::int64_t lutTokens = T / kTokenBlock * kTokenBlock;
    if (T - lutTokens >= kLutMinTokens) lutTokens = T;
    const std::int64_t permTokens = T - lutTokens;
    const std::int64_t blocks = (lutTokens + kTokenBlock - 1) / kTokenBlock;

    // Activations re-laid out once per call, zero-padded so that padding bits meet zeros.
    thread_local AlignedScratch activations;
    thread_local AlignedScratch partials;
    const std::size_t lutFloats = static_cast<std::size_t>(blocks * colsPadded * kTokenBlock);
    float* xp = activations.floats(lutFloats + static_cast<std::size_t>(permTokens * colsPadded));
    float* xr = xp + lutFloats;
    float* ytmp = blocks > 0 ? partials.floats(static_cast<std::size_t>(rows * kLanes)) : nullptr;

    parallelChunks(blocks, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t blk = begin; blk < end; ++blk) {
            float* dst = xp + blk * colsPadded * kTokenBlock;
            std::memset(dst, 0, static_cast<std::size_t>(colsPadded * kTokenBlock) * sizeof(float));
            const std::int64_t t0 = blk * kTokenBlock;
            const std::int64_t nt = std::min(kTokenBlock, lutTokens - t0);
            for (std::int64_t t = 0; t < nt; ++t) {
                const float* src = X + (t0 + t) * ldx;
                for (std::int64_t j = 0; j < cols; ++j) dst[j * kTokenBlock + t] = src[j];
            }
        }
    });
    for (std::int64_t t = 0; t < permTokens; ++t) {
        float* dst = xr + t * colsPadded;
        std::memcpy(dst, X + (lutTokens + t) * ldx, static_cast<std::size_t>(cols) * sizeof(float));
        std::memset(dst + cols, 0, static_cast<std::size_t>(colsPadded - cols) * sizeof(float));
    }

    // Per thread for the permute kernel: tables of the permute tokens and kPermRows rows of S for a
    // last partial block. Every thread builds its tables itself (about a microsecond per token at
    // 4096 columns), so the call is a single parallel region.
    const int team = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, rows)));
    const std::int64_t tableFloats = 2 * S.wordsPerRow * kGroupsPerDword * std::max<std::int64_t>(permTokens, 1) * kLanes;
    const std::int64_t slotFloats = permTokens > 0 ? tableFloats + 2 * kPermRows * S.wordsPerRow : 0;
    thread_local AlignedScratch permScratch;
    float* slots = permTokens > 0 ? permScratch.floats(static_cast<std::size_t>(slotFloats * team)) : nullptr;

    parallelChunks(rows, threads, [&](std::int64_t rb, std::int64_t re) {
        if (blocks > 0) lutRange(S, xp, blocks, colsPadded, 0, lutTokens, Y, ldy, ytmp, rb, re);
        if (permTokens == 0) return;
        // Thread numbers are 0 … team − 1 in the region; inline (team 1) the caller may itself be
        // a worker of an outer region and have another number.
        const int slot = team == 1 ? 0 : std::min(omp_get_thread_num(), team - 1);
        float* tab = slots + slot * slotFloats;
        auto* padded = reinterpret_cast<std::uint64_t*>(tab + tableFloats);
        if (permTokens == 1) permRange<1>(S, xr, colsPadded, lutTokens, Y, ldy, rb, re, tab, padded);
        if (permTokens == 2) permRange<2>(S, xr, colsPadded, lutTokens, Y, ldy, rb, re, tab, padded);
    });
}

#endif

}  // namespace mdbf::kernels::detail
