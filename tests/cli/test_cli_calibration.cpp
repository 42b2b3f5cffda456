// End-to-end tests of the activation-aware objectives on the command line (docs/ALGORITHM.md §6, docs/CLI.md §1.6):
// `mdbf factorize|quantize --objective diag|gram --calib-text F` on the demo model, the calibration
// cache, and the usage and input errors.

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;

const std::string kDownProj = "model.layers.1.mlp.down_proj";  // 128×352 in tiny-llama

std::string evalText() { return (testData() / "eval-small.txt").string(); }

// The whole-model runs calibrate on the lines of the first 8 KB of eval-small.txt (about 2,900 tokens,
// 22 windows of 128, several times the widest input of 352): the calibration forward passes are most of
// their time under the sanitizers, and what these tests check does not depend on the text's length.
std::string shortCalibrationText(const TempDir& dir)
{
    std::string text = slurp(evalText());
    text.resize(text.rfind('\n', 8000) + 1);
    const fs::path path = dir / "calibration.txt";
    writeTextFile(path, text);
    return path.string();
}

CliResult factorize(const TempDir& dir, std::vector<std::string> extra)
{
    std::vector<std::string> args = {"factorize", "--model", demoModel().string(), "--layer", kDownProj, "--method",
                                     "mdbf", "--bpw", "1.5", "--calib-cache", (dir / "cache").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return runCli(args);
}

TEST(CliCalibration, FactorizeWithDiagonalObjectiveEndToEnd)
{
    TempDir dir;
    const nlohmann::json plain = onlyJson(factorize(dir, {"--iters", "30", "--json"}));
    const CliResult first = factorize(dir, {"--objective", "diag", "--calib-text", evalText(), "--calib-ctx", "128",
                                            "--iters", "30", "--json"});
    const nlohmann::json j = onlyJson(first);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["objective"], "diag");
    EXPECT_EQ(j["layer"], kDownProj);
    EXPECT_EQ(j["k"], plain["k"]);  // the objective does not change the budget
    const double relDiag = j["rel_error"].get<double>();
    EXPECT_GT(relDiag, 0.0);
    EXPECT_LT(relDiag, 1.0);
    // The weighted error is the one minimised: the plain error of the diag result is no better
    // than the plain objective's own.
    EXPECT_GE(j["rel_error_plain"].get<double>(), plain["rel_error"].get<double>() - 1e-3);
    EXPECT_NE(j["rel_error"], j["rel_error_plain"]);
    const nlohmann::json& calib = j["calibration"];
    EXPECT_EQ(calib["ctx"], 128);
    EXPECT_EQ(calib["tokens"].get<std::int64_t>(), 128 * calib["windows"].get<std::int64_t>());
    EXPECT_GT(calib["windows"].get<int>(), 10);
    EXPECT_EQ(calib["cached"], false);
    EXPECT_NE(first.err.find("calibration:"), std::string::npos) << first.err;

    // The second run reads the statistics from the cache and gives the same result.
    const nlohmann::json again = onlyJson(factorize(dir, {"--objective", "diag", "--calib-text", evalText(),
                                                          "--calib-ctx", "128", "--iters", "30", "--json"}));
    EXPECT_EQ(again["calibration"]["cached"], true);
    EXPECT_EQ(again["rel_error"], j["rel_error"]);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir / "cache"), fs::directory_iterator()), 1);

    // The readable output names the objective of each error.
    const CliResult text = factorize(dir, {"--objective", "diag", "--calib-text", evalText(), "--calib-ctx", "128",
                                           "--iters", "5"});
    ASSERT_EQ(text.exitCode, 0) << text.err;
    EXPECT_NE(text.out.find("rel_error (diag)"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("rel_error (plain)"), std::string::npos) << text.out;
}

TEST(CliCalibration, FactorizeWithGramObjective)
{
    TempDir dir;
    const nlohmann::json j = onlyJson(factorize(dir, {"--objective", "gram", "--calib-text", evalText(),
                                                      "--calib-ctx", "128", "--iters", "20", "--no-calib-cache",
                                                      "--json"}));
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["objective"], "gram");
    EXPECT_GT(j["rel_error"].get<double>(), 0.0);
    EXPECT_LE(j["rel_error"].get<double>(), j["rel_error_init"].get<double>());
    EXPECT_EQ(j["calibration"]["cached"], false);
    EXPECT_FALSE(fs::exists(dir / "cache"));  // --no-calib-cache writes nothing
}

