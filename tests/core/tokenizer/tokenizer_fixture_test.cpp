// The tokenizers of the fixture models against the ids Hugging Face's tokenizers produced
// (stored in <model>.reference.json).

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/text_file.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "test_fixtures.h"

namespace {

using mdbf::Tokenizer;
namespace fs = std::filesystem;

struct ModelCase {
    std::string name;   ///< test name
    std::string model;  ///< fixture model name
    bool sharedCopy;    ///< tiny-llama: the copy in ../shared instead of the one in the repository
};

mdbf::test::ModelFixture fixtureOf(const ModelCase& c)
{
    if (!c.sharedCopy) return mdbf::test::modelFixture(c.model);
    mdbf::test::ModelFixture f;
    f.modelDir = mdbf::test::sharedFixtures() / c.model;
    f.reference = mdbf::test::sharedFixtures() / (c.model + ".reference.json");
    f.evalSmall = mdbf::test::sharedFixtures() / "eval-small.txt";
    f.available = fs::exists(f.reference) && fs::exists(f.modelDir);
    return f;
}

class FixtureTokenizerTest : public ::testing::TestWithParam<ModelCase> {
protected:
    void SetUp() override
    {
        m_fixture = fixtureOf(GetParam());
        MDBF_REQUIRE_MODEL_FIXTURE(m_fixture, GetParam().model);
        m_reference = nlohmann::json::parse(mdbf::readUtf8File(m_fixture.reference));
        m_tokenizer.emplace(Tokenizer::fromFile(m_fixture.modelDir / "tokenizer.json"));
    }

    static std::vector<std::int32_t> expectedIds(const nlohmann::json& list)
    {
        return list.get<std::vector<std::int32_t>>();
    }

    mdbf::test::ModelFixture m_fixture;
    nlohmann::json m_reference;
    std::optional<Tokenizer> m_tokenizer;
};

TEST_P(FixtureTokenizerTest, GoldenStringsEncodeAndDecodeExactly)
{
    ASSERT_FALSE(m_reference["golden"].empty());
    for (const auto& golden : m_reference["golden"]) {
        const auto text = golden["text"].get<std::string>();
        const auto ids = m_tokenizer->encode(text);
        EXPECT_EQ(ids, expectedIds(golden["ids"])) << "text: " << text;
        EXPECT_EQ(m_tokenizer->decode(expectedIds(golden["ids"])), golden["decoded"].get<std::string>()) << "text: " << text;
        EXPECT_EQ(m_tokenizer->decode(ids), text);
    }
}

TEST_P(FixtureTokenizerTest, EvalSmallMatchesReferenceCountAndFirstIds)
{
    const std::string text = mdbf::readUtf8File(m_fixture.evalSmall);
    const auto ids = m_tokenizer->encode(text);
    EXPECT_EQ(ids.size(), m_reference["eval_small_tokens"].get<std::size_t>());
    const auto first = expectedIds(m_reference["logits_first32"]["input_ids"]);
    ASSERT_GE(ids.size(), first.size());
    EXPECT_EQ(std::vector<std::int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(first.size())), first);
    EXPECT_EQ(m_tokenizer->decode(ids), text);
}

TEST_P(FixtureTokenizerTest, EvalFullMatchesReferenceCount)
{
    MDBF_REQUIRE_SHARED_FIXTURES();
    const std::string text = mdbf::readUtf8File(mdbf::test::sharedFixtures() / "eval.txt");
    const auto start = std::chrono::steady_clock::now();
    const auto ids = m_tokenizer->encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(ids.size(), m_reference["eval_full_tokens"].get<std::size_t>());
    EXPECT_EQ(m_tokenizer->decode(ids), text);
    std::cout << "[ info ] " << GetParam().name << ": encoded " << text.size() << " bytes into " << ids.size()
              << " tokens in " << seconds << " s (" << static_cast<double>(ids.size()) / seconds << " tokens/s)\n";
}

TEST_P(FixtureTokenizerTest, ConcurrentEncodesAgree)
{
    const std::string text = mdbf::readUtf8File(m_fixture.evalSmall);
    std::vector<std::int32_t> a;
    std::vector<std::int32_t> b;
    {
        std::jthread first([&] { a = m_tokenizer->encode(text); });
        std::jthread second([&] { b = m_tokenizer->encode(text); });
    }
    EXPECT_EQ(a.size(), m_reference["eval_small_tokens"].get<std::size_t>());
    EXPECT_EQ(a, b);
}

TEST_P(FixtureTokenizerTest, SpecialTokensAreSplitOutOfText)
{
    const auto eos = m_tokenizer->tokenId("<|endoftext|>");
    ASSERT_TRUE(eos.has_value());
    const std::string text = "Hello, world!";
    const auto plain = m_tokenizer->encode(text);
    auto expected = plain;
    expected.push_back(*eos);
    expected.insert(expected.end(), plain.begin(), plain.end());
    EXPECT_EQ(m_tokenizer->encode(text + "<|endoftext|>" + text), expected);
    EXPECT_EQ(m_tokenizer->decode(expected), text + "<|endoftext|>" + text);
}

TEST_P(FixtureTokenizerTest, VocabSizeMatchesConfig)
{
    const auto config = nlohmann::json::parse(mdbf::readUtf8File(m_fixture.modelDir / "config.json"));
    EXPECT_EQ(m_tokenizer->vocabSize(), config["vocab_size"].get<std::size_t>());
}

INSTANTIATE_TEST_SUITE_P(Models, FixtureTokenizerTest,
                         ::testing::Values(ModelCase{"TinyLlamaDemo", "tiny-llama", false},
                                           ModelCase{"TinyLlamaShared", "tiny-llama", true},
                                           ModelCase{"SmallLlama", "small-llama", false},
                                           ModelCase{"MediumLlama", "medium-llama", false}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.name; });

// The demo model must round-trip arbitrary text, including control characters, NUL and
// characters outside its training data.
TEST(DemoTokenizer, RoundTripsTextWithoutSharedFixtures)
{
    const Tokenizer tokenizer = Tokenizer::fromFile(mdbf::test::demoModel() / "tokenizer.json");
    using namespace std::string_literals;
    const std::string withNul = "Tabs\tand  spaces\r\n, digits 0123456789, \xE2\x82\xAC and \xF0\x9F\x98\x80\x00 nul."s;
    ASSERT_EQ(withNul[withNul.size() - 6], '\0');
    const auto ids = tokenizer.encode(withNul);
    EXPECT_FALSE(ids.empty());
    EXPECT_LT(ids.size(), withNul.size());
    EXPECT_EQ(tokenizer.decode(ids), withNul);
    EXPECT_TRUE(tokenizer.encode("").empty());
    EXPECT_EQ(tokenizer.decode(std::vector<std::int32_t>{}), "");
}

}  // namespace
