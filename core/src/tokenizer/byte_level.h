#pragma once
// The GPT-2 byte-level alphabet: every byte value is drawn as one printable Unicode character so
// that BPE can work on text while staying lossless on arbitrary bytes.

#include <cstdint>
#include <string>

namespace mdbf::tokenizer {

/// Returns the code point that stands for byte `b`: printable Latin-1 bytes (0x21-0x7E,
/// 0xA1-0xAC, 0xAE-0xFF) stand for themselves, the other 68 bytes map in increasing order to
/// U+0100, U+0101, ...
char32_t byteToCodePoint(std::uint8_t b);

/// UTF-8 encoding of byteToCodePoint(b); the reference stays valid for the program's lifetime.
const std::string& byteToUtf8(std::uint8_t b);

/// Inverse of byteToCodePoint: the byte a code point stands for, or -1 if it is not in the
/// alphabet.
int codePointToByte(char32_t cp);

}  // namespace mdbf::tokenizer
