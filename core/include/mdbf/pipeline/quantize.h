#pragma once
// Whole-model quantization (docs/ALGORITHM.md §3.4, docs/CLI.md §3.5 `mdbf quantize`): every projection of a model is
// factorized with the settings its name resolves to in a factor::QuantConfig, or kept dense (by
// configuration, or because its budget leaves k < max(1, l)); the model-level bit accounting is
// exact, with dense tensors counted at their stored precision.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/package.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/transformer.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/pipeline/model_accounting.h"
#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

/// What happened to one projection.
struct LayerQuantResult {
    std::string name;                  ///< projection name without ".weight"
    std::int64_t n = 0;                ///< out_features
    std::int64_t m = 0;                ///< in_features
    std::int64_t k = 0;                ///< middle dimension (0 when kept dense)
    int l = 0;                         ///< envelope rank (0 when kept dense)
    int paths = 0;                     ///< P (0 when kept dense)
    factor::Method method = factor::Method::Mdbf;
    factor::Objective objective = factor::Objective::Plain;
    double bpw = 0.0;                  ///< achieved bits per weight; the stored precision when kept dense
    double relError = 0.0;             ///< rel_error under `objective` (0 when kept dense), measured
                                       ///< against the output-matching target when one was used
    double plainError = 0.0;           ///< ‖W − Ŵ‖_F / ‖W‖_F whatever the objective (0 when kept dense)
    double seconds = 0.0;              ///< wall time spent on this layer
    bool keptDense = false;
    bool clamped = false;              ///< the budget asked for k > min(n, m)
    int iterations = 0;                ///< outer iterations run (all paths)
    factor::Termination termination = factor::Termination::IterationLimit;
    std::string note;                  ///< why the layer stayed dense, or the factorizer's message
    bool cached = false;               ///< read from QuantizeOptions::store instead of factorized
    bool decompositionCached = false;  ///< its decomposition was read from engine.decompositions
    std::int64_t warmStartK = 0;       ///< k of the result it was refined from (QuantizeOptions::warmStart); 0: cold
    std::shared_ptr<const model::FactorizedLinear> layer;  ///< the replacement (null when kept dense)
};

/// Whole-model figures. Bits and weights are exact integers; the bpw figures are their quotients.
struct QuantizeResult {
    std::vector<LayerQuantResult> layers;  ///< every projection, in model order
    std::int64_t factorizedWeights = 0;    ///< Σ n·m over factorized layers
    std::int64_t factorizedBits = 0;       ///< their exact storage (signs + FP16 envelopes)
    std::int64_t totalWeights = 0;         ///< every stored weight of the model
    std::int64_t totalBits = 0;            ///< factorized storage + dense tensors at stored precision
    double factorizedBpw = 0.0;            ///< factorizedBits / factorizedWeights (0 when none)
    double modelBpw = 0.0;                 ///< totalBits / totalWeights
    double seconds = 0.0;
};

struct LayerPlan;

/// Persistence of finished projections across runs (e.g. a study's disk cache).
class LayerResultStore {
public:
    virtual ~LayerResultStore() = default;

    /// The stored result of projection `name` factorized under `settings`, or nothing. Never throws:
    /// an unreadable entry is reported as absent.
    virtual std::optional<LayerQuantResult> load(const std::string& name,
                                                 const factor::LayerQuantSettings& settings) const = 0;

    /// Keeps a factorized projection (`result.layer` set) under `settings`. Throws IoError.
    virtual void save(const LayerQuantResult& result, const factor::LayerQuantSettings& settings) const = 0;
};

/// Where one projection's refinement starts instead of the closed form, and where its result is kept.
struct WarmStart {
    factor::FactorResult previous;  ///< a result of the same projection, objective and path count (any k, l)
    /// Keeps the results refined from `previous` (null: not kept). Never the store of cold results:
    /// a warm-started projection is not what its settings alone produce.
    std::shared_ptr<const LayerResultStore> store;
};

/// Options of quantizeModel.
struct QuantizeOptions {
    factor::QuantConfig config;                                   ///< per-layer settings
    std::map<std::string, VectorF, std::less<>> channelWeights;   ///< d_j per layer name for objective diag
    std::map<std::string, Eigen::MatrixXd, std::less<>> inputGrams;  ///< H = XᵀX / N per layer name for objective gram
    EngineSettings engine;                                        ///< seed, inner iterations, target damping
    /// Called after each projection (on the calling thread) with its result, its 0-based index and
    /// the number of projections. Must not throw.
    std::function<void(const LayerQuantResult&, int index, int total)> onLayer;
    /// Statistics on demand, used instead of channelWeights / inputGrams when set: called (on the
    /// calling thread) for a projection whose objective needs them and that `store` does not hold,
    /// with the projections finished so far, so that sequential quantization can collect a block's
    /// inputs from the model with the earlier blocks already replaced. May throw.
    std::function<LayerStatistics(const std::string& name, std::span<const LayerQuantResult> done)> statistics;
    /// Finished projections are looked up here first and saved here after factorizing (optional).
    const LayerResultStore* store = nullptr;
    /// Warm starts (optional): called (on the calling thread) for a projection to factorize that
    /// `store` does not hold; a returned WarmStart is refined from (its own store looked up first),
    /// nothing means a cold start. May throw.
    std::function<std::optional<WarmStart>(const LayerPlan& plan)> warmStart;
};

