#include "mdbf/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "mdbf/base/error.h"

namespace mdbf::generate {

namespace {

void requireFinite(std::span<const float> logits)
{
    if (logits.empty()) throw InvalidArgument("the model returned no logits");
    for (std::size_t i = 0; i < logits.size(); ++i) {
        if (!std::isfinite(logits[i])) {
            throw InvalidArgument("the model returned a non-finite logit for token id " + std::to_string(i));
        }
    }
}

}  // namespace

void SamplingOptions::validate() const
{
    if (!std::isfinite(temperature) || temperature < 0.0) {
        throw InvalidArgument("temperature must be a finite number >= 0 (0 = greedy), got " + std::to_string(temperature));
    }
    if (topK < 0) throw InvalidArgument("top-k must be >= 0 (0 = no limit), got " + std::to_string(topK));
    if (!(topP > 0.0 && topP <= 1.0)) throw InvalidArgument("top-p must be in (0, 1], got " + std::to_string(topP));
}

std::int32_t argmax(std::span<const float> logits)
{
    requireFinite(logits);
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingOptions& options) : m_options(options), m_rng(options.seed) { m_options.validate(); }

std::int32_t Sampler::next(std::span<const float> logits)
{
    if (m_options.temperature == 0.0) return argmax(logits);
    requireFinite(logits);

    // Candidates by decreasing logit, ties by increasing id, so the order never depends on the
    // sort's stability.
    const auto vocab = static_cast<std::int32_t>(logits.size());
    m_order.resize(logits.size());
    std::iota(m_order.begin(), m_order.end(), 0);
    const auto before = [&](std::int32_t a, std::int32_t b) {
        return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    };
    const std::int32_t keep = m_options.topK > 0 ? std::min(m_options.topK, vocab) : vocab;
    // Without a cut the draw needs no order: it walks the ids as they are.
    if (keep < vocab || m_options.topP < 1.0) {
        std::partial_sort(m_order.begin(), m_order.begin() + keep, m_order.end(), before);
        m_order.resize(static_cast<std::size_t>(keep));
    }

    // Softmax at the temperature over the candidates, in double.
    const double top = *std::max_element(logits.begin(), logits.end());
    m_weights.resize(m_order.size());
    double total = 0.0;
    for (std::size_t i = 0; i < m_order.size(); ++i) {
        m_weights[i] = std::exp((logits[m_order[i]] - top) / m_options.temperature);
        total += m_weights[i];
    }
    // Nucleus: the shortest prefix whose probability reaches top-p (never empty).
    std::size_t count = m_order.size();
    if (m_options.topP < 1.0) {
        double mass = 0.0;
        for (std::size_t i = 0; i < m_order.size(); ++i) {
            mass += m_weights[i] / total;
            if (mass >= m_options.topP) {
                count = i + 1;
                break;
            }
        }
        total = std::accumulate(m_weights.begin(), m_weights.begin() + static_cast<std::ptrdiff_t>(count), 0.0);
    }

    // A uniform draw in [0, 1) from the top 53 bits, the same on every platform (the standard
    // distributions are not specified bit for bit).
    const double u = static_cast<double>(m_rng() >> 11) * 0x1.0p-53 * total;
    double acc = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
        acc += m_weights[i];
        if (u < acc) return m_order[i];
    }
    return m_order[count - 1];
}

}  // namespace mdbf::generate
