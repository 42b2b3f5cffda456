// `mpirun -n N mdbf quantize` (built with MDBF_MPI): the package is the same file whatever the
// number of processes, and the same as the one-process run's.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> quantizeArgs(const fs::path& out)
{
    return {"--threads", "1", "quantize", "--model", demoModel().string(), "--out", out.string(), "--bpw", "1.5",
            "--method", "mdbf", "--l", "2", "--iters", "8", "--json"};
}

CliResult runMpi(int processes, const std::vector<std::string>& args)
{
    std::vector<std::string> all = {"--oversubscribe", "--allow-run-as-root", "-n", std::to_string(processes),
                                    cliPath().string()};
    all.insert(all.end(), args.begin(), args.end());
    return runProgram(MDBF_MPIEXEC, all);
}

TEST(CliMpi, OneTwoAndThreeProcessesWriteTheSamePackage)
{
    TempDir dir;
    const fs::path single = dir / "single.h5";
    const nlohmann::json alone = onlyJson(runCli(quantizeArgs(single)));
    EXPECT_EQ(alone["processes"], 1);
    const std::string expected = slurp(single);
    ASSERT_FALSE(expected.empty());
    for (const int n : {1, 2, 3}) {
        SCOPED_TRACE(n);
        // Built piecewise: GCC 12 misreads `literal + std::string` as an oversized copy.
        std::string name = "n";
        name += std::to_string(n);
        name += ".h5";
        const fs::path out = dir / name;
        const CliResult r = runMpi(n, quantizeArgs(out));
        const nlohmann::json j = onlyJson(r);
        EXPECT_EQ(j["processes"], n);
        EXPECT_EQ(j["layers_computed"], 28);
        EXPECT_EQ(j["model_bpw"], alone["model_bpw"]);
        EXPECT_TRUE(slurp(out) == expected) << "the package of " << n << " processes differs";
        ASSERT_EQ(j["layers"].size(), alone["layers"].size());
        for (std::size_t i = 0; i < j["layers"].size(); ++i) {
            EXPECT_EQ(j["layers"][i]["rel_error"], alone["layers"][i]["rel_error"]) << i;
        }
    }
}

// Sequential calibration spreads each block's layers over the processes (the statistics are recorded
// once, on rank 0) and writes the package of one process.
TEST(CliMpi, SequentialCalibrationOverTwoProcessesWritesTheSamePackage)
{
    TempDir dir;
    auto sequentialArgs = [&](const fs::path& out) {
        std::vector<std::string> args = quantizeArgs(out);
        args.insert(args.end(), {"--objective", "gram", "--sequential", "--calib-text",
                                 (testData() / "eval-small.txt").string(), "--calib-ctx", "64"});
        return args;
    };
    const fs::path single = dir / "single.h5";
    const nlohmann::json alone = onlyJson(runCli(sequentialArgs(single)));
    EXPECT_EQ(alone["processes"], 1);
    const fs::path two = dir / "two.h5";
    const nlohmann::json j = onlyJson(runMpi(2, sequentialArgs(two)));
    EXPECT_EQ(j["processes"], 2);
    EXPECT_EQ(j["layers_computed"], 28);
    const std::string expected = slurp(single);
    ASSERT_FALSE(expected.empty());
    EXPECT_TRUE(slurp(two) == expected) << "the sequential package of two processes differs";
    ASSERT_EQ(j["layers"].size(), alone["layers"].size());
    for (std::size_t i = 0; i < j["layers"].size(); ++i) {
        if (alone["layers"][i]["kept_dense"] == true) continue;
        EXPECT_EQ(j["layers"][i]["rel_error"], alone["layers"][i]["rel_error"]) << i;
        EXPECT_EQ(j["layers"][i]["rel_error_plain"], alone["layers"][i]["rel_error_plain"]) << i;
    }
}

// A rank that fails (here rank 1, whose temporary folder does not exist, so it cannot make a layer's
// record) ends the job: rank 0 prints that rank's message, the exit status is 1, no package exists.
TEST(CliMpi, ErrorOnAnotherRankEndsTheJobWithItsMessage)
{
    TempDir dir;
    const fs::path out = dir / "p.h5";
    const std::vector<std::string> args = quantizeArgs(out);
    std::vector<std::string> all = {"--oversubscribe", "--allow-run-as-root", "-n", "1", cliPath().string()};
    all.insert(all.end(), args.begin(), args.end());
    std::string tmpdir = "TMPDIR=";  // built piecewise, as above
    tmpdir += (dir / "missing").string();
    all.insert(all.end(), {":", "-n", "1", "-x", tmpdir, cliPath().string()});
    all.insert(all.end(), args.begin(), args.end());
    const CliResult r = runProgram(MDBF_MPIEXEC, all);
    EXPECT_EQ(r.exitCode, 1) << r.err;
    EXPECT_NE(r.err.find("mdbf: error: rank 1: "), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace mdbf::test
