#pragma once
// Run context for long jobs (docs/CONVENTIONS.md §4): a stop token polled at coarse
// checkpoints, a progress callback in natural units, and a thread count.

#include <cstdint>
#include <functional>
#include <stop_token>
#include <string_view>

namespace mdbf {

/// One progress report: `stage` names the phase ("loading", "perplexity", "layer"), `done` and
/// `total` count natural units of that phase (bytes, windows, layers, iterations).
struct Progress {
    std::string_view stage;
    std::int64_t done = 0;
    std::int64_t total = 0;
};

/// Passed by const reference into every long-running core function. The callback may be invoked
/// from a worker thread, but only from one thread at a time; it must be cheap and must not throw.
struct RunContext {
    std::stop_token stop;                            ///< polled at coarse checkpoints
    std::function<void(const Progress&)> progress;  ///< optional
    int threads = 0;                                 ///< 0 = all hardware threads

    /// True once a stop was requested through the token.
    bool stopRequested() const { return stop.stop_requested(); }

    /// Throws mdbf::Cancelled when a stop was requested; for jobs that have no partial result.
    void throwIfStopped() const;

    /// Forwards to `progress` when set.
    void report(std::string_view stage, std::int64_t done, std::int64_t total) const
    {
        if (progress) progress(Progress{stage, done, total});
    }

    /// The thread count to use: `threads` if positive, otherwise the hardware concurrency.
    int threadCount() const;
};

}  // namespace mdbf
