// `mdbf tokenize` and `mdbf ppl` on a checkpoint whose tokenizer is SentencePiece-style: the demo
// model's weights with a small LLaMA-2-like tokenizer.json the test writes, or with only a
// tokenizer.model trained here.

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "sentencepiece_training.h"
#include "test_fixtures.h"

namespace {

using namespace mdbf::test;
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kMeta = "\xE2\x96\x81";

/// A copy of the demo model without its tokenizer.
void copyWeights(const fs::path& dir)
{
    for (const char* name : {"config.json", "model.safetensors"}) fs::copy_file(demoModel() / name, dir / name);
}

/// Vocabulary: <unk> <s> </s>, the 256 byte tokens, "▁", the letters, "▁" + each letter, and
/// "▁the"; merges build "▁t", "▁th" and "▁the" — ids stay below the demo model's 2048.
json llamaLikeTokenizer()
{
    json vocab = json::object();
    int next = 0;
    for (const char* special : {"<unk>", "<s>", "</s>"}) vocab[special] = next++;
    for (int b = 0; b < 256; ++b) vocab[byteToken(b)] = next++;
    vocab[kMeta] = next++;
    json merges = json::array();
    for (char c = 'a'; c <= 'z'; ++c) {
        vocab[std::string(1, c)] = next++;
        vocab[kMeta + c] = next++;
        merges.push_back(kMeta + " " + c);
    }
    vocab[kMeta + "th"] = next++;
    vocab[kMeta + "the"] = next++;
    merges.push_back(kMeta + "t h");
    merges.push_back(kMeta + "th e");
    return {{"version", "1.0"},
            {"added_tokens",
             {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
              {{"id", 1}, {"content", "<s>"}, {"special", true}},
              {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
            {"normalizer",
             {{"type", "Sequence"},
              {"normalizers",
               {{{"type", "Prepend"}, {"prepend", kMeta}},
                {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}}}}},
            {"pre_tokenizer", nullptr},
            {"decoder",
             {{"type", "Sequence"},
              {"decoders",
               {{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
                {{"type", "ByteFallback"}},
                {{"type", "Fuse"}},
                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
            {"model",
             {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true},
              {"vocab", vocab}, {"merges", merges}}}};
}

void expectPplRuns(const fs::path& model, const fs::path& text)
{
    const json j = onlyJson(runCli({"ppl", "--model", model.string(), "--text-file", text.string(), "--ctx", "32", "--json"}));
    ASSERT_TRUE(j.contains("ppl")) << j.dump();
    // Weights trained for another tokenizer: far from good, but a finite mean over real windows.
    EXPECT_TRUE(std::isfinite(j["ppl"].get<double>())) << j.dump();
    EXPECT_GT(j["ppl"].get<double>(), 1.0);
    EXPECT_GT(j["windows"].get<int>(), 0);
}

/// `mdbf generate` on the model: 10 greedy tokens whose text is the decoding of their ids, and the
/// streamed output the prompt followed by that text.
void expectGenerateRuns(const fs::path& model)
{
    const json j = onlyJson(runCli({"generate", "--model", model.string(), "--prompt", "the cat sat", "--max-tokens",
                                    "10", "--ignore-eos", "--json"}));
    ASSERT_TRUE(j.contains("ids")) << j.dump();
    EXPECT_EQ(j["ids"].size(), 10u);
    EXPECT_GT(j["prompt_tokens"].get<int>(), 0);
    const CliResult streamed = runCli({"generate", "--model", model.string(), "--prompt", "the cat sat", "--max-tokens",
                                       "10", "--ignore-eos"});
    ASSERT_EQ(streamed.exitCode, 0) << streamed.err;
    EXPECT_EQ(streamed.out, "the cat sat" + j["text"].get<std::string>() + "\n");
}

TEST(CliSentencePieceTokenizer, TokenizeAndPplWithTokenizerJson)
{
    const TempDir dir;
    copyWeights(dir.path());
    writeTextFile(dir.path() / "tokenizer.json", llamaLikeTokenizer().dump());
    const fs::path text = dir.path() / "text.txt";
    // "▁the" "▁c" "a" "t" then "é" by byte fallback (C3 A9): worked out from the merges above.
    writeTextFile(text, "the cat\xC3\xA9");
    const json vocab = llamaLikeTokenizer()["model"]["vocab"];
    const std::vector<int> expected = {vocab[kMeta + "the"], vocab[kMeta + "c"], vocab["a"], vocab["t"],
                                       vocab["<0xC3>"], vocab["<0xA9>"]};
    const json tokens = onlyJson(runCli({"tokenize", "--model", dir.path().string(), "--text-file", text.string(), "--json"}));
    EXPECT_EQ(tokens["ids"].get<std::vector<int>>(), expected);

    writeTextFile(text, slurp(testData() / "eval-small.txt").substr(0, 1200));
    expectPplRuns(dir.path(), text);
    expectGenerateRuns(dir.path());
}

TEST(CliSentencePieceTokenizer, TokenizeAndPplWithOnlyTokenizerModel)
{
    const TempDir dir;
    copyWeights(dir.path());
    const std::string corpus = slurp(testData() / "eval-small.txt");
    ASSERT_EQ(trainSentencePieceBpe(corpus, 400, dir.path() / "tokenizer.model"), "");
    const fs::path text = dir.path() / "text.txt";
    writeTextFile(text, corpus.substr(0, 3000));
    const json tokens = onlyJson(runCli({"tokenize", "--model", dir.path().string(), "--text-file", text.string(), "--json"}));
    ASSERT_TRUE(tokens.contains("count")) << tokens.dump();
    EXPECT_GT(tokens["count"].get<int>(), 300);  // 400 pieces cannot pack 3000 bytes much tighter
    EXPECT_LT(tokens["count"].get<int>(), 3000);
    for (const int id : tokens["ids"].get<std::vector<int>>()) EXPECT_LT(id, 400);
    expectPplRuns(dir.path(), text);
    expectGenerateRuns(dir.path());
}

}  // namespace
