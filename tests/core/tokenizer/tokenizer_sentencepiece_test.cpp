// SentencePiece-style BPE in tokenizer.json (byte fallback, Prepend/Replace normalizers, Metaspace,
// the decoder chain) on hand-made files whose encodings are worked out by hand, and tokenizer.model
// files read with libsentencepiece.

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include "mdbf/base/error.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "sentencepiece_training.h"
#include "synthetic_tokenizer.h"
#include "test_fixtures.h"

namespace {

using mdbf::Tokenizer;
using mdbf::test::SyntheticTokenizer;
using Ids = std::vector<std::int32_t>;
using nlohmann::json;

/// "▁" (U+2581), SentencePiece's stand-in for a space.
const std::string kMeta = "\xE2\x96\x81";

/// A LLaMA-2-like file: Prepend + Replace normalizer, no pre-tokenizer, byte fallback, and the
/// Replace/ByteFallback/Fuse/Strip decoder.
SyntheticTokenizer llamaStyle()
{
    SyntheticTokenizer spec;
    spec.vocab = {"<unk>", "<s>", "</s>"};
    for (int b = 0; b < 256; ++b) spec.vocab.push_back(mdbf::test::byteToken(b));
    for (const std::string& token : {kMeta, std::string("h"), std::string("e"), std::string("l"), std::string("o"),
                                    std::string("w"), std::string("r"), std::string("d"), std::string("he"),
                                    std::string("ll"), std::string("hell"), std::string("hello"), kMeta + "hello",
                                    kMeta + "w", std::string("or"), kMeta + "wor", std::string("ld"), kMeta + "world",
                                    kMeta + "held"}) {
        spec.vocab.push_back(token);
    }
    spec.merges = {{"h", "e"},  {"l", "l"},        {"he", "ll"},     {"hell", "o"}, {kMeta, "hello"},
                   {kMeta, "w"}, {"o", "r"},       {kMeta + "w", "or"}, {"l", "d"},  {kMeta + "wor", "ld"}};
    spec.stringMerges = true;
    spec.normalizer = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", kMeta}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}}}};
    spec.preTokenizer = nullptr;
    spec.modelOverrides = {{"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true}};
    spec.addedTokens = nlohmann::json::array({mdbf::test::addedToken(0, "<unk>", true), mdbf::test::addedToken(1, "<s>", true),
                        mdbf::test::addedToken(2, "</s>", true)});
    return spec;
}

json llamaDecoder()
{
    return {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
}

Tokenizer load(const SyntheticTokenizer& spec, const json& decoder)
{
    json file = spec.toJson();
    file["decoder"] = decoder;
    return Tokenizer::fromJsonText(file.dump(), "sp.json");
}

TEST(SentencePieceStyle, MergesNormalizedTextAndDecodesBack)
{
    const auto spec = llamaStyle();
    const Tokenizer tokenizer = load(spec, llamaDecoder());
    EXPECT_EQ(tokenizer.encode("hello world"), idsOf(spec, {kMeta + "hello", kMeta + "world"}));
    EXPECT_EQ(tokenizer.decode(tokenizer.encode("hello world")), "hello world");
    // Two spaces: the first "▁" has no merge partner but the next "▁w..." does.
    EXPECT_EQ(tokenizer.encode(" world"), idsOf(spec, {kMeta, kMeta + "world"}));
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(" world")), " world");
    EXPECT_EQ(tokenizer.vocabSize(), spec.vocab.size());
}

TEST(SentencePieceStyle, MissingCharactersFallBackToByteTokens)
{
    const auto spec = llamaStyle();
    const Tokenizer tokenizer = load(spec, llamaDecoder());
    // "é" is C3 A9 in UTF-8 and not in the vocabulary.
    const Ids ids = tokenizer.encode("h\xC3\xA9");
    EXPECT_EQ(ids, idsOf(spec, {kMeta, "h", "<0xC3>", "<0xA9>"}));
    EXPECT_EQ(tokenizer.decode(ids), "h\xC3\xA9");
    // A cut character gives one U+FFFD per byte token, and the text around it survives.
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {"<0xC3>", "h"})), "\xEF\xBF\xBDh");
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {"<0xE2>", "<0x82>"})), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SentencePieceStyle, WithoutByteFallbackUnknownCharactersFuseIntoOneUnk)
{
    auto spec = llamaStyle();
    spec.modelOverrides["byte_fallback"] = false;
    const Tokenizer tokenizer = load(spec, llamaDecoder());
    EXPECT_EQ(tokenizer.encode("h\xC3\xA9\xE2\x82\xAC"), idsOf(spec, {kMeta, "h", "<unk>"}));
    spec.modelOverrides["fuse_unk"] = false;
    EXPECT_EQ(load(spec, llamaDecoder()).encode("h\xC3\xA9\xE2\x82\xAC"), idsOf(spec, {kMeta, "h", "<unk>", "<unk>"}));
}

