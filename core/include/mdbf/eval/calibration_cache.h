#pragma once
// A disk cache of calibration statistics (docs/calibration-cache.md). One file per request, named
// by a hash of its key; the key names the model (config.json and tokenizer.json by content, the
// weight files by name, size and modification time), the text (by size and content hash), the
// window length, whether H was collected and which layers were recorded. The whole key is stored in
// the file and compared on reading, and the file ends with a checksum, so a stale, foreign,
// truncated or otherwise corrupt file is ignored (and replaced by the next store) rather than used.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "mdbf/eval/calibration.h"

namespace mdbf::eval {

/// A directory of calibration cache files. Stateless apart from the directory; thread-safe.
class CalibrationCache {
public:
    /// $XDG_CACHE_HOME/mdbf when XDG_CACHE_HOME is an absolute path, otherwise $HOME/.cache/mdbf;
    /// empty when neither is set.
    static std::filesystem::path defaultDirectory();

    /// A cache in `directory` (created on the first store).
    explicit CalibrationCache(std::filesystem::path directory);

    const std::filesystem::path& directory() const { return m_directory; }

    /// The key of a request: the model in `modelDir`, the bytes of the calibration text, and the
    /// options. Throws IoError when config.json or tokenizer.json cannot be read.
    static std::string key(const std::filesystem::path& modelDir, std::string_view text,
                           const CalibrationOptions& options);

    /// The file that holds (or would hold) the statistics of `key`.
    std::filesystem::path fileFor(const std::string& key) const;

    /// The statistics stored under `key`, or nothing when there is no such file, the file belongs
    /// to another key, or it cannot be read or is corrupt (then `note`, when given, says which file
    /// was ignored and why). The result has fromCache = true and cacheFile set. Never throws for
    /// file problems.
    std::optional<CalibrationStats> load(const std::string& key, std::string* note = nullptr) const;

    /// Writes `stats` under `key` through a temporary file renamed into place (creating the
    /// directory if needed). Throws IoError naming the file when it cannot be written.
    void store(const std::string& key, const CalibrationStats& stats) const;

private:
    std::filesystem::path m_directory;
};

}  // namespace mdbf::eval