/// One projection of a whole-model quantization before it runs: what it is and how it is treated.
struct LayerPlan {
    std::string name;                       ///< projection name without ".weight"
    std::int64_t n = 0;                     ///< out_features
    std::int64_t m = 0;                     ///< in_features
    factor::LayerQuantSettings settings;    ///< what its name resolves to in the configuration
    bool keptDense = false;                 ///< by configuration, or its budget leaves k < max(1, l)
    double denseBpw = 0.0;                  ///< the stored precision (bits per element) of its weights
    std::string note;                       ///< why it stays dense
};

/// Every projection of a model of `config` (model::projectionNames, in order) with the settings
/// `quant` gives it and whether it is factorized. Throws FormatError for a missing tensor or one
/// that is not a non-empty matrix.
std::vector<LayerPlan> planQuantization(const factor::QuantConfig& quant, const io::ModelConfig& config,
                                        const io::Checkpoint& checkpoint);

/// The record of a projection that stays dense. Never throws.
LayerQuantResult keptDenseResult(const LayerPlan& plan);

/// Factorizes the projection of `plan` (not kept dense) with `statistics` for its objective, reading
/// W and its bias from `checkpoint`, from the closed form or, given `warmFrom`, refined from that
/// earlier result (pipeline::refineLayer; warmStartK then records its k). Polls ctx.stop inside the
/// refinement. Throws Cancelled on a stop request, InvalidArgument naming the layer when the
/// settings or statistics are unusable or `warmFrom` does not fit the layer.
LayerQuantResult quantizeLayer(const LayerPlan& plan, const io::Checkpoint& checkpoint, LayerStatistics statistics,
                               const EngineSettings& engine, const RunContext& ctx = {},
                               const factor::FactorResult* warmFrom = nullptr);

/// The statistics the objective of `plan` needs, from `options` (on demand through
/// options.statistics, given the projections `done` so far, else from its per-layer maps); none for
/// a plain objective. Throws what options.statistics throws.
LayerStatistics layerStatistics(const QuantizeOptions& options, const LayerPlan& plan,
                                std::span<const LayerQuantResult> done = {});

/// Factorizes every projection of a model of `config` (model::projectionNames, in
/// order) that its settings do not keep dense, reading W (float32) and any bias from `checkpoint`
/// (a tied head reads the embedding). Needs no float32 copy of the model: one layer at a time.
/// Reports ("layer", i, N) progress and polls ctx.stop between layers and inside the refinement;
/// a stop request throws Cancelled. Throws InvalidArgument for an objective without its channel
/// weights (diag) or Gram matrix (gram) or settings the factorizer rejects, FormatError for a
/// missing or mis-shaped tensor.
QuantizeResult quantizeCheckpoint(const io::ModelConfig& config, const io::Checkpoint& checkpoint,
                                  const QuantizeOptions& options, const RunContext& ctx = {});

/// quantizeCheckpoint for the model loaded from `checkpoint`, then, only when every layer is done,
/// the projections of `model` are replaced by the model::FactorizedLinear layers. A stop request
/// throws Cancelled and leaves `model` untouched.
QuantizeResult quantizeModel(model::Transformer& model, const io::Checkpoint& checkpoint,
                             const QuantizeOptions& options, const RunContext& ctx = {});

/// The record of a finished factorization of layer `name`: its figures and the
/// model::FactorizedLinear built from its paths and `bias` (empty for none). plainError is the
/// result's; a caller that fitted a target other than W corrects it.
LayerQuantResult layerQuantResult(const std::string& name, factor::FactorResult result, VectorF bias);

/// The package record of a factorized layer (its paths; none when kept dense). Never throws.
io::PackageLayer packageLayerOf(const LayerQuantResult& layer);

/// Fills the model-level figures of `result` from its layers with accountModel(). Never throws.
void accountResult(const io::Checkpoint& checkpoint, QuantizeResult& result);

/// Replaces every factorized projection of `result` in `model`. Throws InvalidArgument when a
/// name or shape does not fit the model.
void applyQuantization(model::Transformer& model, const QuantizeResult& result);

/// The deployment package of a quantized model: config.json and tokenizer.json copied verbatim
/// from `modelDir`, `config` as JSON, every checkpoint tensor not replaced by a factorized layer at
/// its stored precision, and the factorized layers. Throws IoError for unreadable model files.
io::Package makePackage(const std::filesystem::path& modelDir, const io::Checkpoint& checkpoint,
                        const QuantizeResult& result, const factor::QuantConfig& config);

/// Writes the package makePackage describes to `destination` without holding it in memory: the
/// dense tensors go from the memory-mapped checkpoint to the file, and each factorized layer is
/// fetched through `layerOf` (e.g. from a LayerStore) only while it is written, so `result` needs
/// the figures of its layers, not their factorizations. The file is identical to writePackage of
/// makePackage. Throws what `layerOf` throws, IoError, Cancelled; no file is left on failure.
void writeQuantizedPackage(const std::filesystem::path& modelDir, const io::Checkpoint& checkpoint,
                           const QuantizeResult& result, const factor::QuantConfig& config,
                           const std::function<io::PackageLayer(const LayerQuantResult&)>& layerOf,
                           const std::filesystem::path& destination, const RunContext& ctx = {});

}  // namespace mdbf::pipeline
