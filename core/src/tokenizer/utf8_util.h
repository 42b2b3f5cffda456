#pragma once
// Small UTF-8 and Unicode helpers for the tokenizer. Inputs named `valid` must already be valid
// UTF-8 (checked once per encode call with mdbf::findInvalidUtf8).

#include <cstddef>
#include <string>
#include <string_view>

namespace mdbf::tokenizer {

/// Appends the UTF-8 encoding of `cp` (at most U+10FFFF) to `out`.
void appendUtf8(std::string& out, char32_t cp);

/// Decodes the code point starting at byte `pos` of valid UTF-8 text and advances `pos` past it.
char32_t decodeUtf8(std::string_view valid, std::size_t& pos);

/// Byte offset where the code point ending just before `pos` starts (`pos` > 0, valid UTF-8).
std::size_t previousCodePointStart(std::string_view valid, std::size_t pos);

/// Returns `bytes` with every ill-formed UTF-8 sequence replaced by U+FFFD, one replacement per
/// maximal ill-formed subpart (the Unicode "best practice" that Rust's from_utf8_lossy follows).
std::string toValidUtf8Lossy(std::string_view bytes);

/// True for code points with the Unicode White_Space property (what `\s` means in UCP mode).
bool isWhiteSpace(char32_t cp);

/// True for Unicode word characters (`\w`): letters, marks, decimal digits, connector
/// punctuation and the two join controls.
bool isWordChar(char32_t cp);

/// True when every byte is ASCII (such text is invariant under Unicode normalization).
bool isAscii(std::string_view bytes);

/// Canonical composition (NFC) of valid UTF-8 text with utf8proc. Throws FormatError if
/// utf8proc rejects the text.
std::string toNfc(std::string_view valid);

/// Compatibility composition (NFKC) of valid UTF-8 text; throws as toNfc.
std::string toNfkc(std::string_view valid);

}  // namespace mdbf::tokenizer
