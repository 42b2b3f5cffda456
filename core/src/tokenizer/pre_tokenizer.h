#pragma once
// Pre-tokenization: cuts normalized text into words before BPE (docs/CLI.md §2.4). Byte-level
// tokenizers end with `ByteLevel` (GPT-2's built-in regex, or `Split` steps before it);
// SentencePiece-style ones use `Metaspace`, a `Split`, or no pre-tokenizer at all.

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
    enum class Kind { Split, ByteLevel, Metaspace };
    /// What a Split does with the matches of its pattern (Hugging Face's SplitDelimiterBehavior).
    enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };
    /// When Metaspace puts the replacement in front of a piece that lacks it.
    enum class PrependScheme { Always, First, Never };
    Kind kind = Kind::Split;
    /// Split: its pattern; ByteLevel: the GPT-2 regex when `use_regex`, else null.
    std::shared_ptr<const PcreRegex> regex;
    Behavior behavior = Behavior::Isolated;
    /// ByteLevel only: prepend a space to every piece that does not start with one.
    bool addPrefixSpace = false;
    /// Metaspace only: the character (UTF-8) that stands for a space, usually U+2581.
    std::string replacement;
    PrependScheme prependScheme = PrependScheme::Always;
    /// Metaspace only: cut before every replacement character.
    bool split = true;
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
    /// applied by the BPE model). `atTextStart` says the text begins the whole input (Metaspace's
    /// "first" scheme prepends only there). The views point into `text` or into `scratch` and
    /// stay valid until the next run() with the same scratch.
    const std::vector<std::string_view>& run(std::string_view text, bool atTextStart, Scratch& scratch) const;

    /// True when a ByteLevel step maps the words to the byte-level alphabet.
    bool byteLevel() const;

private:
    std::vector<PreTokenizerStep> m_steps;
};

}  // namespace mdbf::tokenizer
