#pragma once
// Internal entry points of the 16-bit dense kernels, one pair per code path, with shapes already
// validated (rows, cols ≥ 1). Each GEMV computes row i as a summation tree of the rounded products
// W(i, j)·x[j] (or fused multiply-adds of them) in an order fixed by the code path alone, so results
// do not depend on the thread count; paths differ by at most the usual summation bound.

#include <cstddef>
#include <cstdint>

#include "mdbf/kernels/half_product.h"

namespace mdbf::kernels::detail {

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
