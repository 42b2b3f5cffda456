// AVX2/FMA kernels for products with bit-packed ±1 matrices. Compiled with function-level target
// attributes so the translation unit builds without -mavx2; only reached when avx2Available().
//
// Two kernels, chosen by the number of tokens:
//  * sign-mask FMA (one or two tokens): for 8 consecutive columns the byte of sign bits indexes a
//    table of 256 precomputed ±1.0 vectors, and acc += x ⊙ signs is one FMA with a memory
//    operand; each activation vector is loaded once for a block of 6 rows. At one token this is
//    bound by the table loads (about two per cycle), measured faster than computing the masks
//    with shifts and blends or looking up precomputed byte sums.
//  * nibble tables (blocks of 8 tokens): for every 4 columns the 16 possible signed sums of those
//    columns are precomputed for 8 tokens at once, so one vector add covers 4 columns × 8 tokens.
//    Tables are built per chunk of 256 columns (32 KiB, L1-resident) and shared by all rows of
//    the thread; building costs 24 vector ops per 4 columns against one add per row. A trailing
//    block of 3–7 tokens is zero-padded; 1–2 trailing tokens take the FMA kernel.
// Within a row every kernel uses a fixed order of operations, independent of how rows are split
// among threads or blocked, so results are bit-identical for any thread count.

#include <algorithm>
#include <bit>
#include <cstring>

#include "kernels/binary_product_impl.h"
#include "mdbf/base/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MDBF_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace mdbf::kernels::detail {

#if defined(__x86_64__) || defined(__i386__)

