#pragma once
// The machine's sustained read bandwidth, the yardstick of every memory-bound figure the benchmarks
// print (decode of packed weights, tokens per second at batch 1).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/parallel.h"

namespace mdbf::bench {

/// Sustained read bandwidth in GB/s on `threads` threads. A 1 GiB buffer is summed in 16 MiB
/// segments, each timed on its own and last touched a whole buffer earlier (so never cached); the
/// best segment is taken, which keeps the figure meaningful when other processes preempt this one
/// now and then.
inline double measureBandwidth(int threads)
{
    using Clock = std::chrono::steady_clock;
    static std::vector<float> buffer;
    constexpr std::int64_t kFloats = std::int64_t{1} << 28;   // 1 GiB
    constexpr std::int64_t kSegment = std::int64_t{1} << 22;  // 16 MiB
    if (buffer.empty()) {
        buffer.resize(kFloats);
        parallelChunks(kFloats, 2, [&](std::int64_t b, std::int64_t e) {
            std::fill(buffer.begin() + b, buffer.begin() + e, 1.0f);
        });
    }
    double best = 1e30;
    float sink = 0.0f;
    for (int pass = 0; pass < 3; ++pass) {
        for (std::int64_t s0 = 0; s0 < kFloats; s0 += kSegment) {
            float partial[64] = {};
            const auto t0 = Clock::now();
            parallelChunks(kSegment, threads, [&](std::int64_t b, std::int64_t e) {
                partial[b * threads / kSegment] =
                    Eigen::Map<const Eigen::VectorXf>(buffer.data() + s0 + b, e - b).sum();
            });
            best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
            for (float p : partial) sink += p;
        }
    }
    if (sink == 0.0f) std::printf("(unexpected zero sum)\n");
    return static_cast<double>(kSegment) * sizeof(float) / best / 1e9;
}

}  // namespace mdbf::bench
