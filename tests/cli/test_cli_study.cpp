// `mdbf study` end to end at a reduced size (tiny-llama, one budget, DBF against MDBF l = 2, few
// iterations): the JSON on stdout, the files it writes, and their consistency with each other and
// with the transformers reference perplexity.

#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> studyArgs(const fs::path& out)
{
    return {"study", "--model", demoModel().string(), "--eval-text", (testData() / "eval-small.txt").string(),
            "--ctx", "128", "--bpw", "1.5", "--methods", "dbf,mdbf", "--ls", "2", "--iters", "3",
            "--layer-view-bpw", "1.5", "--layer-view-ls", "1,2", "--layer-view-iters", "2", "--out", out.string(),
            "--json"};
}

TEST(CliStudy, ReducedStudyWritesConsistentOutputsAndResumesFromTheCache)
{
    TempDir dir;
    const nlohmann::json first = onlyJson(runCli(studyArgs(dir / "out")));
    ASSERT_TRUE(first.is_object());
    ASSERT_TRUE(fs::is_regular_file(dir / "out" / "study.json"));
    ASSERT_TRUE(fs::is_regular_file(dir / "out" / "points.csv"));
    ASSERT_TRUE(fs::is_regular_file(dir / "out" / "layer_view.csv"));
    std::ifstream in(dir / "out" / "study.json");
    const nlohmann::json file = nlohmann::json::parse(in);
    EXPECT_EQ(file, first["study"]);

    const nlohmann::json& model = file["models"][0];
    std::ifstream refFile(testData() / "tiny-llama" / "tiny-llama.reference.json");
    const nlohmann::json ref = nlohmann::json::parse(refFile);
    const double original = ref["ppl_eval_small_ctx128"].get<double>();
    EXPECT_NEAR(model["original_ppl"].get<double>(), original, 1e-3 * original);
    ASSERT_EQ(model["points"].size(), 2u);
    EXPECT_EQ(model["points"][0]["method"], "dbf");
    EXPECT_EQ(model["points"][1]["method"], "mdbf");
    EXPECT_EQ(model["points"][1]["l"], 2);
    for (const nlohmann::json& p : model["points"]) {
        EXPECT_GT(p["ppl"].get<double>(), original);
        EXPECT_TRUE(std::isfinite(p["ppl"].get<double>()));
        EXPECT_LE(p["factorized_bpw"].get<double>(), 1.5);
        EXPECT_LT(p["model_bpw"].get<double>(), model["original_bpw"].get<double>());
        // The factorized bpw is the weighted mean of the per-layer rows.
        double factorizedBits = 0.0, factorizedWeights = 0.0;
        for (const nlohmann::json& l : p["layers"]) {
            if (l["kept_dense"].get<bool>()) continue;
            const double w = l["n"].get<double>() * l["m"].get<double>();
            factorizedBits += l["bpw"].get<double>() * w;
            factorizedWeights += w;
        }
        EXPECT_NEAR(p["factorized_bpw"].get<double>(), factorizedBits / factorizedWeights, 1e-9);
        EXPECT_EQ(p["cached_layers"], 0);
    }
    EXPECT_EQ(model["layer_view"].size(), 12u);

    // A second run finds every factorized layer in the cache and reproduces the figures.
    const nlohmann::json second = onlyJson(runCli(studyArgs(dir / "out")));
    ASSERT_TRUE(second.is_object());
    for (std::size_t i = 0; i < 2; ++i) {
        const nlohmann::json& a = model["points"][i];
        const nlohmann::json& b = second["study"]["models"][0]["points"][i];
        EXPECT_EQ(b["cached_layers"], 28);
        EXPECT_EQ(b["ppl"], a["ppl"]);
        EXPECT_EQ(b["model_bpw"], a["model_bpw"]);
    }
}

// An activation-aware objective without calibration text, and a malformed point spec: exit 1,
// a message naming the problem, no study written.
TEST(CliStudy, BadRequestsAreErrors)
{
    struct Case {
        std::vector<std::string> options;
        std::string needle;
    };
    for (const Case& c : {Case{{"--objectives", "diag"}, "--calib-text"}, Case{{"--point", "mdbf:x:1.5"}, "mdbf:x:1.5"}}) {
        TempDir dir;
        std::vector<std::string> args{"study", "--model", demoModel().string(), "--eval-text",
                                      (testData() / "eval-small.txt").string(), "--out", (dir / "out").string()};
        args.insert(args.end(), c.options.begin(), c.options.end());
        const CliResult r = runCli(args);
        EXPECT_EQ(r.exitCode, 1) << c.needle;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(dir / "out" / "study.json"));
    }
}

}  // namespace
}  // namespace mdbf::test
