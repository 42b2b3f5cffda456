#pragma once
// Text generation with a KV cache (docs/GENERATION.md): the prompt runs as one window, then each
// new token is one step against the cache, until an end-of-sequence token, the token limit, the
// model's context or a stop request.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdbf/base/run_context.h"
#include "mdbf/generate/sampler.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::generate {

/// What generate() does.
struct GenerationOptions {
    int maxTokens = 128;        ///< tokens to generate at most, >= 1
    SamplingOptions sampling;   ///< greedy by default
    bool ignoreEos = false;     ///< keep going past the config's eos_token_id

    /// Throws InvalidArgument for maxTokens < 1 or invalid sampling options.
    void validate() const;
};

/// Why generation ended.
enum class StopReason { EndOfSequence, MaxTokens, ContextFull, Cancelled };

/// The generated tokens and how long the two phases took.
struct GenerationResult {
    std::vector<std::int32_t> promptIds;
    std::vector<std::int32_t> ids;  ///< generated tokens only (an end-of-sequence token included)
    std::string text;               ///< the text that follows the prompt: decode(prompt + ids) − decode(prompt)
    StopReason stop = StopReason::MaxTokens;
    double prefillSeconds = 0.0;    ///< the prompt window, including its last position's logits
    double decodeSeconds = 0.0;     ///< every one-token step
    std::int64_t decodeSteps = 0;   ///< one-token steps run (one fewer than ids when none was wasted)

    /// Prompt tokens per second of the prefill (0 when not measured).
    double prefillTokensPerSecond() const;
    /// One-token steps per second (0 when none ran).
    double decodeTokensPerSecond() const;
};

/// Generates from `promptIds` with `model`. `onText` receives each piece of text as soon as it is
/// final (see TextStream), on the calling thread. Only ids the tokenizer knows are chosen (a model's
/// vocabulary padded beyond the tokenizer's never yields a padding id). Polls ctx.stop between tokens and returns what
/// was generated, marked Cancelled. Prompt and generated tokens together stay within the config's
/// max_position_embeddings (when it gives one; generation then ends with ContextFull). Throws InvalidArgument for an empty prompt, a prompt that fills the
/// context, invalid options, or a non-finite logit.
GenerationResult generate(const model::Transformer& model, const Tokenizer& tokenizer,
                          std::span<const std::int32_t> promptIds, const GenerationOptions& options,
                          const RunContext& ctx = {}, const std::function<void(std::string_view)>& onText = {});

/// Label of a stop reason for messages and JSON ("eos", "max_tokens", "context", "cancelled").
std::string_view stopReasonName(StopReason reason);

}  // namespace mdbf::generate
