#pragma once
// The inputs a hostile user controls, each fed through the same entry points the CLI and the
// studio use. A fuzz target and the regression replay both call runFuzzInput: an mdbf::Error is
// the expected answer to bad input; any other exception, a crash or a sanitizer report is a finding.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mdbf::fuzz {

/// One fuzz target: its name (also the folder of its seed and regression corpora) and a one-line
/// description of what the bytes are.
struct FuzzTarget {
    std::string_view name;
    std::string_view input;
};

/// The targets: safetensors, config, tokenizer, text, quant_config, package.
const std::vector<FuzzTarget>& fuzzTargets();

/// Runs `data` through target `name`. Returns true when the input was accepted, false when it was
/// refused with an mdbf::Error. Anything else escapes: std::bad_alloc, other exceptions, crashes.
/// Throws std::invalid_argument for an unknown target name. Not thread-safe (uses a scratch file
/// per process).
bool runFuzzInput(std::string_view name, std::span<const std::uint8_t> data);

}  // namespace mdbf::fuzz
