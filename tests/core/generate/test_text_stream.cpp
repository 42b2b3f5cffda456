#include <string>
#include <vector>

#include <gtest/gtest.h>

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
    EXPECT_TRUE(stream.ids().empty());
}

}  // namespace
}  // namespace mdbf::generate
