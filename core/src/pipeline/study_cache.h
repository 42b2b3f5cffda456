#pragma once
// The study's stores (private to the pipeline): finished projections as one-layer packages, and
// finished measurements as small JSON records. Both name their files by a hash of the full key and
// store the key inside, compared on reading, so a hash collision or a stale file is recomputed,
// never used. A repeated or resumed study reads them instead of computing again.

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mdbf/factor/quant_config.h"
#include "mdbf/pipeline/quantize.h"

namespace mdbf::pipeline {

/// Finished projections of one study point under `directory`, keyed by `prefix` (the point's
/// calibration, sequential mode and seed) and the layer's settings.
class StudyLayerCache : public LayerResultStore {
public:
    StudyLayerCache(std::filesystem::path directory, std::string prefix)
        : m_directory(std::move(directory)), m_prefix(std::move(prefix))
    {
    }

    /// The stored projection, or nothing (absent, unreadable or of another key). Never throws.
    std::optional<LayerQuantResult> load(const std::string& name,
                                         const factor::LayerQuantSettings& settings) const override;

    /// Stores a factorized projection (written atomically). Throws IoError.
    void save(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const override;

private:
    std::string keyOf(const std::string& name, const factor::LayerQuantSettings& s) const;
    std::filesystem::path fileFor(const std::string& key) const;

    std::filesystem::path m_directory;
    std::string m_prefix;
};

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
