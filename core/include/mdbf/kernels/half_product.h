#pragma once
// Products with dense matrices stored as 16-bit floats (IEEE binary16 or bfloat16), widened to
// float32 in registers: the decode GEMV of layers kept at their stored precision (output head,
// unquantized projections). Dispatched at run time like the binary kernels (kernel_path.h).
// All functions are reentrant; results do not depend on `threads` (each row is one thread's).

#include <cstdint>
#include <span>

#include "mdbf/kernels/kernel_path.h"

namespace mdbf::kernels {

/// The 16-bit float format of a weight matrix.
enum class HalfFormat {
    F16,   ///< IEEE 754 binary16
    BF16,  ///< bfloat16 (the upper half of a float32)
};

/// y = W x for W of rows × cols 16-bit patterns, row-major (rows·cols entries); x has cols entries,
/// y receives rows entries. Float32 accumulation; each row is a plain summation of its products.
/// Throws InvalidArgument on a size mismatch, or when path is Avx2/Avx512 and the CPU lacks it.
void halfGemv(HalfFormat format, std::span<const std::uint16_t> W, std::int64_t rows, std::int64_t cols,
              std::span<const float> x, std::span<float> y, int threads = 1, KernelPath path = KernelPath::Auto);

/// dst[i] = the value of src[i] (exact for both formats). Throws InvalidArgument when the spans
/// differ in size, or when path is Avx2/Avx512 and the CPU lacks it.
void convertHalf(HalfFormat format, std::span<const std::uint16_t> src, std::span<float> dst,
                 KernelPath path = KernelPath::Auto);

}  // namespace mdbf::kernels
