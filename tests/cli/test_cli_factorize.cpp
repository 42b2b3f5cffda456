// End-to-end tests of `mdbf factorize` on the demo model: the JSON contract of docs/CLI.md §3.4, the bit
// accounting it reports (hand-computed below), layer naming, and its errors.

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

const std::string kLayer = "model.layers.0.self_attn.q_proj";  // 128×128 in tiny-llama

CliResult factorize(std::vector<std::string> extra)
{
    std::vector<std::string> args = {"factorize", "--model", demoModel().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return runCli(args);
}

TEST(CliFactorize, JsonReportsTheExactBudgetAndTheErrorHistory)
{
    const nlohmann::json j = onlyJson(factorize({"--layer", kLayer, "--method", "mdbf", "--bpw", "1.5", "--l", "2",
                                                 "--iters", "6", "--history", "--json"}));
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["layer"], kLayer);
    EXPECT_EQ(j["n"], 128);
    EXPECT_EQ(j["m"], 128);
    EXPECT_EQ(j["method"], "mdbf");
    EXPECT_EQ(j["objective"], "plain");
    // k = floor((1.5·128·128 − 16·2·256) / (256 + 2·16·2)) = floor(16384 / 320) = 51, and the
    // storage at k = 51 is 51·256 sign bits + 16·2·(256 + 2·51) envelope bits = 24512 bits.
    EXPECT_EQ(j["k"], 51);
    EXPECT_EQ(j["l"], 2);
    EXPECT_EQ(j["paths"], 1);
    EXPECT_DOUBLE_EQ(j["bpw"].get<double>(), 24512.0 / 16384.0);
    EXPECT_EQ(j["clamped"], false);
    EXPECT_EQ(j["iters"], 6);
    const auto history = j["error_history"].get<std::vector<double>>();
    ASSERT_EQ(history.size(), 6u);
    const double init = j["rel_error_init"].get<double>();
    const double final = j["rel_error"].get<double>();
    EXPECT_GT(init, 0.0);
    EXPECT_LT(init, 1.0);
    EXPECT_LE(final, init + 1e-3) << "refinement made the closed-form start worse";
    // rel_error is measured after FP16 rounding of the envelopes, the history before it.
    EXPECT_NEAR(final, history.back(), 1e-3);
    EXPECT_GE(j["seconds"].get<double>(), 0.0);
}

TEST(CliFactorize, DbfUsesTheMergedAccounting)
{
    const nlohmann::json j =
        onlyJson(factorize({"--layer", kLayer, "--method", "dbf", "--bpw", "1.5", "--iters", "0", "--json"}));
    ASSERT_TRUE(j.is_object());
    // k = floor((1.5·16384 − 16·256) / (256 + 16)) = floor(20480 / 272) = 75;
    // storage 75·256 + 16·(256 + 75) = 24496 bits.
    EXPECT_EQ(j["k"], 75);
    EXPECT_EQ(j["l"], 1);
    EXPECT_DOUBLE_EQ(j["bpw"].get<double>(), 24496.0 / 16384.0);
    EXPECT_EQ(j["iters"], 0);
    EXPECT_FALSE(j.contains("error_history"));
    EXPECT_DOUBLE_EQ(j["rel_error"].get<double>(), j["rel_error_init"].get<double>());
}

TEST(CliFactorize, LayerNameWorksWithAndWithoutWeightSuffix)
{
    const std::vector<std::string> common = {"--method", "mdbf", "--bpw", "1", "--iters", "3", "--json"};
    std::vector<std::string> a = {"--layer", kLayer};
    std::vector<std::string> b = {"--layer", kLayer + ".weight"};
    a.insert(a.end(), common.begin(), common.end());
    b.insert(b.end(), common.begin(), common.end());
    const nlohmann::json ja = onlyJson(factorize(a));
    const nlohmann::json jb = onlyJson(factorize(b));
    EXPECT_EQ(ja["layer"], jb["layer"]);
    EXPECT_EQ(ja["k"], jb["k"]);
    // Same seed and thread count: the same result.
    EXPECT_EQ(ja["rel_error"], jb["rel_error"]);
}

TEST(CliFactorize, BudgetAboveFullRankIsClampedAndSaysSo)
{
    const nlohmann::json j = onlyJson(
        factorize({"--layer", kLayer, "--method", "mdbf", "--bpw", "100", "--l", "128", "--iters", "0", "--json"}));
    ASSERT_TRUE(j.is_object());
    // (100·16384 − 16·128·256) / (256 + 2·16·128) = 1114112 / 4352 = 256 exactly, above min(n, m).
    EXPECT_EQ(j["clamped"], true);
    EXPECT_EQ(j["k"], 128);
    EXPECT_EQ(j["unclamped_k"], 256);
    // Storage at k = 128: 128·256 sign bits + 16·128·(256 + 256) envelope bits = 66 bpw.
    EXPECT_DOUBLE_EQ(j["bpw"].get<double>(), 66.0);
    // Full rank with l = k: the closed form is the SVD itself, up to the FP16 envelopes.
    EXPECT_LT(j["rel_error"].get<double>(), 2e-3);
}

