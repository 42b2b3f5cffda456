#include <string>

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

TEST(ModelConfig, DemoModel)
{
    const ModelConfig c = ModelConfig::fromFile(mdbf::test::demoModel() / "config.json");
    EXPECT_EQ(c.architecture, Architecture::Llama);
    EXPECT_EQ(c.architectureName, "LlamaForCausalLM");
    EXPECT_EQ(c.hiddenSize, 128);
    EXPECT_EQ(c.intermediateSize, 352);
    EXPECT_EQ(c.numLayers, 4);
    EXPECT_EQ(c.numHeads, 4);
    EXPECT_EQ(c.numKvHeads, 2);
    EXPECT_EQ(c.headDim, 32);
    EXPECT_EQ(c.vocabSize, 2048);
    EXPECT_EQ(c.maxPositionEmbeddings, 2048);
    EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-5);
    EXPECT_DOUBLE_EQ(c.ropeTheta, 500000.0);
    EXPECT_EQ(c.ropeScaling.type, RopeScaling::Type::Default);
    EXPECT_TRUE(c.tieWordEmbeddings);
    EXPECT_FALSE(c.qkvBias);
    EXPECT_FALSE(c.oBias);
    EXPECT_FALSE(c.mlpBias);
    EXPECT_FALSE(c.qkNorm);
    EXPECT_EQ(c.torchDtype, "float16");
}

TEST(ModelConfig, SharedFixtures)
{
    MDBF_REQUIRE_SHARED_FIXTURES();
    const ModelConfig small = ModelConfig::fromFile(mdbf::test::sharedFixtures() / "small-llama" / "config.json");
    EXPECT_EQ(small.hiddenSize, 384);
    EXPECT_EQ(small.intermediateSize, 1024);
    EXPECT_EQ(small.numLayers, 6);
    EXPECT_EQ(small.numHeads, 6);
    EXPECT_EQ(small.numKvHeads, 2);
    EXPECT_EQ(small.headDim, 64);
    EXPECT_EQ(small.vocabSize, 8192);
    EXPECT_FALSE(small.tieWordEmbeddings);
    EXPECT_EQ(small.torchDtype, "bfloat16");

    const ModelConfig medium = ModelConfig::fromFile(mdbf::test::sharedFixtures() / "medium-llama" / "config.json");
    EXPECT_EQ(medium.architecture, Architecture::Llama);
    EXPECT_EQ(medium.hiddenSize, 1024);
    EXPECT_EQ(medium.intermediateSize, 2816);
    EXPECT_EQ(medium.numLayers, 4);
    EXPECT_EQ(medium.numHeads, 16);
    EXPECT_EQ(medium.numKvHeads, 4);
    EXPECT_EQ(medium.headDim, 64);
    EXPECT_EQ(medium.vocabSize, 8192);
    EXPECT_TRUE(medium.tieWordEmbeddings);
    EXPECT_DOUBLE_EQ(medium.ropeTheta, 500000.0);
    EXPECT_DOUBLE_EQ(medium.rmsNormEps, 1e-5);
}

TEST(ModelConfig, DefaultsForAbsentFields)
{
    const ModelConfig c = ModelConfig::fromJson(minimalConfig("LlamaForCausalLM"), "cfg");
    EXPECT_EQ(c.numKvHeads, 14);
    EXPECT_EQ(c.headDim, 64);
    EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-6);
    EXPECT_DOUBLE_EQ(c.ropeTheta, 10000.0);
    EXPECT_EQ(c.ropeScaling.type, RopeScaling::Type::Default);
    EXPECT_EQ(c.maxPositionEmbeddings, 0);
    EXPECT_FALSE(c.tieWordEmbeddings);
    EXPECT_FALSE(c.qkvBias);
    EXPECT_FALSE(c.oBias);
    EXPECT_FALSE(c.mlpBias);
    EXPECT_FALSE(c.qkNorm);
    EXPECT_EQ(c.torchDtype, "");
}

TEST(ModelConfig, NullCountsAsAbsent)
{
    json j = minimalConfig("LlamaForCausalLM");
    for (const char* key : {"num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "rope_scaling",
                            "rope_parameters", "tie_word_embeddings", "attention_bias", "mlp_bias",
                            "max_position_embeddings", "torch_dtype", "dtype"}) {
        j[key] = nullptr;
    }
    const ModelConfig c = ModelConfig::fromJson(j, "cfg");
    EXPECT_EQ(c.numKvHeads, 14);
    EXPECT_EQ(c.headDim, 64);
    EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-6);
    EXPECT_DOUBLE_EQ(c.ropeTheta, 10000.0);
    EXPECT_EQ(c.ropeScaling.type, RopeScaling::Type::Default);
    EXPECT_FALSE(c.tieWordEmbeddings);
    EXPECT_FALSE(c.qkvBias);

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
    const ModelConfig c = ModelConfig::fromJson(j, "cfg");
    EXPECT_EQ(c.architecture, Architecture::Qwen2);
    EXPECT_EQ(c.architectureName, "Qwen2ForCausalLM");
    EXPECT_EQ(c.numKvHeads, 2);
    EXPECT_EQ(c.headDim, 64);
    EXPECT_DOUBLE_EQ(c.ropeTheta, 1e6);
    EXPECT_EQ(c.ropeScaling.type, RopeScaling::Type::Default);
    EXPECT_TRUE(c.tieWordEmbeddings);
    EXPECT_EQ(c.torchDtype, "bfloat16");
    EXPECT_EQ(c.maxPositionEmbeddings, 32768);
    // q/k/v biases are part of the architecture, whatever attention_bias says; o has none.
    EXPECT_TRUE(c.qkvBias);
    EXPECT_FALSE(c.oBias);
    j["attention_bias"] = false;
    EXPECT_TRUE(ModelConfig::fromJson(j, "cfg").qkvBias);
    j["attention_bias"] = true;
    EXPECT_FALSE(ModelConfig::fromJson(j, "cfg").oBias);
    EXPECT_FALSE(c.qkNorm);
}

TEST(ModelConfig, Qwen3NewerLayout)
{
    json j = minimalConfig("Qwen3ForCausalLM");
    j.update(json{{"hidden_size", 1024}, {"num_attention_heads", 16}, {"num_key_value_heads", 8}, {"head_dim", 128},
                  {"rope_parameters", {{"rope_theta", 1000000}, {"rope_type", "default"}}},
                  {"attention_bias", false}, {"dtype", "bfloat16"}});
    const ModelConfig c = ModelConfig::fromJson(j, "cfg");
    EXPECT_EQ(c.architecture, Architecture::Qwen3);
    EXPECT_TRUE(c.qkNorm);
    EXPECT_EQ(c.headDim, 128);  // Qwen3 heads are wider than hidden / heads
    EXPECT_EQ(c.numKvHeads, 8);
    EXPECT_DOUBLE_EQ(c.ropeTheta, 1e6);
    EXPECT_FALSE(c.qkvBias);
    EXPECT_FALSE(c.oBias);
    EXPECT_EQ(c.torchDtype, "bfloat16");
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
    const ModelConfig c = ModelConfig::fromJson(j, "cfg");
    EXPECT_EQ(c.architecture, Architecture::Mistral);
    EXPECT_EQ(c.architectureName, "MistralForCausalLM");
    EXPECT_EQ(c.headDim, 128);
    EXPECT_EQ(c.numKvHeads, 8);
    EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-5);
    EXPECT_FALSE(c.qkvBias);
    EXPECT_FALSE(c.qkNorm);
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
