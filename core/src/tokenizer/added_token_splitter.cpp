#include "tokenizer/added_token_splitter.h"

#include <algorithm>

#include "tokenizer/utf8_util.h"

namespace mdbf::tokenizer {

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens)
{
    for (auto& token : tokens) {
        if (!token.content.empty()) m_tokens.push_back(std::move(token));
    }
    for (std::uint32_t i = 0; i < m_tokens.size(); ++i) {
        m_byFirstByte[static_cast<unsigned char>(m_tokens[i].content[0])].push_back(i);
    }
    for (auto& list : m_byFirstByte) {
        std::stable_sort(list.begin(), list.end(), [this](std::uint32_t a, std::uint32_t b) {
            return m_tokens[a].content.size() > m_tokens[b].content.size();
        });
    }
}

std::vector<AddedTokenSplitter::Segment> AddedTokenSplitter::split(std::string_view text) const
{
    std::vector<Segment> segments;
    std::size_t emitted = 0;  // end of the last segment pushed
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto& candidates = m_byFirstByte[static_cast<unsigned char>(text[pos])];
        const AddedToken* found = nullptr;
        for (const std::uint32_t index : candidates) {
            if (text.substr(pos).starts_with(m_tokens[index].content)) {
                found = &m_tokens[index];
                break;
            }
        }
        if (!found) {
            ++pos;
            continue;
        }
        std::size_t begin = pos;
        std::size_t end = pos + found->content.size();
        // The leftmost-longest scan consumes a match even when single_word then rejects it.
        pos = end;
        if (found->singleWord) {
            std::size_t before = begin > 0 ? previousCodePointStart(text, begin) : 0;
            std::size_t after = end;
            const bool wordBefore = begin > 0 && isWordChar(decodeUtf8(text, before));
            const bool wordAfter = end < text.size() && isWordChar(decodeUtf8(text, after));
            if (wordBefore || wordAfter) continue;
        }
        if (found->lstrip) {
            while (begin > emitted) {
                std::size_t start = previousCodePointStart(text, begin);
                std::size_t probe = start;
                if (!isWhiteSpace(decodeUtf8(text, probe))) break;
                begin = start;
            }
        }
        if (found->rstrip) {
            while (end < text.size()) {
                std::size_t probe = end;
                if (!isWhiteSpace(decodeUtf8(text, probe))) break;
                end = probe;
            }
            pos = end;
        }
        if (begin > emitted) segments.push_back({emitted, begin, -1});
        segments.push_back({begin, end, found->id});
        emitted = end;
    }
    if (emitted < text.size()) segments.push_back({emitted, text.size(), -1});
    return segments;
}

}  // namespace mdbf::tokenizer
