#include "mdbf/generate/generator.h"

#include <algorithm>
#include <chrono>

#include "mdbf/base/error.h"
#include "mdbf/generate/text_stream.h"

namespace mdbf::generate {

namespace {

double secondsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void GenerationOptions::validate() const
{
    if (maxTokens < 1) throw InvalidArgument("the number of tokens to generate must be >= 1, got " + std::to_string(maxTokens));
    sampling.validate();
}

double GenerationResult::prefillTokensPerSecond() const
{
    return prefillSeconds > 0.0 ? static_cast<double>(promptIds.size()) / prefillSeconds : 0.0;
}

double GenerationResult::decodeTokensPerSecond() const
{
    return decodeSeconds > 0.0 && decodeSteps > 0 ? static_cast<double>(decodeSteps) / decodeSeconds : 0.0;
}

std::string_view stopReasonName(StopReason reason)
{
    switch (reason) {
    case StopReason::EndOfSequence: return "eos";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::ContextFull: return "context";
    case StopReason::Cancelled: return "cancelled";
    }
    return "unknown";
}

GenerationResult generate(const model::Transformer& model, const Tokenizer& tokenizer,
                          std::span<const std::int32_t> promptIds, const GenerationOptions& options,
                          const RunContext& ctx, const std::function<void(std::string_view)>& onText)
{
    options.validate();
    model.prepareForDecoding();
    const io::ModelConfig& config = model.config();
    if (promptIds.empty()) throw InvalidArgument("the prompt is empty: it gives no tokens");
    const std::int64_t prompt = static_cast<std::int64_t>(promptIds.size());
    const std::int64_t limit = config.maxPositionEmbeddings > 0 ? config.maxPositionEmbeddings : prompt + options.maxTokens;
    if (prompt >= limit) {
        throw InvalidArgument("the prompt has " + std::to_string(prompt) + " tokens, which fills the model's context of " +
                              std::to_string(limit) + " positions");
    }
    // The last generated token is never run through the model, so it needs no position.
    const int capacity = static_cast<int>(std::min(prompt + options.maxTokens - 1, limit));
    const int threads = ctx.threadCount();

    GenerationResult result;
    result.promptIds.assign(promptIds.begin(), promptIds.end());
    Sampler sampler(options.sampling);
    TextStream stream(tokenizer, promptIds);
    model::KvCache cache = model.newCache(capacity);
    const auto isEos = [&](std::int32_t id) {
        return !options.ignoreEos &&
               std::find(config.eosTokenIds.begin(), config.eosTokenIds.end(), id) != config.eosTokenIds.end();
    };
    const auto emit = [&](const std::string& piece) {
        if (onText && !piece.empty()) onText(piece);
    };

    // Models often pad their vocabulary beyond the tokenizer's (to a multiple of 64 or 128): those
    // rows were never trained and have no text, so they are never chosen.
    const std::size_t choices = std::min<std::size_t>(static_cast<std::size_t>(config.vocabSize), tokenizer.vocabSize());
    auto start = std::chrono::steady_clock::now();
    const RowMatrixF* logits = &model.extend(cache, promptIds, threads, model::Transformer::Logits::Last);
    result.prefillSeconds = secondsSince(start);

    ctx.report("generating", 0, options.maxTokens);
    while (true) {
        const std::int32_t id = sampler.next(std::span<const float>(logits->data(), choices));
        result.ids.push_back(id);
        emit(stream.push(id));
        const auto generated = static_cast<std::int64_t>(result.ids.size());
        ctx.report("generating", generated, options.maxTokens);
        if (isEos(id)) {
            result.stop = StopReason::EndOfSequence;
            break;
        }
        if (generated >= options.maxTokens) {
            result.stop = StopReason::MaxTokens;
            break;
        }
        if (prompt + generated >= limit) {
            result.stop = StopReason::ContextFull;
            break;
        }
        if (ctx.stopRequested()) {
            result.stop = StopReason::Cancelled;
            break;
        }
        start = std::chrono::steady_clock::now();
        logits = &model.extend(cache, std::span<const std::int32_t>(&result.ids.back(), 1), threads);
        result.decodeSeconds += secondsSince(start);
        ++result.decodeSteps;
    }
    emit(stream.finish());
    result.text = stream.text();
    return result;
}

}  // namespace mdbf::generate
