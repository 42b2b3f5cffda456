#pragma once
// The store of finished projections: each factorized layer as a one-layer package file named by a
// hash of its full key (what the layer was computed from: a prefix naming the model, calibration
// and engine, then the layer's name and settings). The key is stored inside and compared on
// reading, so a hash collision or a stale file is recomputed, never used. A study, a resumed
// `mdbf quantize` and the ranks of a distributed quantize share this one format: a record's bytes
// are what crosses between processes.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "mdbf/factor/quant_config.h"
#include "mdbf/pipeline/quantize.h"

namespace mdbf::pipeline {

/// Finished projections under `directory`, keyed by `prefix`, by `calibrationPrefix` for layers
/// whose objective is not plain (so that a plain layer survives a change of calibration), and by
/// the layer's settings.
class LayerStore : public LayerResultStore {
public:
    LayerStore(std::filesystem::path directory, std::string prefix, std::string calibrationPrefix = {});

    /// The stored projection, or nothing (absent, unreadable or of another key). Never throws.
    std::optional<LayerQuantResult> load(const std::string& name,
                                         const factor::LayerQuantSettings& settings) const override;

    /// Whether a record of that key exists (its content is checked by load). Never throws.
    bool contains(const std::string& name, const factor::LayerQuantSettings& settings) const;

    /// Stores a factorized projection (written atomically; a kept-dense one is not stored). Throws IoError.
    void save(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const override;

    /// The bytes save() would write for `r`: the record that travels between processes. Throws IoError.
    std::string encode(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const;

    /// Stores a record made by encode() (possibly in another process) and returns it as load() does.
    /// Throws FormatError when the bytes are not a record of projection `name` under `settings`,
    /// IoError when the file cannot be written.
    LayerQuantResult put(const std::string& name, const factor::LayerQuantSettings& settings,
                         const std::string& bytes) const;

    /// Removes the temporary files a killed writer left in the directory. Never throws.
    void removeTemporaryFiles() const;

    /// The directory of the records.
    const std::filesystem::path& directory() const { return m_directory; }

private:
    std::string keyOf(const std::string& name, const factor::LayerQuantSettings& s) const;
    std::filesystem::path fileFor(const std::string& key) const;

    std::filesystem::path m_directory;
    std::string m_prefix;
    std::string m_calibrationPrefix;
};

}  // namespace mdbf::pipeline
