// `mdbf quantize` continues from its work folder: a run killed with SIGKILL, started again with the
// same flags, reuses every layer the killed run finished, computes only the rest, removes what the
// killed run left half-written, and writes the same package as an uninterrupted run. A changed
// setting recomputes only the layers it affects.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;

int countRecords(const fs::path& workDir)
{
    int count = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(workDir, ec)) {
        const std::string name = e.path().filename().string();
        count += name.rfind("layer-", 0) == 0 && name.size() > 3 && name.substr(name.size() - 3) == ".h5" ? 1 : 0;
    }
    return count;
}

std::vector<std::string> quantizeArgs(const fs::path& out)
{
    return {"--threads", "1", "quantize", "--model", demoModel().string(), "--out", out.string(), "--bpw", "1.5",
            "--method", "mdbf", "--l", "2", "--iters", "12", "--json"};
}

TEST(CliQuantizeResume, KilledRunContinuesFromFinishedLayersAndWritesTheSamePackage)
{
    TempDir dir;
    // The uninterrupted reference, with a work folder of its own.
    const fs::path reference = dir / "reference.h5";
    const nlohmann::json whole = onlyJson(runCli(quantizeArgs(reference)));
    ASSERT_EQ(whole["layers_computed"], 28);
    ASSERT_EQ(whole["layers_reused"], 0);

    // Killed once a few layers are in its work folder.
    const fs::path out = dir / "out.h5";
    const fs::path work = dir / "out.h5.work";
    const pid_t pid = spawnCli(quantizeArgs(out), dir / "stdout", dir / "stderr");
    ASSERT_GT(pid, 0);
    const auto start = std::chrono::steady_clock::now();
    int status = 0;
    bool exited = false;
    while (countRecords(work) < 6) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
        ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120)) << "no layer finished";
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_FALSE(exited) << "the run finished before it could be killed: " << slurp(dir / "stderr");
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    const int finished = countRecords(work);
    ASSERT_GE(finished, 6);
    ASSERT_LT(finished, 28) << "the kill came too late to test a resumption";
    // What a run killed while writing the package or a record leaves behind.
    writeTextFile(dir / ".out.h5.tmp-Ab3dEf", "half a package");
    writeTextFile(work / ".layer-0123456789abcdef.h5.tmp-Zy9xWv", "half a record");

    const nlohmann::json resumed = onlyJson(runCli(quantizeArgs(out)));
    EXPECT_EQ(resumed["layers_reused"], finished);
    EXPECT_EQ(resumed["layers_computed"], 28 - finished);
    EXPECT_EQ(resumed["temporary_files_removed"], 1);
    int reusedFlags = 0;
    for (const auto& layer : resumed["layers"]) reusedFlags += layer["reused"].get<bool>() ? 1 : 0;
    EXPECT_EQ(reusedFlags, finished);
    EXPECT_EQ(resumed["model_bpw"], whole["model_bpw"]);
    EXPECT_TRUE(slurp(out) == slurp(reference)) << "the resumed package differs from the uninterrupted one";
    EXPECT_EQ(directoryEntries(dir.path()), (std::vector<std::string>{"out.h5", "out.h5.work", "reference.h5",
                                                                      "reference.h5.work", "stderr", "stdout"}));
    for (const std::string& name : directoryEntries(work)) {
        EXPECT_TRUE(name == "lock" || (name.rfind("layer-", 0) == 0 && name.find(".tmp-") == std::string::npos)) << name;
    }
    EXPECT_EQ(countRecords(work), 28);

    // A changed budget for the down projections recomputes those four layers only.
    writeTextFile(dir / "cfg.json", R"({"defaults": {"method": "mdbf", "bpw": 1.5, "l": 2},
                                        "rules": [{"pattern": "model.layers.*.mlp.down_proj", "bpw": 2}]})");
    std::vector<std::string> args = quantizeArgs(out);
    args.erase(args.begin() + 7, args.begin() + 13);  // --bpw 1.5 --method mdbf --l 2
    args.insert(args.end(), {"--config", (dir / "cfg.json").string()});
    const nlohmann::json changed = onlyJson(runCli(args));
    EXPECT_EQ(changed["layers_computed"], 4);
    EXPECT_EQ(changed["layers_reused"], 24);
}

}  // namespace
}  // namespace mdbf::test
