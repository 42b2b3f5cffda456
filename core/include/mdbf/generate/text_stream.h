#pragma once
// Incremental detokenization (docs/GENERATION.md): text is released as soon as it is final, and a
// character whose bytes are split across tokens is released whole, once its last byte arrives.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::generate {

/// Turns a growing id sequence that continues `context` (e.g. the prompt) into text pieces: the
/// concatenation of every piece push() and finish() return is the text that follows the context,
/// decode(context + ids) without decode(context), for decoders whose output for a sequence extends
/// their output for its prefix (byte-level BPE; SentencePiece's Metaspace, Strip and byte fallback).
/// Each push() decodes only the ids since the previous piece and one piece of context.
class TextStream {
public:
    /// Keeps a reference: `tokenizer` must outlive the stream. The last ids of `context` give the
    /// first generated ids their context (a leading space is a space after the prompt, not the start
    /// of a text that a decoder strips).
    explicit TextStream(const Tokenizer& tokenizer, std::span<const std::int32_t> context = {});

    /// Appends `id` and returns the text that became final with it; empty while a character is
    /// incomplete (its decoding would end in U+FFFD). Throws InvalidArgument for an unknown id.
    std::string push(std::int32_t id);

    /// The text held back so far (an incomplete character stays U+FFFD, as decode() gives it).
    std::string finish();

    /// Every piece returned so far, concatenated.
    const std::string& text() const { return m_text; }

private:
    const Tokenizer& m_tokenizer;
    std::vector<std::int32_t> m_ids;  ///< a few context ids, then every pushed id
    std::size_t m_prefix = 0;         ///< first id of the decoding window (context for the new ids)
    std::size_t m_read = 0;           ///< ids before this one have had their text returned
    std::string m_text;
};

}  // namespace mdbf::generate
