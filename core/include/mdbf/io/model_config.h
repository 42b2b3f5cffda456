#pragma once
// Hugging Face `config.json` for the supported decoder-only architectures (docs/CLI.md §2.2).

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mdbf::io {

enum class Architecture { Llama, Qwen2, Qwen3, Mistral };

/// RoPE frequency scaling (`rope_scaling` or `rope_parameters.rope_type`).
struct RopeScaling {
    enum class Type { Default, Linear, Llama3 };
    Type type = Type::Default;
    double factor = 1.0;                 ///< linear and llama3
    double lowFreqFactor = 1.0;          ///< llama3
    double highFreqFactor = 4.0;         ///< llama3
    int originalMaxPositions = 8192;     ///< llama3: original_max_position_embeddings
};

/// Everything inference needs from config.json, with Hugging Face's defaults filled in for absent
/// or null optional fields.
struct ModelConfig {
    Architecture architecture = Architecture::Llama;
    std::string architectureName;  ///< e.g. "LlamaForCausalLM"
    int hiddenSize = 0;
    int intermediateSize = 0;
    int numLayers = 0;
    int numHeads = 0;
    int numKvHeads = 0;      ///< defaults to numHeads
    int headDim = 0;         ///< defaults to hiddenSize / numHeads
    int vocabSize = 0;
    int maxPositionEmbeddings = 0;  ///< 0 when absent
    double rmsNormEps = 1e-6;
    double ropeTheta = 10000.0;
    RopeScaling ropeScaling;
    bool tieWordEmbeddings = false;
    bool qkvBias = false;    ///< q/k/v projections carry biases (Qwen2 always; `attention_bias`)
    bool oBias = false;      ///< o_proj carries a bias (`attention_bias` on LLaMA/Qwen3/Mistral)
    bool mlpBias = false;    ///< `mlp_bias`
    bool qkNorm = false;     ///< per-head RMSNorm on q and k before RoPE (Qwen3)
    std::string torchDtype;  ///< `torch_dtype` or `dtype`, informational
    std::vector<int> eosTokenIds;  ///< `eos_token_id` (one id or a list); generation stops at any of them

    /// Parses and validates a config.json file. Throws IoError if unreadable, FormatError naming the
    /// file for non-JSON, a missing required field, a wrong type, an unknown architecture, an
    /// unsupported rope type or `hidden_act` (only "silu"), or inconsistent sizes (heads not
    /// dividing, kv heads not dividing heads, an odd head_dim).
    static ModelConfig fromFile(const std::filesystem::path& path);

    /// Same, from parsed JSON; `source` names the file in messages.
    static ModelConfig fromJson(const nlohmann::json& json, const std::string& source);
};

}  // namespace mdbf::io
