// The quantization configuration: glob matching, resolution order, defaults, JSON round trip and
// parse errors that name the file and the entry.

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/factor/quant_config.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

using factor::QuantConfig;

TEST(GlobMatch, StarsAndQuestionMarks)
{
    struct Case {
        const char* pattern;
        const char* name;
        bool matches;
    };
    const Case cases[] = {{"model.layers.*.mlp.*", "model.layers.12.mlp.down_proj", true},
                          {"model.layers.*.mlp.*", "model.layers.12.self_attn.q_proj", false},
                          {"*", "", true},
                          {"*", "anything.at.all", true},
                          {"lm_head*", "lm_head", true},
                          {"model.layers.?.*", "model.layers.3.mlp.up_proj", true},
                          {"model.layers.?.*", "model.layers.13.mlp.up_proj", false},
                          {"*norm*", "model.layers.0.input_layernorm", true},
                          {"a*b*c", "aXXbYYbZc", true},
                          {"a*b*c", "aXXbYYbZ", false},
                          {"abc", "abcd", false},
                          {"abc?", "abc", false},
                          {"**.*", "x.y", true}};
    for (const Case& c : cases) EXPECT_EQ(factor::globMatch(c.pattern, c.name), c.matches) << c.pattern << " ~ " << c.name;
}

TEST(QuantConfig, DefaultsKeepHeadDenseAndFactorizeProjections)
{
    const QuantConfig config;
    EXPECT_TRUE(config.resolve("lm_head").dense);
    EXPECT_TRUE(config.resolve("lm_head.weight").dense);
    EXPECT_TRUE(config.resolve("model.embed_tokens").dense);
    EXPECT_TRUE(config.resolve("model.norm").dense);
    for (const char* name : {"model.layers.0.self_attn.q_proj", "model.layers.3.self_attn.o_proj",
                             "model.layers.11.mlp.gate_proj", "model.layers.2.mlp.down_proj.weight"}) {
        EXPECT_FALSE(config.resolve(name).dense) << name;
    }
}

TEST(QuantConfig, RulesApplyInOrderAndOverrideDefaults)
{
    const nlohmann::json json = nlohmann::json::parse(R"({
        "defaults": {"method": "mdbf", "bpw": 1.5, "l": 2, "paths": 1, "iterations": 40, "objective": "plain"},
        "rules": [
            {"pattern": "model.layers.*.mlp.*", "bpw": "2", "l": 4},
            {"pattern": "model.layers.*.mlp.down_proj", "paths": 2},
            {"pattern": "model.layers.0.*", "dense": true},
            {"pattern": "model.layers.1.*", "method": "dbf"},
            {"pattern": "lm_head", "dense": false, "bpw": 3}
        ],
        "dense": ["model.embed_tokens*", "lm_head*", "model.layers.5.self_attn.v_proj"]
    })");
    const QuantConfig config = QuantConfig::fromJson(json, "cfg.json");

    const auto attn = config.resolve("model.layers.3.self_attn.k_proj");
    EXPECT_EQ(attn.method, factor::Method::Mdbf);
    EXPECT_EQ(attn.bpw, factor::Bpw::parse("1.5"));
    EXPECT_EQ(attn.l, 2);
    EXPECT_EQ(attn.paths, 1);
    EXPECT_EQ(attn.iterations, 40);
    EXPECT_FALSE(attn.dense);

    const auto down = config.resolve("model.layers.3.mlp.down_proj");
    EXPECT_EQ(down.bpw, factor::Bpw::parse("2"));
    EXPECT_EQ(down.l, 4);
    EXPECT_EQ(down.paths, 2);
    const auto up = config.resolve("model.layers.3.mlp.up_proj");
    EXPECT_EQ(up.paths, 1);

    EXPECT_TRUE(config.resolve("model.layers.0.mlp.up_proj").dense);
    EXPECT_TRUE(config.resolve("model.layers.5.self_attn.v_proj").dense);

    // dbf always resolves to l = 1, even where an earlier rule set l = 4.
    const auto dbf = config.resolve("model.layers.1.mlp.gate_proj");
    EXPECT_EQ(dbf.method, factor::Method::Dbf);
    EXPECT_EQ(dbf.l, 1);

    // A later rule can take a layer out of the dense list.
    const auto head = config.resolve("lm_head");
    EXPECT_FALSE(head.dense);
    EXPECT_EQ(head.bpw, factor::Bpw::parse("3"));
}

