// End-to-end tests of `mdbf quantize` and of `mdbf ppl|inspect --package`: the JSON contract, usage
// and error exit codes, and that an interrupted or killed run leaves no package behind.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fcntl.h>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;

std::string model() { return demoModel().string(); }
std::string evalText() { return (testData() / "eval-small.txt").string(); }

TEST(CliQuantize, JsonContractAndPackageRunsAlone)
{
    TempDir dir;
    const std::string out = (dir / "tiny.h5").string();
    const CliResult r = runCli({"quantize", "--model", model(), "--out", out, "--bpw", "1.5", "--method", "mdbf", "--l",
                                "2", "--iters", "5", "--json"});
    const nlohmann::json j = onlyJson(r);
    EXPECT_EQ(j["out"], out);
    for (const char* key : {"model_bpw", "factorized_bpw", "seconds"}) EXPECT_TRUE(j[key].is_number()) << key;
    ASSERT_TRUE(j["layers"].is_array());
    ASSERT_EQ(j["layers"].size(), 29u);
    for (const auto& layer : j["layers"]) {
        for (const char* key : {"name", "n", "m", "k", "l", "bpw", "rel_error", "seconds", "kept_dense"}) {
            EXPECT_TRUE(layer.contains(key)) << key;
        }
        if (layer["name"] == "lm_head") {
            EXPECT_TRUE(layer["kept_dense"].get<bool>());
        } else {
            EXPECT_FALSE(layer["kept_dense"].get<bool>());
            EXPECT_EQ(layer["l"], 2);
            EXPECT_LE(layer["bpw"].get<double>(), 1.5);
        }
    }
    EXPECT_LT(j["factorized_bpw"].get<double>(), 1.5);
    EXPECT_GT(j["model_bpw"].get<double>(), j["factorized_bpw"].get<double>());  // the F16 embedding counts
    EXPECT_NE(r.err.find("rel_error"), std::string::npos);  // the table went to stderr
    // No temporary left; the finished layers stay in the work folder for a later run.
    EXPECT_EQ(directoryEntries(dir.path()), (std::vector<std::string>{"tiny.h5", "tiny.h5.work"}));

    const nlohmann::json info = onlyJson(runCli({"inspect", "--package", out, "--json"}));
    EXPECT_EQ(info["format"], "mdbf-package");
    EXPECT_EQ(info["format_version"], 1);
    EXPECT_EQ(info["layers"].size(), 28u);
    EXPECT_EQ(info["model_bpw"], j["model_bpw"]);
    EXPECT_EQ(info["config"]["num_hidden_layers"], 4);

    // A short text keeps the two perplexity runs quick.
    writeTextFile(dir / "short.txt", slurp(evalText()).substr(0, 4000));
    const std::string text = (dir / "short.txt").string();
    const nlohmann::json quantized =
        onlyJson(runCli({"ppl", "--package", out, "--text-file", text, "--ctx", "128", "--json"}));
    const nlohmann::json original =
        onlyJson(runCli({"ppl", "--model", model(), "--text-file", text, "--ctx", "128", "--json"}));
    EXPECT_GT(original["predicted"].get<int>(), 0);
    EXPECT_TRUE(std::isfinite(quantized["ppl"].get<double>()));
    EXPECT_GT(quantized["ppl"].get<double>(), original["ppl"].get<double>());
    EXPECT_EQ(quantized["predicted"], original["predicted"]);
}

