#include "tokenizer/utf8_util.h"

#include <cstdint>
#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "mdbf/base/error.h"

namespace mdbf::tokenizer {

void appendUtf8(std::string& out, char32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

char32_t decodeUtf8(std::string_view valid, std::size_t& pos)
{
    const auto lead = static_cast<unsigned char>(valid[pos++]);
    if (lead < 0x80) return lead;
    int extra;
    char32_t cp;
    if (lead >= 0xf0) {
        extra = 3;
        cp = lead & 0x07;
    } else if (lead >= 0xe0) {
        extra = 2;
        cp = lead & 0x0f;
    } else {
        extra = 1;
        cp = lead & 0x1f;
    }
    for (int k = 0; k < extra && pos < valid.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(valid[pos++]) & 0x3f);
    }
    return cp;
}

std::size_t previousCodePointStart(std::string_view valid, std::size_t pos)
{
    do {
        --pos;
    } while (pos > 0 && (static_cast<unsigned char>(valid[pos]) & 0xc0) == 0x80);
    return pos;
}

std::string toValidUtf8Lossy(std::string_view bytes)
{
    static constexpr std::string_view kReplacement = "\xef\xbf\xbd";
    std::string out;
    out.reserve(bytes.size());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        // The admissible range of the first continuation byte depends on the lead byte; this is
        // what excludes overlong forms, surrogates and code points past U+10FFFF.
        std::size_t need = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c == 0xe0) {
            need = 2;
            lo = 0xa0;
        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
            need = 2;
        } else if (c == 0xed) {
            need = 2;
            hi = 0x9f;
        } else if (c == 0xf0) {
            need = 3;
            lo = 0x90;
        } else if (c >= 0xf1 && c <= 0xf3) {
            need = 3;
        } else if (c == 0xf4) {
            need = 3;
            hi = 0x8f;
        } else {
            out.append(kReplacement);
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        std::size_t got = 0;
        while (got < need && j < n) {
            const auto d = static_cast<unsigned char>(bytes[j]);
            const bool ok = got == 0 ? (d >= lo && d <= hi) : (d >= 0x80 && d <= 0xbf);
            if (!ok) break;
            ++j;
            ++got;
        }
        if (got == need) {
            out.append(bytes.substr(i, j - i));
        } else {
            out.append(kReplacement);
        }
        i = j;
    }
    return out;
}

bool isWhiteSpace(char32_t cp)
{
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d);
    switch (cp) {
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200a;
    }
}

bool isWordChar(char32_t cp)
{
    if (cp == 0x200c || cp == 0x200d) return true;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

bool isAscii(std::string_view bytes)
{
    for (const char c : bytes) {
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    }
    return true;
}

namespace {

std::string utf8procNormalize(std::string_view valid, int options, const char* form)
{
    if (valid.empty()) return {};
    utf8proc_uint8_t* mapped = nullptr;
    // An explicit length (no UTF8PROC_NULLTERM) keeps embedded NUL characters.
    const utf8proc_ssize_t length =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()), static_cast<utf8proc_ssize_t>(valid.size()),
                     &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
    if (length < 0) {
        throw FormatError(std::string(form) + " normalization failed: " + utf8proc_errmsg(length));
    }
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
    return std::string(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length));
}

}  // namespace

std::string toNfc(std::string_view valid) { return utf8procNormalize(valid, UTF8PROC_COMPOSE, "NFC"); }

std::string toNfkc(std::string_view valid)
{
    return utf8procNormalize(valid, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, "NFKC");
}

}  // namespace mdbf::tokenizer
