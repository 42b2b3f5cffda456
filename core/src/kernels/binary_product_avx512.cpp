// AVX-512 kernels for products with bit-packed ±1 matrices. The only file of the binary products
// compiled with -mavx512f -mavx512bw -mavx512vl (core/CMakeLists.txt); only reached when
// avx512Available().
//
// Row-lane nibble permutes: the 16 lanes of a vector hold 16 rows of S, and every 4 columns of a
// token x have a 16-entry table of their signed sums, T[e] = Σ_b (bit b of e ? −1 : +1) x[4g + b],
// which fills exactly one 512-bit register. vpermps takes the low 4 bits of each lane as an index,
// so with lane r holding the sign bits of row r, one shift, one permute and one add accumulate
// 4 columns × 16 rows (64 sign-additions). The row-major bits are brought into that form by a
// 16 × 16 transpose of 32-bit words, 512 columns of 16 rows at a time (4 shuffles per 32 columns).
// Two tokens share the shifted indices and one pass over S; more tokens take several passes. More
// per pass measured slower: every row block reads all tables of the pass (64 bytes per token and
// 4 columns, one byte per sign-addition) and four tokens' tables no longer stay in L2 beside S.
// Windows of 8 or more tokens are handed to the AVX2 nibble-table kernel (see gemmAvx512).
//
// Measured on Zen 4 at one token: about twice the rate of adding activations under the sign
// masks themselves (acc = mask_add(acc, bits, acc, x), limited by one mask-register write per
// 16 columns). Decoding uses the 18-bit table kernel at the end of this file instead (binary
// product section of bench_kernels on Zen 5, one token: about 107 sign-additions per ns for this
// kernel, 135 for the AVX2 tables and 230–245 for the AVX-512 tables, warm). Permutes and shifts share the shuffle units,
// which appear to bound the kernel, so half of the accumulator chains add through the FMA units
// (v·1 + acc, rounded once exactly like an add) to keep the add units free.
//
// Every row is one lane with its own fixed order of operations (table sums of 4 columns, then
// the chains of a fixed assignment, then a fixed combination), independent of the lane it lands
// in, of how rows are split among threads, and of the other rows of its block: results are
// bit-identical for any thread count. Each result is a plain summation tree of its terms, so the
// usual (cols − 1)·u·Σ|x| float32 bound holds.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <omp.h>

#include "kernels/binary_product_impl.h"
#include "kernels/binary_tables_simd.h"
#include "mdbf/base/parallel.h"

#include "kernels/simd_intrinsics.h"

