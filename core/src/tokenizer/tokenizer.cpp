#include "mdbf/tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"
#include "tokenizer/added_token_splitter.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8_util.h"

namespace mdbf {

using nlohmann::json;
using tokenizer::AddedToken;
using tokenizer::AddedTokenSplitter;
using tokenizer::BpeModel;
using tokenizer::BpeOptions;
using tokenizer::PreTokenizer;
using tokenizer::PreTokenizerStep;

namespace {

// ---- tokenizer.json parsing -------------------------------------------------------------------

/// The member `key` of `object`, or null when it is absent or JSON null.
const json* member(const json& object, const char* key)
{
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
}

std::string typeName(const json& section, const std::string& what)
{
    if (!section.is_object()) throw FormatError(what + " is not a JSON object");
    const json* type = member(section, "type");
    if (!type || !type->is_string()) throw FormatError(what + " has no 'type'");
    return type->get<std::string>();
}

bool flag(const json& object, const char* key, bool fallback)
{
    const json* value = member(object, key);
    if (!value) return fallback;
    if (!value->is_boolean()) throw FormatError(std::string("'") + key + "' is not true or false");
    return value->get<bool>();
}

std::int32_t tokenIdValue(const json& value, const std::string& what)
{
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
        value.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max()) {
        throw FormatError(what + " has an invalid id " + value.dump());
    }
    return static_cast<std::int32_t>(value.get<std::int64_t>());
}

std::unordered_map<std::string, std::int32_t> parseVocab(const json& model)
{
    const json* vocab = member(model, "vocab");
    if (!vocab || !vocab->is_object()) throw FormatError("model has no 'vocab' object");
    std::unordered_map<std::string, std::int32_t> result;
    result.reserve(vocab->size());
    for (const auto& [token, id] : vocab->items()) {
        result.emplace(token, tokenIdValue(id, "vocabulary token '" + token + "'"));
    }
    return result;
}

std::vector<std::pair<std::string, std::string>> parseMerges(const json& model)
{
    const json* merges = member(model, "merges");
    if (!merges || !merges->is_array()) throw FormatError("model has no 'merges' array");
    std::vector<std::pair<std::string, std::string>> result;
    result.reserve(merges->size());
    for (std::size_t i = 0; i < merges->size(); ++i) {
        const json& merge = (*merges)[i];
        // Older files write "left right"; newer ones ["left", "right"]. Byte-level token strings
        // never contain a space (it is drawn as U+0120), so the string form is unambiguous.
        if (merge.is_string()) {
            const auto& text = merge.get_ref<const std::string&>();
            const std::size_t space = text.find(' ');
            if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
                throw FormatError("merge #" + std::to_string(i) + " '" + text + "' is not two tokens separated by a space");
            }
            result.emplace_back(text.substr(0, space), text.substr(space + 1));
        } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
            result.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
        } else {
            throw FormatError("merge #" + std::to_string(i) + " is neither \"a b\" nor [\"a\", \"b\"]: " + merge.dump());
        }
    }
    return result;
}

BpeOptions parseBpeOptions(const json& model, const std::unordered_map<std::string, std::int32_t>& vocab)
{
    if (const json* dropout = member(model, "dropout"); dropout && (!dropout->is_number() || dropout->get<double>() != 0.0)) {
        throw FormatError("BPE dropout " + dropout->dump() + " is not supported");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        const json* affix = member(model, key);
        if (affix && !(affix->is_string() && affix->get_ref<const std::string&>().empty())) {
            throw FormatError(std::string("BPE '") + key + "' " + affix->dump() + " is not supported");
        }
    }
    if (flag(model, "byte_fallback", false)) throw FormatError("BPE byte_fallback is not supported");

    BpeOptions options;
    options.fuseUnk = flag(model, "fuse_unk", false);
    options.ignoreMerges = flag(model, "ignore_merges", false);
    if (const json* unk = member(model, "unk_token")) {
        if (!unk->is_string()) throw FormatError("BPE 'unk_token' is not a string");
        const auto it = vocab.find(unk->get<std::string>());
        if (it == vocab.end()) throw FormatError("BPE unk_token '" + unk->get<std::string>() + "' is not in the vocabulary");
        options.unkId = it->second;
    }
    return options;
}

