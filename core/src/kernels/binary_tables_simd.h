#pragma once
// Pieces of the SIMD table kernels of one token (binaryGemvTables) shared by the AVX2 and the
// AVX-512 source, which alone include this header: everything here is inline in an anonymous
// namespace, so each of them gets a copy compiled with its own ISA flags (see kernel_table.h).
//
// Both kernels read the block layout of binary_product_impl.h and the same tables, stored so that
// a 64-byte load gives the two tables an AVX-512 lookup needs. The tables of a tile are 8 steps of
// 4 groups (step J: groups 4J … 4J + 3 of each half) × 3 digit planes × 4 registers of 32 bytes;
// the register of group 4J + k holds the group's table for the low half in its first 16 bytes and
// for the high half in the other 16, and sits in slot kTableSlot[k] of its plane, so that the
// groups 4J and 4J + 2 (the low nibbles of block vectors 2J and 2J + 1) are adjacent, and so are
// 4J + 1 and 4J + 3 (their high nibbles).

#include <cstdint>

#include "kernels/binary_product_impl.h"
#include "kernels/simd_intrinsics.h"

namespace mdbf::kernels::detail {

#if defined(__AVX2__) && defined(__FMA__)

namespace {

constexpr int kBlockRows = static_cast<int>(kTableBlockRows);
constexpr std::int64_t kPlanes = 3;                                        // digits of 6 bits, high first
constexpr std::int64_t kTileTableBytes = kTableHalfGroups * kPlanes * 32;  // 32 group pairs × 3 digit registers
constexpr std::int64_t kStepTableBytes = 4 * kPlanes * 32;                 // 4 groups × 3 digit registers
constexpr int kTableSlot[4] = {0, 2, 1, 3};
static_assert(kTableBlockBytes == 16 * 32 && kTableHalfGroups == 32);

/// Byte offset, within its tile's tables, of the register of digit plane p of group g (0 … 31).
constexpr std::int64_t tableRegister(std::int64_t g, std::int64_t p)
{
    return g / 4 * kStepTableBytes + (p * 4 + kTableSlot[g % 4]) * 32;
}

// Digit sums of one tile pair for the 16 rows of a block: per 16-bit lane i of each half, Σ(even
// + 256·odd) modulo 2^16 and Σ odd of the byte sums of rows 2i and 2i + 1.
struct DigitSums {
    __m256i all[kPlanes];
    __m256i odd[kPlanes];
};

// Every entry carries the bias 2^17 = 32 · 4096, 32 · n of them per row and set for a pair of n
// tiles: the hi sums start that far below zero, so that even = all − 256·odd comes out unbiased.
// The start values of all[0] and odd[0].
inline std::int16_t biasedAllStart(std::int64_t n) { return static_cast<std::int16_t>(-257 * 1024 * n); }
inline std::int16_t biasedOddStart(std::int64_t n) { return static_cast<std::int16_t>(-1024 * n); }

// The sign layout is streamed once: while tile t is summed, fetch the 4 KiB eight tiles ahead.
[[gnu::always_inline]] inline void prefetchLayoutAhead(const std::uint8_t* blocks, std::int64_t t,
                                                       const std::uint8_t* end)
{
    const std::uint8_t* ahead = blocks + (t + 8) * kTableBlockBytes;
    if (ahead >= end) return;
#pragma GCC unroll 8
    for (int line = 0; line < 8; ++line) _mm_prefetch(reinterpret_cast<const char*>(ahead) + 64 * line, _MM_HINT_T0);
}

// The exact int32 digit combination hi·4096 + mid·64 + lo of the 16-bit lanes [0, 4) (`high`
// false) or [4, 8) of each half of the digit sums d (hi, mid, lo).
[[gnu::always_inline]] inline __m256i combine(const __m256i (&d)[kPlanes], bool high)
{
    const __m256i weights = _mm256_set1_epi32(0x00401000);  // int16 pairs (4096, 64)
    const __m256i zero = _mm256_setzero_si256();
    const __m256i hiMid = high ? _mm256_unpackhi_epi16(d[0], d[1]) : _mm256_unpacklo_epi16(d[0], d[1]);
    const __m256i lo = high ? _mm256_unpackhi_epi16(d[2], zero) : _mm256_unpacklo_epi16(d[2], zero);
    return _mm256_add_epi32(_mm256_madd_epi16(hiMid, weights), lo);
}

// acc (rows 0, 2, 4, 6 | 8 … 14 | 1 … 7 | 9 … 15, one scale set per lane) += the pair's exact set
// results times their scales (scales[0] for the low lanes, scales[1] for the high ones).
[[gnu::always_inline]] inline void scalePair(DigitSums& s, const float* scales, __m256 (&acc)[4])
{
    __m256i even[kPlanes];
    for (int p = 0; p < kPlanes; ++p) even[p] = _mm256_sub_epi16(s.all[p], _mm256_slli_epi16(s.odd[p], 8));
    const __m256i q[4] = {combine(even, false), combine(even, true), combine(s.odd, false), combine(s.odd, true)};
    const __m256 scale = _mm256_permutevar8x32_ps(
        _mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales)))),
        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q[k]), scale, acc[k]);
}

}  // namespace

#endif

}  // namespace mdbf::kernels::detail
