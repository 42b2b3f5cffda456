#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/generate/text_stream.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "test_fixtures.h"

namespace mdbf::generate {
namespace {

const Tokenizer& demoTokenizer()
{
    static const Tokenizer tokenizer = Tokenizer::fromFile(test::demoModel() / "tokenizer.json");
    return tokenizer;
}

/// Pushes the ids one by one; returns the pieces, checking that no piece ends inside a character.
std::vector<std::string> streamPieces(const std::vector<std::int32_t>& ids, std::string& rest)
{
    TextStream stream(demoTokenizer());
    std::vector<std::string> pieces;
    for (const std::int32_t id : ids) pieces.push_back(stream.push(id));
    rest = stream.finish();
    return pieces;
}

TEST(TextStream, PiecesConcatenateToTheDecodedText)
{
    const std::string text = "Streams of text: naïve café, 東京, emoji 🙂 and\ttabs\n\nnew lines.";
    const std::vector<std::int32_t> ids = demoTokenizer().encode(text);
    ASSERT_GT(ids.size(), 10u);
    std::string rest;
    const std::vector<std::string> pieces = streamPieces(ids, rest);
    std::string joined;
    for (const std::string& p : pieces) joined += p;
    joined += rest;
    EXPECT_EQ(joined, demoTokenizer().decode(ids));
    EXPECT_EQ(joined, text);
    EXPECT_TRUE(rest.empty());
}

TEST(TextStream, ACharacterSplitAcrossTokensIsReleasedWhole)
{
    // A byte-level vocabulary this small spells these characters with several byte tokens.
    const std::string text = "🙂東";
    const std::vector<std::int32_t> ids = demoTokenizer().encode(text);
    ASSERT_GT(ids.size(), 2u) << "the characters are expected to span several tokens";
    std::string rest;
    const std::vector<std::string> pieces = streamPieces(ids, rest);
    std::string joined;
    for (const std::string& p : pieces) {
        EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "a piece holds a replacement character";
        joined += p;
    }
    EXPECT_EQ(joined + rest, text);
    // Nothing is released before the last byte of the first character.
    EXPECT_TRUE(pieces.front().empty());
}

TEST(TextStream, AnIncompleteCharacterAtTheEndComesOutOfFinishAsDecodeGivesIt)
{
    std::vector<std::int32_t> ids = demoTokenizer().encode("ok 🙂");
    ASSERT_GT(ids.size(), 2u);
    ids.pop_back();  // cut the emoji
    std::string rest;
    const std::vector<std::string> pieces = streamPieces(ids, rest);
    std::string joined;
    for (const std::string& p : pieces) joined += p;
    EXPECT_EQ(joined + rest, demoTokenizer().decode(ids));
    EXPECT_NE(rest.find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(TextStream, AnUnknownIdThrowsAndIsNotKept)
{
    TextStream stream(demoTokenizer());
    EXPECT_THROW(stream.push(static_cast<std::int32_t>(demoTokenizer().vocabSize()) + 5), Error);
    const std::vector<std::int32_t> ids = demoTokenizer().encode("fine");
    std::string text;
    for (const std::int32_t id : ids) text += stream.push(id);
    text += stream.finish();
    EXPECT_EQ(text, "fine");
    EXPECT_EQ(stream.text(), "fine");
}

/// A SentencePiece-style tokenizer whose decoder turns "▁" into spaces and strips the first one of
/// a text, as LLaMA-2's does.
Tokenizer metaspaceTokenizer()
{
    const std::string meta = "\xE2\x96\x81";
    const nlohmann::json json = {
        {"model",
         {{"type", "BPE"},
          {"vocab", {{"<unk>", 0}, {meta + "the", 1}, {meta + "cat", 2}, {meta + "sat", 3}, {meta, 4}}},
          {"merges", nlohmann::json::array()},
          {"unk_token", "<unk>"}}},
        {"decoder",
         {{"type", "Sequence"},
          {"decoders",
           {{{"type", "Replace"}, {"pattern", {{"String", meta}}}, {"content", " "}},
            {{"type", "Fuse"}},
            {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}}};
    return Tokenizer::fromJsonText(json.dump(), "metaspace test tokenizer");
}

TEST(TextStream, TheTextAfterAPromptKeepsTheSpaceADecoderStripsAtTheStartOfAText)
{
    const Tokenizer tokenizer = metaspaceTokenizer();
    const std::vector<std::int32_t> prompt = {1};  // "▁the"
    ASSERT_EQ(tokenizer.decode(prompt), "the");
    TextStream stream(tokenizer, prompt);
    std::string text;
    for (const std::int32_t id : {2, 3}) text += stream.push(id);
    text += stream.finish();
    EXPECT_EQ(text, " cat sat");
    EXPECT_EQ("the" + text, tokenizer.decode(std::vector<std::int32_t>{1, 2, 3}));
    // Without the prompt as context the same ids start a text, and the decoder strips their space.
    TextStream alone(tokenizer);
    std::string bare;
    for (const std::int32_t id : {2, 3}) bare += alone.push(id);
    EXPECT_EQ(bare + alone.finish(), "cat sat");
}

}  // namespace
}  // namespace mdbf::generate