TEST(CliQuantize, ReadableOutputPrintsTheTableOnStdout)
{
    TempDir dir;
    const CliResult r = runCli({"quantize", "--model", model(), "--out", (dir / "p.h5").string(), "--bpw", "1",
                                "--method", "dbf", "--iters", "0", "--export-safetensors", (dir / "hf").string()});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("model.layers.3.mlp.down_proj"), std::string::npos);
    EXPECT_NE(r.out.find("dense by configuration"), std::string::npos);
    EXPECT_NE(r.out.find("wrote"), std::string::npos);

    // The exported checkpoint is an ordinary model directory with the package's perplexity.
    writeTextFile(dir / "short.txt", slurp(evalText()).substr(0, 2000));
    const std::string text = (dir / "short.txt").string();
    const nlohmann::json fromExport =
        onlyJson(runCli({"ppl", "--model", (dir / "hf").string(), "--text-file", text, "--ctx", "64", "--json"}));
    const nlohmann::json fromPackage =
        onlyJson(runCli({"ppl", "--package", (dir / "p.h5").string(), "--text-file", text, "--ctx", "64", "--json"}));
    EXPECT_NEAR(fromExport["ppl"].get<double>(), fromPackage["ppl"].get<double>(),
                1e-3 * fromPackage["ppl"].get<double>());
    const CliResult info = runCli({"inspect", "--package", (dir / "p.h5").string()});
    ASSERT_EQ(info.exitCode, 0) << info.err;
    EXPECT_NE(info.out.find("dbf"), std::string::npos);
    EXPECT_NE(info.out.find("model.embed_tokens.weight"), std::string::npos);
}

TEST(CliQuantize, ConfigFileRulesAndExport)
{
    TempDir dir;
    writeTextFile(dir / "cfg.json", R"({
        "defaults": {"method": "mdbf", "bpw": 1.5, "l": 2, "iterations": 0},
        "rules": [{"pattern": "model.layers.*.mlp.*", "bpw": 2, "l": 1},
                  {"pattern": "model.layers.0.self_attn.*", "dense": true}]
    })");
    const nlohmann::json j = onlyJson(runCli({"quantize", "--model", model(), "--out", (dir / "p.h5").string(),
                                              "--config", (dir / "cfg.json").string(), "--export-config",
                                              (dir / "used.json").string(), "--json"}));
    for (const auto& layer : j["layers"]) {
        const std::string name = layer["name"];
        if (name.find(".mlp.") != std::string::npos) {
            EXPECT_EQ(layer["l"], 1) << name;
            EXPECT_GT(layer["bpw"].get<double>(), 1.5) << name;
        } else if (name.rfind("model.layers.0.self_attn", 0) == 0 || name == "lm_head") {
            EXPECT_TRUE(layer["kept_dense"].get<bool>()) << name;
        } else {
            EXPECT_EQ(layer["l"], 2) << name;
        }
    }
    // The exported configuration reproduces the same choices.
    const nlohmann::json again = onlyJson(runCli({"quantize", "--model", model(), "--out", (dir / "q.h5").string(),
                                                  "--config", (dir / "used.json").string(), "--json"}));
    ASSERT_EQ(again["layers"].size(), j["layers"].size());
    for (std::size_t i = 0; i < j["layers"].size(); ++i) {
        EXPECT_EQ(again["layers"][i]["k"], j["layers"][i]["k"]);
        EXPECT_EQ(again["layers"][i]["kept_dense"], j["layers"][i]["kept_dense"]);
    }

    // --export-config alone writes only the configuration.
    const nlohmann::json only = onlyJson(runCli({"quantize", "--model", model(), "--bpw", "1.25", "--method", "mdbf",
                                                 "--export-config", (dir / "only.json").string(), "--json"}));
    std::ifstream in(dir / "only.json");
    const nlohmann::json exported = nlohmann::json::parse(in);
    EXPECT_EQ(exported["defaults"]["bpw"], 1.25);
    EXPECT_EQ(only["quant_config"], exported);
}