TEST(CliFactorize, ReadableOutputNamesBudgetAndError)
{
    const CliResult r = factorize({"--layer", kLayer, "--method", "mdbf", "--bpw", "1.5", "--l", "2", "--iters", "2"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("k = 51"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rel_error"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("128 x 128"), std::string::npos) << r.out;
}

TEST(CliFactorize, InfeasibleBudgetIsRefusedWithAClearMessage)
{
    const CliResult r = factorize({"--layer", kLayer, "--method", "mdbf", "--bpw", "0.1", "--l", "4", "--json"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_FALSE(r.signaled);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find("k"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliFactorize, UnknownLayerNamesTheCheckpointAndTensor)
{
    const CliResult r = factorize({"--layer", "model.layers.9.mlp.up_proj", "--method", "dbf", "--bpw", "1"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("model.layers.9.mlp.up_proj.weight"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tiny-llama"), std::string::npos) << r.err;
}

TEST(CliFactorize, NonMatrixTensorIsRefused)
{
    const CliResult r = factorize({"--layer", "model.norm", "--method", "dbf", "--bpw", "1"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("not a matrix"), std::string::npos) << r.err;
}

TEST(CliFactorize, DbfWithHigherEnvelopeRankIsRefused)
{
    const CliResult r = factorize({"--layer", kLayer, "--method", "dbf", "--bpw", "1", "--l", "2"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("--method mdbf"), std::string::npos) << r.err;
}

TEST(CliFactorize, UsageErrorsExitWithTwo)
{
    EXPECT_EQ(factorize({"--layer", kLayer, "--method", "svd", "--bpw", "1"}).exitCode, 2);
    EXPECT_EQ(factorize({"--layer", kLayer, "--method", "dbf", "--bpw", "abc"}).exitCode, 2);
    EXPECT_EQ(factorize({"--layer", kLayer, "--method", "dbf"}).exitCode, 2);
    EXPECT_EQ(factorize({"--layer", kLayer, "--method", "dbf", "--bpw", "1", "--iters", "-1"}).exitCode, 2);
}

TEST(CliFactorize, SvdCacheStoresThenReusesTheDecomposition)
{
    TempDir dir;
    const std::string cache = (dir / "svd").string();
    const std::vector<std::string> args = {"--layer", kLayer, "--method", "mdbf", "--bpw", "1.5", "--iters", "3",
                                           "--svd-cache-dir", cache, "--json"};
    const nlohmann::json first = onlyJson(factorize(args));
    const nlohmann::json second = onlyJson(factorize(args));
    ASSERT_TRUE(first.is_object());
    ASSERT_TRUE(second.is_object());
    EXPECT_FALSE(first["svd_cached"].get<bool>());
    EXPECT_TRUE(second["svd_cached"].get<bool>());
    EXPECT_EQ(second["svd_seconds"].get<double>(), 0.0);
    // The cache holds the exact decomposition, so the run is the same bit for bit.
    EXPECT_EQ(first["rel_error"].get<double>(), second["rel_error"].get<double>());
    EXPECT_EQ(first["rel_error_init"].get<double>(), second["rel_error_init"].get<double>());
    std::size_t entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(cache)) entries += e.path().extension() == ".svd";
    EXPECT_EQ(entries, 1u);
    // Another layer misses.
    const nlohmann::json other = onlyJson(factorize({"--layer", "model.layers.0.self_attn.k_proj", "--method", "mdbf",
                                                     "--bpw", "1.5", "--iters", "0", "--svd-cache-dir", cache, "--json"}));
    EXPECT_FALSE(other["svd_cached"].get<bool>());
}

}  // namespace
}  // namespace mdbf::test

namespace mdbf::test {
namespace {

// The environment of the running image of process `pid`, NUL-separated entries joined by '\n'.
std::string environmentOf(pid_t pid)
{
    std::string text = slurp("/proc/" + std::to_string(pid) + "/environ");
    std::replace(text.begin(), text.end(), '\0', '\n');
    return text;
}

TEST(CliProcess, RunsWithHugePagesRequestedFromGlibcKeepingTheUsersTunables)
{
    TempDir dir;
    const char* before = std::getenv("GLIBC_TUNABLES");
    const std::string saved = before ? before : "";
    setenv("GLIBC_TUNABLES", "glibc.malloc.check=0", 1);
    unsetenv("MDBF_HUGE_PAGES");
    // A refinement long enough to be looked at while it runs, then stopped.
    const pid_t pid = spawnCli({"--threads", "1", "factorize", "--model", demoModel().string(), "--layer",
                                "model.layers.0.mlp.down_proj", "--method", "dbf", "--bpw", "1", "--iters", "100000",
                                "--stall-tol", "0"},
                               dir / "stdout", dir / "stderr");
    if (before) setenv("GLIBC_TUNABLES", saved.c_str(), 1);
    else unsetenv("GLIBC_TUNABLES");
    ASSERT_GT(pid, 0);
    // glibc splits the variable in place when it parses it at startup (':' becomes NUL, shown here
    // as a line break), so the two tunables are looked for one after the other.
    const std::string wanted = "GLIBC_TUNABLES=glibc.malloc.check=0\nglibc.malloc.hugetlb=1\n";
    const std::string wantedUnparsed = "GLIBC_TUNABLES=glibc.malloc.check=0:glibc.malloc.hugetlb=1\n";
    auto found = [&](const std::string& environment) {
        return environment.find(wanted) != std::string::npos || environment.find(wantedUnparsed) != std::string::npos;
    };
    std::string environment;
    const auto start = std::chrono::steady_clock::now();
    while (!found(environment) && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        environment = environmentOf(pid);
    }
    // Past start-up, so that Ctrl-C meets the command's handler.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(found(environment)) << environment;
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 130) << slurp(dir / "stderr");
}

}  // namespace
}  // namespace mdbf::test