std::vector<AddedToken> parseAddedTokens(const json& root)
{
    std::vector<AddedToken> tokens;
    const json* list = member(root, "added_tokens");
    if (!list) return tokens;
    if (!list->is_array()) throw FormatError("'added_tokens' is not an array");
    for (const json& entry : *list) {
        if (!entry.is_object() || !member(entry, "content") || !(*member(entry, "content")).is_string() || !member(entry, "id")) {
            throw FormatError("added token " + entry.dump() + " lacks 'id' or 'content'");
        }
        AddedToken token;
        token.content = entry["content"].get<std::string>();
        token.id = tokenIdValue(entry["id"], "added token '" + token.content + "'");
        token.special = flag(entry, "special", false);
        token.normalized = flag(entry, "normalized", !token.special);
        token.lstrip = flag(entry, "lstrip", false);
        token.rstrip = flag(entry, "rstrip", false);
        token.singleWord = flag(entry, "single_word", false);
        tokens.push_back(std::move(token));
    }
    return tokens;
}

/// Returns true when the normalizer is NFC; null and empty sequences mean no normalization.
bool parseNormalizer(const json* normalizer)
{
    if (!normalizer) return false;
    const std::string type = typeName(*normalizer, "normalizer");
    if (type == "NFC") return true;
    if (type == "Sequence") {
        const json* list = member(*normalizer, "normalizers");
        if (!list || !list->is_array()) throw FormatError("normalizer Sequence has no 'normalizers' array");
        bool nfc = false;
        for (const json& item : *list) nfc = parseNormalizer(&item) || nfc;
        return nfc;
    }
    throw FormatError("unsupported normalizer type '" + type + "' (supported: NFC, or a Sequence of NFC)");
}

void collectPreTokenizerSteps(const json& section, std::vector<PreTokenizerStep>& steps)
{
    const std::string type = typeName(section, "pre_tokenizer");
    if (type == "Sequence") {
        const json* list = member(section, "pretokenizers");
        if (!list || !list->is_array()) throw FormatError("pre-tokenizer Sequence has no 'pretokenizers' array");
        for (const json& item : *list) collectPreTokenizerSteps(item, steps);
    } else if (type == "ByteLevel") {
        PreTokenizerStep step;
        step.kind = PreTokenizerStep::Kind::ByteLevel;
        // Hugging Face's defaults for absent fields.
        step.addPrefixSpace = flag(section, "add_prefix_space", true);
        if (flag(section, "use_regex", true)) {
            step.regex = std::make_shared<const tokenizer::PcreRegex>(std::string(tokenizer::kGpt2Pattern), false);
        }
        steps.push_back(std::move(step));
    } else if (type == "Split") {
        const json* behavior = member(section, "behavior");
        if (!behavior || !behavior->is_string() || behavior->get<std::string>() != "Isolated") {
            throw FormatError("unsupported Split behavior " + (behavior ? behavior->dump() : std::string("(none)")) +
                              " (supported: Isolated)");
        }
        if (flag(section, "invert", false)) throw FormatError("unsupported Split with invert=true");
        const json* pattern = member(section, "pattern");
        if (!pattern || !pattern->is_object()) throw FormatError("Split pre-tokenizer has no 'pattern'");
        PreTokenizerStep step;
        step.kind = PreTokenizerStep::Kind::Split;
        if (const json* regex = member(*pattern, "Regex"); regex && regex->is_string()) {
            step.regex = std::make_shared<const tokenizer::PcreRegex>(regex->get<std::string>(), false);
        } else if (const json* literal = member(*pattern, "String"); literal && literal->is_string()) {
            step.regex = std::make_shared<const tokenizer::PcreRegex>(literal->get<std::string>(), true);
        } else {
            throw FormatError("Split pattern " + pattern->dump() + " is neither {\"Regex\": ...} nor {\"String\": ...}");
        }
        steps.push_back(std::move(step));
    } else {
        throw FormatError("unsupported pre-tokenizer type '" + type +
                          "' (supported: ByteLevel, Split, and a Sequence of them)");
    }
}

