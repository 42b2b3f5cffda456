#include "tokenizer/pre_tokenizer.h"

namespace mdbf::tokenizer {

namespace {

using Behavior = PreTokenizerStep::Behavior;

/// A piece of text and whether it is a match of the split pattern.
struct Part {
    std::string_view text;
    bool match;
};

// Appends `part` to `out` as `behavior` asks; `previousMatch` is whether the part before it matched.
void place(const Part& part, Behavior behavior, bool& previousMatch, std::vector<std::string_view>& out,
           bool& pendingPrefix, std::string_view& prefix)
{
    const auto extendLast = [&out](std::string_view piece) {
        out.back() = std::string_view(out.back().data(), out.back().size() + piece.size());
    };
    switch (behavior) {
    case Behavior::Isolated:
        out.push_back(part.text);
        break;
    case Behavior::Removed:
        if (!part.match) out.push_back(part.text);
        break;
    case Behavior::MergedWithPrevious:
        if (part.match && !previousMatch && !out.empty()) {
            extendLast(part.text);
        } else {
            out.push_back(part.text);
        }
        break;
    case Behavior::Contiguous:
        if (part.match && previousMatch && !out.empty()) {
            extendLast(part.text);
        } else {
            out.push_back(part.text);
        }
        break;
    case Behavior::MergedWithNext:
        // A match waits to be glued to the front of whatever follows it.
        if (pendingPrefix) {
            if (part.match) {
                out.push_back(prefix);
                prefix = part.text;
            } else {
                out.push_back(std::string_view(prefix.data(), prefix.size() + part.text.size()));
                pendingPrefix = false;
            }
        } else if (part.match) {
            prefix = part.text;
            pendingPrefix = true;
        } else {
            out.push_back(part.text);
        }
        break;
    }
    previousMatch = part.match;
}

void splitPiece(std::string_view piece, const PcreRegex& regex, PcreRegex::MatchData& data, Behavior behavior,
                std::vector<std::string_view>& out)
{
    bool previousMatch = false;
    bool pendingPrefix = false;
    std::string_view prefix;
    std::size_t last = 0;
    // An empty match yields no piece.
    regex.forEachMatch(piece, data, [&](std::size_t begin, std::size_t end) {
        if (begin > last) place({piece.substr(last, begin - last), false}, behavior, previousMatch, out, pendingPrefix, prefix);
        place({piece.substr(begin, end - begin), true}, behavior, previousMatch, out, pendingPrefix, prefix);
        last = end;
    });
    if (last < piece.size()) place({piece.substr(last), false}, behavior, previousMatch, out, pendingPrefix, prefix);
    if (pendingPrefix) out.push_back(prefix);
}

// Hugging Face's Metaspace: spaces become the replacement, which is prepended by the scheme; with
// `split`, every replacement character starts a new piece.
void metaspace(std::string_view piece, bool atStart, const PreTokenizerStep& step, PreTokenizer::Scratch& scratch,
               std::vector<std::string_view>& out)
{
    std::string& text = scratch.storage.emplace_back();
    const bool prepend = !piece.starts_with(' ') && !piece.starts_with(step.replacement) &&
                         (step.prependScheme == PreTokenizerStep::PrependScheme::Always ||
                          (step.prependScheme == PreTokenizerStep::PrependScheme::First && atStart));
    if (prepend) text = step.replacement;
    for (const char c : piece) {
        if (c == ' ') {
            text += step.replacement;
        } else {
            text += c;
        }
    }
    if (!step.split) {
        out.push_back(text);
        return;
    }
    const std::string_view all = text;
    std::size_t begin = 0;
    for (std::size_t hit = all.find(step.replacement, 1); hit != std::string_view::npos;
         hit = all.find(step.replacement, hit + step.replacement.size())) {
        if (hit > begin) out.push_back(all.substr(begin, hit - begin));
        begin = hit;
    }
    if (begin < all.size()) out.push_back(all.substr(begin));
}

}  // namespace

bool PreTokenizer::byteLevel() const
{
    for (const PreTokenizerStep& step : m_steps) {
        if (step.kind == PreTokenizerStep::Kind::ByteLevel) return true;
    }
    return false;
}

const std::vector<std::string_view>& PreTokenizer::run(std::string_view text, bool atTextStart, Scratch& scratch) const
{
    scratch.pieces.clear();
    scratch.storage.clear();
    if (scratch.matchData.size() < m_steps.size()) scratch.matchData.resize(m_steps.size());
    if (!text.empty()) scratch.pieces.push_back(text);

    for (std::size_t s = 0; s < m_steps.size(); ++s) {
        const PreTokenizerStep& step = m_steps[s];
        auto& data = scratch.matchData[s];
        if (step.regex && !data) data.emplace(*step.regex);
        scratch.next.clear();
        for (std::string_view piece : scratch.pieces) {
            if (step.kind == PreTokenizerStep::Kind::Metaspace) {
                // Only the piece that begins the input counts as "first".
                metaspace(piece, atTextStart && piece.data() == text.data(), step, scratch, scratch.next);
                continue;
            }
            if (step.kind == PreTokenizerStep::Kind::ByteLevel && step.addPrefixSpace && !piece.starts_with(' ')) {
                std::string& prefixed = scratch.storage.emplace_back(" ");
                prefixed += piece;
                piece = prefixed;
            }
            if (step.regex) {
                splitPiece(piece, *step.regex, *data, step.kind == PreTokenizerStep::Kind::Split ? step.behavior : Behavior::Isolated,
                           scratch.next);
            } else {
                scratch.next.push_back(piece);
            }
        }
        scratch.pieces.swap(scratch.next);
    }
    return scratch.pieces;
}

}  // namespace mdbf::tokenizer
