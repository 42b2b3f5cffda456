#pragma once
// Prefill and decode speed of a model, measured the way llama-bench measures it
// (docs/GENERATION.md): a prompt of random ids as one window, then single-token steps against the
// KV cache, repeated after an untimed warm-up run.

#include <cstdint>
#include <vector>

#include "mdbf/base/run_context.h"
#include "mdbf/model/transformer.h"

namespace mdbf::generate {

/// What measureThroughput() runs.
struct ThroughputOptions {
    int promptTokens = 256;  ///< prefill window, >= 1
    int genTokens = 128;     ///< one-token steps after the prefill, >= 1
    int repetitions = 3;     ///< timed runs, >= 1
    std::uint64_t seed = 0;  ///< of the random prompt ids

    /// Throws InvalidArgument naming the field when one is < 1.
    void validate() const;
};

/// Tokens per second of each timed run, and their summaries.
struct ThroughputResult {
    std::vector<double> prefillTokensPerSecond;
    std::vector<double> decodeTokensPerSecond;
    int threads = 0;
    bool cancelled = false;  ///< stopped early: the vectors hold the finished runs

    /// Mean of the values (0 for none).
    static double mean(const std::vector<double>& values);
    /// Sample standard deviation (0 for fewer than two values).
    static double standardDeviation(const std::vector<double>& values);
};

/// Runs one untimed warm-up and `repetitions` timed runs on ctx.threadCount() threads, each from an
/// empty cache of promptTokens + genTokens positions. Reports progress in runs ("bench") and polls
/// ctx.stop between runs. Throws InvalidArgument for invalid options or a context beyond the
/// model's max_position_embeddings.
ThroughputResult measureThroughput(const model::Transformer& model, const ThroughputOptions& options,
                                   const RunContext& ctx = {});

}  // namespace mdbf::generate
