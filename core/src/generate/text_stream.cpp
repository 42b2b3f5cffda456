#include "mdbf/generate/text_stream.h"

#include <span>
#include <string_view>

namespace mdbf::generate {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool endsWithReplacement(std::string_view text)
{
    return text.size() >= kReplacement.size() && text.substr(text.size() - kReplacement.size()) == kReplacement;
}

}  // namespace

std::string TextStream::push(std::int32_t id)
{
    m_ids.push_back(id);
    // Only the ids from m_prefix on are decoded: the tokens before m_read give the new ones their
    // context (a leading space a decoder strips at the start of a text, bytes of a character begun
    // earlier), so the difference between the two decodings is exactly the new text, and each step
    // costs the same however long the generation grows.
    const std::span<const std::int32_t> all(m_ids);
    std::string text;
    std::string before;
    try {
        text = m_tokenizer.decode(all.subspan(m_prefix));
        before = m_tokenizer.decode(all.subspan(m_prefix, m_read - m_prefix));
    } catch (...) {
        m_ids.pop_back();
        throw;
    }
    // A trailing U+FFFD may be a character whose remaining bytes are still to come: wait for them.
    if (endsWithReplacement(text) || text.size() <= before.size() || text.compare(0, before.size(), before) != 0) {
        return {};
    }
    std::string piece = text.substr(before.size());
    m_prefix = m_read;
    m_read = m_ids.size();
    m_emitted.append(piece);
    return piece;
}

std::string TextStream::finish()
{
    const std::string full = m_tokenizer.decode(m_ids);
    m_prefix = m_read = m_ids.size();
    if (full.size() <= m_emitted.size() || full.compare(0, m_emitted.size(), m_emitted) != 0) return {};
    std::string rest = full.substr(m_emitted.size());
    m_emitted = full;
    return rest;
}

}  // namespace mdbf::generate
