#pragma once
// Decoding of SentencePiece-style token strings back to text: the decoders of tokenizer.json that
// undo Metaspace/Replace normalization and byte fallback (docs/CLI.md §2.4). Byte-level decoding is
// a fixed table in the tokenizer itself.

#include <string>
#include <vector>

namespace mdbf::tokenizer {

/// One decoder of a `Sequence` (or the only one).
struct DecoderStep {
    enum class Kind { Replace, ByteFallback, Fuse, Strip, Metaspace };
    Kind kind = Kind::Fuse;
    std::string pattern;  ///< Replace: the literal replaced; Strip/Metaspace: the character (UTF-8)
    std::string content;  ///< Replace: its replacement
    int start = 0;        ///< Strip: at most this many leading `pattern` characters removed per token
    int stop = 0;         ///< Strip: at most this many trailing ones
    bool stripFirstSpace = true;  ///< Metaspace: the first token loses the space its prepend added
};

/// Immutable after construction; decode() is thread-safe.
class TokenDecoder {
public:
    TokenDecoder() = default;
    explicit TokenDecoder(std::vector<DecoderStep> steps) : m_steps(std::move(steps)) {}

    /// Runs the steps over the token strings of an id sequence (consumed) and joins what remains.
    /// With no steps the tokens are joined with single spaces, as Hugging Face does. Byte
    /// sequences from <0xNN> tokens that are not valid UTF-8 give one U+FFFD per byte token.
    std::string decode(std::vector<std::string> tokens) const;

private:
    std::vector<DecoderStep> m_steps;
};

}  // namespace mdbf::tokenizer
