#pragma once
// Internal entry points of the 16-bit dense kernels, one pair per code path, with shapes already
// validated (rows, cols ≥ 1). Each GEMV computes row i as a summation tree of the rounded products
// W(i, j)·x[j] (or fused multiply-adds of them) in an order fixed by the code path alone, so results
// do not depend on the thread count; paths differ by at most the usual summation bound.

#include <cstddef>
#include <cstdint>

#include "mdbf/kernels/half_product.h"

namespace mdbf::kernels::detail {

/// How far ahead in each row the SIMD GEMVs prefetch (bytes). They stream 4 rows at once, which the
/// hardware prefetchers follow less well than one stream: on Zen 5, prefetching 512 bytes ahead in
/// every row made the 4-row loop 10–20% faster in isolation (1024×2816 to 4096×4096 from DRAM, 256
/// and 768 bytes about the same, 1 KiB nothing) and dense medium-llama decoding 6–7% faster with
/// 2 threads; bench_kernels --half-only at 4096×4096 and 11008×4096 showed no difference beyond
/// its run-to-run spread (about 20% on this shared machine).
inline constexpr std::uintptr_t kRowPrefetchBytes = 512;

/// Prefetches the line kRowPrefetchBytes past p. The address is formed as an integer, since near
/// the end of the matrix it lies past the array (where a prefetch is harmless but pointer
/// arithmetic would not be defined).
inline void prefetchRowAhead(const std::uint16_t* p)
{
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + kRowPrefetchBytes));
}

/// y[i] = Σ_j W(i, j) x[j] with portable loops.
void halfGemvScalar(HalfFormat format, const std::uint16_t* W, std::int64_t rows, std::int64_t cols, const float* x,
                    float* y, int threads);
/// dst[i] = value of src[i] with portable code.
void convertHalfScalar(HalfFormat format, const std::uint16_t* src, std::size_t count, float* dst);

/// The AVX2/FMA/F16C twins; only call when avx2Available().
void halfGemvAvx2(HalfFormat format, const std::uint16_t* W, std::int64_t rows, std::int64_t cols, const float* x,
                  float* y, int threads);
void convertHalfAvx2(HalfFormat format, const std::uint16_t* src, std::size_t count, float* dst);

/// The AVX-512 twins; only call when avx512Available().
void halfGemvAvx512(HalfFormat format, const std::uint16_t* W, std::int64_t rows, std::int64_t cols, const float* x,
                    float* y, int threads);
void convertHalfAvx512(HalfFormat format, const std::uint16_t* src, std::size_t count, float* dst);

}  // namespace mdbf::kernels::detail