namespace {

constexpr std::int64_t kWordBits = PackedSigns::kWordBits;
constexpr std::int64_t kLanes = 8;            // floats per __m256
constexpr std::int64_t kTokenBlock = kLanes;  // tokens per nibble-table block
constexpr std::int64_t kLutMinTokens = 3;     // fewer leftover tokens take the FMA kernel
constexpr std::int64_t kNibblesPerWord = kWordBits / 4;
constexpr std::int64_t kNibbleEntries = 16;
constexpr std::int64_t kGroupFloats = kNibbleEntries * kTokenBlock;  // one table per 4 columns
constexpr std::int64_t kChunkWords = 4;                              // 256 columns per table chunk
constexpr std::int64_t kTableFloats = kChunkWords * kNibblesPerWord * kGroupFloats;
constexpr int kLutRowBlock = 4;  // rows sharing one pass over a table chunk (8 add chains)
// Rows per FMA block: 6 rows × 2 accumulators for one token, 6 rows × 2 tokens for two, so that
// 12 independent FMA chains cover the FMA latency.
constexpr int kFmaRowBlock = 6;
static_assert(kTableFloats * sizeof(float) == 32 * 1024, "nibble tables are sized to stay in L1");

// kSignLut.v[8·b + j] = −1 when bit j of byte b is set, else +1: the sign vector of 8 columns.
struct SignLut {
    alignas(64) float v[256 * kLanes];
    constexpr SignLut() : v{}
    {
        for (int b = 0; b < 256; ++b)
            for (int j = 0; j < kLanes; ++j) v[b * kLanes + j] = ((b >> j) & 1) ? -1.0f : 1.0f;
    }
};
constexpr SignLut kSignLut{};

// Byte offset of a 32-byte table entry selected by the field of `word` starting at bit `shift`:
// ((word >> shift) & fieldMask) · 32 as one rotate (rorx where available) and one AND; `mask` is
// fieldMask << 5 and the field never wraps around, so rotating equals shifting here.
inline std::uint64_t entryOffset(std::uint64_t word, int shift, std::uint64_t mask)
{
    return std::rotr(word, (shift - 5) & 63) & mask;
}

MDBF_TARGET_AVX2 inline float horizontalSum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// out[r][t] = Σ_j S(row r, j) x_t[j] over `words` words; x_t zero-padded to words·64 and 32-byte
// aligned. One accumulator pair per (row, token) for a single token (FMA latency), one otherwise.
template <int R, int NT>
MDBF_TARGET_AVX2 void fmaRowBlock(const std::uint64_t* const* rows, std::int64_t words, const float* const* xs,
                                  float (*out)[NT])
{
    constexpr int P = NT == 1 ? 2 : 1;
    __m256 acc[R][NT][P];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
#pragma GCC unroll 2
            for (int p = 0; p < P; ++p) acc[r][t][p] = _mm256_setzero_ps();
    const char* lut = reinterpret_cast<const char*>(kSignLut.v);
    for (std::int64_t w = 0; w < words; ++w) {
        std::uint64_t bits[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) bits[r] = rows[r][w];
        const std::int64_t base = w * kWordBits;
#pragma GCC unroll 8
        for (int b = 0; b < 8; ++b) {
            __m256 xv[NT];
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) xv[t] = _mm256_load_ps(xs[t] + base + kLanes * b);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const __m256 m =
                    _mm256_load_ps(reinterpret_cast<const float*>(lut + entryOffset(bits[r], 8 * b, 0xFFu << 5)));
#pragma GCC unroll 4
                for (int t = 0; t < NT; ++t) acc[r][t][b % P] = _mm256_fmadd_ps(xv[t], m, acc[r][t][b % P]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
            out[r][t] = horizontalSum(P == 2 ? _mm256_add_ps(acc[r][t][0], acc[r][t][P - 1]) : acc[r][t][0]);
}

// Rows [rb, re) for NT tokens held zero-padded at xr + t·colsPadded; writes Y rows tokenBegin + t.
template <int NT>
void fmaRange(const PackedSigns& S, const float* xr, std::int64_t colsPadded, std::int64_t tokenBegin, float* Y,
              std::int64_t ldy, std::int64_t rb, std::int64_t re)
{
    const float* xs[NT];
    for (int t = 0; t < NT; ++t) xs[t] = xr + t * colsPadded;
    const std::int64_t words = S.wordsPerRow();
    std::int64_t i = rb;
    for (; i + kFmaRowBlock <= re; i += kFmaRowBlock) {
        const std::uint64_t* rows[kFmaRowBlock];
        for (int r = 0; r < kFmaRowBlock; ++r) rows[r] = S.row(i + r);
        float out[kFmaRowBlock][NT];
        fmaRowBlock<kFmaRowBlock, NT>(rows, words, xs, out);
        for (int r = 0; r < kFmaRowBlock; ++r)
            for (int t = 0; t < NT; ++t) Y[(tokenBegin + t) * ldy + i + r] = out[r][t];
    }
    for (; i < re; ++i) {
        const std::uint64_t* rows[1] = {S.row(i)};
        float out[1][NT];
        fmaRowBlock<1, NT>(rows, words, xs, out);
        for (int t = 0; t < NT; ++t) Y[(tokenBegin + t) * ldy + i] = out[0][t];
    }
}

// tab[16·g + e] (8 floats each) = Σ_b (bit b of e ? −1 : +1) · x[4g + b] for the 8 tokens of the
// block; xp holds 8 token values per column, 4·groups columns.
MDBF_TARGET_AVX2 void buildNibbleTable(const float* xp, std::int64_t groups, float* tab)
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
MDBF_TARGET_AVX2 void lutRowBlock(const std::uint64_t* const* rows, std::int64_t words, const float* tab, float* acc8)
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
void lutRange(const PackedSigns& S, const float* xp, std::int64_t blocks, std::int64_t colsPadded,
              std::int64_t tokenBegin, std::int64_t tokenEnd, float* Y, std::int64_t ldy, float* ytmp,
              std::int64_t rb, std::int64_t re)
{
    alignas(64) float tab[kTableFloats];
    const std::int64_t wordsPerRow = S.wordsPerRow();
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
        const float* xb = xp + blk * colsPadded * kTokenBlock;
        std::fill(ytmp + rb * kLanes, ytmp + re * kLanes, 0.0f);
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

void gemmAvx2(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
              int threads)
{
    const std::int64_t rows = S.rows();
    const std::int64_t cols = S.cols();
    const std::int64_t colsPadded = S.wordsPerRow() * kWordBits;

    // Tokens [0, lutTokens) go through nibble tables, the remaining 0–2 through the FMA kernel.
    std::int64_t lutTokens = T / kTokenBlock * kTokenBlock;
    if (T - lutTokens >= kLutMinTokens) lutTokens = T;
    const std::int64_t fmaTokens = T - lutTokens;
    const std::int64_t blocks = (lutTokens + kTokenBlock - 1) / kTokenBlock;

    // Activations re-laid out once per call, zero-padded so that padding bits meet zeros.
    thread_local AlignedScratch activations;
    thread_local AlignedScratch partials;
    const std::size_t lutFloats = static_cast<std::size_t>(blocks * colsPadded * kTokenBlock);
    float* xp = activations.floats(lutFloats + static_cast<std::size_t>(fmaTokens * colsPadded));
    float* xr = xp + lutFloats;
    float* ytmp = blocks > 0 ? partials.floats(static_cast<std::size_t>(rows * kLanes)) : nullptr;

    parallelChunks(blocks, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t blk = begin; blk < end; ++blk) {
            float* dst = xp + blk * colsPadded * kTokenBlock;
            std::fill_n(dst, colsPadded * kTokenBlock, 0.0f);
            const std::int64_t t0 = blk * kTokenBlock;
            const std::int64_t nt = std::min(kTokenBlock, lutTokens - t0);
            for (std::int64_t t = 0; t < nt; ++t) {
                const float* src = X + (t0 + t) * ldx;
                for (std::int64_t j = 0; j < cols; ++j) dst[j * kTokenBlock + t] = src[j];
            }
        }
    });
    for (std::int64_t t = 0; t < fmaTokens; ++t) {
        float* dst = xr + t * colsPadded;
        std::memcpy(dst, X + (lutTokens + t) * ldx, static_cast<std::size_t>(cols) * sizeof(float));
        std::fill(dst + cols, dst + colsPadded, 0.0f);
    }

    parallelChunks(rows, threads, [&](std::int64_t rb, std::int64_t re) {
        if (blocks > 0) lutRange(S, xp, blocks, colsPadded, 0, lutTokens, Y, ldy, ytmp, rb, re);
        if (fmaTokens == 1) fmaRange<1>(S, xr, colsPadded, lutTokens, Y, ldy, rb, re);
        if (fmaTokens == 2) fmaRange<2>(S, xr, colsPadded, lutTokens, Y, ldy, rb, re);
    });
}

#else

void gemmAvx2(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
              int threads)
{
    gemmScalar(S, X, T, ldx, Y, ldy, threads);
}

#endif

}  // namespace mdbf::kernels::detail
