#pragma once
// The study's store of finished measurements (private to the pipeline), small JSON records named by
// a hash of the full key with the key inside, compared on reading, so a hash collision or a stale
// file is recomputed, never used. Finished projections live in the LayerStore (layer_store.h).

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace mdbf::pipeline {

/// Finished measurements (the original perplexity, a point's result, a cell of the per-layer view)
/// under `directory`; disabled (never stores, never finds) when the directory is empty.
class StudyRecordCache {
public:
    explicit StudyRecordCache(std::filesystem::path directory) : m_directory(std::move(directory)) {}

    bool enabled() const { return !m_directory.empty(); }

    /// The value stored under `key`, or nothing (absent, unreadable or of another key). Never throws.
    std::optional<nlohmann::json> load(const std::string& key) const;

    /// Stores `value` under `key` (written atomically). Throws IoError.
    void save(const std::string& key, nlohmann::json value) const;

private:
    std::filesystem::path fileFor(const std::string& key) const;

    std::filesystem::path m_directory;
};

}  // namespace mdbf::pipeline
