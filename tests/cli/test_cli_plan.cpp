// `mdbf plan` end to end on tiny-llama: the JSON contract, the configuration it writes going through
// `mdbf quantize --config` unchanged with the planned layers, the note without calibration text,
// and the exit statuses of bad arguments (docs/CLI.md §3.9).

#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

std::string model() { return demoModel().string(); }

std::vector<std::string> quickPlan(const std::string& out, const std::string& bpw, const std::string& ls = "2")
{
    return {"--threads", "1", "plan", "--model", model(), "--bpw", bpw, "--ls", ls, "--grid", "3",
            "--trial-iterations", "1", "--iterations", "2", "--out", out};
}

TEST(CliPlan, ConfigurationReproducesThePlannedBits)
{
    TempDir dir;
    const std::string cfg = (dir / "plan.json").string();
    std::vector<std::string> args = quickPlan(cfg, "1.25");
    args.push_back("--json");
    const CliResult r = runCli(args);
    const nlohmann::json j = onlyJson(r);
    EXPECT_NE(r.err.find("weight error alone"), std::string::npos) << r.err;
    EXPECT_EQ(j["error"], "weight");
    EXPECT_LE(j["factorized_bpw"].get<double>(), 1.25);
    ASSERT_EQ(j["layers"].size(), 28u);
    std::map<std::string, nlohmann::json> planned;
    std::int64_t bits = 0;
    std::int64_t weights = 0;
    for (const auto& layer : j["layers"]) {
        planned[layer["name"].get<std::string>()] = layer;
        bits += layer["bits"].get<std::int64_t>();
        weights += layer["n"].get<std::int64_t>() * layer["m"].get<std::int64_t>();
    }
    EXPECT_EQ(j["factorized_bits"].get<std::int64_t>(), bits);
    EXPECT_LE(bits * 4, weights * 5);  // ≤ 1.25 bpw, exactly

    const nlohmann::json q = onlyJson(runCli({"--threads", "1", "quantize", "--model", model(), "--config", cfg, "--out",
                                              (dir / "p.h5").string(), "--json"}));
    std::int64_t quantizedBits = 0;
    for (const auto& layer : q["layers"]) {
        const std::string name = layer["name"];
        if (!planned.count(name)) {
            EXPECT_TRUE(layer["kept_dense"].get<bool>()) << name;
            continue;
        }
        const nlohmann::json& p = planned[name];
        ASSERT_FALSE(layer["kept_dense"].get<bool>()) << name;
        EXPECT_EQ(layer["k"], p["k"]) << name;
        EXPECT_EQ(layer["l"], p["l"]) << name;
        EXPECT_EQ(layer["method"], p["method"]) << name;
        EXPECT_EQ(layer["bpw"], p["bpw"]) << name;
        quantizedBits += static_cast<std::int64_t>(
            std::llround(layer["bpw"].get<double>() * layer["n"].get<double>() * layer["m"].get<double>()));
    }
    EXPECT_EQ(quantizedBits, bits);
    EXPECT_DOUBLE_EQ(q["factorized_bpw"].get<double>(), j["factorized_bpw"].get<double>());
}

TEST(CliPlan, ReadableTableOnStdout)
{
    TempDir dir;
    const CliResult r = runCli(quickPlan((dir / "plan.json").string(), "1"));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("model.layers.3.mlp.down_proj"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("pred_error"), std::string::npos);
    EXPECT_NE(r.out.find("predicted cost"), std::string::npos);
    EXPECT_EQ(r.out.find("lm_head"), std::string::npos);
}

TEST(CliPlan, BadArgumentsGetOneMessage)
{
    TempDir dir;
    const std::string cfg = (dir / "plan.json").string();
    struct Case {
        std::vector<std::string> extra;
        int status;
        const char* message;
        std::string ls = "2";
    };
    const std::vector<Case> cases = {
        {{"--methods", ""}, 2, "method list is empty"},
        {{"--methods", "mdbf"}, 2, "l = 0", "2,0"},
        {{"--methods", "dbff"}, 2, "dbff"},
        {{"--max-bpw", "1"}, 2, "outside the layer budgets"},
        {{"--objective", "gram"}, 2, "--calib-text"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> args = quickPlan(cfg, "1.25", c.ls);
        args.insert(args.end(), c.extra.begin(), c.extra.end());
        const CliResult r = runCli(args);
        EXPECT_EQ(r.exitCode, c.status) << c.message << "\n" << r.err;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(cfg)) << c.message;
    }
    std::vector<std::string> low = quickPlan(cfg, "0.3");
    low.insert(low.end(), {"--max-bpw", "2"});
    const CliResult r = runCli(low);
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(r.err.find("below what the layers can take"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(cfg));
}

}  // namespace
}  // namespace mdbf::test
