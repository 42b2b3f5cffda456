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

/// Removes the hidden temporaries of `target` (temporarySibling(target, anything)) that a killed
/// writer left; returns how many were removed. Only for a caller that knows no other live process
/// is writing `target` (e.g. one holding a FileLock of its run). Never throws.
int removeTemporarySiblings(const std::filesystem::path& target);

/// An exclusive advisory lock (flock) on a file, created if needed, held until destruction; the
/// operating system releases it when the process ends in any way, so a killed run never leaves it
/// held. Used to keep two runs from sharing one work folder.
class FileLock {
public:
    /// Takes the lock on `path` without waiting. Throws IoError naming the file when it cannot be
    /// created, or when another process holds the lock (`holder` says who, e.g. "another run").
    FileLock(const std::filesystem::path& path, const std::string& holder);
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int m_fd = -1;
};

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
