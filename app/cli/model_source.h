#pragma once
// The `--model DIR | --package FILE.h5` pair that the running subcommands share: registration and
// loading of the model with its tokenizer.

#include <filesystem>
#include <string>

#include "cli_common.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::cli {

/// Where a runnable model comes from: exactly one of the two is set after parsing.
struct ModelSource {
    std::string model;    ///< Hugging Face model directory
    std::string package;  ///< HDF5 deployment package

    /// Adds the required `--model` / `--package` choice to `sub`.
    void addOptions(CLI::App& sub);
};

/// A model ready to run and the tokenizer that goes with it.
struct LoadedModel {
    model::Transformer transformer;
    Tokenizer tokenizer;
    std::string modelSource;      ///< the folder or package, for messages
    std::string tokenizerSource;  ///< the tokenizer file (or package dataset), for messages
};

/// Loads the model (a package carries its own tokenizer and runs without the checkpoint). Throws
/// the core's IoError / FormatError naming the file, or Cancelled.
LoadedModel loadModel(const ModelSource& source, const RunContext& ctx);

}  // namespace mdbf::cli
