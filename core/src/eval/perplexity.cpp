#include "mdbf/eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "mdbf/base/error.h"

namespace mdbf::eval {

double windowNll(const RowMatrixF& logits, std::span<const std::int32_t> ids)
{
    double nll = 0.0;
    for (Eigen::Index t = 0; t + 1 < logits.rows(); ++t) {
        const auto row = logits.row(t);
        const float maxv = row.maxCoeff();
        double sum = 0.0;
        for (Eigen::Index j = 0; j < row.size(); ++j) sum += std::exp(static_cast<double>(row(j) - maxv));
        const double logZ = static_cast<double>(maxv) + std::log(sum);
        nll += logZ - static_cast<double>(row(ids[static_cast<std::size_t>(t) + 1]));
    }
    return nll;
}

void requireIdsInVocabulary(std::span<const std::int32_t> ids, std::int64_t vocabSize, const std::string& tokenizerSource,
                            const std::string& modelSource)
{
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= vocabSize) {
            throw InvalidArgument(quotedText(tokenizerSource) + ": token " + std::to_string(i) + " of the text has id " +
                                  std::to_string(ids[i]) + ", outside the vocabulary of " + quotedText(modelSource) +
                                  " (vocab_size " + std::to_string(vocabSize) + ")");
        }
    }
}

PerplexityResult perplexity(const model::Transformer& model, std::span<const std::int32_t> ids, int ctx,
                            const RunContext& run)
{
    if (ctx < 2) throw InvalidArgument("ctx must be at least 2 (got " + std::to_string(ctx) + ")");
    if (static_cast<std::int64_t>(ids.size()) < ctx) {
        throw InvalidArgument("the text has " + std::to_string(ids.size()) + " tokens, fewer than ctx = " +
                              std::to_string(ctx));
    }
    const auto start = std::chrono::steady_clock::now();
    PerplexityResult result;
    result.tokens = static_cast<std::int64_t>(ids.size());
    result.totalWindows = result.tokens / ctx;
    run.report("perplexity", 0, result.totalWindows);
    for (std::int64_t w = 0; w < result.totalWindows; ++w) {
        if (run.stopRequested()) {
            result.cancelled = true;
            break;
        }
        const auto window = ids.subspan(static_cast<std::size_t>(w * ctx), static_cast<std::size_t>(ctx));
        const RowMatrixF logits = model.forward(window, run.threadCount());
        const double nll = windowNll(logits, window);
        // Weights are checked finite when read, so a non-finite loss comes from the activations:
        // report it instead of printing nan or inf as a result.
        if (!std::isfinite(nll)) {
            throw InvalidArgument("window " + std::to_string(w + 1) + " of " + std::to_string(result.totalWindows) +
                                  " gives a non-finite loss (finite weights, so activations overflowed: check the "
                                  "config's rope and norm settings)");
        }
        result.nll += nll;
        result.predicted += ctx - 1;
        result.windows = w + 1;
        run.report("perplexity", w + 1, result.totalWindows);
    }
    result.ppl = result.predicted > 0 ? std::exp(result.nll / static_cast<double>(result.predicted)) : 0.0;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace mdbf::eval
