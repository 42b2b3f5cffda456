#pragma once
// The one way the project turns JSON text into a value: every JSON file it reads (model config,
// tokenizer, index, quantization config, study records, the JSON stored in a package) goes through
// here, so every one has the same nesting limit and the same kind of message.

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mdbf {

/// Deepest nesting of arrays and objects accepted in any JSON the project reads. The deepest real
/// file (a tokenizer with a sequence of pre-tokenizers) nests under 10 levels; the limit keeps a
/// hostile file from exhausting the stack in code that walks the value recursively.
inline constexpr int kMaxJsonDepth = 64;

/// Parses `text` as one JSON value. `source` names where the text came from (a file path, or a
/// dataset inside a package) and leads every message; `what` names the part of it that is JSON
/// when that is not the whole file (a safetensors "header"). Throws FormatError
/// "'<source>': [<what> is ]not valid JSON (…)" for malformed text or a number out of range, and
/// "'<source>': <what or JSON> is nested more than <maxDepth> levels deep" for deeper nesting.
nlohmann::json parseJsonText(std::string_view text, const std::string& source, std::string_view what = {},
                             int maxDepth = kMaxJsonDepth);

/// Reads `path` (readBinaryFile) and parses it with parseJsonText. Throws IoError when the file
/// cannot be read and FormatError as parseJsonText does.
nlohmann::json readJsonFile(const std::filesystem::path& path);

}  // namespace mdbf
