// AVX2/FMA/F16C kernels of the 16-bit dense products. The only file of them compiled with
// -mavx2 -mfma -mf16c (core/CMakeLists.txt); only reached when avx2Available().
//
// Decode streams the 16-bit weights once and widens them in registers: bfloat16 is the upper half
// of a float32 (zero-extend, shift by 16), binary16 goes through vcvtph2ps. Four rows share each
// load of x, each with two FMA chains (eight in all, enough to cover the FMA latency); a row tail
// of fewer than 16 columns is zero-padded into a local block so the same vector code finishes it.

#include <cstring>

#include "kernels/half_product_impl.h"
#include "mdbf/base/parallel.h"

#include "kernels/simd_intrinsics.h"

namespace mdbf::kernels::detail {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

namespace {

constexpr std::int64_t kLanes = 8;
constexpr std::int64_t kStep = 2 * kLanes;  // columns per iteration: one per FMA chain pair
constexpr int kRowBlock = 4;

template <HalfFormat F>
inline __m256 widen(__m128i h)
{
    if constexpr (F == HalfFormat::BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else
        return _mm256_cvtph_ps(h);
}

template <HalfFormat F>
inline __m256 load8(const std::uint16_t* w)
{
    return widen<F>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
}

inline float horizontalSum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// y[r] = Σ_j W(row r, j) x[j] for the R rows at w (stride cols). xTail holds x's last
// cols % kStep entries zero-padded to kStep.
template <HalfFormat F, int R>
void dotRows(const std::uint16_t* w, std::int64_t cols, const float* x, const float* xTail, float* y)
{
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const std::int64_t full = cols / kStep * kStep;
    for (std::int64_t j = 0; j < full; j += kStep) {
        const __m256 x0 = _mm256_loadu_ps(x + j);
        const __m256 x1 = _mm256_loadu_ps(x + j + kLanes);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            prefetchRowAhead(w + r * cols + j);
            acc[r][0] = _mm256_fmadd_ps(load8<F>(w + r * cols + j), x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(load8<F>(w + r * cols + j + kLanes), x1, acc[r][1]);
        }
    }
    if (full < cols) {
        const __m256 x0 = _mm256_load_ps(xTail);
        const __m256 x1 = _mm256_load_ps(xTail + kLanes);
        for (int r = 0; r < R; ++r) {
            alignas(32) std::uint16_t tail[kStep] = {};
            std::memcpy(tail, w + r * cols + full, static_cast<std::size_t>(cols - full) * sizeof(std::uint16_t));
            acc[r][0] = _mm256_fmadd_ps(load8<F>(tail), x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(load8<F>(tail + kLanes), x1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; ++r) y[r] = horizontalSum(_mm256_add_ps(acc[r][0], acc[r][1]));
}

template <HalfFormat F>
void gemvRange(const std::uint16_t* W, std::int64_t cols, const float* x, const float* xTail, float* y,
               std::int64_t begin, std::int64_t end)
{
    std::int64_t i = begin;
    for (; i + kRowBlock <= end; i += kRowBlock) dotRows<F, kRowBlock>(W + i * cols, cols, x, xTail, y + i);
    for (; i < end; ++i) dotRows<F, 1>(W + i * cols, cols, x, xTail, y + i);
}

}  // namespace

void halfGemvAvx2(HalfFormat format, const std::uint16_t* W, std::int64_t rows, std::int64_t cols, const float* x,
                  float* y, int threads)
{
    alignas(32) float xTail[kStep] = {};
    const std::int64_t full = cols / kStep * kStep;
    std::memcpy(xTail, x + full, static_cast<std::size_t>(cols - full) * sizeof(float));
    parallelChunks(rows, threads, [&](std::int64_t begin, std::int64_t end) {
        if (format == HalfFormat::BF16)
            gemvRange<HalfFormat::BF16>(W, cols, x, xTail, y, begin, end);
        else
            gemvRange<HalfFormat::F16>(W, cols, x, xTail, y, begin, end);
    });
}

void convertHalfAvx2(HalfFormat format, const std::uint16_t* src, std::size_t count, float* dst)
{
    const std::size_t full = count / kLanes * kLanes;
    const bool bf16 = format == HalfFormat::BF16;
    for (std::size_t i = 0; i < full; i += kLanes)
        _mm256_storeu_ps(dst + i, bf16 ? load8<HalfFormat::BF16>(src + i) : load8<HalfFormat::F16>(src + i));
    if (full < count) {
        alignas(16) std::uint16_t tail[kLanes] = {};
        alignas(32) float out[kLanes];
        std::memcpy(tail, src + full, (count - full) * sizeof(std::uint16_t));
        _mm256_store_ps(out, bf16 ? load8<HalfFormat::BF16>(tail) : load8<HalfFormat::F16>(tail));
        std::memcpy(dst + full, out, (count - full) * sizeof(float));
    }
}

#endif

}  // namespace mdbf::kernels::detail
