#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/io/model_config.h"
#include "safetensors_test_util.h"
#include "test_fixtures.h"

namespace {

using mdbf::io::Architecture;
using mdbf::io::ModelConfig;
using mdbf::io::RopeScaling;
using mdbf::test::expectErrorContaining;
using nlohmann::json;

/// The five required fields, with sizes as in a small Qwen2/LLaMA.
json minimalConfig(const std::string& architecture)
{
    return {{"architectures", {architecture}}, {"hidden_size", 896},       {"intermediate_size", 4864},
            {"num_hidden_layers", 24},         {"num_attention_heads", 14}, {"vocab_size", 151936}};
}

void expectConfigFails(const json& config, const std::vector<std::string>& needles)
{
    std::vector<std::string> all{std::string("'cfg/config.json'")};
    all.insert(all.end(), needles.begin(), needles.end());
    expectErrorContaining([&] { (void)ModelConfig::fromJson(config, "cfg/config.json"); }, all);
}

/// What a parsed config must hold; only the fields given are checked.
struct Expected {
    std::optional<Architecture> architecture{};
    std::optional<std::string> architectureName{};
    std::optional<int> hiddenSize{}, intermediateSize{}, numLayers{}, numHeads{}, numKvHeads{}, headDim{}, vocabSize{},
        maxPositionEmbeddings{};
    std::optional<double> rmsNormEps{}, ropeTheta{};
    std::optional<RopeScaling::Type> ropeType{};
    std::optional<bool> tieWordEmbeddings{}, qkvBias{}, oBias{}, mlpBias{}, qkNorm{};
    std::optional<std::string> torchDtype{};
};

template <typename T, typename U>
void expectField(const char* name, const T& actual, const std::optional<U>& expected)
{
    if (!expected) return;
    if constexpr (std::is_floating_point_v<T>) EXPECT_DOUBLE_EQ(actual, *expected) << name;
    else EXPECT_EQ(actual, *expected) << name;
}

void expectConfig(const ModelConfig& c, const Expected& e)
{
#define MDBF_EXPECT_FIELD(field) expectField(#field, c.field, e.field)
    MDBF_EXPECT_FIELD(architecture); MDBF_EXPECT_FIELD(architectureName); MDBF_EXPECT_FIELD(hiddenSize);
    MDBF_EXPECT_FIELD(intermediateSize); MDBF_EXPECT_FIELD(numLayers); MDBF_EXPECT_FIELD(numHeads);
    MDBF_EXPECT_FIELD(numKvHeads); MDBF_EXPECT_FIELD(headDim); MDBF_EXPECT_FIELD(vocabSize);
    MDBF_EXPECT_FIELD(maxPositionEmbeddings); MDBF_EXPECT_FIELD(rmsNormEps); MDBF_EXPECT_FIELD(ropeTheta);
    MDBF_EXPECT_FIELD(tieWordEmbeddings); MDBF_EXPECT_FIELD(qkvBias); MDBF_EXPECT_FIELD(oBias);
    MDBF_EXPECT_FIELD(mlpBias); MDBF_EXPECT_FIELD(qkNorm); MDBF_EXPECT_FIELD(torchDtype);
#undef MDBF_EXPECT_FIELD
    expectField("ropeScaling.type", c.ropeScaling.type, e.ropeType);
}

TEST(ModelConfig, DemoModel)
{
    expectConfig(ModelConfig::fromFile(mdbf::test::demoModel() / "config.json"),
                 {.architecture = Architecture::Llama, .architectureName = "LlamaForCausalLM", .hiddenSize = 128,
                  .intermediateSize = 352, .numLayers = 4, .numHeads = 4, .numKvHeads = 2, .headDim = 32,
                  .vocabSize = 2048, .maxPositionEmbeddings = 2048, .rmsNormEps = 1e-5, .ropeTheta = 500000.0,
                  .ropeType = RopeScaling::Type::Default, .tieWordEmbeddings = true, .qkvBias = false, .oBias = false,
                  .mlpBias = false, .qkNorm = false, .torchDtype = "float16"});
}

TEST(ModelConfig, SharedFixtures)
{
    MDBF_REQUIRE_SHARED_FIXTURES();
    expectConfig(ModelConfig::fromFile(mdbf::test::sharedFixtures() / "small-llama" / "config.json"),
                 {.hiddenSize = 384, .intermediateSize = 1024, .numLayers = 6, .numHeads = 6, .numKvHeads = 2,
                  .headDim = 64, .vocabSize = 8192, .tieWordEmbeddings = false, .torchDtype = "bfloat16"});
    expectConfig(ModelConfig::fromFile(mdbf::test::sharedFixtures() / "medium-llama" / "config.json"),
                 {.architecture = Architecture::Llama, .hiddenSize = 1024, .intermediateSize = 2816, .numLayers = 4,
                  .numHeads = 16, .numKvHeads = 4, .headDim = 64, .vocabSize = 8192, .rmsNormEps = 1e-5,
                  .ropeTheta = 500000.0, .tieWordEmbeddings = true});
}

TEST(ModelConfig, DefaultsForAbsentFields)
{
    expectConfig(ModelConfig::fromJson(minimalConfig("LlamaForCausalLM"), "cfg"),
                 {.numKvHeads = 14, .headDim = 64, .maxPositionEmbeddings = 0, .rmsNormEps = 1e-6, .ropeTheta = 10000.0,
                  .ropeType = RopeScaling::Type::Default, .tieWordEmbeddings = false, .qkvBias = false,
                  .oBias = false, .mlpBias = false, .qkNorm = false, .torchDtype = ""});
}

TEST(ModelConfig, NullCountsAsAbsent)
{
    json j = minimalConfig("LlamaForCausalLM");
    for (const char* key : {"num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "rope_scaling",
                            "rope_parameters", "tie_word_embeddings", "attention_bias", "mlp_bias",
                            "max_position_embeddings", "torch_dtype", "dtype"}) {
        j[key] = nullptr;
    }
    expectConfig(ModelConfig::fromJson(j, "cfg"),
                 {.numKvHeads = 14, .headDim = 64, .rmsNormEps = 1e-6, .ropeTheta = 10000.0,
                  .ropeType = RopeScaling::Type::Default, .tieWordEmbeddings = false, .qkvBias = false});

    // A null required field is as missing as an absent one.
    j["vocab_size"] = nullptr;
    expectConfigFails(j, {"missing required field 'vocab_size'"});
}

TEST(ModelConfig, LlamaBiasesFollowConfig)
{
    json j = minimalConfig("LlamaForCausalLM");
    j["attention_bias"] = true;
    j["mlp_bias"] = true;
    const ModelConfig c = ModelConfig::fromJson(j, "cfg");
    EXPECT_TRUE(c.qkvBias);
    EXPECT_TRUE(c.oBias);
    EXPECT_TRUE(c.mlpBias);
}

TEST(ModelConfig, Qwen2OlderLayout)
{
    // As Qwen2.5-0.5B ships it: top-level rope_theta, torch_dtype, rope_scaling null.
    json j = minimalConfig("Qwen2ForCausalLM");
    j.update(json{{"num_key_value_heads", 2}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
                  {"rope_scaling", nullptr}, {"tie_word_embeddings", true}, {"torch_dtype", "bfloat16"},
                  {"max_position_embeddings", 32768}, {"model_type", "qwen2"}});
    // q/k/v biases are part of the architecture, whatever attention_bias says; o has none.
    expectConfig(ModelConfig::fromJson(j, "cfg"),
                 {.architecture = Architecture::Qwen2, .architectureName = "Qwen2ForCausalLM", .numKvHeads = 2,
                  .headDim = 64, .maxPositionEmbeddings = 32768, .ropeTheta = 1e6, .ropeType = RopeScaling::Type::Default,
                  .tieWordEmbeddings = true, .qkvBias = true, .oBias = false, .qkNorm = false, .torchDtype = "bfloat16"});
    j["attention_bias"] = false;
    EXPECT_TRUE(ModelConfig::fromJson(j, "cfg").qkvBias);
    j["attention_bias"] = true;
    EXPECT_FALSE(ModelConfig::fromJson(j, "cfg").oBias);
}

TEST(ModelConfig, Qwen3NewerLayout)
{
    json j = minimalConfig("Qwen3ForCausalLM");
    j.update(json{{"hidden_size", 1024}, {"num_attention_heads", 16}, {"num_key_value_heads", 8}, {"head_dim", 128},
                  {"rope_parameters", {{"rope_theta", 1000000}, {"rope_type", "default"}}},
                  {"attention_bias", false}, {"dtype", "bfloat16"}});
    // Qwen3 heads (128) are wider than hidden / heads.
    expectConfig(ModelConfig::fromJson(j, "cfg"),
                 {.architecture = Architecture::Qwen3, .numKvHeads = 8, .headDim = 128, .ropeTheta = 1e6,
                  .qkvBias = false, .oBias = false, .qkNorm = true, .torchDtype = "bfloat16"});
    j["attention_bias"] = true;
    const ModelConfig biased = ModelConfig::fromJson(j, "cfg");
    EXPECT_TRUE(biased.qkvBias);
    EXPECT_TRUE(biased.oBias);
}

TEST(ModelConfig, Mistral)
{
    json j = minimalConfig("MistralForCausalLM");
    j.update(json{{"hidden_size", 4096}, {"num_attention_heads", 32}, {"num_key_value_heads", 8},
                  {"rope_theta", 1000000.0}, {"rms_norm_eps", 1e-5}});
    expectConfig(ModelConfig::fromJson(j, "cfg"),
                 {.architecture = Architecture::Mistral, .architectureName = "MistralForCausalLM", .numKvHeads = 8,
                  .headDim = 128, .rmsNormEps = 1e-5, .qkvBias = false, .qkNorm = false});
}

TEST(ModelConfig, ModelTypeFallback)
{
    const std::pair<const char*, Architecture> cases[] = {{"llama", Architecture::Llama},
                                                          {"qwen2", Architecture::Qwen2},
                                                          {"qwen3", Architecture::Qwen3},
                                                          {"mistral", Architecture::Mistral}};
    for (const auto& [type, arch] : cases) {
        json j = minimalConfig("x");
        j.erase("architectures");
        j["model_type"] = type;
        EXPECT_EQ(ModelConfig::fromJson(j, "cfg").architecture, arch) << type;
        j["architectures"] = json::array();
        EXPECT_EQ(ModelConfig::fromJson(j, "cfg").architecture, arch) << type;
        j["architectures"] = nullptr;
        EXPECT_EQ(ModelConfig::fromJson(j, "cfg").architecture, arch) << type;
    }
    json none = minimalConfig("x");
    none.erase("architectures");
    expectConfigFails(none, {"missing required field 'architectures'"});
    none["model_type"] = "gpt2";
    expectConfigFails(none, {"unsupported model_type 'gpt2'"});
}

TEST(ModelConfig, UnknownArchitecture)
{
    expectConfigFails(minimalConfig("GPT2LMHeadModel"), {"unsupported architecture 'GPT2LMHeadModel'", "LlamaForCausalLM"});
    json j = minimalConfig("x");
    j["architectures"] = "LlamaForCausalLM";
    expectConfigFails(j, {"field 'architectures'", "expected an array"});
}

TEST(ModelConfig, RopeLinearOlderLayout)
{
    json j = minimalConfig("LlamaForCausalLM");
    j["rope_theta"] = 50000;
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
    const ModelConfig c = ModelConfig::fromJson(j, "cfg");
    EXPECT_EQ(c.ropeScaling.type, RopeScaling::Type::Linear);
    EXPECT_DOUBLE_EQ(c.ropeScaling.factor, 4.0);
    EXPECT_DOUBLE_EQ(c.ropeTheta, 50000.0);
}

TEST(ModelConfig, RopeLlama3BothLayouts)
{
    const json llama3 = {{"factor", 32.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
    // Llama 3.2 as saved by transformers 4.x.
    json older = minimalConfig("LlamaForCausalLM");
    older["rope_theta"] = 500000.0;
    older["rope_scaling"] = llama3;
    older["rope_scaling"]["rope_type"] = "llama3";
    // ... and by transformers 5.
    json newer = minimalConfig("LlamaForCausalLM");
    newer["rope_parameters"] = llama3;
    newer["rope_parameters"]["rope_type"] = "llama3";
    newer["rope_parameters"]["rope_theta"] = 500000.0;
    for (const json& j : {older, newer}) {
        const ModelConfig c = ModelConfig::fromJson(j, "cfg");
        EXPECT_EQ(c.ropeScaling.type, RopeScaling::Type::Llama3);
        EXPECT_DOUBLE_EQ(c.ropeScaling.factor, 32.0);
        EXPECT_DOUBLE_EQ(c.ropeScaling.lowFreqFactor, 1.0);
        EXPECT_DOUBLE_EQ(c.ropeScaling.highFreqFactor, 4.0);
        EXPECT_EQ(c.ropeScaling.originalMaxPositions, 8192);
        EXPECT_DOUBLE_EQ(c.ropeTheta, 500000.0);
    }
    newer["rope_parameters"].erase("low_freq_factor");
    expectConfigFails(newer, {"rope type 'llama3' needs field 'rope_parameters.low_freq_factor'"});
    older["rope_scaling"]["high_freq_factor"] = 0.5;
    expectConfigFails(older, {"low_freq_factor < high_freq_factor"});
}

TEST(ModelConfig, UnknownRopeType)
{
    json j = minimalConfig("LlamaForCausalLM");
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    expectConfigFails(j, {"unsupported rope type 'yarn'", "default, linear, llama3"});
    j.erase("rope_scaling");
    j["rope_parameters"] = {{"rope_type", "dynamic"}, {"rope_theta", 10000.0}, {"factor", 2.0}};
    expectConfigFails(j, {"unsupported rope type 'dynamic'"});
    j["rope_parameters"] = {{"rope_type", 3}};
    expectConfigFails(j, {"field 'rope_parameters.rope_type'", "expected a string"});
    j.erase("rope_parameters");
    j["rope_scaling"] = {{"factor", 2.0}};
    expectConfigFails(j, {"'rope_scaling' has no 'rope_type'"});
}

TEST(ModelConfig, MissingOrMistypedRequiredField)
{
    for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"}) {
        json j = minimalConfig("LlamaForCausalLM");
        j.erase(key);
        expectConfigFails(j, {"missing required field '" + std::string(key) + "'"});
        j[key] = "128";
        expectConfigFails(j, {"field '" + std::string(key) + "' is a JSON string", "expected an integer"});
        j[key] = 128.5;
        expectConfigFails(j, {"field '" + std::string(key) + "'", "expected an integer"});
        j[key] = -1;
        expectConfigFails(j, {"field '" + std::string(key) + "' must be positive"});
    }
    json j = minimalConfig("LlamaForCausalLM");
    j["hidden_size"] = 1LL << 40;
    expectConfigFails(j, {"field 'hidden_size' is out of range"});
    j = minimalConfig("LlamaForCausalLM");
    j["tie_word_embeddings"] = "yes";
    expectConfigFails(j, {"field 'tie_word_embeddings'", "expected true or false"});
    j = minimalConfig("LlamaForCausalLM");
    j["hidden_act"] = "gelu";
    expectConfigFails(j, {"unsupported hidden_act 'gelu'"});
    j["hidden_act"] = "silu";
    EXPECT_NO_THROW((void)ModelConfig::fromJson(j, "cfg"));
    j = minimalConfig("LlamaForCausalLM");
    j["rms_norm_eps"] = "1e-5";
    expectConfigFails(j, {"field 'rms_norm_eps'", "expected a number"});
    expectConfigFails(json::array({1, 2}), {"config is a JSON array"});
}

TEST(ModelConfig, InconsistentSizes)
{
    json j = minimalConfig("LlamaForCausalLM");
    j["num_key_value_heads"] = 4;  // 14 heads
    expectConfigFails(j, {"num_attention_heads (14) is not a multiple of num_key_value_heads (4)"});
    j["num_key_value_heads"] = 0;
    expectConfigFails(j, {"field 'num_key_value_heads' must be positive"});

    j = minimalConfig("LlamaForCausalLM");
    j["num_attention_heads"] = 15;  // 896 / 15 is not whole
    expectConfigFails(j, {"hidden_size (896) is not divisible by num_attention_heads (15)"});
    j["head_dim"] = 64;  // an explicit head_dim needs no divisibility
    EXPECT_EQ(ModelConfig::fromJson(j, "cfg").headDim, 64);
    j["head_dim"] = 63;
    expectConfigFails(j, {"head_dim (63) must be even"});
}

TEST(ModelConfig, FromFileErrors)
{
    mdbf::test::TempDir tmp;
    EXPECT_THROW((void)ModelConfig::fromFile(tmp / "absent.json"), mdbf::IoError);
    mdbf::test::writeTextFile(tmp / "config.json", "{\"hidden_size\": 12,");
    expectErrorContaining([&] { (void)ModelConfig::fromFile(tmp / "config.json"); }, {"config.json", "not valid JSON"});
    mdbf::test::writeTextFile(tmp / "config.json", minimalConfig("LlamaForCausalLM").dump());
    EXPECT_EQ(ModelConfig::fromFile(tmp / "config.json").vocabSize, 151936);
    json j = minimalConfig("LlamaForCausalLM");
    j.erase("num_hidden_layers");
    mdbf::test::writeTextFile(tmp / "config.json", j.dump());
    expectErrorContaining([&] { (void)ModelConfig::fromFile(tmp / "config.json"); },
                          {(tmp / "config.json").string(), "missing required field 'num_hidden_layers'"});
}

}  // namespace
