#pragma once
// Perplexity under docs/ALGORITHM.md §7: consecutive non-overlapping windows of ctx tokens from the start,
// the final partial window dropped, tokens 1..ctx−1 of each window predicted from their prefix.

#include <cstdint>
#include <span>
#include <string>

#include "mdbf/base/run_context.h"
#include "mdbf/model/transformer.h"

namespace mdbf::eval {

/// Outcome of a perplexity run. When `cancelled`, the figures cover the `windows` completed.
struct PerplexityResult {
    double ppl = 0.0;             ///< exp(nll / predicted)
    double nll = 0.0;             ///< total negative log-likelihood, nats
    std::int64_t predicted = 0;   ///< number of predicted tokens
    std::int64_t tokens = 0;      ///< tokens in the text
    std::int64_t windows = 0;     ///< windows evaluated
    std::int64_t totalWindows = 0;
    double seconds = 0.0;
    bool cancelled = false;
};

/// Evaluates `model` on `ids` with windows of `ctx` tokens. Reports progress in windows
/// ("perplexity") and polls ctx.stop between windows. Throws InvalidArgument if ctx < 2 or the text
/// has fewer than ctx tokens.
PerplexityResult perplexity(const model::Transformer& model, std::span<const std::int32_t> ids, int ctx,
                            const RunContext& run = {});

/// Checks that every id the tokenizer produced has a row in the model's embedding table. Throws
/// InvalidArgument naming both sources, the first offending id and its position.
void requireIdsInVocabulary(std::span<const std::int32_t> ids, std::int64_t vocabSize, const std::string& tokenizerSource,
                            const std::string& modelSource);

/// Negative log-likelihood (nats) of predicting ids[t+1] from logits row t, summed over t = 0..T−2.
/// `logits` is T×vocab for the window `ids` (T entries).
double windowNll(const RowMatrixF& logits, std::span<const std::int32_t> ids);

}  // namespace mdbf::eval
