#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8_util.h"

namespace mdbf::tokenizer {

namespace {

// The alphabet has 256 code points, all below U+0144, so a flat inverse table suffices.
constexpr char32_t kAlphabetEnd = 0x144;

struct ByteLevelTables {
    std::array<char32_t, 256> codePoints{};
    std::array<std::string, 256> utf8;
    std::array<int, kAlphabetEnd> bytes{};

    ByteLevelTables()
    {
        bytes.fill(-1);
        char32_t next = 0x100;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
            const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
            codePoints[b] = cp;
            appendUtf8(utf8[b], cp);
            bytes[cp] = b;
        }
    }
};

const ByteLevelTables& tables()
{
    static const ByteLevelTables instance;
    return instance;
}

}  // namespace

char32_t byteToCodePoint(std::uint8_t b) { return tables().codePoints[b]; }

const std::string& byteToUtf8(std::uint8_t b) { return tables().utf8[b]; }

int codePointToByte(char32_t cp) { return cp < kAlphabetEnd ? tables().bytes[cp] : -1; }

}  // namespace mdbf::tokenizer
