// Bad input through the CLI: one clear line on stderr naming the file and the problem, a non-zero
// exit status, never a signal, nothing on stdout.

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace mdbf::test {
namespace {

/// A writable copy of the demo model that a test can break.
class BrokenModel : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_model = m_dir / "model";
        std::filesystem::create_directory(m_model);
        for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
            std::filesystem::copy_file(demoModel() / f, m_model / f);
            std::filesystem::permissions(m_model / f, std::filesystem::perms::owner_write,
                                         std::filesystem::perm_options::add);
        }
        m_text = m_dir / "text.txt";
        std::filesystem::copy_file(testData() / "eval-small.txt", m_text);
    }

    CliResult ppl(int ctx = 128)
    {
        return runCli({"ppl", "--model", m_model.string(), "--text-file", m_text.string(), "--ctx",
                       std::to_string(ctx), "--json"});
    }

    static void expectCleanFailure(const CliResult& r, const std::vector<std::string>& mustMention, int code = 1)
    {
        EXPECT_FALSE(r.signaled) << r.err;
        EXPECT_EQ(r.exitCode, code) << r.err;
        EXPECT_TRUE(r.out.empty()) << r.out;
        ASSERT_FALSE(r.err.empty());
        EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected one line: " << r.err;
        for (const auto& s : mustMention) EXPECT_NE(r.err.find(s), std::string::npos) << "'" << s << "' not in: " << r.err;
    }

    std::string readModelFile(const char* name) { return slurp(m_model / name); }

    TempDir m_dir;
    std::filesystem::path m_model;
    std::filesystem::path m_text;
};

TEST_F(BrokenModel, TruncatedSafetensors)
{
    const std::string bytes = readModelFile("model.safetensors");
    writeTextFile(m_model / "model.safetensors", bytes.substr(0, bytes.size() / 2));
    expectCleanFailure(ppl(), {"model.safetensors"});
}

TEST_F(BrokenModel, EmptySafetensors)
{
    writeTextFile(m_model / "model.safetensors", "");
    expectCleanFailure(ppl(), {"model.safetensors"});
}

TEST_F(BrokenModel, HeaderLengthPastEndOfFile)
{
    std::string bytes = readModelFile("model.safetensors");
    const std::uint64_t huge = bytes.size() + 100;
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((huge >> (8 * i)) & 0xff);
    writeTextFile(m_model / "model.safetensors", bytes);
    expectCleanFailure(ppl(), {"model.safetensors", "header"});
}

TEST_F(BrokenModel, NonJsonHeader)
{
    std::string bytes = readModelFile("model.safetensors");
    bytes[8] = '#';  // first byte of the JSON header
    writeTextFile(m_model / "model.safetensors", bytes);
    expectCleanFailure(ppl(), {"model.safetensors"});
}

TEST_F(BrokenModel, UnknownArchitecture)
{
    std::ifstream in(m_model / "config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config["architectures"] = {"GPTNeoXForCausalLM"};
    config.erase("model_type");
    writeTextFile(m_model / "config.json", config.dump());
    expectCleanFailure(ppl(), {"config.json", "GPTNeoXForCausalLM"});
}

TEST_F(BrokenModel, MissingConfigField)
{
    std::ifstream in(m_model / "config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config.erase("hidden_size");
    writeTextFile(m_model / "config.json", config.dump());
    expectCleanFailure(ppl(), {"config.json", "hidden_size"});
}

TEST_F(BrokenModel, MalformedTokenizerJson)
{
    writeTextFile(m_model / "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
    expectCleanFailure(ppl(), {"tokenizer.json"});
    expectCleanFailure(runCli({"tokenize", "--model", m_model.string(), "--text-file", m_text.string()}),
                       {"tokenizer.json"});
}

TEST_F(BrokenModel, MissingShardNamedByIndex)
{
    std::filesystem::rename(m_model / "model.safetensors", m_model / "model-00001-of-00002.safetensors");
    nlohmann::json index;
    index["metadata"] = nlohmann::json::object();
    index["weight_map"]["model.embed_tokens.weight"] = "model-00001-of-00002.safetensors";
    index["weight_map"]["model.norm.weight"] = "model-00002-of-00002.safetensors";
    writeTextFile(m_model / "model.safetensors.index.json", index.dump());
    expectCleanFailure(ppl(), {"model-00002-of-00002.safetensors"});
}

TEST_F(BrokenModel, InvalidUtf8Text)
{
    writeTextFile(m_text, std::string("valid start \xff\xfe then garbage"));
    expectCleanFailure(ppl(), {"text.txt", "UTF-8"});
    expectCleanFailure(runCli({"tokenize", "--model", m_model.string(), "--text-file", m_text.string(), "--json"}),
                       {"text.txt", "UTF-8"});
}

TEST_F(BrokenModel, EmptyTextForPpl)
{
    writeTextFile(m_text, "");
    expectCleanFailure(ppl(), {"text.txt", "ctx"});
}

TEST_F(BrokenModel, TextShorterThanCtx)
{
    writeTextFile(m_text, "Only a few words here.");
    expectCleanFailure(ppl(64), {"text.txt", "fewer than ctx"});
}

TEST_F(BrokenModel, MissingTextFile)
{
    std::filesystem::remove(m_text);
    expectCleanFailure(ppl(), {"text.txt"});
}

TEST(CliUsage, UsageErrorsExitWithTwo)
{
    EXPECT_EQ(runCli({}).exitCode, 2);
    EXPECT_EQ(runCli({"frobnicate"}).exitCode, 2);
    EXPECT_EQ(runCli({"ppl", "--model", demoModel().string()}).exitCode, 2);          // missing --text-file
    EXPECT_EQ(runCli({"ppl", "--model", "/nonexistent/dir", "--text-file", "x"}).exitCode, 2);
    EXPECT_EQ(runCli({"ppl", "--model", demoModel().string(), "--text-file", "x", "--ctx", "abc"}).exitCode, 2);
    EXPECT_EQ(runCli({"--kernel-path", "sse4", "inspect", "--model", demoModel().string()}).exitCode, 2);
}

}  // namespace
}  // namespace mdbf::test
