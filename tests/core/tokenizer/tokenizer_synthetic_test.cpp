// Small hand-made tokenizers whose encodings are worked out by hand from the merge rules.

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "synthetic_tokenizer.h"

namespace {

using mdbf::Tokenizer;
using mdbf::test::SyntheticTokenizer;
using Ids = std::vector<std::int32_t>;

Tokenizer load(const SyntheticTokenizer& spec) { return Tokenizer::fromJsonText(spec.text(), "synthetic.json"); }

SyntheticTokenizer helloWorld(bool stringMerges)
{
    SyntheticTokenizer spec;
    spec.vocab = {"h", "e", "l", "o", "w", "r", "d", "Ġ", "he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld"};
    spec.merges = {{"h", "e"},  {"l", "l"},    {"he", "ll"}, {"hell", "o"},    {"Ġ", "w"},
                   {"o", "r"},  {"Ġw", "or"}, {"l", "d"},   {"Ġwor", "ld"}};
    spec.stringMerges = stringMerges;
    return spec;
}

TEST(SyntheticTokenizer, StringAndPairMergeFormsEncodeAlike)
{
    for (const bool stringMerges : {false, true}) {
        SCOPED_TRACE(stringMerges ? "\"a b\" merges" : "[a, b] merges");
        const auto spec = helloWorld(stringMerges);
        const Tokenizer tokenizer = load(spec);
        EXPECT_EQ(tokenizer.encode("hello world"), idsOf(spec, {"hello", "Ġworld"}));
        // "held": he (rank 0) then ld (rank 7); "he"+"ld" has no merge.
        EXPECT_EQ(tokenizer.encode("held"), idsOf(spec, {"he", "ld"}));
        EXPECT_EQ(tokenizer.decode(idsOf(spec, {"hello", "Ġworld"})), "hello world");
        EXPECT_EQ(tokenizer.vocabSize(), spec.vocab.size());
        EXPECT_EQ(tokenizer.tokenId("Ġworld"), idsOf(spec, {"Ġworld"})[0]);
        EXPECT_FALSE(tokenizer.tokenId("world").has_value());
    }
}

TEST(SyntheticTokenizer, LowerRankMergesFirstAndTiesGoLeftToRight)
{
    SyntheticTokenizer spec;
    spec.vocab = {"a", "b", "c", "ab", "bc", "bb"};
    spec.merges = {{"a", "b"}, {"b", "c"}, {"b", "b"}};
    EXPECT_EQ(load(spec).encode("abc"), idsOf(spec, {"ab", "c"}));
    EXPECT_EQ(load(spec).encode("bbb"), idsOf(spec, {"bb", "b"}));
    spec.merges = {{"b", "c"}, {"a", "b"}};
    EXPECT_EQ(load(spec).encode("abc"), idsOf(spec, {"a", "bc"}));
}

// "e" + U+0301 (bytes CC 81) composes to U+00E9 (bytes C3 A9). In the byte-level alphabet C3 is
// "Ã", A9 is "©", CC is "Ì" and 81, the 36th unprintable byte, is U+0123 "ģ".
SyntheticTokenizer accentVocabulary()
{
    SyntheticTokenizer spec;
    spec.vocab = {"c", "a", "f", "e", "Ã", "©", "Ì", "ģ", "Ã©"};
    spec.merges = {{"Ã", "©"}};
    return spec;
}

TEST(SyntheticTokenizer, NfcNormalizerComposesBeforeTokenizing)
{
    const std::string decomposed = "cafe\xCC\x81";
    auto spec = accentVocabulary();
    EXPECT_EQ(load(spec).encode(decomposed), idsOf(spec, {"c", "a", "f", "e", "Ì", "ģ"}));

    spec.normalizer = {{"type", "NFC"}};
    const Tokenizer nfc = load(spec);
    const Ids composed = idsOf(spec, {"c", "a", "f", "Ã©"});
    EXPECT_EQ(nfc.encode(decomposed), composed);
    EXPECT_EQ(nfc.encode("caf\xC3\xA9"), composed);
    EXPECT_EQ(nfc.decode(composed), "caf\xC3\xA9");

    spec.normalizer = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
    EXPECT_EQ(load(spec).encode(decomposed), composed);
}

TEST(SyntheticTokenizer, DecodeReplacesCutCharacters)
{
    const auto spec = accentVocabulary();
    const Tokenizer tokenizer = load(spec);
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {"Ã"})), "\xEF\xBF\xBD");
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {"a", "Ã", "©"})), "a\xC3\xA9");
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {"Ã", "a"})), "\xEF\xBF\xBD" "a");
}

