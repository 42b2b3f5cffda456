#include "mdbf/base/error.h"

#include <cstdint>

namespace mdbf {

namespace {

constexpr std::string_view kEllipsis = "\xe2\x80\xa6";

/// Length of the well-formed UTF-8 sequence starting at `s[i]`, or 0 when the byte starts none.
std::size_t utf8Length(std::string_view s, std::size_t i)
{
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) len = 3;
    else if (c >= 0xf0 && c <= 0xf4) len = 4;
    if (len == 0 || i + len > s.size()) return 0;
    for (std::size_t j = 1; j < len; ++j) {
        if ((static_cast<unsigned char>(s[i + j]) & 0xc0) != 0x80) return 0;
    }
    return len;
}

/// Appends the escaped form of `s` to `out`, stopping before `limit` bytes of output (when
/// `limit` is npos, never). Returns the number of input bytes consumed.
std::size_t appendEscaped(std::string& out, std::string_view s, std::size_t limit)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::string piece;
        std::size_t used = 1;
        if (c == '\n') piece = "\\n";
        else if (c == '\r') piece = "\\r";
        else if (c == '\t') piece = "\\t";
        else if (c < 0x20 || c == 0x7f) piece = std::string("\\x") + kHex[c >> 4] + kHex[c & 0xf];
        else if (c < 0x80) piece = std::string(1, static_cast<char>(c));
        else if (const std::size_t len = utf8Length(s, i); len > 0) {
            piece = std::string(s.substr(i, len));
            used = len;
        } else {
            piece = std::string("\\x") + kHex[c >> 4] + kHex[c & 0xf];
        }
        if (limit != std::string_view::npos && out.size() + piece.size() > limit) break;
        out += piece;
        i += used;
    }
    return i;
}

}  // namespace

std::string messageText(std::string_view value, std::size_t maxBytes)
{
    std::string out;
    const std::size_t used = appendEscaped(out, value, maxBytes);
    if (used < value.size()) out += kEllipsis;
    return out;
}

std::string quotedText(std::string_view value, std::size_t maxBytes)
{
    // Built piecewise: GCC 12 reports a bogus -Wstringop-overflow for "'" + std::string + "'".
    std::string out = messageText(value, maxBytes);
    out.insert(out.begin(), '\'');
    out.push_back('\'');
    return out;
}

std::string Error::bounded(std::string_view message)
{
    std::string out;
    appendEscaped(out, message, std::string_view::npos);
    if (out.size() <= kMaxMessageBytes) return out;
    // Keep the head (the file and object named first) and the tail (the problem), each cut at a
    // character boundary of the already escaped text.
    const std::string_view escaped = out;
    std::size_t head = kMaxMessageBytes * 2 / 3;
    while (head > 0 && (static_cast<unsigned char>(escaped[head]) & 0xc0) == 0x80) --head;
    std::size_t tail = escaped.size() - (kMaxMessageBytes - head - kEllipsis.size());
    while (tail < escaped.size() && (static_cast<unsigned char>(escaped[tail]) & 0xc0) == 0x80) ++tail;
    return std::string(escaped.substr(0, head)) + std::string(kEllipsis) + std::string(escaped.substr(tail));
}

}  // namespace mdbf
