#pragma once

#include <filesystem>
#include <string>

namespace mdbf {

/// Reads a whole file as raw bytes (no trimming, no newline conversion) and checks that it is
/// valid UTF-8. Throws IoError if it cannot be read, FormatError naming the byte offset of the
/// first invalid sequence.
std::string readUtf8File(const std::filesystem::path& path);

/// Reads a whole file as raw bytes. Throws IoError if it cannot be opened or read.
std::string readBinaryFile(const std::filesystem::path& path);

/// Returns the offset of the first invalid UTF-8 sequence in `text`, or std::string::npos.
std::size_t findInvalidUtf8(const std::string& text);

}  // namespace mdbf
