#include "tokenizer/tokenizer_json.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "tokenizer/pcre_regex.h"

namespace mdbf::tokenizer {

using nlohmann::json;

namespace {

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
        // Older files write "left right"; newer ones ["left", "right"]. Token strings of the files
        // that use the string form never contain a space (byte-level ones draw it as U+0120,
        // SentencePiece-style ones as U+2581), so it is unambiguous.
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
    BpeOptions options;
    options.byteFallback = flag(model, "byte_fallback", false);
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

/// The pattern of a Replace normalizer or decoder: {"String": ...} or {"Regex": ...}.
NormalizerStep replaceStep(const json& section, const std::string& what)
{
    NormalizerStep step;
    step.kind = NormalizerStep::Kind::Replace;
    const json* pattern = member(section, "pattern");
    const json* content = member(section, "content");
    if (!pattern || !pattern->is_object() || !content || !content->is_string()) {
        throw FormatError(what + " Replace lacks a 'pattern' object or a 'content' string");
    }
    step.content = content->get<std::string>();
    if (const json* literal = member(*pattern, "String"); literal && literal->is_string() && !literal->get_ref<const std::string&>().empty()) {
        step.literal = literal->get<std::string>();
    } else if (const json* regex = member(*pattern, "Regex"); regex && regex->is_string()) {
        step.regex = std::make_shared<const PcreRegex>(regex->get<std::string>(), false);
    } else {
        throw FormatError(what + " Replace pattern " + pattern->dump() + " is neither a non-empty {\"String\"} nor {\"Regex\"}");
    }
    return step;
}

/// How a pipeline section is named: in type errors (`key`), in other messages (`label`), the
/// member array of its Sequence (`listKey`), and the types it supports (`supported`).
struct PipelineNames {
    const char* key;
    const char* label;
    const char* listKey;
    const char* supported;
};

/// Appends the steps `section` describes to `steps`: the members of a Sequence in order (nested
/// Sequences flattened), any other type through addStep(section, type, steps), which returns false
/// for a type it does not know.
template <typename Step, typename AddStep>
void collectSteps(const json& section, const PipelineNames& names, std::vector<Step>& steps, const AddStep& addStep)
{
    const std::string type = typeName(section, names.key);
    if (type != "Sequence") {
        if (!addStep(section, type, steps)) {
            throw FormatError("unsupported " + std::string(names.label) + " type '" + type + "' (supported: " +
                              names.supported + ")");
        }
        return;
    }
    const json* list = member(section, names.listKey);
    if (!list || !list->is_array()) {
        throw FormatError(std::string(names.label) + " Sequence has no '" + names.listKey + "' array");
    }
    for (const json& item : *list) collectSteps(item, names, steps, addStep);
}

/// The steps of an optional pipeline section (none when it is absent).
template <typename Step, typename AddStep>
std::vector<Step> pipelineSteps(const json* section, const PipelineNames& names, const AddStep& addStep)
{
    std::vector<Step> steps;
    if (section) collectSteps(*section, names, steps, addStep);
    return steps;
}

bool addNormalizerStep(const json& section, const std::string& type, std::vector<NormalizerStep>& steps)
{
    if (type == "NFC") {
        steps.push_back({NormalizerStep::Kind::Nfc, {}, {}, {}});
    } else if (type == "NFKC") {
        steps.push_back({NormalizerStep::Kind::Nfkc, {}, {}, {}});
    } else if (type == "Prepend") {
        const json* prepend = member(section, "prepend");
        if (!prepend || !prepend->is_string()) throw FormatError("normalizer Prepend has no 'prepend' string");
        steps.push_back({NormalizerStep::Kind::Prepend, prepend->get<std::string>(), {}, {}});
    } else if (type == "Replace") {
        steps.push_back(replaceStep(section, "normalizer"));
    } else {
        return false;
    }
    return true;
}

Normalizer parseNormalizer(const json* section)
{
    return Normalizer(pipelineSteps<NormalizerStep>(
        section, {"normalizer", "normalizer", "normalizers", "NFC, NFKC, Prepend, Replace, and a Sequence of them"},
        addNormalizerStep));
}

PreTokenizerStep::Behavior splitBehavior(const json& section)
{
    using Behavior = PreTokenizerStep::Behavior;
    const json* behavior = member(section, "behavior");
    const std::string name = behavior && behavior->is_string() ? behavior->get<std::string>() : "";
    if (name == "Isolated") return Behavior::Isolated;
    if (name == "Removed") return Behavior::Removed;
    if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
    if (name == "MergedWithNext") return Behavior::MergedWithNext;
    if (name == "Contiguous") return Behavior::Contiguous;
    throw FormatError("unsupported Split behavior " + (behavior ? behavior->dump() : std::string("(none)")) +
                      " (supported: Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous)");
}

/// Metaspace's replacement character and prepend scheme; older files say `add_prefix_space`.
PreTokenizerStep metaspaceStep(const json& section)
{
    PreTokenizerStep step;
    step.kind = PreTokenizerStep::Kind::Metaspace;
    const json* replacement = member(section, "replacement");
    if (!replacement || !replacement->is_string() || replacement->get_ref<const std::string&>().empty()) {
        throw FormatError("Metaspace has no 'replacement' character");
    }
    step.replacement = replacement->get<std::string>();
    step.split = flag(section, "split", true);
    if (const json* scheme = member(section, "prepend_scheme")) {
        const std::string name = scheme->is_string() ? scheme->get<std::string>() : "";
        if (name == "always") {
            step.prependScheme = PreTokenizerStep::PrependScheme::Always;
        } else if (name == "first") {
            step.prependScheme = PreTokenizerStep::PrependScheme::First;
        } else if (name == "never") {
            step.prependScheme = PreTokenizerStep::PrependScheme::Never;
        } else {
            throw FormatError("unsupported Metaspace prepend_scheme " + scheme->dump() + " (supported: always, first, never)");
        }
    } else {
        step.prependScheme = flag(section, "add_prefix_space", true) ? PreTokenizerStep::PrependScheme::Always
                                                                     : PreTokenizerStep::PrependScheme::Never;
    }
    return step;
}

bool addPreTokenizerStep(const json& section, const std::string& type, std::vector<PreTokenizerStep>& steps)
{
    if (type == "ByteLevel") {
        PreTokenizerStep step;
        step.kind = PreTokenizerStep::Kind::ByteLevel;
        // Hugging Face's defaults for absent fields.
        step.addPrefixSpace = flag(section, "add_prefix_space", true);
        if (flag(section, "use_regex", true)) {
            step.regex = std::make_shared<const PcreRegex>(std::string(kGpt2Pattern), false);
        }
        steps.push_back(std::move(step));
    } else if (type == "Split") {
        if (flag(section, "invert", false)) throw FormatError("unsupported Split with invert=true");
        const json* pattern = member(section, "pattern");
        if (!pattern || !pattern->is_object()) throw FormatError("Split pre-tokenizer has no 'pattern'");
        PreTokenizerStep step;
        step.kind = PreTokenizerStep::Kind::Split;
        step.behavior = splitBehavior(section);
        if (const json* regex = member(*pattern, "Regex"); regex && regex->is_string()) {
            step.regex = std::make_shared<const PcreRegex>(regex->get<std::string>(), false);
        } else if (const json* literal = member(*pattern, "String"); literal && literal->is_string()) {
            step.regex = std::make_shared<const PcreRegex>(literal->get<std::string>(), true);
        } else {
            throw FormatError("Split pattern " + pattern->dump() + " is neither {\"Regex\": ...} nor {\"String\": ...}");
        }
        steps.push_back(std::move(step));
    } else if (type == "Metaspace") {
        steps.push_back(metaspaceStep(section));
    } else {
        return false;
    }
    return true;
}

PreTokenizer parsePreTokenizer(const json* section)
{
    std::vector<PreTokenizerStep> steps = pipelineSteps<PreTokenizerStep>(
        section, {"pre_tokenizer", "pre-tokenizer", "pretokenizers", "ByteLevel, Split, Metaspace, and a Sequence of them"},
        addPreTokenizerStep);
    // Splits after ByteLevel would see the byte-level alphabet rather than text.
    const auto byteLevels = std::count_if(steps.begin(), steps.end(), [](const PreTokenizerStep& s) {
        return s.kind == PreTokenizerStep::Kind::ByteLevel;
    });
    if (byteLevels > 1 || (byteLevels == 1 && steps.back().kind != PreTokenizerStep::Kind::ByteLevel)) {
        throw FormatError("unsupported pre-tokenizer pipeline: at most one ByteLevel step, and it must come last");
    }
    return PreTokenizer(std::move(steps));
}

bool addDecoderStep(const json& section, const std::string& type, std::vector<DecoderStep>& steps)
{
    if (type == "Replace") {
        const NormalizerStep replace = replaceStep(section, "decoder");
        if (replace.regex) throw FormatError("unsupported decoder Replace with a Regex pattern (supported: String)");
        steps.push_back({DecoderStep::Kind::Replace, replace.literal, replace.content, 0, 0, true});
    } else if (type == "ByteFallback") {
        steps.push_back({DecoderStep::Kind::ByteFallback, {}, {}, 0, 0, true});
    } else if (type == "Fuse") {
        steps.push_back({DecoderStep::Kind::Fuse, {}, {}, 0, 0, true});
    } else if (type == "Strip") {
        const json* content = member(section, "content");
        const json* start = member(section, "start");
        const json* stop = member(section, "stop");
        if (!content || !content->is_string() || content->get_ref<const std::string&>().empty() || !start ||
            !start->is_number_unsigned() || !stop || !stop->is_number_unsigned()) {
            throw FormatError("decoder Strip needs a 'content' character and counts 'start' and 'stop'");
        }
        steps.push_back({DecoderStep::Kind::Strip, content->get<std::string>(), {},
                         static_cast<int>(std::min<std::uint64_t>(start->get<std::uint64_t>(), 1u << 20)),
                         static_cast<int>(std::min<std::uint64_t>(stop->get<std::uint64_t>(), 1u << 20)), true});
    } else if (type == "Metaspace") {
        const PreTokenizerStep meta = metaspaceStep(section);
        steps.push_back({DecoderStep::Kind::Metaspace, meta.replacement, {}, 0, 0,
                         meta.prependScheme != PreTokenizerStep::PrependScheme::Never});
    } else {
        return false;
    }
    return true;
}

/// Byte-level files decode through the GPT-2 alphabet whatever the file says (a missing decoder
/// is accepted); the others need the chain their decoder section describes.
std::optional<TokenDecoder> parseDecoder(const json* section, bool byteLevel)
{
    if (byteLevel) {
        if (section) {
            const std::string type = typeName(*section, "decoder");
            if (type != "ByteLevel") throw FormatError("unsupported decoder type '" + type + "' for a byte-level pre-tokenizer (supported: ByteLevel)");
        }
        return std::nullopt;
    }
    return TokenDecoder(pipelineSteps<DecoderStep>(section,
                                                   {"decoder", "decoder", "decoders",
                                                    "ByteLevel for byte-level files; Replace, ByteFallback, Fuse, "
                                                    "Strip, Metaspace and a Sequence of them otherwise"},
                                                   addDecoderStep));
}

}  // namespace

TokenizerParts parseTokenizerJson(const json& root)
{
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
        BpeOptions options = parseBpeOptions(*model, vocab);
        Normalizer normalizer = parseNormalizer(member(root, "normalizer"));
        PreTokenizer preTokenizer = parsePreTokenizer(member(root, "pre_tokenizer"));
        options.byteLevel = preTokenizer.byteLevel();
        if (options.byteLevel && options.byteFallback) {
            throw FormatError("unsupported BPE byte_fallback together with a ByteLevel pre-tokenizer");
        }
        std::optional<TokenDecoder> decoder = parseDecoder(member(root, "decoder"), options.byteLevel);
        // The post-processor is not consulted: encode() adds no special tokens.
        return TokenizerParts{BpeModel(std::move(vocab), merges, options), parseAddedTokens(root), std::move(normalizer),
                              std::move(preTokenizer), std::move(decoder)};
    } catch (const json::exception& e) {
        throw FormatError(std::string("invalid tokenizer JSON: ") + e.what());
    }
}

}  // namespace mdbf::tokenizer
