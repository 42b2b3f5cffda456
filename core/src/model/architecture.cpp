#include "mdbf/model/architecture.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "mdbf/base/error.h"

namespace mdbf::model {

namespace {

constexpr std::array<ProjectionSpec, kBlockProjectionCount> kProjections = {{
    {TensorRole::Query, "self_attn.q_proj", "q_proj", "q"},
    {TensorRole::Key, "self_attn.k_proj", "k_proj", "k"},
    {TensorRole::Value, "self_attn.v_proj", "v_proj", "v"},
    {TensorRole::Output, "self_attn.o_proj", "o_proj", "o"},
    {TensorRole::Gate, "mlp.gate_proj", "gate_proj", "gate"},
    {TensorRole::Up, "mlp.up_proj", "up_proj", "up"},
    {TensorRole::Down, "mlp.down_proj", "down_proj", "down"},
}};

/// The per-block tensors that are not projections.
struct NormSpec {
    TensorRole role;
    std::string_view path;
    std::string_view label;
};
constexpr std::array<NormSpec, 4> kBlockNorms = {{
    {TensorRole::AttentionNorm, "input_layernorm", "input_layernorm"},
    {TensorRole::MlpNorm, "post_attention_layernorm", "post_attention_layernorm"},
    {TensorRole::QueryNorm, "self_attn.q_norm", "q_norm"},
    {TensorRole::KeyNorm, "self_attn.k_norm", "k_norm"},
}};

constexpr std::string_view kBlockPrefix = "model.layers.";
constexpr std::string_view kEmbedding = "model.embed_tokens";
constexpr std::string_view kHead = "lm_head";
constexpr std::string_view kFinalNorm = "model.norm";
constexpr std::string_view kWeightSuffix = ".weight";
constexpr std::string_view kBiasSuffix = ".bias";

std::string_view withoutSuffix(std::string_view name, std::string_view suffix)
{
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
        name.remove_suffix(suffix.size());
    return name;
}

}  // namespace

bool LayerIdentity::factorizable() const { return projection < kBlockProjectionCount || role == TensorRole::Head; }

std::span<const ProjectionSpec> blockProjections() { return kProjections; }

std::string embeddingName() { return std::string(kEmbedding); }
std::string headName() { return std::string(kHead); }
std::string finalNormName() { return std::string(kFinalNorm); }

std::string blockLayerName(int block, TensorRole role)
{
    if (block < 0) throw InvalidArgument("block index " + std::to_string(block) + " is negative");
    const std::string prefix = std::string(kBlockPrefix) + std::to_string(block) + ".";
    for (const ProjectionSpec& p : kProjections)
        if (p.role == role) return prefix + std::string(p.path);
    for (const NormSpec& n : kBlockNorms)
        if (n.role == role) return prefix + std::string(n.path);
    throw InvalidArgument("tensor role " + std::to_string(static_cast<int>(role)) + " is not part of a block");
}

std::string weightName(std::string_view layer) { return std::string(layer) + std::string(kWeightSuffix); }
std::string biasName(std::string_view layer) { return std::string(layer) + std::string(kBiasSuffix); }

std::string stripWeightSuffix(std::string_view name) { return std::string(withoutSuffix(name, kWeightSuffix)); }

std::vector<std::string> projectionNames(const io::ModelConfig& config)
{
    std::vector<std::string> names;
    const int blocks = std::max(0, config.numLayers);
    names.reserve(static_cast<std::size_t>(blocks) * kBlockProjectionCount + 1);
    for (int i = 0; i < blocks; ++i)
        for (const ProjectionSpec& p : kProjections) names.push_back(blockLayerName(i, p.role));
    names.push_back(headName());
    return names;
}

std::optional<LayerIdentity> identifyLayer(std::string_view name)
{
    const std::string_view weightless = withoutSuffix(name, kWeightSuffix);
    name = weightless.size() != name.size() ? weightless : withoutSuffix(name, kBiasSuffix);
    if (name == kEmbedding) return LayerIdentity{-1, TensorRole::Embedding, kBlockProjectionCount, "embed_tokens"};
    if (name == kHead) return LayerIdentity{-1, TensorRole::Head, kBlockProjectionCount, kHead};
    if (name == kFinalNorm) return LayerIdentity{-1, TensorRole::FinalNorm, kBlockProjectionCount, "norm"};
    if (!name.starts_with(kBlockPrefix)) return std::nullopt;
    name.remove_prefix(kBlockPrefix.size());
    const std::size_t dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0) return std::nullopt;
    int block = -1;
    const auto [end, error] = std::from_chars(name.data(), name.data() + dot, block);
    if (error != std::errc() || end != name.data() + dot || block < 0) return std::nullopt;
    const std::string_view rest = name.substr(dot + 1);
    for (std::size_t i = 0; i < kProjections.size(); ++i)
        if (rest == kProjections[i].path) return LayerIdentity{block, kProjections[i].role, i, kProjections[i].label};
    for (const NormSpec& n : kBlockNorms)
        if (rest == n.path) return LayerIdentity{block, n.role, kBlockProjectionCount, n.label};
    return std::nullopt;
}

bool projectionHasBias(const io::ModelConfig& config, TensorRole role)
{
    switch (role) {
    case TensorRole::Query:
    case TensorRole::Key:
    case TensorRole::Value: return config.qkvBias;
    case TensorRole::Output: return config.oBias;
    case TensorRole::Gate:
    case TensorRole::Up:
    case TensorRole::Down: return config.mlpBias;
    default: return false;
    }
}

std::pair<std::int64_t, std::int64_t> projectionShape(const io::ModelConfig& config, TensorRole role)
{
    const std::int64_t h = config.hiddenSize;
    const std::int64_t qDim = static_cast<std::int64_t>(config.numHeads) * config.headDim;
    const std::int64_t kvDim = static_cast<std::int64_t>(config.numKvHeads) * config.headDim;
    switch (role) {
    case TensorRole::Query: return {qDim, h};
    case TensorRole::Key:
    case TensorRole::Value: return {kvDim, h};
    case TensorRole::Output: return {h, qDim};
    case TensorRole::Gate:
    case TensorRole::Up: return {config.intermediateSize, h};
    case TensorRole::Down: return {h, config.intermediateSize};
    case TensorRole::Head: return {config.vocabSize, h};
    default: throw InvalidArgument("tensor role " + std::to_string(static_cast<int>(role)) + " is not a projection");
    }
}

std::string weightTensorOf(std::string_view name, bool ownTensorStored)
{
    if (ownTensorStored || name != kHead) return weightName(name);
    return weightName(kEmbedding);
}

bool factorizedByDefault(TensorRole role)
{
    const auto it = std::find_if(kProjections.begin(), kProjections.end(),
                                 [role](const ProjectionSpec& p) { return p.role == role; });
    return it != kProjections.end();
}

}  // namespace mdbf::model