namespace mdbf::kernels::detail {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

namespace {

constexpr int kLanes = 16;                // floats per __m512, and rows per block
constexpr int kTableFloats = 16;          // signed sums of 4 columns: one table per token
constexpr int kNibblesPerDword = 8;       // 4-column groups per 32 bits of a row
constexpr int kDwordsPerBlock = kLanes;   // transposed 16 × 16 at once: 512 columns
constexpr std::int64_t kWordsPerBlock = kDwordsPerBlock / 2;
constexpr int kMaxTokens = 2;             // tokens sharing one pass over S
constexpr std::int64_t kAvx2FromTokens = 8;  // larger windows take the AVX2 table kernel
static_assert(SignRows::kWordBits == 64 && kNibblesPerDword * 4 == 32);

// Independent add chains per token, four in all, to cover the add latency.
template <int NT>
constexpr int kChains = 4 / NT;
static_assert(kMaxTokens == 2);

// tab[(g·nt + t)·16 + e] = Σ_b (bit b of e ? −1 : +1) x_t[4g + b] for groups g < groups, with x_t
// taken as zero past `cols` (so that padding bits meet zeros). Token t is at X + t·ldx.
void buildTables(const float* X, std::int64_t ldx, int nt, std::int64_t cols,
                                    std::int64_t groups, float* tab)
{
    const __m512 s0 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512 s1 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
    const __m512 s2 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
    const __m512 s3 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    const std::int64_t fullGroups = std::min(groups, cols / 4);
    for (int t = 0; t < nt; ++t) {
        const float* x = X + t * ldx;
        for (std::int64_t g = 0; g < groups; ++g) {
            float padded[4];
            const float* c = x + 4 * g;
            if (g >= fullGroups) {
                for (int b = 0; b < 4; ++b) padded[b] = 4 * g + b < cols ? x[4 * g + b] : 0.0f;
                c = padded;
            }
            // Products with ±1 are exact, so each half is one rounded ±x ± x and the entry a
            // rounded sum of the halves.
            const __m512 lo = _mm512_fmadd_ps(_mm512_set1_ps(c[1]), s1, _mm512_mul_ps(_mm512_set1_ps(c[0]), s0));
            const __m512 hi = _mm512_fmadd_ps(_mm512_set1_ps(c[3]), s3, _mm512_mul_ps(_mm512_set1_ps(c[2]), s2));
            _mm512_store_ps(tab + (g * nt + t) * kTableFloats, _mm512_add_ps(lo, hi));
        }
    }
}

// In place: afterwards lane r of d[c] is 32-bit word c of the former d[r].
inline void transpose16(__m512i (&d)[kLanes])
{
    __m512i t[kLanes];
#pragma GCC unroll 8
    for (int i = 0; i < kLanes; i += 2) {
        t[i] = _mm512_unpacklo_epi32(d[i], d[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(d[i], d[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < kLanes; i += 4) {
        d[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        d[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        d[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        d[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_i32x4(d[i], d[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(d[i], d[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_i32x4(d[i + 8], d[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(d[i + 8], d[i + 12], 0xdd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        d[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        d[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
        d[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        d[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
    }
}

// acc[t] += the 32 columns of `bits` (lane r: 32 sign bits of row r) for the NT tokens, with
// tab the tables of those 32 columns.
template <int NT, int P>
inline void accumulateDword(__m512i bits, const float* tab, __m512 (&acc)[NT][P], __m512 one)
{
#pragma GCC unroll 8
    for (int g = 0; g < kNibblesPerDword; ++g) {
        // vpermps reads only the low 4 bits of each index lane: no masking needed.
        const __m512i idx = g == 0 ? bits : _mm512_srli_epi32(bits, 4 * g);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
            const __m512 v = _mm512_permutexvar_ps(idx, _mm512_load_ps(tab + (g * NT + t) * kTableFloats));
            const int p = g % P;
            if ((t + p) & 1)
                acc[t][p] = _mm512_fmadd_ps(v, one, acc[t][p]);
            else
                acc[t][p] = _mm512_add_ps(acc[t][p], v);
        }
    }
}

// Y[t·ldy + r] = row r of the 16 rows at base + r·stride (wordsPerRow words each) times token t,
// for t < NT and the rows r in rowMask. `next`, when not null, is the base of the following block
// (same stride), prefetched meanwhile: each row is read in only a few 64-byte steps, too few for
// the hardware prefetchers to lock on when S comes from DRAM.
template <int NT>
void rowBlock(const std::uint64_t* base, std::int64_t stride, std::int64_t wordsPerRow,
                                 const float* tab, float* Y, std::int64_t ldy, __mmask16 rowMask,
                                 const std::uint64_t* next)
{
    constexpr int P = kChains<NT>;
    constexpr std::int64_t kDwordTableFloats = kNibblesPerDword * NT * kTableFloats;
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 acc[NT][P];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) acc[t][p] = _mm512_setzero_ps();

    for (std::int64_t w0 = 0; w0 < wordsPerRow; w0 += kWordsPerBlock) {
        const int words = static_cast<int>(std::min(kWordsPerBlock, wordsPerRow - w0));
        // The masked load never touches words past the end of a row.
        const __mmask8 wordMask = static_cast<__mmask8>((1u << words) - 1);
        __m512i d[kLanes];
#pragma GCC unroll 16
        for (int r = 0; r < kLanes; ++r) d[r] = _mm512_maskz_loadu_epi64(wordMask, base + r * stride + w0);
        if (next != nullptr)
#pragma GCC unroll 16
            for (int r = 0; r < kLanes; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(next + r * stride + w0), _MM_HINT_T0);
        transpose16(d);
        // Through a small buffer, not 16 registers: unrolled over all 16 words, the compiler hoists
        // permutes far ahead of their adds and spills their results.
        alignas(64) std::uint32_t transposed[kDwordsPerBlock * kLanes];
#pragma GCC unroll 16
        for (int c = 0; c < kDwordsPerBlock; ++c) _mm512_store_si512(transposed + c * kLanes, d[c]);
        const float* tab0 = tab + 2 * w0 * kDwordTableFloats;
        // A partial last block has tables for its 2·words dwords only.
        for (int c = 0; c < 2 * words; ++c)
            accumulateDword<NT, P>(_mm512_load_si512(transposed + c * kLanes), tab0 + c * kDwordTableFloats, acc, one);
    }

#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        __m512 sum = acc[t][0];
        if constexpr (P == 2) sum = _mm512_add_ps(acc[t][0], acc[t][1]);
        if constexpr (P == 4)
            sum = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
        _mm512_mask_storeu_ps(Y + t * ldy, rowMask, sum);
    }
}

// Rows [rb, re) of S for NT tokens. A last block of fewer than 16 rows is copied into `padded`
// (16 rows of zeros beyond it); a row's lane computes the same operations wherever it sits, so
// this changes no result.
template <int NT>
void rowRange(const SignRows& S, const float* tab, float* Y, std::int64_t ldy, std::int64_t rb, std::int64_t re,
              std::uint64_t* padded)
{
    const std::int64_t wordsPerRow = S.wordsPerRow;
    std::int64_t i = rb;
    for (; i + kLanes <= re; i += kLanes) {
        const std::uint64_t* next = i + 2 * kLanes <= re ? S.row(i + kLanes) : nullptr;
        rowBlock<NT>(S.row(i), wordsPerRow, wordsPerRow, tab, Y + i, ldy, static_cast<__mmask16>(0xFFFF), next);
    }
    if (i < re) {
        const std::int64_t nrows = re - i;
        std::memset(padded, 0, static_cast<std::size_t>(kLanes * wordsPerRow) * sizeof(std::uint64_t));
        std::memcpy(padded, S.row(i), static_cast<std::size_t>(nrows * wordsPerRow) * sizeof(std::uint64_t));
        rowBlock<NT>(padded, wordsPerRow, wordsPerRow, tab, Y + i, ldy, static_cast<__mmask16>((1u << nrows) - 1),
                     nullptr);
    }
}

// The table kernel of one token (binaryGemvTables) with 64-byte shuffles: one load takes block
// vectors 2J and 2J + 1, whose low nibbles index the tables of groups 4J and 4J + 2 (adjacent in
// the table order of binary_tables_simd.h, so one 64-byte load) and whose high nibbles those of
// 4J + 1 and 4J + 3. Four lookups (two loads) add up in bytes as in the AVX2 kernel; the upper
// 256 bits hold other groups of the same rows and halves and are folded onto the lower ones before
// the pair's digit sums are combined, so the numbers are those of the AVX2 kernel, bit for bit,
// at half its shuffles and adds per sign-addition.
void tablePanel(const std::uint8_t* blocks, const std::uint8_t* end, std::int64_t ntiles, const std::uint8_t* tab,
                const float* scales, float* accMem)
{
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    constexpr __mmask32 kLow = 0x0000FFFF;  // the 16-bit lanes of the lower 256 bits
    __m256 acc[4];
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_load_ps(accMem + 8 * k);
    for (std::int64_t t0 = 0; t0 < ntiles; t0 += kTableSetTiles) {
        const std::int64_t n = std::min(kTableSetTiles, ntiles - t0);
        __m512i all[kPlanes], odd[kPlanes];
        all[0] = _mm512_maskz_set1_epi16(kLow, biasedAllStart(n));
        odd[0] = _mm512_maskz_set1_epi16(kLow, biasedOddStart(n));
        for (int p = 1; p < kPlanes; ++p) all[p] = _mm512_setzero_si512(), odd[p] = _mm512_setzero_si512();
        for (std::int64_t t = t0; t < t0 + n; ++t) {
            prefetchLayoutAhead(blocks, t, end);
            const std::uint8_t* v = blocks + t * kTableBlockBytes;
            const std::uint8_t* tt = tab + t * kTileTableBytes;
#pragma GCC unroll 4
            for (int J = 0; J < kBlockRows / 2; J += 2) {
                const __m512i v0 = _mm512_loadu_si512(v + 64 * J);
                const __m512i v1 = _mm512_loadu_si512(v + 64 * (J + 1));
                const __m512i idx[4] = {_mm512_and_si512(v0, nibble), _mm512_and_si512(_mm512_srli_epi16(v0, 4), nibble),
                                        _mm512_and_si512(v1, nibble), _mm512_and_si512(_mm512_srli_epi16(v1, 4), nibble)};
#pragma GCC unroll 3
                for (int p = 0; p < kPlanes; ++p) {
                    // Registers (4J', slot 0–1) for the low nibbles and (slot 2–3) for the high ones.
                    const std::uint8_t* r0 = tt + tableRegister(4 * J, p);
                    const std::uint8_t* r1 = tt + tableRegister(4 * (J + 1), p);
                    const __m512i l0 = _mm512_shuffle_epi8(_mm512_load_si512(r0), idx[0]);
                    const __m512i l1 = _mm512_shuffle_epi8(_mm512_load_si512(r0 + 64), idx[1]);
                    const __m512i l2 = _mm512_shuffle_epi8(_mm512_load_si512(r1), idx[2]);
                    const __m512i l3 = _mm512_shuffle_epi8(_mm512_load_si512(r1 + 64), idx[3]);
                    const __m512i sum = _mm512_add_epi8(_mm512_add_epi8(l0, l1), _mm512_add_epi8(l2, l3));
                    all[p] = _mm512_add_epi16(all[p], sum);
                    odd[p] = _mm512_add_epi16(odd[p], _mm512_srli_epi16(sum, 8));
                }
                asm("" : "+v"(all[0]), "+v"(all[1]), "+v"(all[2]), "+v"(odd[0]), "+v"(odd[1]), "+v"(odd[2]));
            }
        }
        DigitSums s;
        for (int p = 0; p < kPlanes; ++p) {
            s.all[p] = _mm256_add_epi16(_mm512_castsi512_si256(all[p]), _mm512_extracti64x4_epi64(all[p], 1));
            s.odd[p] = _mm256_add_epi16(_mm512_castsi512_si256(odd[p]), _mm512_extracti64x4_epi64(odd[p], 1));
        }
        scalePair(s, scales + t0, acc);
    }
    for (int k = 0; k < 4; ++k) _mm256_store_ps(accMem + 8 * k, acc[k]);
}

}  // namespace

void gemvTablesAvx512(const SignRows& S, const float* x, float* y, int threads)
{
    gemvTablesWith(S, x, y, threads, &tablePanel);
}

void gemmAvx512(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads)
{
    // From 8 tokens on, the AVX2 8-token nibble tables (one 256-bit add per 4 columns × 8 tokens,
    // weights streamed once per call) measured as fast or faster: up to 20 % at 256 tokens, where
    // this kernel re-reads S once per pair of tokens. Every AVX-512 CPU also has AVX2 and FMA.
    if (T >= kAvx2FromTokens) {
        gemmAvx2(S, X, T, ldx, Y, ldy, threads);
        return;
    }
    const std::int64_t rows = S.rows;
    const std::int64_t wordsPerRow = S.wordsPerRow;
    const std::int64_t groups = wordsPerRow * (SignRows::kWordBits / 4);
    // Per thread: the tables of one pass (64 bytes per token and 4 columns, 64 KiB per token at
    // 4096 columns, read by every row block from L2) and 16 rows of S for a last partial block.
    // Every thread builds the tables itself (about a microsecond per token at 4096 columns), so
    // the whole call is one parallel region instead of one per pass.
    const int team = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, rows)));
    const std::int64_t tableFloats = groups * kMaxTokens * kTableFloats;
    const std::int64_t slotFloats = tableFloats + 2 * kLanes * wordsPerRow;
    thread_local AlignedScratch scratch;
    float* slots = scratch.floats(static_cast<std::size_t>(slotFloats * team));

    parallelChunks(rows, threads, [&](std::int64_t rb, std::int64_t re) {
        // Thread numbers are 0 … team − 1 in the region; inline (team 1) the caller may itself be
        // a worker of an outer region and have another number.
        const int slot = team == 1 ? 0 : std::min(omp_get_thread_num(), team - 1);
        float* tab = slots + slot * slotFloats;
        auto* padded = reinterpret_cast<std::uint64_t*>(tab + tableFloats);
        for (std::int64_t t0 = 0; t0 < T; t0 += kMaxTokens) {
            const int nt = static_cast<int>(std::min<std::int64_t>(kMaxTokens, T - t0));
            buildTables(X + t0 * ldx, ldx, nt, S.cols, groups, tab);
            if (nt == 1)
                rowRange<1>(S, tab, Y + t0 * ldy, ldy, rb, re, padded);
            else
                rowRange<2>(S, tab, Y + t0 * ldy, ldy, rb, re, padded);
        }
    });
}

#endif

}  // namespace mdbf::kernels::detail
