#pragma once
// The configuration the studio builds up layer by layer (inspector, Apply to model): which layers
// are factorized and with which result. Everything else stays dense. What the tool chain derives from
// it (accounting, quantization config, the whole-model result, a runnable model) is computed by the
// core pipeline (mdbf/pipeline/model_configuration.h); this file only converts the studio's view of it.

#include <map>
#include <memory>

#include <QString>

#include "factor_cache.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/pipeline/model_accounting.h"
#include "mdbf/pipeline/model_configuration.h"

namespace mdbf::studio {

/// Factorized layers keyed by the model's layer name ("model.layers.0.mlp.up_proj", "lm_head").
/// The results are immutable and shared, so copies are cheap and may be handed to workers.
using ModelConfiguration = std::map<QString, std::shared_ptr<const LayerFactorization>>;

/// The model-level accounting of `config` on `checkpoint` (pipeline::accountModel). Never throws.
pipeline::ModelBits accountConfiguration(const io::Checkpoint& checkpoint, const ModelConfiguration& config);

/// The settings a factorized layer is in use with, as a quantization config states them: method, l,
/// P and objective of the result, the requested budget, and the outer iterations actually run (the
/// requested count for a complete refinement, 0 for a closed form, the completed count per path for a
/// refinement cancelled part way).
factor::LayerQuantSettings settingsInUse(const LayerFactorization& f);

/// pipeline::quantConfigOf for the settings in use of every configured layer.
factor::QuantConfig quantConfigOf(const io::ModelConfig& model, const ModelConfiguration& config);

/// pipeline::quantizeResultOf for the results of `config`.
pipeline::QuantizeResult quantizeResultOf(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                          const ModelConfiguration& config, const RunContext& ctx = {});

/// pipeline::configuredTransformer for the results of `config`.
model::Transformer configuredTransformer(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                         const ModelConfiguration& config, const RunContext& ctx = {});

}  // namespace mdbf::studio
