#include "mdbf/io/model_config.h"

#include <cmath>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"

namespace mdbf::io {

using nlohmann::json;

namespace {

// Ranges of the size fields: far beyond any released model, small enough that a hostile value is
// refused here rather than turning into a huge allocation later (README, Input guarantees).
constexpr int kMaxConfigDimension = 1 << 24;
constexpr int kMaxConfigLayers = 4096;
constexpr double kMinRopeFactor = 1e-3;
constexpr double kMaxRopeFactor = 1e6;

struct ArchitectureName {
    const char* className;
    const char* modelType;
    Architecture architecture;
};

constexpr ArchitectureName kArchitectures[] = {
    {"LlamaForCausalLM", "llama", Architecture::Llama},
    {"Qwen2ForCausalLM", "qwen2", Architecture::Qwen2},
    {"Qwen3ForCausalLM", "qwen3", Architecture::Qwen3},
    {"MistralForCausalLM", "mistral", Architecture::Mistral},
};

/// Reads typed fields from a config object, treating `null` as absent (as transformers does) and
/// naming the file and the dotted field path in every error.
class FieldReader {
public:
    explicit FieldReader(const std::string& source) : m_source(source) {}

    [[noreturn]] void fail(const std::string& problem) const
    {
        throw FormatError(quotedText(m_source, kMaxMessageBytes / 2) + ": " + problem);
    }

    /// The member `key` of `object`, or nullptr when absent or null.
    static const json* find(const json& object, const std::string& key)
    {
        const auto it = object.find(key);
        if (it == object.end() || it->is_null()) return nullptr;
        return &*it;
    }

    [[noreturn]] void wrongType(const std::string& field, const json& value, const char* expected) const
    {
        fail("field '" + field + "' is a JSON " + value.type_name() + " (" + messageText(value.dump()) + "), expected " +
             expected);
    }

    std::optional<int> optionalInt(const json& object, const std::string& key, const std::string& field) const
    {
        const json* v = find(object, key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number_integer()) wrongType(field, *v, "an integer");
        if (v->is_number_unsigned()) {
            const auto u = v->get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) fail("field '" + field + "' is out of range: " + v->dump());
            return static_cast<int>(u);
        }
        const auto s = v->get<std::int64_t>();
        if (s < std::numeric_limits<int>::min() || s > std::numeric_limits<int>::max()) {
            fail("field '" + field + "' is out of range: " + v->dump());
        }
        return static_cast<int>(s);
    }

    int requiredInt(const json& object, const std::string& key) const
    {
        const auto v = optionalInt(object, key, key);
        if (!v) fail("missing required field '" + key + "'");
        return *v;
    }

    std::optional<double> optionalNumber(const json& object, const std::string& key, const std::string& field) const
    {
        const json* v = find(object, key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_number()) wrongType(field, *v, "a number");
        const double d = v->get<double>();
        if (!std::isfinite(d)) fail("field '" + field + "' is not finite");
        return d;
    }

    std::optional<bool> optionalBool(const json& object, const std::string& key, const std::string& field) const
    {
        const json* v = find(object, key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_boolean()) wrongType(field, *v, "true or false");
        return v->get<bool>();
    }

    std::optional<std::string> optionalString(const json& object, const std::string& key, const std::string& field) const
    {
        const json* v = find(object, key);
        if (v == nullptr) return std::nullopt;
        if (!v->is_string()) wrongType(field, *v, "a string");
        return v->get<std::string>();
    }

