#pragma once
// Static row partitioning over OpenMP threads (rows split evenly, as the kernels expect).

#include <algorithm>
#include <cstdint>

#include <omp.h>

namespace mdbf {

/// Calls fn(begin, end) on `threads` contiguous, near-equal chunks of [0, count) in parallel.
/// fn must not throw (exceptions cannot cross an OpenMP region); threads <= 1 runs inline.
template <typename Fn>
void parallelChunks(std::int64_t count, int threads, Fn&& fn)
{
    if (count <= 0) return;
    const int t = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, count)));
    if (t == 1) {
        fn(std::int64_t{0}, count);
        return;
    }
#pragma omp parallel for num_threads(t) schedule(static, 1)
    for (int i = 0; i < t; ++i) {
        const std::int64_t begin = count * i / t;
        const std::int64_t end = count * (i + 1) / t;
        fn(begin, end);
    }
}

}  // namespace mdbf
