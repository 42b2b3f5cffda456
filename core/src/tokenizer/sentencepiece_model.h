#pragma once
// A SentencePiece `tokenizer.model` run by libsentencepiece, for checkpoints without tokenizer.json.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace mdbf::tokenizer {

/// Immutable after construction; encode/decode are thread-safe (the library's are const).
class SentencePieceModel {
public:
    /// `serialized` is the content of the .model file; `source` names it in messages. Throws
    /// FormatError if the library rejects it.
    SentencePieceModel(const std::string& serialized, std::string source);
    ~SentencePieceModel();

    /// Ids of valid UTF-8 text, without BOS/EOS. Throws FormatError if the library fails.
    std::vector<std::int32_t> encode(std::string_view text) const;

    /// Text of ids; throws InvalidArgument for an id outside the vocabulary.
    std::string decode(std::span<const std::int32_t> ids) const;

    /// Number of pieces.
    std::size_t vocabSize() const;

    /// The id of a piece, if the vocabulary has it.
    std::optional<std::int32_t> tokenId(std::string_view piece) const;

private:
    std::string m_source;
    std::unique_ptr<sentencepiece::SentencePieceProcessor> m_processor;
};

}  // namespace mdbf::tokenizer
