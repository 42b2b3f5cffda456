#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace mdbf {

/// Reads a whole file as raw bytes (no trimming, no newline conversion) and checks that it is
/// valid UTF-8. Throws IoError if it cannot be read, FormatError naming the byte offset of the
/// first invalid sequence.
std::string readUtf8File(const std::filesystem::path& path);

/// Reads a whole file as raw bytes. Throws IoError if it cannot be opened or read.
std::string readBinaryFile(const std::filesystem::path& path);

/// Writes `bytes` to `path` through a temporary file in the same directory renamed into place, so
/// readers never see a partial file and an existing file survives a failure. Throws IoError naming
/// the file when the directory is missing or the file cannot be written or renamed.
void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes);

/// The 64-bit FNV-1a hash of `bytes`: stable across runs, builds and machines (which std::hash is
/// not required to be), for cache keys, file names and checksums. Not cryptographic.
std::uint64_t fnv1a(std::string_view bytes);

/// `value` as 16 lower-case hexadecimal digits.
std::string hex64(std::uint64_t value);

/// Returns the offset of the first invalid UTF-8 sequence in `text`, or std::string::npos.
std::size_t findInvalidUtf8(const std::string& text);

}  // namespace mdbf
