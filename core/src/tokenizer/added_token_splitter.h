#pragma once
// Finds added tokens (special tokens and user-added words) in text, so that they map to their ids
// directly instead of going through pre-tokenization and BPE.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mdbf::tokenizer {

/// One entry of `added_tokens` in tokenizer.json.
struct AddedToken {
    std::int32_t id = 0;
    std::string content;
    bool special = false;
    bool normalized = true;   ///< matched in the normalized text rather than the raw text
    bool lstrip = false;      ///< absorbs the white space on its left
    bool rstrip = false;      ///< absorbs the white space on its right
    bool singleWord = false;  ///< only matches when not inside a word
};

/// Immutable after construction; thread-safe.
class AddedTokenSplitter {
public:
    /// A part of the text: either plain text [begin, end) or an added token (id >= 0) that
    /// covers [begin, end), including any white space it strips.
    struct Segment {
        std::size_t begin;
        std::size_t end;
        std::int32_t id;  ///< -1 for plain text
    };

    AddedTokenSplitter() = default;

    /// Tokens with empty content are ignored.
    explicit AddedTokenSplitter(std::vector<AddedToken> tokens);

    bool empty() const { return m_tokens.empty(); }

    /// Splits valid UTF-8 `text` into segments covering it in order, with non-overlapping
    /// leftmost-longest matches. Plain segments are never empty.
    std::vector<Segment> split(std::string_view text) const;

private:
    std::vector<AddedToken> m_tokens;
    /// Indices of m_tokens by first byte, longest first.
    std::array<std::vector<std::uint32_t>, 256> m_byFirstByte;
};

}  // namespace mdbf::tokenizer
