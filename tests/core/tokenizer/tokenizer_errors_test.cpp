// Malformed or unsupported tokenizer.json files must fail with an error naming the file and the
// problem.

#include <fstream>
#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "synthetic_tokenizer.h"
#include "test_fixtures.h"

namespace {

using mdbf::Tokenizer;
using mdbf::test::SyntheticTokenizer;

SyntheticTokenizer valid()
{
    SyntheticTokenizer spec;
    spec.vocab = {"a", "b", "ab"};
    spec.merges = {{"a", "b"}};
    return spec;
}

/// Writes `text` as tokenizer.json, loads it and checks that FormatError names the file and
/// mentions every string in `needles`.
void expectFormatError(const std::string& text, std::initializer_list<std::string> needles)
{
    const mdbf::test::TempDir dir;
    const auto path = dir / "tokenizer.json";
    std::ofstream(path, std::ios::binary) << text;
    try {
        Tokenizer::fromFile(path);
        ADD_FAILURE() << "no FormatError for " << text.substr(0, 200);
    } catch (const mdbf::FormatError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(path.string()), std::string::npos) << message;
        for (const auto& needle : needles) EXPECT_NE(message.find(needle), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
}

TEST(TokenizerErrors, ValidSyntheticFileLoads)
{
    const mdbf::test::TempDir dir;
    std::ofstream(dir / "tokenizer.json", std::ios::binary) << valid().text();
    EXPECT_EQ(Tokenizer::fromFile(dir / "tokenizer.json").encode("ab"), (std::vector<std::int32_t>{2}));
}

TEST(TokenizerErrors, NotJson) { expectFormatError("{\"model\": [1, 2", {"JSON"}); }

TEST(TokenizerErrors, NotAnObject) { expectFormatError("[1, 2, 3]", {}); }

TEST(TokenizerErrors, MissingModel)
{
    auto json = valid().toJson();
    json.erase("model");
    expectFormatError(json.dump(), {"model"});
}

TEST(TokenizerErrors, UnsupportedModelType)
{
    auto spec = valid();
    spec.modelOverrides = {{"type", "WordPiece"}};
    expectFormatError(spec.text(), {"WordPiece"});
}

TEST(TokenizerErrors, UnknownPreTokenizer)
{
    auto spec = valid();
    spec.preTokenizer = {{"type", "Whitespace"}};
    expectFormatError(spec.text(), {"pre-tokenizer", "Whitespace"});
}

TEST(TokenizerErrors, ByteLevelMustComeLast)
{
    auto spec = valid();
    spec.preTokenizer = {{"type", "Sequence"},
                         {"pretokenizers",
                          {mdbf::test::byteLevelPreTokenizer(false, false),
                           mdbf::test::splitPreTokenizer("a")["pretokenizers"][0]}}};
    expectFormatError(spec.text(), {"ByteLevel"});
}

TEST(TokenizerErrors, UnsupportedSplitBehavior)
{
    auto spec = valid();
    spec.preTokenizer = mdbf::test::splitPreTokenizer("a");
    spec.preTokenizer["pretokenizers"][0]["behavior"] = "Scattered";
    expectFormatError(spec.text(), {"Scattered"});
}

TEST(TokenizerErrors, BadRegex)
{
    auto spec = valid();
    spec.preTokenizer = mdbf::test::splitPreTokenizer("(?i:'s|\\p{L}+");
    expectFormatError(spec.text(), {"PCRE2", "\\p{L}+"});
}

TEST(TokenizerErrors, UnsupportedNormalizer)
{
    auto spec = valid();
    spec.normalizer = {{"type", "Lowercase"}};
    expectFormatError(spec.text(), {"normalizer", "Lowercase"});
    spec.normalizer = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKD"}}}}};
    expectFormatError(spec.text(), {"normalizer", "NFKD"});
}

TEST(TokenizerErrors, UnsupportedDecoder)
{
    auto json = valid().toJson();
    json["decoder"] = {{"type", "WordPiece"}};
    expectFormatError(json.dump(), {"decoder", "WordPiece"});
}

TEST(TokenizerErrors, MergeNamesUnknownToken)
{
    auto spec = valid();
    spec.merges.push_back({"a", "z"});
    expectFormatError(spec.text(), {"merge #1", "'z'"});
    spec = valid();
    spec.merges.push_back({"b", "a"});  // "ba" is not in the vocabulary
    expectFormatError(spec.text(), {"merge #1", "ba"});
}

TEST(TokenizerErrors, MalformedMerge)
{
    auto json = valid().toJson();
    json["model"]["merges"] = {"a b", "ab"};
    expectFormatError(json.dump(), {"merge #1"});
    json["model"]["merges"] = {{"a", "b", "c"}};
    expectFormatError(json.dump(), {"merge #0"});
}

TEST(TokenizerErrors, BadVocabularyId)
{
    auto json = valid().toJson();
    json["model"]["vocab"]["a"] = -3;
    expectFormatError(json.dump(), {"'a'"});
}

TEST(TokenizerErrors, UnsupportedBpeOptions)
{
    auto spec = valid();
    spec.modelOverrides = {{"byte_fallback", true}};
    expectFormatError(spec.text(), {"byte_fallback"});
    spec.modelOverrides = {{"dropout", 0.1}};
    expectFormatError(spec.text(), {"dropout"});
}

TEST(TokenizerErrors, MissingFileIsIoError)
{
    const mdbf::test::TempDir dir;
    EXPECT_THROW(Tokenizer::fromFile(dir / "absent.json"), mdbf::IoError);
}

TEST(TokenizerErrors, FromJsonTextNamesTheSource)
{
    try {
        Tokenizer::fromJsonText("not json", "config/tokenizer.json");
        FAIL() << "expected FormatError";
    } catch (const mdbf::FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("config/tokenizer.json"), std::string::npos) << e.what();
    }
}

}  // namespace
