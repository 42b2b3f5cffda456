#include "mdbf/tokenizer/tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8_util.h"

namespace mdbf {

using tokenizer::AddedToken;
using tokenizer::AddedTokenSplitter;
using tokenizer::BpeModel;
using tokenizer::PreTokenizer;

namespace {

/// The bytes a vocabulary token stands for. A token containing characters outside the byte-level
/// alphabet decodes to its own UTF-8 text, as Hugging Face's ByteLevel decoder does.
std::string byteLevelDecode(const std::string& token)
{
    std::string bytes;
    bytes.reserve(token.size());
    std::size_t pos = 0;
    while (pos < token.size()) {
        const int b = tokenizer::codePointToByte(tokenizer::decodeUtf8(token, pos));
        if (b < 0) return token;
        bytes.push_back(static_cast<char>(b));
    }
    return bytes;
}

// ---- per-call encoding state --------------------------------------------------------------------

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// Working memory of one encode() call. The word cache lives here, so concurrent calls share
/// nothing mutable.
struct EncodeState {
    static constexpr std::size_t kMaxCachedWords = 1 << 17;
    /// Long words (runs of spaces, digits, code) seldom repeat; caching them only costs copies.
    static constexpr std::size_t kMaxCachedWordBytes = 64;

    BpeModel::Scratch bpe;
    PreTokenizer::Scratch pre;
    std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, StringHash, std::equal_to<>> cache;
    std::vector<std::int32_t> cachedIds;
};

}  // namespace

// ---- Impl ---------------------------------------------------------------------------------------

struct Tokenizer::Impl {
    Impl(std::string source, tokenizer::TokenizerParts parts)
        : source(std::move(source)),
          model(std::move(parts.model)),
          normalizer(std::move(parts.normalizer)),
          preTokenizer(std::move(parts.preTokenizer)),
          decoder(std::move(parts.decoder))
    {
        std::int32_t maxId = -1;
        for (const auto& [token, id] : model.vocab()) maxId = std::max(maxId, id);
        for (const AddedToken& token : parts.addedTokens) maxId = std::max(maxId, token.id);
        idText.resize(static_cast<std::size_t>(maxId + 1));
        idKnown.assign(static_cast<std::size_t>(maxId + 1), 0);
        for (const auto& [token, id] : model.vocab()) {
            // Byte-level ids store their bytes; the others their token string for the decoder.
            idText[id] = decoder ? token : byteLevelDecode(token);
            idKnown[id] = 1;
        }

        std::vector<AddedToken> raw;
        std::vector<AddedToken> normalized;
        for (AddedToken& token : parts.addedTokens) {
            idText[token.id] = token.content;
            idKnown[token.id] = 1;
            addedIds.insert_or_assign(token.content, token.id);
            // Special tokens are always matched in the raw text, so a normalizer can never break them.
            if (token.special || !token.normalized) {
                raw.push_back(std::move(token));
            } else {
                // Matched in normalized text, so they are normalized the same way.
                token.content = normalizer.run(token.content);
                normalized.push_back(std::move(token));
            }
        }
        rawAdded = AddedTokenSplitter(std::move(raw));
        normalizedAdded = AddedTokenSplitter(std::move(normalized));
    }

    explicit Impl(std::string source, std::unique_ptr<tokenizer::SentencePieceModel> sentencePiece)
        : source(std::move(source)), sentencePiece(std::move(sentencePiece))
    {
    }

    void encodeWords(std::string_view text, bool atTextStart, EncodeState& state, std::vector<std::int32_t>& ids) const
    {
        for (const std::string_view word : preTokenizer.run(text, atTextStart, state.pre)) {
            if (word.size() == 1 || word.size() > EncodeState::kMaxCachedWordBytes) {
                model.encodeWord(word, state.bpe, ids);
                continue;
            }
            if (const auto hit = state.cache.find(word); hit != state.cache.end()) {
                const auto [offset, count] = hit->second;
                ids.insert(ids.end(), state.cachedIds.begin() + offset, state.cachedIds.begin() + offset + count);
                continue;
            }
            const std::size_t first = ids.size();
            model.encodeWord(word, state.bpe, ids);
            if (state.cache.size() < EncodeState::kMaxCachedWords) {
                const auto offset = static_cast<std::uint32_t>(state.cachedIds.size());
                state.cachedIds.insert(state.cachedIds.end(), ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end());
                state.cache.emplace(std::string(word), std::make_pair(offset, static_cast<std::uint32_t>(ids.size() - first)));
            }
        }
    }

    void encodeNormalizable(std::string_view text, bool atTextStart, EncodeState& state, std::vector<std::int32_t>& ids) const
    {
        std::string normalizedText;
        if (!normalizer.empty()) {
            normalizedText = normalizer.run(text);
            text = normalizedText;
        }
        if (normalizedAdded.empty()) {
            encodeWords(text, atTextStart, state, ids);
            return;
        }
        for (const auto& segment : normalizedAdded.split(text)) {
            if (segment.id >= 0) {
                ids.push_back(segment.id);
            } else {
                encodeWords(text.substr(segment.begin, segment.end - segment.begin), atTextStart && segment.begin == 0,
                            state, ids);
            }
        }
    }

