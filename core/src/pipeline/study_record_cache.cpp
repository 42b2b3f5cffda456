#include "pipeline/study_record_cache.h"

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"

namespace mdbf::pipeline {

namespace fs = std::filesystem;

std::optional<nlohmann::json> StudyRecordCache::load(const std::string& key) const
{
    if (!enabled()) return std::nullopt;
    const fs::path file = fileFor(key);
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) return std::nullopt;
    try {
        nlohmann::json record = readJsonFile(file);
        if (record.at("key").get<std::string>() != key) return std::nullopt;
        return std::move(record.at("value"));
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable or foreign: recompute and overwrite
    }
}

void StudyRecordCache::save(const std::string& key, nlohmann::json value) const
{
    if (!enabled()) return;
    std::error_code ec;
    fs::create_directories(m_directory, ec);
    if (ec) throw IoError("'" + m_directory.string() + "': cannot create directory: " + ec.message());
    writeFileAtomically(fileFor(key), nlohmann::json{{"key", key}, {"value", std::move(value)}}.dump() + "\n");
}

fs::path StudyRecordCache::fileFor(const std::string& key) const
{
    return m_directory / ("record-" + hex64(fnv1a(key)) + ".json");
}

}  // namespace mdbf::pipeline