PreTokenizer parsePreTokenizer(const json* section)
{
    if (!section) throw FormatError("no pre_tokenizer (a byte-level pre-tokenizer is required)");
    std::vector<PreTokenizerStep> steps;
    collectPreTokenizerSteps(*section, steps);
    // Splits after ByteLevel would see the byte-level alphabet rather than text.
    const auto byteLevels = std::count_if(steps.begin(), steps.end(), [](const PreTokenizerStep& s) {
        return s.kind == PreTokenizerStep::Kind::ByteLevel;
    });
    if (byteLevels != 1 || steps.back().kind != PreTokenizerStep::Kind::ByteLevel) {
        throw FormatError("unsupported pre-tokenizer pipeline: exactly one ByteLevel step is required, and it must come last");
    }
    return PreTokenizer(std::move(steps));
}

void checkDecoder(const json* decoder)
{
    // A missing decoder is accepted: the model is byte-level whatever the file says about decoding.
    if (!decoder) return;
    const std::string type = typeName(*decoder, "decoder");
    if (type != "ByteLevel") throw FormatError("unsupported decoder type '" + type + "' (supported: ByteLevel)");
}

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
    Impl(std::string source, BpeModel model, std::vector<AddedToken> addedTokens, bool nfc, PreTokenizer preTokenizer)
        : source(std::move(source)), model(std::move(model)), nfc(nfc), preTokenizer(std::move(preTokenizer))
    {
        std::int32_t maxId = -1;
        for (const auto& [token, id] : this->model.vocab()) maxId = std::max(maxId, id);
        for (const AddedToken& token : addedTokens) maxId = std::max(maxId, token.id);
        idText.resize(static_cast<std::size_t>(maxId + 1));
        idKnown.assign(static_cast<std::size_t>(maxId + 1), 0);
        for (const auto& [token, id] : this->model.vocab()) {
            idText[id] = byteLevelDecode(token);
            idKnown[id] = 1;
        }

        std::vector<AddedToken> raw;
        std::vector<AddedToken> normalized;
        for (AddedToken& token : addedTokens) {
            idText[token.id] = token.content;
            idKnown[token.id] = 1;
            addedIds.insert_or_assign(token.content, token.id);
            // Special tokens are always matched in the raw text, so a normalizer can never break them.
            if (token.special || !token.normalized) {
                raw.push_back(std::move(token));
            } else {
                if (nfc) token.content = tokenizer::toNfc(token.content);
                normalized.push_back(std::move(token));
            }
        }
        rawAdded = AddedTokenSplitter(std::move(raw));
        normalizedAdded = AddedTokenSplitter(std::move(normalized));
    }

    void encodeWords(std::string_view text, EncodeState& state, std::vector<std::int32_t>& ids) const
    {
        for (const std::string_view word : preTokenizer.run(text, state.pre)) {
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

    void encodeNormalizable(std::string_view text, EncodeState& state, std::vector<std::int32_t>& ids) const
    {
        std::string normalizedText;
        if (nfc && !tokenizer::isAscii(text)) {
            normalizedText = tokenizer::toNfc(text);
            text = normalizedText;
        }
        if (normalizedAdded.empty()) {
            encodeWords(text, state, ids);
            return;
        }
        for (const auto& segment : normalizedAdded.split(text)) {
            if (segment.id >= 0) {
                ids.push_back(segment.id);
            } else {
                encodeWords(text.substr(segment.begin, segment.end - segment.begin), state, ids);
            }
        }
    }

    std::string source;
    BpeModel model;
    bool nfc;
    PreTokenizer preTokenizer;
    AddedTokenSplitter rawAdded;
    AddedTokenSplitter normalizedAdded;
    std::vector<std::string> idText;    ///< decoded bytes of every id
    std::vector<std::uint8_t> idKnown;  ///< whether an id is assigned at all
    std::unordered_map<std::string, std::int32_t> addedIds;
};

// ---- Tokenizer ----------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromFile(const std::filesystem::path& path)
{
    const std::string text = readBinaryFile(path);
    return fromJsonText(text, path.string());
}

Tokenizer Tokenizer::fromJsonText(std::string_view jsonText, const std::string& source)
{
    const json root = parseJsonText(jsonText, source);
    try {
        if (!root.is_object()) throw FormatError("not a tokenizer.json object");
        const json* model = member(root, "model");
        if (!model || !model->is_object()) throw FormatError("no 'model' section");
        // Some older files omit the model type; vocab + merges identifies BPE.
        const json* modelType = member(*model, "type");
        if (modelType && (!modelType->is_string() || modelType->get<std::string>() != "BPE")) {
            throw FormatError("unsupported model type " + modelType->dump() + " (supported: BPE)");
        }
        auto vocab = parseVocab(*model);
        const auto merges = parseMerges(*model);
        const BpeOptions options = parseBpeOptions(*model, vocab);
        const bool nfc = parseNormalizer(member(root, "normalizer"));
        PreTokenizer preTokenizer = parsePreTokenizer(member(root, "pre_tokenizer"));
        checkDecoder(member(root, "decoder"));
        // The post-processor is not consulted: encode() adds no special tokens.
        BpeModel bpe(std::move(vocab), merges, options);
        return Tokenizer(std::make_unique<Impl>(source, std::move(bpe), parseAddedTokens(root), nfc, std::move(preTokenizer)));
    } catch (const json::exception& e) {
        throw FormatError("'" + source + "': invalid tokenizer JSON: " + e.what());
    } catch (Error& e) {
        e.addContext("'" + source + "'");
        throw;
    }
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const
{
    std::vector<std::int32_t> ids;
    if (text.empty()) return ids;
    if (const std::size_t bad = findInvalidUtf8(std::string(text)); bad != std::string::npos) {
        throw FormatError("text to encode is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
    }
    const Impl& impl = *m_impl;
    EncodeState state;
    ids.reserve(text.size() / 4 + 1);
    try {
        if (impl.rawAdded.empty()) {
            impl.encodeNormalizable(text, state, ids);
        } else {
            for (const auto& segment : impl.rawAdded.split(text)) {
                if (segment.id >= 0) {
                    ids.push_back(segment.id);
                } else {
                    impl.encodeNormalizable(text.substr(segment.begin, segment.end - segment.begin), state, ids);
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
    std::string bytes;
    for (const std::int32_t id : ids) {
        if (id < 0 || static_cast<std::size_t>(id) >= impl.idKnown.size() || !impl.idKnown[static_cast<std::size_t>(id)]) {
            throw InvalidArgument("'" + impl.source + "': cannot decode unknown token id " + std::to_string(id) +
                                  " (vocabulary size " + std::to_string(impl.idKnown.size()) + ")");
        }
        bytes += impl.idText[static_cast<std::size_t>(id)];
    }
    return tokenizer::toValidUtf8Lossy(bytes);
}

std::size_t Tokenizer::vocabSize() const { return m_impl->idKnown.size(); }

std::optional<std::int32_t> Tokenizer::tokenId(std::string_view token) const
{
    const std::string key(token);
    if (const auto it = m_impl->addedIds.find(key); it != m_impl->addedIds.end()) return it->second;
    if (const auto it = m_impl->model.vocab().find(key); it != m_impl->model.vocab().end()) return it->second;
    return std::nullopt;
}

}  // namespace mdbf
