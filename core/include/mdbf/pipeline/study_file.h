#pragma once
// The files a study writes (study.json, points.csv, layer_view.csv; format "mdbf-study", version 1)
// and the one reader of study.json, used by the studio's perplexity panel and mdbf-study-plot.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mdbf/pipeline/study.h"

namespace mdbf::pipeline {

/// The method a planned point is written with (its l is 0; its layers carry their own method and l).
inline constexpr std::string_view kPlannedMethod = "plan";

/// One point as its JSON object (settings, measurements, per-layer rows). Never throws.
nlohmann::json studyPointToJson(const StudyPointResult& point);

/// One cell of the per-layer view as its JSON object (rel_error null when infeasible). Never throws.
nlohmann::json layerViewCellToJson(const LayerViewCell& cell);

/// A point read back from its JSON object: settings, measurements (NaN for null), per-layer rows.
/// `file` and `where` name the place in messages. Throws FormatError naming the file, the place
/// and the problem for a missing or mistyped field.
StudyPointResult studyPointFromJson(const nlohmann::json& json, const std::string& file, const std::string& where);

/// The study as one JSON object (format "mdbf-study", version 1).
nlohmann::json studyToJson(const std::vector<StudyResult>& results);

/// Reads study.json: every model with its points and per-layer view (values written as null read
/// as NaN). Throws IoError when the file cannot be read, FormatError naming the file and the
/// problem (invalid JSON, not an mdbf-study file, a missing or mistyped field with its place).
std::vector<StudyResult> readStudyFile(const std::filesystem::path& path);

/// Writes study.json, points.csv (one row per point) and layer_view.csv (one row per cell) into
/// `directory` (created if needed), each through a temporary file renamed into place. Throws IoError.
void writeStudyFiles(const std::vector<StudyResult>& results, const std::filesystem::path& directory);

}  // namespace mdbf::pipeline