TEST(SyntheticTokenizer, SpecialTokensAreSplitOutLongestFirstBeforeNormalization)
{
    auto spec = accentVocabulary();
    spec.vocab.insert(spec.vocab.end(), {"<", ">", "x", "y", "b"});
    const auto base = static_cast<int>(spec.vocab.size());
    spec.normalizer = {{"type", "NFC"}};
    spec.addedTokens = nlohmann::json::array({mdbf::test::addedToken(base, "<x>", true),
                        mdbf::test::addedToken(base + 1, "<x><y>", true),
                        mdbf::test::addedToken(base + 2, "<e\xCC\x81>", true),
                        // A normalized non-special token matches the NFC form of the text.
                        mdbf::test::addedToken(base + 3, "caf\xC3\xA9", false, true)});
    const Tokenizer tokenizer = load(spec);
    EXPECT_EQ(tokenizer.vocabSize(), spec.vocab.size() + 4);

    const Ids a = idsOf(spec, {"a"});
    const Ids b = idsOf(spec, {"b"});
    EXPECT_EQ(tokenizer.encode("a<x><y>b<x>"), (Ids{a[0], base + 1, b[0], base}));
    EXPECT_EQ(tokenizer.encode("<x"), idsOf(spec, {"<", "x"}));
    // Matched in the raw text: after NFC this token would no longer occur.
    EXPECT_EQ(tokenizer.encode("a<e\xCC\x81>"), (Ids{a[0], base + 2}));
    EXPECT_EQ(tokenizer.encode("<x>cafe\xCC\x81"), (Ids{base, base + 3}));
    EXPECT_EQ(tokenizer.decode(Ids{a[0], base + 1, base + 2}), "a<x><y><e\xCC\x81>");
    EXPECT_EQ(tokenizer.tokenId("<x><y>"), base + 1);
}

TEST(SyntheticTokenizer, AddedTokenStripAndSingleWordOptions)
{
    SyntheticTokenizer spec;
    spec.vocab = {"a", "b", "x", "Ġ", "<", "m", ">"};
    spec.addedTokens = nlohmann::json::array({mdbf::test::addedToken(7, "<m>", true, false, /*lstrip=*/true, /*rstrip=*/true),
                        mdbf::test::addedToken(8, "ab", false, false, false, false, /*singleWord=*/true)});
    const Tokenizer tokenizer = load(spec);
    const Ids x = idsOf(spec, {"x"});
    EXPECT_EQ(tokenizer.encode("x  <m>  x"), (Ids{x[0], 7, x[0]}));
    EXPECT_EQ(tokenizer.encode("x ab"), (Ids{x[0], idsOf(spec, {"Ġ"})[0], 8}));
    EXPECT_EQ(tokenizer.encode("xab"), idsOf(spec, {"x", "a", "b"}));

    spec.addedTokens = nlohmann::json::array({mdbf::test::addedToken(7, "<m>", true)});
    EXPECT_EQ(load(spec).encode("x <m>"), (Ids{x[0], idsOf(spec, {"Ġ"})[0], 7}));
}

