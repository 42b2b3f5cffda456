#include "mdbf/generate/text_stream.h"

#include <string_view>

namespace mdbf::generate {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

}  // namespace

std::string TextStream::push(std::int32_t id)
{
    m_ids.push_back(id);
    // Decoding the whole sequence, not the new id alone, keeps decoders that look at neighbours
    // (byte fallback, a leading space stripped at the start) exact.
    std::string full;
    try {
        full = m_tokenizer.decode(m_ids);
    } catch (...) {
        m_ids.pop_back();
        throw;
    }
    // Hold back a trailing U+FFFD: it may be a character whose remaining bytes are still to come.
    std::size_t stable = full.size();
    while (stable >= kReplacement.size() &&
           std::string_view(full).substr(stable - kReplacement.size(), kReplacement.size()) == kReplacement) {
        stable -= kReplacement.size();
    }
    if (stable <= m_emitted.size() || full.compare(0, m_emitted.size(), m_emitted) != 0) return {};
    std::string piece = full.substr(m_emitted.size(), stable - m_emitted.size());
    m_emitted.append(piece);
    return piece;
}

std::string TextStream::finish()
{
    const std::string full = m_tokenizer.decode(m_ids);
    if (full.size() <= m_emitted.size() || full.compare(0, m_emitted.size(), m_emitted) != 0) return {};
    std::string rest = full.substr(m_emitted.size());
    m_emitted = full;
    return rest;
}

}  // namespace mdbf::generate
