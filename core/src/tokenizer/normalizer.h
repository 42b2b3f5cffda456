#pragma once
// Normalization of text before pre-tokenization: the normalizers of tokenizer.json that byte-level
// and SentencePiece-style BPE files use (docs/CLI.md §2.4).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pcre_regex.h"

namespace mdbf::tokenizer {

/// One normalizer of a `Sequence` (or the only one).
struct NormalizerStep {
    enum class Kind { Nfc, Nfkc, Prepend, Replace };
    Kind kind = Kind::Nfc;
    /// Prepend: the text put in front of a non-empty input. Replace: the replacement.
    std::string content;
    /// Replace with a {"String": ...} pattern: the literal searched for (regex is then null).
    std::string literal;
    /// Replace with a {"Regex": ...} pattern.
    std::shared_ptr<const PcreRegex> regex;
};

/// Immutable after construction; run() is thread-safe.
class Normalizer {
public:
    Normalizer() = default;
    explicit Normalizer(std::vector<NormalizerStep> steps) : m_steps(std::move(steps)) {}

    /// True when run() returns its input unchanged.
    bool empty() const { return m_steps.empty(); }

    /// Applies the steps in order to valid UTF-8 `text`. Throws FormatError if Unicode
    /// normalization fails.
    std::string run(std::string_view text) const;

private:
    std::vector<NormalizerStep> m_steps;
};

/// Replaces every non-overlapping occurrence of `from` (non-empty) in `text` by `to`, left to right.
std::string replaceAll(std::string_view text, std::string_view from, std::string_view to);

/// Replaces every non-empty match of `regex` in valid UTF-8 `text` by `to`, left to right.
std::string replaceAll(std::string_view text, const PcreRegex& regex, std::string_view to);

}  // namespace mdbf::tokenizer
