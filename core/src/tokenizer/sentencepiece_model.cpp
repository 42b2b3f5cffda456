#include "tokenizer/sentencepiece_model.h"

#include <sentencepiece_processor.h>

#include "mdbf/base/error.h"

namespace mdbf::tokenizer {

SentencePieceModel::SentencePieceModel(const std::string& serialized, std::string source)
    : m_source(std::move(source)), m_processor(std::make_unique<sentencepiece::SentencePieceProcessor>())
{
    const auto status = m_processor->LoadFromSerializedProto(serialized);
    if (!status.ok()) throw FormatError("'" + m_source + "': not a SentencePiece model: " + status.ToString());
}

SentencePieceModel::~SentencePieceModel() = default;

std::vector<std::int32_t> SentencePieceModel::encode(std::string_view text) const
{
    std::vector<int> ids;
    const auto status = m_processor->Encode(text, &ids);
    if (!status.ok()) throw FormatError("'" + m_source + "': SentencePiece encoding failed: " + status.ToString());
    return {ids.begin(), ids.end()};
}

std::string SentencePieceModel::decode(std::span<const std::int32_t> ids) const
{
    const auto size = static_cast<std::int64_t>(vocabSize());
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= size) {
            throw InvalidArgument("'" + m_source + "': cannot decode unknown token id " + std::to_string(id) +
                                  " (vocabulary size " + std::to_string(size) + ")");
        }
    }
    std::string text;
    const auto status = m_processor->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    if (!status.ok()) throw FormatError("'" + m_source + "': SentencePiece decoding failed: " + status.ToString());
    return text;
}

std::size_t SentencePieceModel::vocabSize() const { return static_cast<std::size_t>(m_processor->GetPieceSize()); }

std::optional<std::int32_t> SentencePieceModel::tokenId(std::string_view piece) const
{
    const int id = m_processor->PieceToId(piece);
    // Unknown pieces map to the unk id; only a real match counts.
    if (id < 0 || m_processor->IdToPiece(id) != piece) return std::nullopt;
    return id;
}

}  // namespace mdbf::tokenizer