TEST(SentencePieceStyle, SpecialTokensAreSplitOutBeforeNormalization)
{
    const auto spec = llamaStyle();
    const Tokenizer tokenizer = load(spec, llamaDecoder());
    // Each text segment is normalized on its own, so both get the prepended "▁".
    EXPECT_EQ(tokenizer.encode("<s>hello</s>world"), idsOf(spec, {"<s>", kMeta + "hello", "</s>", kMeta + "world"}));
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {"<s>", kMeta + "hello"})), "<s> hello");
}

TEST(SentencePieceStyle, IgnoreMergesTakesWholeWordsFromTheVocabulary)
{
    auto spec = llamaStyle();
    const Ids merged = idsOf(spec, {kMeta, "he", "ld"});
    EXPECT_EQ(load(spec, llamaDecoder()).encode("held"), merged);
    spec.modelOverrides["ignore_merges"] = true;
    EXPECT_EQ(load(spec, llamaDecoder()).encode("held"), idsOf(spec, {kMeta + "held"}));
}

TEST(SentencePieceStyle, MetaspacePreTokenizerAndDecoder)
{
    auto spec = llamaStyle();
    spec.normalizer = nullptr;
    const json decoder = {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", "always"}, {"split", true}};
    for (const std::string scheme : {"always", "first", "never"}) {
        SCOPED_TRACE(scheme);
        spec.preTokenizer = {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", scheme}, {"split", true}};
        const Tokenizer tokenizer = load(spec, decoder);
        const Ids helloWorld = scheme == "never" ? idsOf(spec, {"hello", kMeta + "world"})
                                                 : idsOf(spec, {kMeta + "hello", kMeta + "world"});
        EXPECT_EQ(tokenizer.encode("hello world"), helloWorld);
        // After a special token the text no longer starts the input: "first" does not prepend.
        const Ids afterSpecial = scheme == "always" ? idsOf(spec, {"<s>", kMeta + "hello"}) : idsOf(spec, {"<s>", "hello"});
        EXPECT_EQ(tokenizer.encode("<s>hello"), afterSpecial);
    }
    const Tokenizer tokenizer = load(spec, decoder);
    EXPECT_EQ(tokenizer.decode(idsOf(spec, {kMeta + "hello", kMeta + "world"})), "hello world");
}

TEST(SentencePieceStyle, SplitBehaviorsDecideWhereDelimitersGo)
{
    SyntheticTokenizer spec;
    spec.vocab = {"g", "o", " ", "go", "o "};
    spec.merges = {{"o", " "}, {"g", "o"}};
    spec.modelOverrides = {{"byte_fallback", true}};
    const auto withBehavior = [&](const std::string& behavior) {
        auto copy = spec;
        copy.preTokenizer = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}, {"invert", false}};
        return load(copy, {{"type", "Fuse"}});
    };
    const auto ids = [&](std::initializer_list<std::string> tokens) { return idsOf(spec, tokens); };
    // "o " merges first, so it survives only where the space stays in the same word as the "o".
    EXPECT_EQ(withBehavior("MergedWithPrevious").encode("go go"), ids({"g", "o ", "go"}));
    EXPECT_EQ(withBehavior("Isolated").encode("go go"), ids({"go", " ", "go"}));
    EXPECT_EQ(withBehavior("Removed").encode("go go"), ids({"go", "go"}));
    EXPECT_EQ(withBehavior("MergedWithNext").encode("go  go"), ids({"go", " ", " ", "go"}));
    EXPECT_EQ(withBehavior("Isolated").decode(ids({"g", "o ", "go"})), "go go");
}

