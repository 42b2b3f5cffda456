#pragma once
// A model configuration built layer by layer (the studio's inspector and Apply): finished
// factorizations for some layers, everything else at stored precision. From it come the quantization
// configuration that reproduces it, the whole-model result a package is written from (with the one
// model-level accounting), and a runnable model — the same objects `mdbf quantize` produces.

#include <map>
#include <memory>
#include <string>

#include "mdbf/base/run_context.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/transformer.h"
#include "mdbf/pipeline/quantize.h"

namespace mdbf::pipeline {

/// The settings each configured layer is in use with, by layer name.
using ConfiguredSettings = std::map<std::string, factor::LayerQuantSettings, std::less<>>;

/// The finished factorization of each configured layer, by layer name.
using ConfiguredResults = std::map<std::string, std::shared_ptr<const factor::FactorResult>, std::less<>>;

/// A quantization config whose resolve() gives, for every projection of `model`, the settings in
/// `configured` for a configured layer and dense for every other one. Of two equivalent forms (dense
/// by default with a rule per factorized layer, or the usual dense patterns with a rule per
/// exception) the one with fewer rules is chosen; the most common settings become the defaults.
/// Never throws for names of the model.
factor::QuantConfig quantConfigOf(const io::ModelConfig& model, const ConfiguredSettings& configured);

/// The whole-model result of `results`: one entry per projection of `model` in model order, the
/// configured ones as model::FactorizedLinear layers (with the checkpoint's bias, if any), every other
/// one kept dense, and the accounting of accountModel(). Reports ("layers", i, N) and polls ctx.stop
/// between layers (throws Cancelled). Throws InvalidArgument naming a configured layer that is not a
/// projection of the model.
QuantizeResult quantizeResultOf(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                const ConfiguredResults& results, const RunContext& ctx = {});

/// A private float32 model of `checkpoint` with every configured layer swapped in, for perplexity and
/// generation with the configuration. Reports loading progress and polls ctx.stop (throws
/// Cancelled); throws what Transformer::fromCheckpoint and quantizeResultOf throw.
model::Transformer configuredTransformer(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                         const ConfiguredResults& results, const RunContext& ctx = {});

}  // namespace mdbf::pipeline
