#pragma once
// The configuration the studio builds up layer by layer (inspector, Apply to model): which layers
// are factorized and with which result. Everything else stays dense. This file derives what the
// rest of the tool chain needs from it: the exact model-level bit accounting of eval::quantize, the
// factor::QuantConfig that reproduces the per-layer settings, and the eval::QuantizeResult a
// deployment package is made from.

#include <cstdint>
#include <map>
#include <memory>

#include <QString>

#include "factor_cache.h"
#include "mdbf/base/run_context.h"
#include "mdbf/eval/quantize.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"

namespace mdbf::studio {

/// Factorized layers keyed by the model's layer name ("model.layers.0.mlp.up_proj", "lm_head").
/// The results are immutable and shared, so copies are cheap and may be handed to workers.
using ModelConfiguration = std::map<QString, std::shared_ptr<const LayerFactorization>>;

/// Exact storage of a model under a configuration (the accounting of eval::quantizeCheckpoint):
/// factorized layers at their exact bits (signs + FP16 envelopes), every other checkpoint tensor at
/// its stored precision; a factorized tied head adds its weights beside the embedding it reads.
struct ConfigurationBits {
    std::int64_t factorizedWeights = 0;  ///< Σ n·m over factorized layers
    std::int64_t factorizedBits = 0;     ///< their exact storage
    std::int64_t totalWeights = 0;       ///< every stored weight (plus factorized tied heads)
    std::int64_t totalBits = 0;          ///< factorized storage + dense tensors at stored precision

    /// totalBits / totalWeights (0 for an empty model).
    double modelBpw() const;
    /// factorizedBits / factorizedWeights (0 when nothing is factorized).
    double factorizedBpw() const;
};

/// The accounting of `config` on `checkpoint`. Layers are matched to their checkpoint tensor by
/// name ("<layer>.weight"); a layer without one (a tied head) counts as an extra tensor. Never throws
/// for consistent input (results computed from this checkpoint).
ConfigurationBits accountConfiguration(const io::Checkpoint& checkpoint, const ModelConfiguration& config);

/// The settings a factorized layer is in use with, as a quantization config states them: method, l,
/// P and objective of the result, the requested budget, and the outer iterations actually run (the
/// requested count for a complete refinement, 0 for a closed form, the completed count per path for a
/// refinement cancelled part way).
factor::LayerQuantSettings settingsInUse(const LayerFactorization& f);

/// A quantization config whose resolve() gives, for every projection of `model`, the settings in
/// use for a configured layer and dense for every other one. Of two equivalent forms (dense by
/// default with a rule per factorized layer, or the usual dense patterns with a rule per exception)
/// the one with fewer rules is chosen; the most common settings become the defaults.
factor::QuantConfig quantConfigOf(const io::ModelConfig& model, const ModelConfiguration& config);

/// The whole-model result of `config`: one entry per projection of `model` in model order, the
/// configured ones as model::FactorizedLinear layers (with the checkpoint's bias, if any), every
/// other one kept dense, and the accounting of accountConfiguration(). Reports ("layers", i, N) and
/// polls ctx.stop between layers (throws Cancelled). Throws InvalidArgument naming a configured
/// layer that is not a projection of the model.
eval::QuantizeResult quantizeResultOf(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                      const ModelConfiguration& config, const RunContext& ctx = {});

/// A private float32 model of `checkpoint` with every configured layer swapped in (the layers of
/// quantizeResultOf(), applied with eval::applyQuantization), for perplexity and generation with the
/// configuration. Reports loading progress and polls ctx.stop (throws Cancelled); throws what
/// Transformer::fromCheckpoint and quantizeResultOf throw.
model::Transformer configuredTransformer(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                         const ModelConfiguration& config, const RunContext& ctx = {});

}  // namespace mdbf::studio
