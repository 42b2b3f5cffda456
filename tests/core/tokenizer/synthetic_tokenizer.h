#pragma once
// Builds small tokenizer.json documents whose expected encodings can be worked out by hand.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mdbf::test {

/// `ByteLevel` pre-tokenizer section.
inline nlohmann::json byteLevelPreTokenizer(bool addPrefixSpace, bool useRegex)
{
    return {{"type", "ByteLevel"}, {"add_prefix_space", addPrefixSpace}, {"trim_offsets", true}, {"use_regex", useRegex}};
}

/// `Sequence` of `Split(regex, Isolated)` and `ByteLevel(use_regex=false)`, as LLaMA-3 files have.
inline nlohmann::json splitPreTokenizer(const std::string& regex)
{
    return {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
              byteLevelPreTokenizer(false, false)}}};
}

/// One `added_tokens` entry.
inline nlohmann::json addedToken(int id, const std::string& content, bool special, bool normalized = false,
                                 bool lstrip = false, bool rstrip = false, bool singleWord = false)
{
    return {{"id", id},         {"content", content}, {"single_word", singleWord}, {"lstrip", lstrip},
            {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
}

/// A BPE tokenizer.json. Vocabulary entries are byte-level strings ("Ġ" for a space) and get ids
/// in list order.
struct SyntheticTokenizer {
    std::vector<std::string> vocab;
    std::vector<std::pair<std::string, std::string>> merges;
    bool stringMerges = false;  ///< "a b" strings instead of ["a", "b"] pairs
    nlohmann::json normalizer = nullptr;
    nlohmann::json preTokenizer = byteLevelPreTokenizer(false, true);
    nlohmann::json addedTokens = nlohmann::json::array();
    nlohmann::json modelOverrides = nlohmann::json::object();

    nlohmann::json toJson() const
    {
        nlohmann::json vocabJson = nlohmann::json::object();
        for (std::size_t i = 0; i < vocab.size(); ++i) vocabJson[vocab[i]] = i;
        nlohmann::json mergesJson = nlohmann::json::array();
        for (const auto& [left, right] : merges) {
            if (stringMerges) {
                mergesJson.push_back(left + " " + right);
            } else {
                mergesJson.push_back({left, right});
            }
        }
        nlohmann::json model = {{"type", "BPE"},          {"dropout", nullptr},    {"unk_token", nullptr},
                                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                                {"fuse_unk", false},      {"byte_fallback", false}, {"ignore_merges", false},
                                {"vocab", vocabJson},     {"merges", mergesJson}};
        model.update(modelOverrides);
        return {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", addedTokens},
                {"normalizer", normalizer},
                {"pre_tokenizer", preTokenizer},
                {"post_processor",
                 {{"type", "TemplateProcessing"},
                  {"single", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                  {"pair", nlohmann::json::array()},
                  {"special_tokens", nlohmann::json::object()}}},
                {"decoder", byteLevelPreTokenizer(true, true)},
                {"model", model}};
    }

    std::string text() const { return toJson().dump(); }
};

/// Ids by position in the synthetic vocabulary (independent of the tokenizer's own lookup); a token
/// missing from the vocabulary is a test failure.
inline std::vector<std::int32_t> idsOf(const SyntheticTokenizer& spec, std::initializer_list<std::string> tokens)
{
    std::vector<std::int32_t> ids;
    for (const auto& token : tokens) {
        const auto it = std::find(spec.vocab.begin(), spec.vocab.end(), token);
        EXPECT_NE(it, spec.vocab.end()) << token;
        ids.push_back(static_cast<std::int32_t>(it - spec.vocab.begin()));
    }
    return ids;
}

}  // namespace mdbf::test
