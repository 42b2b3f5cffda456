#pragma once
// Internal entry points of the binary-product kernels, one per code path. All take the raw
// strided form of binaryGemm with shapes already validated and T, rows, cols all ≥ 1.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "kernels/kernel_table.h"

namespace mdbf::kernels::detail {

/// Y(t, i) = Σ_j S(i, j) X(t, j) with portable loops.
void gemmScalar(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads);

/// The same product with AVX2/FMA kernels; only call when avx2Available().
void gemmAvx2(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
              int threads);

/// The same product with AVX-512 kernels (windows of 8 or more tokens use gemmAvx2); only call
/// when avx512Available().
void gemmAvx512(const SignRows& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads);

/// A growable 64-byte-aligned float buffer, reused across calls to keep allocations out of the
/// per-token path. Not thread-safe: keep one per thread (thread_local). Its functions are defined
/// in a source without ISA flags (see kernel_table.h).
class AlignedScratch {
public:
    /// A buffer of at least `count` floats; previous contents are not preserved on growth.
    /// Throws std::bad_alloc.
    float* floats(std::size_t count);

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> m_data;
    std::size_t m_capacity = 0;
};

}  // namespace mdbf::kernels::detail
