
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

TEST(CliTokenize, GoldenStringsEncodeToReferenceIds)
{
    const ModelFixture fx = modelFixture("tiny-llama");
    const nlohmann::json ref = readReference(fx);
    TempDir dir;
    for (const auto& golden : ref["golden"]) {
        writeTextFile(dir / "text.txt", golden["text"].get<std::string>());
        const nlohmann::json j =
            onlyJson(runCli({"tokenize", "--model", fx.modelDir.string(), "--text-file", (dir / "text.txt").string(), "--json"}));
        EXPECT_EQ(j["ids"], golden["ids"]) << golden["text"];
        EXPECT_EQ(j["count"].get<std::size_t>(), golden["ids"].size());
    }
}

TEST(CliTokenize, EmptyTextGivesNoIds)
{
    TempDir dir;
    writeTextFile(dir / "empty.txt", "");
    const nlohmann::json j =
        onlyJson(runCli({"tokenize", "--model", demoModel().string(), "--text-file", (dir / "empty.txt").string(), "--json"}));
    EXPECT_TRUE(j["ids"].is_array());
    EXPECT_TRUE(j["ids"].empty());
    EXPECT_EQ(j["count"], 0);
}

TEST(CliTokenize, ReadableOutputShowsTheCount)
{
    const CliResult r = runCli({"tokenize", "--model", demoModel().string(), "--text-file",
                                (testData() / "eval-small.txt").string()});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.out.rfind("9629 tokens\n", 0), 0u) << r.out.substr(0, 80);
}

class CliPpl : public ::testing::TestWithParam<PerplexityCase> {};

TEST_P(CliPpl, PrintsTheReferencePerplexity)
{
    const PerplexityCase c = GetParam();
    const ModelFixture fx = modelFixture(c.model);
    MDBF_REQUIRE_MODEL_FIXTURE(fx, c.model);
    const nlohmann::json ref = readReference(fx);
    const std::string key = "ppl_eval_small_ctx" + std::to_string(c.ctx);
    const nlohmann::json j = onlyJson(runCli({"ppl", "--model", fx.modelDir.string(), "--text-file",
                                              fx.evalSmall.string(), "--ctx", std::to_string(c.ctx), "--json"}));
    const double expected = ref[key].get<double>();
    EXPECT_NEAR(j["ppl"].get<double>(), expected, 1e-3 * expected);
    EXPECT_EQ(j["predicted"], ref[key + "_predicted"]);
    EXPECT_EQ(j["tokens"], ref["eval_small_tokens"]);
    EXPECT_GT(j["seconds"].get<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CliPpl,
                         ::testing::Values(PerplexityCase{"tiny-llama", 128}, PerplexityCase{"tiny-llama", 256},
                                           PerplexityCase{"small-llama", 128}, PerplexityCase{"small-llama", 256},
                                           PerplexityCase{"medium-llama", 256}),
                         [](const auto& info) { return perplexityCaseName(info.param); });

TEST(CliPplReadable, NamesTextAndCtx)
{
    const CliResult r = runCli({"ppl", "--model", demoModel().string(), "--text-file",
                                (testData() / "eval-small.txt").string(), "--ctx", "256"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("perplexity 24.99"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ctx 256"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("eval-small.txt"), std::string::npos) << r.out;
}

TEST(CliInspect, ListsTensorsAsJson)
{
    const nlohmann::json j = onlyJson(runCli({"inspect", "--model", demoModel().string(), "--json"}));
    EXPECT_EQ(j["config"]["architecture"], "LlamaForCausalLM");
    EXPECT_EQ(j["config"]["num_hidden_layers"], 4);
    EXPECT_EQ(j["config"]["head_dim"], 32);
    EXPECT_EQ(j["tensors"].size(), 38u);  // 4 blocks × 9 + embeddings + final norm; tied head
    std::int64_t params = 0;
    for (const auto& t : j["tensors"]) {
        std::int64_t count = 1;
        for (const auto& d : t["shape"]) count *= d.get<std::int64_t>();
        EXPECT_EQ(t["params"].get<std::int64_t>(), count) << t["name"];
        EXPECT_EQ(t["dtype"], "F16");
        params += count;
    }
    EXPECT_EQ(j["parameters"].get<std::int64_t>(), params);
    EXPECT_EQ(j["bytes"].get<std::int64_t>(), 2 * params);
}

TEST(CliInspect, ReadableTableNamesLayers)
{
    const CliResult r = runCli({"inspect", "--model", demoModel().string()});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("model.layers.3.mlp.down_proj.weight"), std::string::npos);
    EXPECT_NE(r.out.find("128×352"), std::string::npos);
}

TEST(CliHelp, EveryCommandHasHelp)
{
    for (const char* command : {"inspect", "tokenize", "ppl"}) {
        const CliResult r = runCli({command, "--help"});
        EXPECT_EQ(r.exitCode, 0) << command;
        EXPECT_NE(r.out.find("--json"), std::string::npos) << command << ": " << r.out;
    }
    const CliResult top = runCli({"--help"});
    EXPECT_EQ(top.exitCode, 0);
    EXPECT_NE(top.out.find("ppl"), std::string::npos);
}

}  // namespace
}  // namespace mdbf::test
