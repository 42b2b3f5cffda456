#pragma once
// Incremental detokenization (docs/GENERATION.md): text is released as soon as it is final, and a
// character whose bytes are split across tokens is released whole, once its last byte arrives.

#include <cstdint>
#include <string>
#include <vector>

#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::generate {

/// Turns a growing id sequence into text pieces. The concatenation of every piece push() and
/// finish() return equals tokenizer.decode(all ids).
class TextStream {
public:
    /// Keeps a reference: `tokenizer` must outlive the stream.
    explicit TextStream(const Tokenizer& tokenizer) : m_tokenizer(tokenizer) {}

    /// Appends `id` and returns the text that became final with it; empty while a character is
    /// incomplete (its decoding would end in U+FFFD). Throws InvalidArgument for an unknown id.
    std::string push(std::int32_t id);

    /// The text held back so far (an incomplete character stays U+FFFD, as decode() gives it).
    std::string finish();

    /// Every id pushed.
    const std::vector<std::int32_t>& ids() const { return m_ids; }

private:
    const Tokenizer& m_tokenizer;
    std::vector<std::int32_t> m_ids;
    std::string m_emitted;  ///< the prefix of decode(m_ids) already returned
};

}  // namespace mdbf::generate
