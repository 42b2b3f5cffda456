#pragma once
// The tensor layout of the supported decoder-only architectures (docs/ARCHITECTURE.md, "The
// architecture table"): which tensors a checkpoint holds, what role each plays, which block it
// belongs to, which are projections the engine can factorize, and where a tied head reads its
// weights. LLaMA, Mistral, Qwen2 and Qwen3 share the Hugging Face naming; they differ in biases and
// q/k norms, which the config decides. This is the only place that spells these names: the
// transformer, quantization, calibration, the package reader and the studio's layer tree ask here.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mdbf/io/model_config.h"

namespace mdbf::model {

/// What a tensor does in the model.
enum class TensorRole {
    Embedding,      ///< token embedding table, vocab × hidden
    AttentionNorm,  ///< RMSNorm before attention, per block
    MlpNorm,        ///< RMSNorm before the MLP, per block
    QueryNorm,      ///< per-head RMSNorm on q (Qwen3)
    KeyNorm,        ///< per-head RMSNorm on k (Qwen3)
    Query,
    Key,
    Value,
    Output,         ///< attention output projection
    Gate,
    Up,
    Down,
    FinalNorm,
    Head,           ///< output head, vocab × hidden (may be tied to the embedding)
};

/// One of a block's projections.
struct ProjectionSpec {
    TensorRole role;
    std::string_view path;   ///< name inside a block, e.g. "self_attn.q_proj"
    std::string_view label;  ///< short name, e.g. "q_proj"
    std::string_view tick;   ///< shortest name for crowded axes, e.g. "q"
};

/// Number of projections per block.
inline constexpr std::size_t kBlockProjectionCount = 7;

/// A layer name read back against the table.
struct LayerIdentity {
    int block = -1;                    ///< block index, −1 outside the blocks
    TensorRole role = TensorRole::Embedding;
    std::size_t projection = kBlockProjectionCount;  ///< index into blockProjections(), or kBlockProjectionCount
    std::string_view label;            ///< "q_proj", "embed_tokens", "lm_head", "input_layernorm", ...

    /// True for the block projections and the head: the layers the engine can factorize.
    bool factorizable() const;
};

/// The seven projections of a block in execution order: q, k, v, o, gate, up, down.
std::span<const ProjectionSpec> blockProjections();

/// "model.embed_tokens", "lm_head", "model.norm": layer names (without ".weight") outside the blocks.
std::string embeddingName();
std::string headName();
std::string finalNormName();

/// "model.layers.<block>.<path>" for a per-block role (projection or norm). Throws InvalidArgument for
/// a role outside the blocks or a negative block.
std::string blockLayerName(int block, TensorRole role);

/// "<layer>.weight" and "<layer>.bias": the checkpoint tensors of a layer.
std::string weightName(std::string_view layer);
std::string biasName(std::string_view layer);

/// `name` without a trailing ".weight" (unchanged otherwise).
std::string stripWeightSuffix(std::string_view name);

/// Every factorizable layer of a model of `config`: the block projections in model order, then the
/// head. Never throws.
std::vector<std::string> projectionNames(const io::ModelConfig& config);

/// What `name` (a layer or tensor name, ".weight"/".bias" allowed) is, or nothing for a name outside
/// the table (including block numbers that do not parse). Never throws.
std::optional<LayerIdentity> identifyLayer(std::string_view name);

/// Whether `config` gives a projection of `role` a bias (q/k/v: qkvBias; o: oBias; MLP: mlpBias).
bool projectionHasBias(const io::ModelConfig& config, TensorRole role);

/// (out_features, in_features) of a projection or the head under `config`. Throws InvalidArgument for
/// a role that is not a projection.
std::pair<std::int64_t, std::int64_t> projectionShape(const io::ModelConfig& config, TensorRole role);

/// The checkpoint tensor holding the weights of layer `name`: its own, or for a head without one
/// (`ownTensorStored` false) the embedding it is tied to.
std::string weightTensorOf(std::string_view name, bool ownTensorStored);

/// Whether the default configuration factorizes layers of this role. The head stays dense: it is
/// the most sensitive layer, and a tied head shares its tensor with the embedding, so factorizing
/// it adds storage instead of saving it.
bool factorizedByDefault(TensorRole role);

}  // namespace mdbf::model
