#pragma once
// Incremental detokenization (docs/GENERATION.md): text is released as soon as it is final, and a
// character whose bytes are split across tokens is released whole, once its last byte arrives.

#include <cstdint>
#include <string>
#include <vector>

#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::generate {

/// Turns a growing id sequence into text pieces. The concatenation of every piece push() and
/// finish() return equals tokenizer.decode(all ids) for decoders whose output for a sequence
/// extends their output for its prefix (byte-level BPE; SentencePiece's Metaspace and byte
/// fallback). Each push() decodes only the ids since the previous piece and one piece of context.
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
    std::string m_emitted;  ///< the text already returned
    std::size_t m_prefix = 0;  ///< first id of the decoding window (context for the new ids)
    std::size_t m_read = 0;    ///< ids before this one have had their text returned
};

}  // namespace mdbf::generate
