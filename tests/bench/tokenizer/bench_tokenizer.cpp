// Prints how long one thread takes to encode and decode 1 MB of mixed text (English prose, then
// generated pseudo-words, code and several scripts) with each real tokenizer of the npm packages
// (LLaMA-3's 128k vocabulary among them), fetching them into the test cache when needed.
// Usage: bench_tokenizer [megabytes=1] [tokenizer names...]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mdbf/base/text_file.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "npm_tokenizers.h"
#include "test_fixtures.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

/// Appends one line of generated text: pseudo-words of random syllables (so that most words are new
/// to the tokenizer's word cache), numbers, a line of code, or a run of another script.
void appendGeneratedLine(std::mt19937& rng, std::string& text)
{
    static const std::vector<std::string> onsets = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "qu", "r",
                                                    "s", "t", "v", "w", "st", "tr", "ch", "th", "pl", "gr", ""};
    static const std::vector<std::string> vowels = {"a", "e", "i", "o", "u", "y", "ea", "ou", "ai", "é", "ö"};
    static const std::vector<std::string> scripts = {"東京都渋谷区の天気は晴れです", "한국어문장입니다", "Русскийтекстздесь",
                                                     "Ελληνικάγράμματα", "العربيةنص", "हिन्दीपाठ", "ภาษาไทย"};
    const auto uniform = [&rng](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const auto word = [&] {
        std::string w;
        for (std::size_t s = 0, n = 1 + uniform(4); s < n; ++s) w += onsets[uniform(onsets.size())] + vowels[uniform(vowels.size())];
        return w;
    };
    const std::size_t kind = uniform(10);
    if (kind < 7) {
        for (std::size_t i = 0, n = 8 + uniform(20); i < n; ++i) {
            text += word();
            text += uniform(12) == 0 ? ", " : uniform(30) == 0 ? std::to_string(uniform(100000)) + " " : " ";
        }
        text += ".\n";
    } else if (kind < 9) {
        text += "    auto " + word() + "_" + word() + " = " + word() + "(" + word() + "[i + " + std::to_string(uniform(64)) +
                "], 0x" + std::to_string(uniform(1 << 20)) + ");  // " + word() + "\n";
    } else {
        // Characters of one script in random order.
        const std::string& pool = scripts[uniform(scripts.size())];
        std::vector<std::string> chars;
        for (std::size_t pos = 0; pos < pool.size();) {
            std::size_t len = 1;
            while (pos + len < pool.size() && (static_cast<unsigned char>(pool[pos + len]) & 0xC0) == 0x80) ++len;
            chars.push_back(pool.substr(pos, len));
            pos += len;
        }
        for (std::size_t i = 0, n = 10 + uniform(40); i < n; ++i) text += chars[uniform(chars.size())] + (uniform(8) == 0 ? " " : "");
        text += "\n";
    }
}

/// The shared fixtures' eval.txt (real English prose, 408 kB) when present, then generated lines
/// from a fixed seed up to `bytes`, cut at a character boundary.
std::string benchText(std::size_t bytes)
{
    const std::filesystem::path prose = mdbf::test::sharedFixtures() / "eval.txt";
    std::string text = std::filesystem::exists(prose) ? mdbf::readUtf8File(prose) : std::string();
    std::mt19937 rng(1234567);
    while (text.size() < bytes) appendGeneratedLine(rng, text);
    std::size_t end = bytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

}  // namespace

int main(int argc, char** argv)
{
    const double megabytes = argc > 1 ? std::atof(argv[1]) : 1.0;
    std::vector<std::string> names;
    for (int i = 2; i < argc; ++i) names.emplace_back(argv[i]);
    if (names.empty()) names.assign(mdbf::test::kNpmTokenizers.begin(), mdbf::test::kNpmTokenizers.end());
    if (const std::string why = mdbf::test::fetchNpmTokenizers(); !why.empty()) {
        std::fprintf(stderr, "bench_tokenizer: %s\n", why.c_str());
        return 1;
    }
    const std::string text = benchText(static_cast<std::size_t>(megabytes * 1e6));
    std::printf("text: %zu bytes, one thread\n", text.size());
    std::printf("%-12s %9s %9s %10s %10s %10s\n", "tokenizer", "load s", "tokens", "encode s", "MB/s", "decode s");
    for (const std::string& name : names) {
        const auto loadStart = Clock::now();
        const mdbf::Tokenizer tokenizer =
            mdbf::Tokenizer::fromFile(mdbf::test::npmTokenizerPackage(name) / "models" / "tokenizer.json");
        const double load = seconds(loadStart);
        const auto encodeStart = Clock::now();
        const std::vector<std::int32_t> ids = tokenizer.encode(text);
        const double encode = seconds(encodeStart);
        const auto decodeStart = Clock::now();
        const std::string back = tokenizer.decode(ids);
        const double decode = seconds(decodeStart);
        std::printf("%-12s %9.2f %9zu %10.3f %10.2f %10.3f%s\n", name.c_str(), load, ids.size(), encode,
                    static_cast<double>(text.size()) / 1e6 / encode, decode, back == text ? "" : "  (decode differs)");
    }
    return 0;
}
