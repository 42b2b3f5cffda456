#pragma once
// The one run-time dispatch of every SIMD kernel (binary products, 16-bit dense products): a table
// of function pointers per code path, looked up once per call after resolveKernelPath().
//
// The ISA-specific sources (*_avx2.cpp, *_avx512.cpp) are the only files compiled with ISA flags
// (core/CMakeLists.txt). They include nothing that defines out-of-line shared code (no Eigen), and
// keep their helpers in anonymous namespaces, so the linker can never pick an AVX copy of a shared
// inline function for code that also runs on older CPUs.

#include <cstddef>
#include <cstdint>

#include "mdbf/kernels/half_product.h"
#include "mdbf/kernels/kernel_path.h"

namespace mdbf::kernels::detail {

/// A bit-packed ±1 matrix as the kernels see it (the layout of PackedSigns, without Eigen).
struct SignRows {
    static constexpr int kWordBits = 64;

    const std::uint64_t* words;  ///< rows · wordsPerRow words, padding bits clear
    std::int64_t rows;
    std::int64_t cols;
    std::int64_t wordsPerRow;
    /// The bits re-ordered for the SIMD table kernel (kTableBlockBytes per block, binary_product_impl.h),
    /// set by the caller of binaryGemvTables on a SIMD path; null elsewhere.
    const std::uint8_t* blocks = nullptr;

    [[gnu::always_inline]] const std::uint64_t* row(std::int64_t i) const { return words + i * wordsPerRow; }
};

/// The kernels of one code path. Shapes are validated by the public entry points beforehand.
struct KernelTable {
    /// Y(t, i) = Σ_j S(i, j) X(t, j) for t < T (X row t at X + t·ldx, Y row t at Y + t·ldy);
    /// T, rows and cols all ≥ 1.
    void (*binaryGemm)(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
                       std::int64_t ldy, int threads);
    /// y[i] ≈ Σ_j S(i, j) x[j] for one token through quantized 18-bit tables of the signed sums of
    /// every 4 columns (binary_product_impl.h); rows, cols ≥ 1. Every path gives the same bits.
    void (*binaryGemvTables)(const SignRows& S, const float* x, float* y, int threads);
    /// y[i] = Σ_j W(i, j) x[j] for W rows × cols 16-bit patterns, row-major; rows, cols ≥ 1.
    void (*halfGemv)(HalfFormat format, const std::uint16_t* W, std::int64_t rows, std::int64_t cols, const float* x,
                     float* y, int threads);
    /// dst[i] = the value of pattern src[i], exactly, for i < count.
    void (*convertHalf)(HalfFormat format, const std::uint16_t* src, std::size_t count, float* dst);
};

/// Portable loops; defined in the *_scalar.cpp sources.
extern const KernelTable kScalarKernels;
/// AVX2/FMA/F16C; only used when avx2Available(). Off x86, the scalar kernels.
extern const KernelTable kAvx2Kernels;
/// AVX-512 F/BW/VL; only used when avx512Available(). Off x86, the scalar kernels.
extern const KernelTable kAvx512Kernels;

/// The table of a resolved path (Scalar, Avx2 or Avx512).
const KernelTable& kernelTable(KernelPath resolved);

}  // namespace mdbf::kernels::detail