    const json* optionalObject(const json& object, const std::string& key) const
    {
        const json* v = find(object, key);
        if (v != nullptr && !v->is_object()) wrongType(key, *v, "an object");
        return v;
    }

private:
    const std::string& m_source;
};

void readArchitecture(const FieldReader& reader, const json& config, ModelConfig& out)
{
    std::string supported;
    for (const auto& a : kArchitectures) supported += std::string(supported.empty() ? "" : ", ") + a.className;

    if (const json* list = FieldReader::find(config, "architectures")) {
        if (!list->is_array()) reader.wrongType("architectures", *list, "an array of class names");
        if (!list->empty()) {
            const json& first = list->front();
            if (!first.is_string()) reader.wrongType("architectures[0]", first, "a class name");
            const auto name = first.get<std::string>();
            for (const auto& a : kArchitectures) {
                if (name == a.className) {
                    out.architecture = a.architecture;
                    out.architectureName = a.className;
                    return;
                }
            }
            reader.fail("unsupported architecture '" + name + "' (supported: " + supported + ")");
        }
    }
    const auto modelType = reader.optionalString(config, "model_type", "model_type");
    if (!modelType) reader.fail("missing required field 'architectures' (or 'model_type')");
    for (const auto& a : kArchitectures) {
        if (*modelType == a.modelType) {
            out.architecture = a.architecture;
            out.architectureName = a.className;
            return;
        }
    }
    reader.fail("unsupported model_type '" + *modelType + "' (supported: llama, qwen2, qwen3, mistral)");
}

/// Reads RoPE theta and scaling from either layout: `rope_parameters` (newer files) or top-level
/// `rope_theta` + `rope_scaling` (older files). The newer layout wins where both are present.
void readRope(const FieldReader& reader, const json& config, ModelConfig& out)
{
    const json* params = reader.optionalObject(config, "rope_parameters");
    const json* scaling = reader.optionalObject(config, "rope_scaling");

    std::optional<double> theta;
    if (params != nullptr) theta = reader.optionalNumber(*params, "rope_theta", "rope_parameters.rope_theta");
    if (!theta) theta = reader.optionalNumber(config, "rope_theta", "rope_theta");
    if (theta) out.ropeTheta = *theta;

    // Older files spell the type `type`, newer ones `rope_type`.
    const auto typeOf = [&](const json& object, const std::string& prefix) -> std::optional<std::string> {
        if (auto t = reader.optionalString(object, "rope_type", prefix + ".rope_type")) return t;
        return reader.optionalString(object, "type", prefix + ".type");
    };

    const json* source = nullptr;
    std::string prefix;
    std::optional<std::string> type;
    if (params != nullptr && (type = typeOf(*params, "rope_parameters"))) {
        source = params;
        prefix = "rope_parameters";
    } else if (scaling != nullptr) {
        source = scaling;
        prefix = "rope_scaling";
        type = typeOf(*scaling, prefix);
        if (!type) reader.fail("field 'rope_scaling' has no 'rope_type'");
    }
    if (source == nullptr || *type == "default") return;

    RopeScaling& rope = out.ropeScaling;
    const auto requiredNumber = [&](const std::string& key) {
        const auto v = reader.optionalNumber(*source, key, prefix + "." + key);
        if (!v) reader.fail("rope type '" + *type + "' needs field '" + prefix + "." + key + "'");
        return *v;
    };
    if (*type == "linear") {
        rope.type = RopeScaling::Type::Linear;
        rope.factor = requiredNumber("factor");
    } else if (*type == "llama3") {
        rope.type = RopeScaling::Type::Llama3;
        rope.factor = requiredNumber("factor");
        rope.lowFreqFactor = requiredNumber("low_freq_factor");
        rope.highFreqFactor = requiredNumber("high_freq_factor");
        const auto original = reader.optionalInt(*source, "original_max_position_embeddings",
                                                 prefix + ".original_max_position_embeddings");
        if (!original) reader.fail("rope type 'llama3' needs field '" + prefix + ".original_max_position_embeddings'");
        rope.originalMaxPositions = *original;
        if (rope.lowFreqFactor <= 0.0 || rope.highFreqFactor <= rope.lowFreqFactor) {
            reader.fail("llama3 rope needs 0 < low_freq_factor < high_freq_factor, got " +
                        std::to_string(rope.lowFreqFactor) + " and " + std::to_string(rope.highFreqFactor));
        }
        if (rope.originalMaxPositions <= 0) reader.fail("field '" + prefix + ".original_max_position_embeddings' must be positive");
    } else {
        reader.fail("unsupported rope type '" + *type + "' (supported: default, linear, llama3)");
    }
    // A factor far from 1 drives the rotation angles to infinity (or every frequency to zero) and
    // the model's outputs to NaN.
    if (!(rope.factor >= kMinRopeFactor && rope.factor <= kMaxRopeFactor)) {
        reader.fail("field '" + prefix + ".factor' must be between " + std::to_string(kMinRopeFactor) + " and " +
                    std::to_string(kMaxRopeFactor) + ", got " + std::to_string(rope.factor));
    }
}

void checkPositive(const FieldReader& reader, int value, const char* field, int maximum = kMaxConfigDimension)
{
    if (value <= 0) reader.fail("field '" + std::string(field) + "' must be positive, got " + std::to_string(value));
    if (value > maximum) {
        reader.fail("field '" + std::string(field) + "' is " + std::to_string(value) + ", more than the supported " +
                    std::to_string(maximum));
    }
}

}  // namespace

ModelConfig ModelConfig::fromFile(const std::filesystem::path& path)
{
    return fromJson(readJsonFile(path), path.string());
}

