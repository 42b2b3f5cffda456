#pragma once
// The rule that keeps a run from destroying what it reads: an output never names an input, whether
// by the same path, through a symbolic link or as another hard link of the same file.

#include <filesystem>
#include <string>
#include <vector>

namespace mdbf {

/// The hidden name an output is written under before it is renamed to `target`:
/// "<folder of target>/.<file name>.tmp-<suffix>" (a killed run can leave only such a file behind).
std::filesystem::path temporarySibling(const std::filesystem::path& target, const std::string& suffix);

/// What a path given as output will become: one file, or a directory the run fills with files.
enum class OutputKind { File, Directory };

/// Checks an output path against the run's inputs before anything is written. `inputs` holds
/// files and directories (a model folder stands for every file directly inside it). Throws
/// InvalidArgument naming `option` when `output` is empty; when it is (or, for a Directory, holds
/// or is) an input file or input directory, compared by identity of the file system object so
/// that symbolic links and hard links count as the same file; or for a Directory output, when it
/// is the folder of an input file. Paths that do not exist yet cannot be inputs and pass.
void requireDistinctOutput(const std::filesystem::path& output, OutputKind kind,
                           const std::vector<std::filesystem::path>& inputs, const std::string& option);

}  // namespace mdbf