    std::string source;
    BpeModel model{{}, {}, {}};
    tokenizer::Normalizer normalizer;
    PreTokenizer preTokenizer;
    std::optional<tokenizer::TokenDecoder> decoder;  ///< set for SentencePiece-style files
    AddedTokenSplitter rawAdded;
    AddedTokenSplitter normalizedAdded;
    std::vector<std::string> idText;    ///< byte-level: decoded bytes of every id; else its token string
    std::vector<std::uint8_t> idKnown;  ///< whether an id is assigned at all
    std::unordered_map<std::string, std::int32_t> addedIds;
    std::unique_ptr<tokenizer::SentencePieceModel> sentencePiece;  ///< set for a tokenizer.model
};

// ---- Tokenizer ----------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromFile(const std::filesystem::path& path)
{
    if (path.extension() == ".model") return fromSentencePieceFile(path);
    const std::string text = readBinaryFile(path);
    return fromJsonText(text, path.string());
}

Tokenizer Tokenizer::fromJsonText(std::string_view jsonText, const std::string& source)
{
    const nlohmann::json root = parseJsonText(jsonText, source);
    try {
        return Tokenizer(std::make_unique<Impl>(source, tokenizer::parseTokenizerJson(root)));
    } catch (Error& e) {
        e.addContext("'" + source + "'");
        throw;
    }
}

Tokenizer Tokenizer::fromSentencePieceFile(const std::filesystem::path& path)
{
    const std::string bytes = readBinaryFile(path);
    return Tokenizer(std::make_unique<Impl>(path.string(), std::make_unique<tokenizer::SentencePieceModel>(bytes, path.string())));
}

std::filesystem::path Tokenizer::fileInModelDir(const std::filesystem::path& dir)
{
    const std::filesystem::path json = dir / "tokenizer.json";
    return std::filesystem::is_regular_file(json) ? json : dir / "tokenizer.model";
}

Tokenizer Tokenizer::fromModelDir(const std::filesystem::path& dir)
{
    const std::filesystem::path file = fileInModelDir(dir);
    if (!std::filesystem::is_regular_file(file)) {
        throw IoError("'" + dir.string() + "': no tokenizer.json or tokenizer.model");
    }
    return file.extension() == ".json" ? fromFile(file) : fromSentencePieceFile(file);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const
{
    std::vector<std::int32_t> ids;
    if (text.empty()) return ids;
    if (const std::size_t bad = findInvalidUtf8(std::string(text)); bad != std::string::npos) {
        throw FormatError("text to encode is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
    }
    const Impl& impl = *m_impl;
    if (impl.sentencePiece) return impl.sentencePiece->encode(text);
    EncodeState state;
    ids.reserve(text.size() / 4 + 1);
    try {
        if (impl.rawAdded.empty()) {
            impl.encodeNormalizable(text, true, state, ids);
        } else {
            for (const auto& segment : impl.rawAdded.split(text)) {
                if (segment.id >= 0) {
                    ids.push_back(segment.id);
                } else {
                    impl.encodeNormalizable(text.substr(segment.begin, segment.end - segment.begin), segment.begin == 0,
                                            state, ids);
                }
            }
        }
    } catch (Error& e) {
        e.addContext("encoding with '" + impl.source + "'");
        throw;
    }
    return ids;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const
{
    const Impl& impl = *m_impl;
    if (impl.sentencePiece) return impl.sentencePiece->decode(ids);
    for (const std::int32_t id : ids) {
        if (id < 0 || static_cast<std::size_t>(id) >= impl.idKnown.size() || !impl.idKnown[static_cast<std::size_t>(id)]) {
            throw InvalidArgument("'" + impl.source + "': cannot decode unknown token id " + std::to_string(id) +
                                  " (vocabulary size " + std::to_string(impl.idKnown.size()) + ")");
        }
    }
    if (impl.decoder) {
        std::vector<std::string> tokens;
        tokens.reserve(ids.size());
        for (const std::int32_t id : ids) tokens.push_back(impl.idText[static_cast<std::size_t>(id)]);
        return impl.decoder->decode(std::move(tokens));
    }
    std::string bytes;
    for (const std::int32_t id : ids) bytes += impl.idText[static_cast<std::size_t>(id)];
    return tokenizer::toValidUtf8Lossy(bytes);
}

std::size_t Tokenizer::vocabSize() const
{
    return m_impl->sentencePiece ? m_impl->sentencePiece->vocabSize() : m_impl->idKnown.size();
}

std::optional<std::int32_t> Tokenizer::tokenId(std::string_view token) const
{
    if (m_impl->sentencePiece) return m_impl->sentencePiece->tokenId(token);
    const std::string key(token);
    if (const auto it = m_impl->addedIds.find(key); it != m_impl->addedIds.end()) return it->second;
    if (const auto it = m_impl->model.vocab().find(key); it != m_impl->model.vocab().end()) return it->second;
    return std::nullopt;
}

}  // namespace mdbf
