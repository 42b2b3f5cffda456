// Hostile input through the CLI: options out of their documented ranges, outputs that would
// replace inputs, reads that fail, and files that used to crash or give silent wrong answers.
// Every case must end with one bounded line on stderr and the documented exit status.

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

namespace fs = std::filesystem;

class HostileCli : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_model = m_dir / "model";
        fs::create_directory(m_model);
        for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
            fs::copy_file(demoModel() / f, m_model / f);
            fs::permissions(m_model / f, fs::perms::owner_write, fs::perm_options::add);
        }
        m_text = m_dir / "text.txt";
        fs::copy_file(testData() / "eval-small.txt", m_text);
    }

    static void expectFailure(const CliResult& r, int code, const std::vector<std::string>& mustMention)
    {
        EXPECT_FALSE(r.signaled) << r.err;
        EXPECT_EQ(r.exitCode, code) << r.err;
        ASSERT_FALSE(r.err.empty());
        const std::string first = r.err.substr(0, r.err.find('\n'));
        EXPECT_LE(first.size(), 1100u) << first.substr(0, 200);
        if (code == 1) {
            EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected one line: " << r.err;
        }
        for (const auto& s : mustMention) EXPECT_NE(r.err.find(s), std::string::npos) << "'" << s << "' not in: " << r.err;
    }

    CliResult quantize(const std::vector<std::string>& extra)
    {
        std::vector<std::string> args = {"quantize", "--model", m_model.string(), "--bpw", "1.5", "--method", "dbf", "--iters", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        return runCli(args);
    }

    TempDir m_dir;
    fs::path m_model;
    fs::path m_text;
};

TEST_F(HostileCli, NumericOptionsHaveBoundedRanges)
{
    const std::string model = m_model.string();
    expectFailure(runCli({"--threads", "100000", "tokenize", "--model", model, "--text-file", m_text.string()}), 2,
                  {"--threads", "not in range 0 to"});
    const CliResult negative = runCli({"--threads", "-1", "tokenize", "--model", model, "--text-file", m_text.string()});
    expectFailure(negative, 2, {"--threads"});
    EXPECT_LT(negative.err.find('\n'), 200u) << "bound printed at length: " << negative.err;
    const std::vector<std::string> factorize = {"factorize", "--model", model, "--layer", "model.layers.0.mlp.up_proj",
                                                "--method", "dbf", "--bpw", "1"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = factorize;
        args.insert(args.end(), extra.begin(), extra.end());
        return runCli(args);
    };
    expectFailure(with({"--iters", "2147483647"}), 2, {"--iters", "not in range 0 to 100000"});
    expectFailure(with({"--inner", "2147483647"}), 2, {"--inner", "not in range 1 to 100000"});
    expectFailure(with({"--seed", "-1"}), 2, {"--seed", "must not be negative"});
    expectFailure(with({"--paths", "0"}), 2, {"--paths"});
    // The refinement's schedule options are checked by the engine, which names the bound.
    expectFailure(with({"--relax", "2"}), 1, {"relaxation", "[1, 2)"});
    expectFailure(with({"--rho-power", "0"}), 1, {"ramp power", "[0.25, 8]"});
    expectFailure(with({"--rho-start", "0"}), 1, {"ρ_0", "(0, 1]"});
    expectFailure(with({"--stall-tol", "-1"}), 1, {"stall tolerance", "[0, 0.01]"});
}

TEST_F(HostileCli, OutputsNeverReplaceInputs)
{
    const std::string before = slurp(m_model / "model.safetensors");
    expectFailure(quantize({"--out", (m_model / "model.safetensors").string()}), 1,
                  {"--out", "would overwrite the input", "model.safetensors"});
    // Through a symbolic link and through a hard link.
    fs::create_symlink(m_model / "model.safetensors", m_dir / "link.h5");
    expectFailure(quantize({"--out", (m_dir / "link.h5").string()}), 1, {"would overwrite the input"});
    fs::create_hard_link(m_model / "tokenizer.json", m_dir / "hard.h5");
    expectFailure(quantize({"--out", (m_dir / "hard.h5").string()}), 1, {"would overwrite the input", "tokenizer.json"});
    // A reconstructed checkpoint written into the input folder.
    expectFailure(quantize({"--out", (m_dir / "p.h5").string(), "--export-safetensors", m_model.string()}), 1,
                  {"--export-safetensors", "would overwrite the input"});
    expectFailure(quantize({"--out", (m_dir / "p.h5").string(), "--export-config", (m_model / "config.json").string()}),
                  1, {"--export-config", "config.json"});
    EXPECT_EQ(slurp(m_model / "model.safetensors"), before);
    EXPECT_FALSE(fs::exists(m_dir / "p.h5"));
    // Empty paths are usage errors, not runs that write nothing.
    expectFailure(quantize({"--out", ""}), 2, {"--out"});
}

TEST_F(HostileCli, ReadErrorsAreReported)
{
    expectFailure(runCli({"tokenize", "--model", m_model.string(), "--text-file", "/proc/self/mem"}), 1,
                  {"/proc/self/mem", "read error"});
}

TEST_F(HostileCli, EmptyVocabularyIsNotZeroTokens)
{
    writeTextFile(m_model / "tokenizer.json",
                  R"({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},)"
                  R"( "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {}, "merges": []}})");
    expectFailure(runCli({"tokenize", "--model", m_model.string(), "--text-file", m_text.string()}), 1,
                  {"tokenizer.json", "no tokens"});
}

TEST_F(HostileCli, SilentWrongResultsBecomeErrors)
{
    // Four bytes inserted before the data region used to shift every tensor and print a perplexity.
    std::string bytes = slurp(m_model / "model.safetensors");
    std::uint64_t headerLength = 0;
    for (int i = 7; i >= 0; --i) headerLength = (headerLength << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    const std::string original = bytes;
    bytes.insert(8 + headerLength, 4, '\0');
    writeTextFile(m_model / "model.safetensors", bytes);
    const std::vector<std::string> ppl = {"ppl", "--model", m_model.string(), "--text-file", m_text.string(), "--ctx", "64"};
    expectFailure(runCli(ppl), 1, {"model.safetensors", "holds"});

    // A rope factor that drives the angles to infinity.
    writeTextFile(m_model / "model.safetensors", original);
    nlohmann::json config = nlohmann::json::parse(slurp(m_model / "config.json"));
    config["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 1e-308}, {"rope_theta", 500000.0}};
    writeTextFile(m_model / "config.json", config.dump());
    expectFailure(runCli(ppl), 1, {"config.json", "factor"});
}

TEST_F(HostileCli, DeepNestingAndHugeValuesGiveOneBoundedLine)
{
    nlohmann::json config = nlohmann::json::parse(slurp(m_model / "config.json"));
    std::string text = config.dump();
    text.insert(text.size() - 1, ",\"x\":" + std::string(100000, '[') + std::string(100000, ']'));
    writeTextFile(m_model / "config.json", text);
    expectFailure(runCli({"inspect", "--model", m_model.string()}), 1, {"config.json", "nested more than"});

    config["hidden_act"] = std::string(10'000'000, 'x') + "\n";
    writeTextFile(m_model / "config.json", config.dump());
    expectFailure(runCli({"inspect", "--model", m_model.string()}), 1, {"config.json", "hidden_act"});
}

}  // namespace
}  // namespace mdbf::test
