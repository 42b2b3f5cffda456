#include "tokenizer/pre_tokenizer.h"

namespace mdbf::tokenizer {

namespace {

std::size_t codePointLength(unsigned char lead)
{
    if (lead < 0x80) return 1;
    if (lead >= 0xf0) return 4;
    if (lead >= 0xe0) return 3;
    return 2;
}

// Behaviour "Isolated": every match becomes a piece, and so does every gap between matches.
void splitIsolated(std::string_view piece, const PcreRegex& regex, PcreRegex::MatchData& data,
                   std::vector<std::string_view>& out)
{
    std::size_t pos = 0;
    std::size_t last = 0;
    while (pos < piece.size()) {
        std::size_t begin = 0;
        std::size_t end = 0;
        if (!regex.find(piece, pos, data, begin, end)) break;
        if (begin == end) {
            // An empty match yields no piece; step over one code point so the scan always ends.
            if (begin >= piece.size()) break;
            pos = begin + codePointLength(static_cast<unsigned char>(piece[begin]));
            continue;
        }
        if (begin > last) out.push_back(piece.substr(last, begin - last));
        out.push_back(piece.substr(begin, end - begin));
        last = pos = end;
    }
    if (last < piece.size()) out.push_back(piece.substr(last));
}

}  // namespace

const std::vector<std::string_view>& PreTokenizer::run(std::string_view text, Scratch& scratch) const
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
            if (step.kind == PreTokenizerStep::Kind::ByteLevel && step.addPrefixSpace && !piece.starts_with(' ')) {
                std::string& prefixed = scratch.storage.emplace_back(" ");
                prefixed += piece;
                piece = prefixed;
            }
            if (step.regex) {
                splitIsolated(piece, *step.regex, *data, scratch.next);
            } else {
                scratch.next.push_back(piece);
            }
        }
        scratch.pieces.swap(scratch.next);
    }
    return scratch.pieces;
}

}  // namespace mdbf::tokenizer
