// End-to-end tests of `mdbf generate` and `mdbf bench`: the JSON contracts, streamed text, greedy
// tokens checked against the full-window forward, packages, bad parameters and Ctrl-C.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::test {
namespace {

std::string model() { return demoModel().string(); }

TEST(CliGenerate, JsonHoldsGreedyTokensThatAreTheArgmaxOfTheFullForward)
{
    const nlohmann::json j = onlyJson(
        runCli({"--threads", "2", "generate", "--model", model(), "--prompt", "The old castle", "--max-tokens", "10", "--json"}));
    for (const char* key : {"prompt_ids", "ids", "text", "prompt_tokens", "generated_tokens", "prefill_tok_s", "decode_tok_s"}) {
        EXPECT_TRUE(j.contains(key)) << key;
    }
    const auto promptIds = j["prompt_ids"].get<std::vector<std::int32_t>>();
    const auto ids = j["ids"].get<std::vector<std::int32_t>>();
    const Tokenizer tokenizer = Tokenizer::fromFile(demoModel() / "tokenizer.json");
    EXPECT_EQ(promptIds, tokenizer.encode("The old castle"));
    EXPECT_EQ(j["prompt_tokens"].get<std::size_t>(), promptIds.size());
    EXPECT_EQ(j["generated_tokens"].get<std::size_t>(), ids.size());
    ASSERT_EQ(ids.size(), 10u);
    EXPECT_EQ(j["text"].get<std::string>(), tokenizer.decode(ids));
    EXPECT_GT(j["prefill_tok_s"].get<double>(), 0.0);
    EXPECT_GT(j["decode_tok_s"].get<double>(), 0.0);

    const model::Transformer transformer = model::Transformer::load(demoModel());
    std::vector<std::int32_t> sequence = promptIds;
    for (const std::int32_t id : ids) {
        const RowMatrixF logits = transformer.forward(sequence, 1);
        Eigen::Index best = 0;
        logits.row(logits.rows() - 1).maxCoeff(&best);
        EXPECT_EQ(id, best);
        sequence.push_back(id);
    }
}

TEST(CliGenerate, StreamsThePromptAndItsContinuationToStdout)
{
    TempDir dir;
    writeTextFile(dir / "prompt.txt", "A small boat");
    const CliResult streamed =
        runCli({"generate", "--model", model(), "--prompt-file", (dir / "prompt.txt").string(), "--max-tokens", "12"});
    ASSERT_EQ(streamed.exitCode, 0) << streamed.err;
    const nlohmann::json j =
        onlyJson(runCli({"generate", "--model", model(), "--prompt", "A small boat", "--max-tokens", "12", "--json"}));
    EXPECT_EQ(streamed.out, "A small boat" + j["text"].get<std::string>() + "\n");
    EXPECT_NE(streamed.err.find("tok/s"), std::string::npos) << streamed.err;
}

TEST(CliGenerate, SamplingWithASeedIsReproducible)
{
    const std::vector<std::string> args = {"generate", "--model", model(), "--prompt", "Rain fell", "--max-tokens", "16",
                                           "--temperature", "1.0", "--top-k", "50", "--top-p", "0.9", "--json"};
    auto withSeed = [&](const char* seed) {
        std::vector<std::string> a = args;
        a.insert(a.end(), {"--seed", seed});
        return onlyJson(runCli(a))["ids"];
    };
    EXPECT_EQ(withSeed("7"), withSeed("7"));
    EXPECT_NE(withSeed("7"), withSeed("8"));
}

TEST(CliGenerate, BadSamplingParametersAreUsageErrors)
{
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--temperature", "-0.5"}, "temperature"},
        {{"--top-p", "0"}, "top-p"},
        {{"--top-p", "1.5"}, "top-p"},
        {{"--top-k", "-1"}, "top-k"},
    };
    for (const auto& [extra, word] : cases) {
        std::vector<std::string> args = {"generate", "--model", model(), "--prompt", "x"};
        args.insert(args.end(), extra.begin(), extra.end());
        const CliResult r = runCli(args);
        EXPECT_EQ(r.exitCode, 2) << extra[0] << " " << extra[1] << ": " << r.err;
        EXPECT_NE(r.err.find(word), std::string::npos) << r.err;
        EXPECT_TRUE(r.out.empty());
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
    const CliResult zero = runCli({"generate", "--model", model(), "--prompt", "x", "--max-tokens", "0"});
    EXPECT_EQ(zero.exitCode, 2) << zero.err;
    const CliResult empty = runCli({"generate", "--model", model(), "--prompt", ""});
    EXPECT_EQ(empty.exitCode, 1) << empty.err;
    EXPECT_NE(empty.err.find("prompt is empty"), std::string::npos) << empty.err;
    const CliResult both = runCli({"generate", "--model", model(), "--prompt", "x", "--prompt-file", "/nonexistent"});
    EXPECT_EQ(both.exitCode, 2) << both.err;
}

TEST(CliGenerate, APackageGeneratesAndBenches)
{
    TempDir dir;
    const std::string package = (dir / "tiny.h5").string();
    const CliResult q = runCli({"quantize", "--model", model(), "--out", package, "--bpw", "1.5", "--method", "mdbf",
                                "--l", "1", "--iters", "0", "--json"});
    ASSERT_EQ(q.exitCode, 0) << q.err;
    const nlohmann::json g =
        onlyJson(runCli({"generate", "--package", package, "--prompt", "The old castle", "--max-tokens", "8", "--json"}));
    EXPECT_EQ(g["ids"].size(), 8u);
    const nlohmann::json b = onlyJson(runCli({"--threads", "1", "bench", "--package", package, "--prompt-tokens", "16",
                                              "--gen-tokens", "8", "--repetitions", "2", "--json"}));
    for (const char* key : {"prefill_tok_s", "prefill_sd", "decode_tok_s", "decode_sd", "threads", "prompt_tokens", "gen_tokens"}) {
        EXPECT_TRUE(b.contains(key)) << key;
    }
    EXPECT_GT(b["prefill_tok_s"].get<double>(), 0.0);
    EXPECT_GT(b["decode_tok_s"].get<double>(), 0.0);
    EXPECT_GE(b["prefill_sd"].get<double>(), 0.0);
    EXPECT_EQ(b["threads"], 1);
    EXPECT_EQ(b["prompt_tokens"], 16);
    EXPECT_EQ(b["gen_tokens"], 8);
}

TEST(CliBench, PrintsATableAndRefusesBadCounts)
{
    const CliResult r =
        runCli({"bench", "--model", model(), "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "1"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("pp8"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tg4"), std::string::npos) << r.out;
    EXPECT_EQ(runCli({"bench", "--model", model(), "--prompt-tokens", "0"}).exitCode, 2);
    EXPECT_EQ(runCli({"bench", "--model", model(), "--repetitions", "0"}).exitCode, 2);
    // A context beyond max_position_embeddings (2048 for the demo model) is refused with a message.
    const CliResult tooLong = runCli({"bench", "--model", model(), "--prompt-tokens", "2000", "--gen-tokens", "100"});
    EXPECT_EQ(tooLong.exitCode, 1);
    EXPECT_NE(tooLong.err.find("max_position_embeddings"), std::string::npos) << tooLong.err;
}

TEST(CliGenerate, CtrlCStopsCleanlyWithExit130)
{
    TempDir dir;
    const pid_t pid = spawnCli({"--threads", "1", "generate", "--model", model(), "--prompt", "Long ago", "--max-tokens",
                                "2000", "--ignore-eos"},
                               dir / "stdout", dir / "stderr");
    ASSERT_GT(pid, 0);
    // Wait until text is streaming, then interrupt.
    const auto start = std::chrono::steady_clock::now();
    while (slurp(dir / "stdout").size() < 40 && std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 130) << slurp(dir / "stderr");
    EXPECT_EQ(slurp(dir / "stdout").rfind("Long ago", 0), 0u);
}

}  // namespace
}  // namespace mdbf::test
