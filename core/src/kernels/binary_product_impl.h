#pragma once
// Internal entry points of the binary-product kernels, one per code path. All take the raw
// strided form of binaryGemm with shapes already validated and T, rows, cols all ≥ 1.

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "mdbf/kernels/packed_signs.h"

namespace mdbf::kernels::detail {

/// Y(t, i) = Σ_j S(i, j) X(t, j) with portable loops.
void gemmScalar(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
                std::int64_t ldy, int threads);

/// The same product with AVX2/FMA kernels; only call when avx2Available().
void gemmAvx2(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
              std::int64_t ldy, int threads);

/// The same product with AVX-512 kernels (windows of 8 or more tokens use gemmAvx2); only call
/// when avx512Available().
void gemmAvx512(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
                std::int64_t ldy, int threads);

/// A growable 64-byte-aligned float buffer, reused across calls to keep allocations out of the
/// per-token path. Not thread-safe: keep one per thread (thread_local).
class AlignedScratch {
public:
    /// A buffer of at least `count` floats; previous contents are not preserved on growth.
    float* floats(std::size_t count)
    {
        if (count > m_capacity) {
            const std::size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
            m_data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
            if (!m_data) throw std::bad_alloc();
            m_capacity = count;
        }
        return m_data.get();
    }

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> m_data;
    std::size_t m_capacity = 0;
};

}  // namespace mdbf::kernels::detail