TEST(SyntheticTokenizer, ByteLevelAddPrefixSpace)
{
    SyntheticTokenizer spec;
    spec.vocab = {"h", "i", "Ġ", "Ġh", "Ġhi"};
    spec.merges = {{"Ġ", "h"}, {"Ġh", "i"}};
    spec.preTokenizer = mdbf::test::byteLevelPreTokenizer(true, true);
    const Tokenizer tokenizer = load(spec);
    EXPECT_EQ(tokenizer.encode("hi"), idsOf(spec, {"Ġhi"}));
    EXPECT_EQ(tokenizer.encode(" hi"), idsOf(spec, {"Ġhi"}));
    EXPECT_EQ(tokenizer.encode("hi hi"), idsOf(spec, {"Ġhi", "Ġhi"}));
}

TEST(SyntheticTokenizer, SplitRegexPiecesAreIsolatedAndEmptyMatchesEnd)
{
    SyntheticTokenizer spec;
    spec.vocab = {"a", "b", "c", "x", "ab", "xx", "bx"};
    spec.merges = {{"a", "b"}, {"x", "x"}, {"b", "x"}};
    // "x*" matches the empty string almost everywhere; only "xx" is a real piece, so "b" and "x"
    // never meet in one word.
    spec.preTokenizer = mdbf::test::splitPreTokenizer("x*");
    EXPECT_EQ(load(spec).encode("abxxc"), idsOf(spec, {"ab", "xx", "c"}));
    EXPECT_EQ(load(spec).encode("bxc"), idsOf(spec, {"b", "x", "c"}));
    spec.preTokenizer = mdbf::test::splitPreTokenizer("(?=c)");
    EXPECT_EQ(load(spec).encode("bxc"), idsOf(spec, {"bx", "c"}));
}

TEST(SyntheticTokenizer, IgnoreMergesTakesWholeWordsFromTheVocabulary)
{
    SyntheticTokenizer spec;
    spec.vocab = {"a", "b", "c", "abc"};
    EXPECT_EQ(load(spec).encode("abc"), idsOf(spec, {"a", "b", "c"}));
    spec.modelOverrides = {{"ignore_merges", true}};
    EXPECT_EQ(load(spec).encode("abc"), idsOf(spec, {"abc"}));
    EXPECT_EQ(load(spec).encode("ab"), idsOf(spec, {"a", "b"}));
}

TEST(SyntheticTokenizer, BytesMissingFromTheVocabularyUseTheUnknownToken)
{
    SyntheticTokenizer spec;
    spec.vocab = {"a", "<unk>"};
    EXPECT_EQ(load(spec).encode("azz"), idsOf(spec, {"a"}));
    spec.modelOverrides = {{"unk_token", "<unk>"}};
    EXPECT_EQ(load(spec).encode("azz"), idsOf(spec, {"a", "<unk>", "<unk>"}));
    spec.modelOverrides["fuse_unk"] = true;
    EXPECT_EQ(load(spec).encode("azza"), idsOf(spec, {"a", "<unk>", "a"}));
}

TEST(SyntheticTokenizer, InvalidInputsThrow)
{
    SyntheticTokenizer spec = helloWorld(false);
    spec.addedTokens = nlohmann::json::array({mdbf::test::addedToken(30, "<eos>", true)});
    const Tokenizer tokenizer = load(spec);
    EXPECT_EQ(tokenizer.vocabSize(), 31u);
    EXPECT_THROW(tokenizer.encode("he\xFFllo"), mdbf::FormatError);
    EXPECT_THROW(tokenizer.encode("\xC3"), mdbf::FormatError);
    EXPECT_THROW(tokenizer.decode(Ids{20}), mdbf::InvalidArgument);  // a gap below the added token
    EXPECT_THROW(tokenizer.decode(Ids{31}), mdbf::InvalidArgument);
    EXPECT_THROW(tokenizer.decode(Ids{-1}), mdbf::InvalidArgument);
    EXPECT_EQ(tokenizer.decode(Ids{30}), "<eos>");
    try {
        tokenizer.decode(Ids{0, 99});
        FAIL() << "expected InvalidArgument";
    } catch (const mdbf::InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("synthetic.json"), std::string::npos) << e.what();
    }
}

}  // namespace
