#include "pipeline/study_cache.h"

#include <cstring>
#include <sstream>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"
#include "mdbf/io/package.h"

namespace mdbf::pipeline {

namespace fs = std::filesystem;

std::optional<LayerQuantResult> StudyLayerCache::load(const std::string& name,
                                                      const factor::LayerQuantSettings& settings) const
{
    const std::string key = keyOf(name, settings);
    const fs::path file = fileFor(key);
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) return std::nullopt;
    try {
        io::Package package = io::readPackage(file);
        const nlohmann::json meta = parseJsonText(package.quantConfigJson, file.string());
        if (meta.at("key").get<std::string>() != key || package.layers.size() != 1) return std::nullopt;
        io::PackageLayer& stored = package.layers.front();
        LayerQuantResult r;
        r.name = name;
        r.n = stored.n();
        r.m = stored.m();
        r.k = stored.k();
        r.l = static_cast<int>(stored.l());
        r.paths = static_cast<int>(stored.paths.size());
        r.method = stored.method;
        r.objective = stored.objective;
        r.bpw = stored.bpw;
        r.relError = stored.relError;
        r.plainError = meta.at("plain_error").get<double>();
        r.clamped = meta.at("clamped").get<bool>();
        r.iterations = meta.at("iterations").get<int>();
        r.note = "from the study cache";
        VectorF bias;
        if (!package.dense.empty()) {
            const io::PackageTensor& b = package.dense.front();
            bias.resize(static_cast<Eigen::Index>(b.elementCount()));
            std::memcpy(bias.data(), b.data.data(), b.data.size());
        }
        r.layer = std::make_shared<model::FactorizedLinear>(std::move(stored.paths), std::move(bias));
        return r;
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable or foreign: recompute and overwrite
    }
}

void StudyLayerCache::save(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const
{
    if (!r.layer) return;
    io::Package package;
    package.configJson = "{}";
    package.tokenizerJson = "{}";
    package.quantConfigJson = nlohmann::json{{"key", keyOf(r.name, settings)},
                                             {"plain_error", r.plainError},
                                             {"clamped", r.clamped},
                                             {"iterations", r.iterations}}
                                  .dump();
    package.modelBpw = r.bpw;
    package.factorizedBpw = r.bpw;
    package.layers.push_back(packageLayerOf(r));
    const VectorF& bias = r.layer->bias();
    if (bias.size() > 0) {
        io::PackageTensor t;
        t.name = r.name + ".bias";
        t.dtype = io::DType::F32;
        t.shape = {bias.size()};
        t.data.resize(static_cast<std::size_t>(bias.size()) * sizeof(float));
        std::memcpy(t.data.data(), bias.data(), t.data.size());
        package.dense.push_back(std::move(t));
    }
    fs::create_directories(m_directory);
    io::writePackage(package, fileFor(keyOf(r.name, settings)));
}

std::string StudyLayerCache::keyOf(const std::string& name, const factor::LayerQuantSettings& s) const
{
    std::ostringstream key;
    key << m_prefix << "|layer=" << name << "|method=" << factor::methodName(s.method) << "|l=" << s.l
        << "|bpw=" << s.bpw.text() << "|paths=" << s.paths << "|iters=" << s.iterations
        << "|objective=" << factor::objectiveName(s.objective);
    return key.str();
}

fs::path StudyLayerCache::fileFor(const std::string& key) const
{
    return m_directory / ("layer-" + hex64(fnv1a(key)) + ".h5");
}

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
