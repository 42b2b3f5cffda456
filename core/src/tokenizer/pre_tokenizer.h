#pragma once
// Pre-tokenization: cuts normalized text into words before BPE. Supports the two pipelines of
// byte-level tokenizers (DESIGN.md §4): `ByteLevel` with GPT-2's built-in regex, or regex `Split`
// steps (behaviour Isolated) followed by `ByteLevel` without regex.

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pcre_regex.h"

namespace mdbf::tokenizer {

/// The regex GPT-2's ByteLevel pre-tokenizer applies when `use_regex` is true.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

/// One step of the pipeline.
struct PreTokenizerStep {
    enum class Kind { Split, ByteLevel };
    Kind kind = Kind::Split;
    /// Split: its pattern; ByteLevel: the GPT-2 regex when `use_regex`, else null.
    std::shared_ptr<const PcreRegex> regex;
    /// ByteLevel only: prepend a space to every piece that does not start with one.
    bool addPrefixSpace = false;
};

/// Immutable after construction; run() is thread-safe given a per-thread Scratch.
class PreTokenizer {
public:
    /// Per-thread working memory; the pieces returned by run() live in it.
    struct Scratch {
        std::vector<std::string_view> pieces;
        std::vector<std::string_view> next;
        std::deque<std::string> storage;
        std::vector<std::optional<PcreRegex::MatchData>> matchData;
    };

    PreTokenizer() = default;
    explicit PreTokenizer(std::vector<PreTokenizerStep> steps) : m_steps(std::move(steps)) {}

    /// Splits valid UTF-8 `text` into non-empty words (raw bytes; the byte-level alphabet is
    /// applied by the BPE model). The views point into `text` or into `scratch` and stay valid
    /// until the next run() with the same scratch.
    const std::vector<std::string_view>& run(std::string_view text, Scratch& scratch) const;

private:
    std::vector<PreTokenizerStep> m_steps;
};

}  // namespace mdbf::tokenizer