ModelConfig ModelConfig::fromJson(const json& config, const std::string& source)
{
    const FieldReader reader(source);
    if (!config.is_object()) reader.fail(std::string("config is a JSON ") + config.type_name() + ", expected an object");

    ModelConfig c;
    readArchitecture(reader, config, c);

    c.hiddenSize = reader.requiredInt(config, "hidden_size");
    c.intermediateSize = reader.requiredInt(config, "intermediate_size");
    c.numLayers = reader.requiredInt(config, "num_hidden_layers");
    c.numHeads = reader.requiredInt(config, "num_attention_heads");
    c.vocabSize = reader.requiredInt(config, "vocab_size");
    checkPositive(reader, c.hiddenSize, "hidden_size");
    checkPositive(reader, c.intermediateSize, "intermediate_size");
    checkPositive(reader, c.numLayers, "num_hidden_layers", kMaxConfigLayers);
    checkPositive(reader, c.numHeads, "num_attention_heads", kMaxConfigLayers);
    checkPositive(reader, c.vocabSize, "vocab_size");

    c.numKvHeads = reader.optionalInt(config, "num_key_value_heads", "num_key_value_heads").value_or(c.numHeads);
    checkPositive(reader, c.numKvHeads, "num_key_value_heads", kMaxConfigLayers);
    if (c.numHeads % c.numKvHeads != 0) {
        reader.fail("num_attention_heads (" + std::to_string(c.numHeads) + ") is not a multiple of num_key_value_heads (" +
                    std::to_string(c.numKvHeads) + ")");
    }

    if (const auto headDim = reader.optionalInt(config, "head_dim", "head_dim")) {
        c.headDim = *headDim;
        checkPositive(reader, c.headDim, "head_dim");
    } else {
        if (c.hiddenSize % c.numHeads != 0) {
            reader.fail("hidden_size (" + std::to_string(c.hiddenSize) + ") is not divisible by num_attention_heads (" +
                        std::to_string(c.numHeads) + ") and no head_dim is given");
        }
        c.headDim = c.hiddenSize / c.numHeads;
    }
    // rotate_half pairs element i with i + head_dim/2.
    if (c.headDim % 2 != 0) reader.fail("head_dim (" + std::to_string(c.headDim) + ") must be even for RoPE");

    c.maxPositionEmbeddings =
        reader.optionalInt(config, "max_position_embeddings", "max_position_embeddings").value_or(0);
    if (c.maxPositionEmbeddings < 0) reader.fail("field 'max_position_embeddings' must not be negative");

    c.rmsNormEps = reader.optionalNumber(config, "rms_norm_eps", "rms_norm_eps").value_or(1e-6);
    if (c.rmsNormEps <= 0.0) reader.fail("field 'rms_norm_eps' must be positive");

    readRope(reader, config, c);
    if (c.ropeTheta <= 0.0) reader.fail("rope_theta must be positive, got " + std::to_string(c.ropeTheta));

    // Every supported family uses SiLU in its gated MLP; anything else would run with wrong numbers.
    if (const auto act = reader.optionalString(config, "hidden_act", "hidden_act"); act && *act != "silu") {
        reader.fail("unsupported hidden_act '" + *act + "' (supported: silu)");
    }

    c.tieWordEmbeddings = reader.optionalBool(config, "tie_word_embeddings", "tie_word_embeddings").value_or(false);

    // Qwen2 always has q/k/v biases and no o bias, whatever the file says (transformers hard-codes
    // them); the others follow `attention_bias` for all four projections. Only LLaMA's MLP reads
    // `mlp_bias`: the other families build bias-free MLPs.
    const bool attentionBias = reader.optionalBool(config, "attention_bias", "attention_bias").value_or(false);
    const bool mlpBias = reader.optionalBool(config, "mlp_bias", "mlp_bias").value_or(false);
    switch (c.architecture) {
    case Architecture::Qwen2:
        c.qkvBias = true;
        c.oBias = false;
        break;
    case Architecture::Llama:
    case Architecture::Qwen3:
    case Architecture::Mistral:
        c.qkvBias = attentionBias;
        c.oBias = attentionBias;
        break;
    }
    c.mlpBias = c.architecture == Architecture::Llama && mlpBias;
    c.qkNorm = c.architecture == Architecture::Qwen3;

    auto dtype = reader.optionalString(config, "dtype", "dtype");
    if (!dtype) dtype = reader.optionalString(config, "torch_dtype", "torch_dtype");
    c.torchDtype = dtype.value_or("");

    // `eos_token_id` is one id or a list of ids (LLaMA-3 instruct models end on either of two).
    if (const json* eos = FieldReader::find(config, "eos_token_id")) {
        const json list = eos->is_array() ? *eos : json::array({*eos});
        for (std::size_t i = 0; i < list.size(); ++i) {
            const json holder = {{"id", list[i]}};
            const std::string field = eos->is_array() ? "eos_token_id[" + std::to_string(i) + "]" : "eos_token_id";
            const std::optional<int> parsed = reader.optionalInt(holder, "id", field);
            if (!parsed) reader.fail("field '" + field + "' is null, expected a token id");
            const int id = *parsed;
            if (id < 0 || id >= c.vocabSize) {
                reader.fail("field '" + field + "' is " + std::to_string(id) + ", outside the vocabulary (size " +
                            std::to_string(c.vocabSize) + ")");
            }
            c.eosTokenIds.push_back(id);
        }
    }
    return c;
}

}  // namespace mdbf::io
