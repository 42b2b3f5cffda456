#pragma once
// Choosing the next token from a row of logits (docs/GENERATION.md): greedy at temperature 0,
// otherwise softmax at a temperature restricted to the top-k and then the top-p (nucleus) tokens,
// drawn from a seeded generator so that a seed always gives the same text.

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace mdbf::generate {

/// How the next token is drawn.
struct SamplingOptions {
    double temperature = 0.0;  ///< 0 = greedy (argmax); otherwise > 0
    int topK = 0;              ///< keep the k most likely tokens; 0 = all
    double topP = 1.0;         ///< keep the smallest set of tokens whose probability reaches p, in (0, 1]
    std::uint64_t seed = 0;    ///< seed of the random draws

    /// Throws InvalidArgument naming the option for a negative or non-finite temperature, top-k < 0,
    /// or top-p outside (0, 1].
    void validate() const;
};

/// Draws token ids from logits. Deterministic for a given seed and logit sequence.
class Sampler {
public:
    /// Validates the options (see SamplingOptions::validate) and seeds the generator.
    explicit Sampler(const SamplingOptions& options);

    /// The id chosen from `logits` (one entry per vocabulary id). Ties in greedy mode go to the
    /// lowest id. Throws InvalidArgument for an empty row or a non-finite logit (naming its id).
    std::int32_t next(std::span<const float> logits);

private:
    SamplingOptions m_options;
    std::mt19937_64 m_rng;
    std::vector<std::int32_t> m_order;  ///< candidate ids, reused between calls
    std::vector<double> m_weights;
};

/// The index of the largest entry (the first one on ties). Throws InvalidArgument for an empty
/// row or a non-finite entry.
std::int32_t argmax(std::span<const float> logits);

}  // namespace mdbf::generate