TEST(SentencePieceStyle, NfkcNormalizerFoldsCompatibilityCharacters)
{
    auto spec = llamaStyle();
    spec.normalizer = {{"type", "Sequence"},
                       {"normalizers", {{{"type", "NFKC"}}, spec.normalizer["normalizers"][0], spec.normalizer["normalizers"][1]}}};
    const Tokenizer tokenizer = load(spec, llamaDecoder());
    // Full-width "ｈｅｌｌｏ" is "hello" under NFKC.
    EXPECT_EQ(tokenizer.encode("\xEF\xBD\x88\xEF\xBD\x85\xEF\xBD\x8C\xEF\xBD\x8C\xEF\xBD\x8F"), idsOf(spec, {kMeta + "hello"}));
}

TEST(SentencePieceStyle, UnsupportedComponentsAreNamed)
{
    auto spec = llamaStyle();
    spec.normalizer = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
    try {
        load(spec, llamaDecoder());
        FAIL() << "expected FormatError";
    } catch (const mdbf::FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("Precompiled"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("sp.json"), std::string::npos) << e.what();
    }
    spec = llamaStyle();
    try {
        load(spec, {{"type", "CTC"}});
        FAIL() << "expected FormatError";
    } catch (const mdbf::FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("CTC"), std::string::npos) << e.what();
    }
}

// ---- tokenizer.model --------------------------------------------------------------------------

std::string trainingText()
{
    std::string text;
    const std::vector<std::string> words = {"the", "model", "token", "binary", "factor", "matrix", "weight",
                                            "layer", "quantized", "perplexity", "über", "naïve", "东京"};
    for (int line = 0; line < 300; ++line) {
        for (int w = 0; w < 9; ++w) text += words[static_cast<std::size_t>((line * 7 + w * 3) % 13)] + (w == 8 ? "\n" : " ");
    }
    return text;
}

TEST(SentencePieceModelFile, EncodesLikeTheLibraryAndRoundTrips)
{
    const mdbf::test::TempDir dir;
    const auto modelPath = dir.path() / "tokenizer.model";
    ASSERT_EQ(mdbf::test::trainSentencePieceBpe(trainingText(), 320, modelPath), "");
    const Tokenizer tokenizer = Tokenizer::fromModelDir(dir.path());
    sentencepiece::SentencePieceProcessor library;
    ASSERT_TRUE(library.Load(modelPath.string()).ok());

    for (const std::string text : {"the quantized model", "perplexity of a binary matrix", "über naïve 东京 Zebra 😀", ""}) {
        std::vector<int> expected;
        ASSERT_TRUE(library.Encode(text, &expected).ok());
        const Ids ids = tokenizer.encode(text);
        EXPECT_EQ(ids, Ids(expected.begin(), expected.end())) << text;
        EXPECT_EQ(tokenizer.decode(ids), text);
    }
    EXPECT_EQ(tokenizer.vocabSize(), 320u);
    EXPECT_EQ(tokenizer.tokenId("<unk>"), 0);
    EXPECT_FALSE(tokenizer.tokenId("no such piece").has_value());
    EXPECT_THROW(tokenizer.decode(Ids{320}), mdbf::InvalidArgument);
}

TEST(SentencePieceModelFile, CorruptModelIsAFormatErrorNamingTheFile)
{
    const mdbf::test::TempDir dir;
    mdbf::test::writeTextFile(dir.path() / "tokenizer.model", "not a protobuf at all");
    try {
        Tokenizer::fromModelDir(dir.path());
        FAIL() << "expected FormatError";
    } catch (const mdbf::FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
    }
    const mdbf::test::TempDir empty;
    EXPECT_THROW(Tokenizer::fromModelDir(empty.path()), mdbf::IoError);
}

}  // namespace
