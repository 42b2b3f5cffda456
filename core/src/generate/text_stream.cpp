#include "mdbf/generate/text_stream.h"

#include <algorithm>
#include <string_view>

namespace mdbf::generate {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
// Context ids kept from before the generated ones: enough for every decoder that looks back.
constexpr std::size_t kContextIds = 4;

bool endsWithReplacement(std::string_view text)
{
    return text.size() >= kReplacement.size() && text.substr(text.size() - kReplacement.size()) == kReplacement;
}

}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, std::span<const std::int32_t> context) : m_tokenizer(tokenizer)
{
    const std::size_t kept = std::min(context.size(), kContextIds);
    m_ids.assign(context.end() - static_cast<std::ptrdiff_t>(kept), context.end());
    m_read = m_ids.size();
}

std::string TextStream::push(std::int32_t id)
{
    m_ids.push_back(id);
    // Only the ids from m_prefix on are decoded: the ones before m_read give the new ones their
    // context, so the difference between the two decodings is exactly the new text, and each step
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
    m_text += piece;
    return piece;
}

std::string TextStream::finish()
{
    const std::span<const std::int32_t> all(m_ids);
    const std::string text = m_tokenizer.decode(all.subspan(m_prefix));
    const std::string before = m_tokenizer.decode(all.subspan(m_prefix, m_read - m_prefix));
    m_prefix = m_read = m_ids.size();
    if (text.size() <= before.size() || text.compare(0, before.size(), before) != 0) return {};
    std::string rest = text.substr(before.size());
    m_text += rest;
    return rest;
}

}  // namespace mdbf::generate