TEST(CliCalibration, UsageAndInputErrors)
{
    TempDir dir;
    // An activation-aware objective without a text is a usage error.
    const CliResult noText = factorize(dir, {"--objective", "diag", "--json"});
    EXPECT_EQ(noText.exitCode, 2) << noText.err;
    EXPECT_NE(noText.err.find("--calib-text"), std::string::npos) << noText.err;
    EXPECT_TRUE(noText.out.empty());

    // Too short a text names the file, on one line.
    writeTextFile(dir / "short.txt", "Far too short for one window.");
    const std::string shortText = (dir / "short.txt").string();
    const CliResult tooShort = factorize(dir, {"--objective", "diag", "--calib-text", shortText, "--json"});
    EXPECT_EQ(tooShort.exitCode, 1);
    EXPECT_FALSE(tooShort.signaled);
    EXPECT_TRUE(tooShort.out.empty()) << tooShort.out;
    EXPECT_NE(tooShort.err.find(shortText), std::string::npos) << tooShort.err;
    EXPECT_NE(tooShort.err.find("ctx = 256"), std::string::npos) << tooShort.err;
    EXPECT_EQ(std::count(tooShort.err.begin(), tooShort.err.end(), '\n'), 1) << tooShort.err;

    writeTextFile(dir / "empty.txt", "");
    const CliResult empty = factorize(dir, {"--objective", "gram", "--calib-text", (dir / "empty.txt").string()});
    EXPECT_EQ(empty.exitCode, 1);
    EXPECT_NE(empty.err.find("empty.txt"), std::string::npos) << empty.err;

    // The quantizer asks for the text when its configuration needs statistics.
    writeTextFile(dir / "config.json",
                  R"({"defaults": {"method": "mdbf", "bpw": 1.5, "objective": "diag", "iterations": 2}})");
    const CliResult configNeedsText = runCli({"quantize", "--model", demoModel().string(), "--out",
                                              (dir / "out.h5").string(), "--config", (dir / "config.json").string()});
    EXPECT_EQ(configNeedsText.exitCode, 1);
    EXPECT_NE(configNeedsText.err.find("--calib-text"), std::string::npos) << configNeedsText.err;
    EXPECT_FALSE(fs::exists(dir / "out.h5"));
    const CliResult quantizeNoText = runCli({"quantize", "--model", demoModel().string(), "--out",
                                             (dir / "out.h5").string(), "--bpw", "1.5", "--method", "mdbf",
                                             "--objective", "gram"});
    EXPECT_EQ(quantizeNoText.exitCode, 2) << quantizeNoText.err;
}

TEST(CliCalibration, QuantizeHonoursObjectivesFromOptionAndConfiguration)
{
    TempDir dir;
    const std::string calibration = shortCalibrationText(dir);
    const std::string cache = (dir / "cache").string();
    const nlohmann::json j = onlyJson(runCli({"quantize", "--model", demoModel().string(), "--out",
                                              (dir / "diag.h5").string(), "--bpw", "1.5", "--method", "mdbf",
                                              "--iters", "3", "--objective", "diag", "--calib-text", calibration,
                                              "--calib-ctx", "128", "--calib-cache", cache, "--json"}));
    ASSERT_TRUE(j["layers"].is_array());
    int factorized = 0;
    for (const auto& layer : j["layers"]) {
        if (layer["kept_dense"].get<bool>()) continue;
        ++factorized;
        EXPECT_EQ(layer["objective"], "diag") << layer["name"];
        EXPECT_TRUE(layer["rel_error_plain"].is_number()) << layer["name"];
    }
    EXPECT_EQ(factorized, 28);
    EXPECT_EQ(j["calibration"]["ctx"], 128);
    EXPECT_GT(j["calibration"]["tokens"].get<int>(), 0);
    const nlohmann::json info = onlyJson(runCli({"inspect", "--package", (dir / "diag.h5").string(), "--json"}));
    EXPECT_EQ(info["layers"].size(), 28u);

    // A configuration mixing objectives: each layer gets its own.
    writeTextFile(dir / "config.json", R"({
        "defaults": {"method": "mdbf", "bpw": 1.5, "iterations": 3},
        "rules": [{"pattern": "model.layers.*.mlp.*", "objective": "gram"},
                  {"pattern": "model.layers.0.self_attn.*", "objective": "diag"}]})");
    const nlohmann::json mixed = onlyJson(runCli({"quantize", "--model", demoModel().string(), "--out",
                                                  (dir / "mixed.h5").string(), "--config",
                                                  (dir / "config.json").string(), "--calib-text", calibration,
                                                  "--calib-ctx", "128", "--calib-cache", cache, "--json"}));
    for (const auto& layer : mixed["layers"]) {
        if (layer["kept_dense"].get<bool>()) continue;
        const std::string name = layer["name"];
        const std::string expected = name.find(".mlp.") != std::string::npos          ? "gram"
                                     : name.rfind("model.layers.0.self_attn", 0) == 0 ? "diag"
                                                                                      : "plain";
        EXPECT_EQ(layer["objective"], expected) << name;
    }
}

