#include "mdbf/generate/throughput.h"

#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "mdbf/base/error.h"
#include "mdbf/generate/sampler.h"

namespace mdbf::generate {

void ThroughputOptions::validate() const
{
    const auto positive = [](int value, const char* name) {
        if (value < 1) throw InvalidArgument(std::string(name) + " must be >= 1, got " + std::to_string(value));
    };
    positive(promptTokens, "the number of prompt tokens");
    positive(genTokens, "the number of generated tokens");
    positive(repetitions, "the number of repetitions");
}

double ThroughputResult::mean(const std::vector<double>& values)
{
    return values.empty() ? 0.0 : std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double ThroughputResult::standardDeviation(const std::vector<double>& values)
{
    if (values.size() < 2) return 0.0;
    const double mu = mean(values);
    double sum = 0.0;
    for (const double v : values) sum += (v - mu) * (v - mu);
    return std::sqrt(sum / static_cast<double>(values.size() - 1));
}

ThroughputResult measureThroughput(const model::Transformer& model, const ThroughputOptions& options,
                                   const RunContext& ctx)
{
    options.validate();
    model.prepareForDecoding();  // not inside the timed runs
    std::mt19937_64 rng(options.seed);
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(options.promptTokens));
    for (std::int32_t& id : prompt) id = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(model.config().vocabSize));

    ThroughputResult result;
    result.threads = ctx.threadCount();
    model::KvCache cache = model.newCache(options.promptTokens + options.genTokens);
    using Clock = std::chrono::steady_clock;
    for (int run = 0; run <= options.repetitions; ++run) {
        if (ctx.stopRequested()) {
            result.cancelled = true;
            break;
        }
        ctx.report("bench", run, options.repetitions + 1);
        cache.reset();
        auto start = Clock::now();
        const RowMatrixF* logits = &model.extend(cache, prompt, result.threads);
        const double prefill = std::chrono::duration<double>(Clock::now() - start).count();
        // Each step feeds the greedy choice, as a generation would.
        start = Clock::now();
        for (int t = 0; t < options.genTokens; ++t) {
            const std::int32_t next = argmax(std::span<const float>(logits->data(), static_cast<std::size_t>(logits->cols())));
            logits = &model.extend(cache, std::span<const std::int32_t>(&next, 1), result.threads);
        }
        const double decode = std::chrono::duration<double>(Clock::now() - start).count();
        if (run == 0) continue;  // warm-up: caches, page faults, thread pool start
        result.prefillTokensPerSecond.push_back(options.promptTokens / prefill);
        result.decodeTokensPerSecond.push_back(options.genTokens / decode);
    }
    ctx.report("bench", options.repetitions + 1, options.repetitions + 1);
    return result;
}

}  // namespace mdbf::generate