TEST(CliQuantize, UsageErrorsExitWith2)
{
    TempDir dir;
    const std::string out = (dir / "p.h5").string();
    writeTextFile(dir / "cfg.json", "{}");
    const std::string cfg = (dir / "cfg.json").string();
    const std::vector<std::vector<std::string>> cases = {
        {"quantize", "--model", model(), "--out", out},
        {"quantize", "--model", model(), "--out", out, "--bpw", "1.5"},
        {"quantize", "--model", model(), "--out", out, "--method", "mdbf"},
        {"quantize", "--model", model(), "--out", out, "--bpw", "1.5", "--method", "mdbf", "--config", cfg},
        {"quantize", "--model", model(), "--out", out, "--config", cfg, "--l", "2"},
        {"quantize", "--model", model(), "--out", out, "--bpw", "abc", "--method", "mdbf"},
        {"quantize", "--model", model(), "--out", out, "--bpw", "1", "--method", "svd"},
        {"quantize", "--model", model(), "--bpw", "1", "--method", "mdbf"},
        {"ppl", "--text-file", evalText()},
        {"ppl", "--model", model(), "--package", out, "--text-file", evalText()},
        {"inspect"},
    };
    for (const auto& args : cases) {
        const CliResult r = runCli(args);
        std::string joined;
        for (const auto& a : args) joined += a + " ";
        EXPECT_EQ(r.exitCode, 2) << joined << "\n" << r.err;
        EXPECT_TRUE(r.out.empty()) << joined;
    }
    EXPECT_TRUE(directoryEntries(dir.path()) == std::vector<std::string>{"cfg.json"});
}

TEST(CliQuantize, ErrorsExitWith1AndNameTheFile)
{
    TempDir dir;
    writeTextFile(dir / "bad.json", R"({"defaults": {"bwp": 1}})");
    CliResult r = runCli({"quantize", "--model", model(), "--out", (dir / "p.h5").string(), "--config",
                          (dir / "bad.json").string()});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("bwp"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "p.h5"));

    r = runCli({"quantize", "--model", model(), "--out", (dir / "missing" / "p.h5").string(), "--bpw", "1", "--method",
                "mdbf"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;

    writeTextFile(dir / "fake.h5", "not an hdf5 file");
    r = runCli({"ppl", "--package", (dir / "fake.h5").string(), "--text-file", evalText(), "--ctx", "64", "--json"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(r.err.find("fake.h5"), std::string::npos) << r.err;
    r = runCli({"inspect", "--package", (dir / "fake.h5").string()});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("fake.h5"), std::string::npos) << r.err;
}

// Interrupts (SIGINT, then SIGKILL) a long quantization half-way: exit 130 for the first, and in
// both cases no new package and the previous file untouched.
TEST(CliQuantize, InterruptedOrKilledRunLeavesThePreviousFile)
{
    for (const int sig : {SIGINT, SIGKILL}) {
        SCOPED_TRACE(sig);
        TempDir dir;
        const fs::path out = dir / "p.h5";
        writeTextFile(out, "previous package");
        const pid_t pid = spawnCli({"quantize", "--model", model(), "--out", out.string(), "--bpw", "1.5", "--method",
                                    "mdbf", "--l", "2", "--iters", "100000", "--json"},
                                   dir / "stdout", dir / "stderr");
        ASSERT_GT(pid, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        kill(pid, sig);
        int status = 0;
        const auto start = std::chrono::steady_clock::now();
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() - start > std::chrono::seconds(30)) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                FAIL() << "mdbf did not stop within 30 s of the signal";
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (sig == SIGINT) {
            ASSERT_TRUE(WIFEXITED(status));
            EXPECT_EQ(WEXITSTATUS(status), 130) << slurp(dir / "stderr");
            EXPECT_TRUE(slurp(dir / "stdout").empty());
        } else {
            EXPECT_TRUE(WIFSIGNALED(status));
        }
        EXPECT_EQ(slurp(out), "previous package");
        for (const std::string& name : directoryEntries(dir.path())) {
            EXPECT_TRUE(name == "p.h5" || name == "p.h5.work" || name == "stdout" || name == "stderr") << name;
        }
    }
}

}  // namespace
}  // namespace mdbf::test
