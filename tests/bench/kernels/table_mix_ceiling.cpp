// Compiled with -mavx2 (tests/bench/kernels/CMakeLists.txt); reached only when AVX2 is available.

#include "table_mix_ceiling.h"

#include <chrono>

#include <immintrin.h>

namespace mdbf::bench {

namespace {

// One plane of one step: four lookups added in bytes, then the word sums all += s, odd += s >> 8.
[[gnu::always_inline]] inline void plane(const __m256i (&t)[4], const __m256i (&idx)[4], __m256i& all, __m256i& odd)
{
    __m256i s = _mm256_add_epi8(_mm256_shuffle_epi8(t[0], idx[0]), _mm256_shuffle_epi8(t[1], idx[1]));
    s = _mm256_add_epi8(s, _mm256_shuffle_epi8(t[2], idx[2]));
    s = _mm256_add_epi8(s, _mm256_shuffle_epi8(t[3], idx[3]));
    all = _mm256_add_epi16(all, s);
    odd = _mm256_add_epi16(odd, _mm256_srli_epi16(s, 8));
}

}  // namespace

double tableMixOpsPerNs()
{
    constexpr long kSteps = 20'000'000;
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256i t[3][4];
    for (int p = 0; p < 3; ++p)
        for (int k = 0; k < 4; ++k)
            t[p][k] = _mm256_add_epi8(_mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3,
                                                       4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                      _mm256_set1_epi8(static_cast<char>(3 * p + k)));
    __m256i v0 = _mm256_set1_epi8(0x5A), v1 = _mm256_set1_epi8(0x3C);
    // Named, not an array, so that the sums stay in registers across the empty asm below.
    __m256i all0 = _mm256_setzero_si256(), all1 = all0, all2 = all0, odd0 = all0, odd1 = all0, odd2 = all0;
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < kSteps; ++i) {
        // The empty asm makes the block vectors unknown each step, as loads would, so that nothing
        // is hoisted; the operations per step are exactly kTableMixOps.
        asm volatile("" : "+x"(v0), "+x"(v1));
        const __m256i idx[4] = {_mm256_and_si256(v0, nibble), _mm256_and_si256(_mm256_srli_epi16(v0, 4), nibble),
                                _mm256_and_si256(v1, nibble), _mm256_and_si256(_mm256_srli_epi16(v1, 4), nibble)};
        plane(t[0], idx, all0, odd0);
        plane(t[1], idx, all1, odd1);
        plane(t[2], idx, all2, odd2);
        asm volatile("" : "+x"(all0), "+x"(all1), "+x"(all2), "+x"(odd0), "+x"(odd1), "+x"(odd2));
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    const __m256i sink = _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(all0, all1), _mm256_xor_si256(all2, odd0)),
                                          _mm256_xor_si256(odd1, odd2));
    asm volatile("" : : "x"(sink));
    return static_cast<double>(kSteps) * kTableMixOps / ns;
}

}  // namespace mdbf::bench
