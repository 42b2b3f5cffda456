#pragma once
// An on-disk cache of layer decompositions (LayerSvd), so that reopening a checkpoint does not
// redo the seconds-to-minutes SVD of every 7B-class layer. One file per entry, named by a hash of
// the key and holding the full key, so a hash collision or a changed input is a miss, never a
// wrong answer. Folder: --cache-dir, else $MDBF_CACHE_DIR, else $XDG_CACHE_HOME/mdbf/decompositions,
// else ~/.cache/mdbf/decompositions. An entry takes 4·r·(n + m + 1) bytes plus ~100 (247 MB for
// a 4096×11008 layer); nothing is evicted automatically: delete the folder to reclaim the space.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "mdbf/factor/layer_svd.h"

namespace mdbf::factor {

/// What a decomposition depends on. Two keys are equal when every field is.
struct DecompositionKey {
    std::string file;              ///< absolute path of the file holding the tensor
    std::uint64_t fileSize = 0;    ///< its size in bytes
    std::int64_t fileMtimeNs = 0;  ///< its modification time (ns since the file clock's epoch)
    std::string tensor;            ///< tensor name in the checkpoint
    std::string objective;         ///< "plain", "diag", "gram" (what the decomposed matrix is)
    std::string calibration;       ///< identity of the calibration statistics; empty for plain

    /// The key of `tensor` stored in `file`: reads its size and modification time. Throws IoError
    /// naming the file when it cannot be inspected.
    static DecompositionKey forFile(const std::filesystem::path& file, std::string tensor, std::string objective,
                                    std::string calibration = {});

    /// The canonical text of the key (stored in the entry and hashed for its file name).
    std::string text() const;
};

/// get/put of LayerSvd entries in one folder. Safe to use from several threads and processes:
/// entries are written to a temporary file and renamed into place.
class DecompositionCache {
public:
    /// A cache in `folder` (created on the first put).
    explicit DecompositionCache(std::filesystem::path folder);

    /// The default folder (see the file comment); never throws.
    static std::filesystem::path defaultFolder();

    /// The stored decomposition for `key`, or nullopt when there is none or the entry is
    /// unreadable, truncated, corrupt (checksum) or holds another key; such an entry is then
    /// simply overwritten by the next put. Never throws except std::bad_alloc.
    std::optional<LayerSvd> get(const DecompositionKey& key) const;

    /// Stores `svd` under `key`, replacing any previous entry. Throws InvalidArgument for a
    /// decomposition that is not complete(), IoError naming the file when the folder cannot be
    /// created or the write fails (no partial entry is left).
    void put(const DecompositionKey& key, const LayerSvd& svd) const;

    /// The file an entry for `key` lives in.
    std::filesystem::path entryPath(const DecompositionKey& key) const;

    const std::filesystem::path& folder() const { return m_folder; }

private:
    std::filesystem::path m_folder;
};

}  // namespace mdbf::factor