TEST(QuantConfig, JsonRoundTrip)
{
    const nlohmann::json json = nlohmann::json::parse(R"({
        "defaults": {"bpw": 0.75, "l": 3, "iterations": 7},
        "rules": [{"pattern": "model.layers.*.mlp.*", "bpw": 1.1, "objective": "diag"}],
        "dense": ["lm_head"]
    })");
    const QuantConfig a = QuantConfig::fromJson(json, "a.json");
    const QuantConfig b = QuantConfig::fromJson(a.toJson(), "b.json");
    EXPECT_EQ(a.toJson(), b.toJson());
    for (const char* name : {"lm_head", "model.layers.0.mlp.up_proj", "model.layers.0.self_attn.q_proj"}) {
        const auto x = a.resolve(name);
        const auto y = b.resolve(name);
        EXPECT_EQ(x.bpw, y.bpw) << name;
        EXPECT_EQ(x.l, y.l);
        EXPECT_EQ(x.iterations, y.iterations);
        EXPECT_EQ(x.objective, y.objective);
        EXPECT_EQ(x.dense, y.dense);
    }
    EXPECT_EQ(a.resolve("model.layers.0.mlp.up_proj").bpw, factor::Bpw::parse("1.1"));
    EXPECT_EQ(a.resolve("model.layers.0.mlp.up_proj").objective, factor::Objective::DiagonalWeighted);
}

TEST(QuantConfig, UniformAndIterationOverride)
{
    factor::LayerQuantSettings s;
    s.bpw = factor::Bpw::parse("1.5");
    s.l = 2;
    s.iterations = 100;
    QuantConfig config = QuantConfig::uniform(s);
    EXPECT_EQ(config.resolve("model.layers.0.mlp.up_proj").l, 2);
    EXPECT_TRUE(config.resolve("lm_head").dense);
    config.overrideIterations(5);
    EXPECT_EQ(config.resolve("model.layers.0.mlp.up_proj").iterations, 5);
    EXPECT_THROW(config.overrideIterations(-1), InvalidArgument);
    s.method = factor::Method::Dbf;
    EXPECT_THROW(QuantConfig::uniform(s), InvalidArgument);
}

void expectParseError(const std::string& text, const std::string& fragment)
{
    test::TempDir dir;
    const auto path = dir / "my-config.json";
    std::ofstream(path) << text;
    try {
        QuantConfig::fromFile(path);
        ADD_FAILURE() << "no error for " << text;
    } catch (const FormatError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("my-config.json"), std::string::npos) << message;
        EXPECT_NE(message.find(fragment), std::string::npos) << message;
    }
}

TEST(QuantConfig, ParseErrorsNameTheFileAndTheProblem)
{
    expectParseError("{", "not valid JSON");
    expectParseError("[]", "must be a JSON object");
    expectParseError(R"({"defaults": {"bwp": 1}})", "unknown key 'bwp'");
    expectParseError(R"({"defaults": {"bpw": -1}})", "defaults.bpw");
    expectParseError(R"({"defaults": {"bpw": "abc"}})", "defaults.bpw");
    expectParseError(R"({"defaults": {"l": 0}})", "defaults.l");
    expectParseError(R"({"defaults": {"l": 1.5}})", "expected an integer");
    expectParseError(R"({"defaults": {"method": "svd"}})", "defaults.method");
    expectParseError(R"({"defaults": {"method": "dbf", "l": 2}})", "dbf requires l = 1");
    expectParseError(R"({"defaults": {"objective": 3}})", "expected a string");
    expectParseError(R"({"rules": {}})", "expected an array");
    expectParseError(R"({"rules": [{"bpw": 1}]})", "rules[0]: missing key 'pattern'");
    expectParseError(R"({"rules": [{"pattern": "x"}, {"pattern": "", "bpw": 1}]})", "rules[1].pattern");
    expectParseError(R"({"rules": [{"pattern": "x", "dense": "yes"}]})", "rules[0].dense");
    expectParseError(R"({"dense": ["ok", 3]})", "dense[1]");
    expectParseError(R"({"version": 2})", "unsupported version");
    expectParseError(R"({"format": "other"})", "format");
    expectParseError(R"({"layers": []})", "unknown key 'layers'");
}

TEST(QuantConfig, MissingFileIsAnIoError)
{
    EXPECT_THROW(QuantConfig::fromFile("/nonexistent/dir/config.json"), IoError);
}

}  // namespace
}  // namespace mdbf