// --sequential: block 0 is recorded on the unmodified model either way, so its layers come out as
// without it; later blocks see the partly quantized model and come out differently.
TEST(CliCalibration, SequentialQuantizeChangesOnlyLaterBlocks)
{
    TempDir dir;
    const std::string calibration = shortCalibrationText(dir);
    const std::vector<std::string> common = {"quantize", "--model", demoModel().string(), "--bpw", "1.5",
                                             "--method", "mdbf", "--iters", "3", "--objective", "diag",
                                             "--calib-text", calibration, "--calib-ctx", "128", "--no-calib-cache",
                                             "--json"};
    std::vector<std::string> once = common, sequential = common;
    once.insert(once.end(), {"--out", (dir / "once.h5").string()});
    sequential.insert(sequential.end(), {"--out", (dir / "seq.h5").string(), "--sequential"});
    const nlohmann::json a = onlyJson(runCli(once));
    const nlohmann::json b = onlyJson(runCli(sequential));
    ASSERT_TRUE(a["layers"].is_array());
    ASSERT_TRUE(b["layers"].is_array());
    EXPECT_EQ(b["calibration"]["sequential"], true);
    ASSERT_EQ(a["layers"].size(), b["layers"].size());
    int laterDiffering = 0;
    for (std::size_t i = 0; i < a["layers"].size(); ++i) {
        const nlohmann::json& x = a["layers"][i];
        const nlohmann::json& y = b["layers"][i];
        if (x["kept_dense"].get<bool>()) continue;
        const std::string name = x["name"];
        if (name.rfind("model.layers.0.", 0) == 0) {
            EXPECT_EQ(x["rel_error"], y["rel_error"]) << name;
        } else {
            laterDiffering += x["rel_error"] != y["rel_error"] ? 1 : 0;
        }
    }
    EXPECT_EQ(laterDiffering, 21);

    // Resumed with two layers of block 1 and one of block 2 missing (as after a kill), the run
    // recomputes only those, and their statistics see the earlier blocks' layers alone, not the
    // finished layers of their own block: the package is the uninterrupted run's, byte for byte.
    // A sequential run finishes its blocks one after another, so the records' times say their block.
    const fs::path work = dir / "seq.h5.work";
    std::vector<fs::path> records;
    for (const auto& e : fs::directory_iterator(work)) {
        if (e.path().filename().string().rfind("layer-", 0) == 0) records.push_back(e.path());
    }
    std::sort(records.begin(), records.end(), [](const fs::path& x, const fs::path& y) {
        return fs::last_write_time(x) < fs::last_write_time(y);
    });
    ASSERT_EQ(records.size(), 28u);
    const std::vector<std::size_t> dropped = {9, 11, 16};
    for (const std::size_t i : dropped) fs::remove(records[i]);
    const std::string uninterrupted = slurp(dir / "seq.h5");
    const nlohmann::json resumed = onlyJson(runCli(sequential));
    EXPECT_EQ(resumed["layers_computed"], 3);
    EXPECT_EQ(resumed["layers_reused"], 25);
    std::vector<std::string> recomputedBlocks;
    for (const nlohmann::json& layer : resumed["layers"]) {
        if (layer["kept_dense"].get<bool>() || layer["reused"].get<bool>()) continue;
        const std::string name = layer["name"];
        recomputedBlocks.push_back(name.substr(0, name.find('.', std::string("model.layers.").size())));
    }
    EXPECT_EQ(recomputedBlocks, (std::vector<std::string>{"model.layers.1", "model.layers.1", "model.layers.2"}));
    EXPECT_TRUE(slurp(dir / "seq.h5") == uninterrupted) << "the resumed sequential package differs";

    const CliResult noText = runCli({"quantize", "--model", demoModel().string(), "--out", (dir / "x.h5").string(),
                                     "--bpw", "1.5", "--method", "mdbf", "--objective", "diag", "--sequential"});
    EXPECT_EQ(noText.exitCode, 2) << noText.err;
    EXPECT_FALSE(fs::exists(dir / "x.h5"));
}

}  // namespace
}  // namespace mdbf::test
