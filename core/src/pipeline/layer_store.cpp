#include "mdbf/pipeline/layer_store.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <sstream>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/output_path.h"
#include "mdbf/base/text_file.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/io/package.h"

namespace mdbf::pipeline {

namespace fs = std::filesystem;

namespace {

// A record: a one-layer package whose quantization-configuration string holds the key and the
// figures the package format has no place for.
io::Package recordOf(const LayerQuantResult& r, const std::string& key)
{
    io::Package package;
    package.configJson = "{}";
    package.tokenizerJson = "{}";
    package.quantConfigJson = nlohmann::json{{"key", key},
                                             {"plain_error", r.plainError},
                                             {"clamped", r.clamped},
                                             {"iterations", r.iterations},
                                             {"seconds", r.seconds},
                                             {"svd_cached", r.decompositionCached}}
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
    return package;
}

}  // namespace

LayerStore::LayerStore(fs::path directory, std::string prefix, std::string calibrationPrefix)
    : m_directory(std::move(directory)), m_prefix(std::move(prefix)), m_calibrationPrefix(std::move(calibrationPrefix))
{
}

std::optional<LayerQuantResult> LayerStore::load(const std::string& name, const factor::LayerQuantSettings& settings) const
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
        r.seconds = meta.value("seconds", 0.0);
        r.decompositionCached = meta.value("svd_cached", false);
        r.note = "from the layer store";
        VectorF bias;
        if (!package.dense.empty()) {
            const io::PackageTensor& b = package.dense.front();
            bias.resize(static_cast<Eigen::Index>(b.elementCount()));
            std::memcpy(bias.data(), b.data.data(), b.data.size());
        }
        r.layer = std::make_shared<model::FactorizedLinear>(std::move(stored.paths), std::move(bias),
                                                            factor::layoutText(r.method, r.k, r.l, r.paths));
        return r;
    } catch (const std::exception&) {
        return std::nullopt;  // unreadable or foreign: recompute and overwrite
    }
}

bool LayerStore::contains(const std::string& name, const factor::LayerQuantSettings& settings) const
{
    std::error_code ec;
    return fs::is_regular_file(fileFor(keyOf(name, settings)), ec);
}

void LayerStore::save(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const
{
    if (!r.layer) return;
    const std::string key = keyOf(r.name, settings);
    std::error_code ec;
    fs::create_directories(m_directory, ec);
    if (ec) throw IoError("'" + m_directory.string() + "': cannot create directory: " + ec.message());
    io::writePackage(recordOf(r, key), fileFor(key));
}

std::string LayerStore::encode(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const
{
    if (!r.layer) throw InvalidArgument("layer '" + r.name + "' has no factorization to encode");
    // The HDF5 library writes files only; the record is made in the temporary folder and read back.
    static std::atomic<int> counter{0};
    const fs::path file = fs::temp_directory_path() / ("mdbf-record-" + std::to_string(::getpid()) + "-" +
                                                       std::to_string(counter++) + ".h5");
    io::writePackage(recordOf(r, keyOf(r.name, settings)), file);
    std::string bytes;
    try {
        bytes = readBinaryFile(file);
    } catch (...) {
        std::error_code ec;
        fs::remove(file, ec);
        throw;
    }
    std::error_code ec;
    fs::remove(file, ec);
    return bytes;
}

LayerQuantResult LayerStore::put(const std::string& name, const factor::LayerQuantSettings& settings,
                                 const std::string& bytes) const
{
    const fs::path file = fileFor(keyOf(name, settings));
    std::error_code ec;
    fs::create_directories(m_directory, ec);
    if (ec) throw IoError("'" + m_directory.string() + "': cannot create directory: " + ec.message());
    writeFileAtomically(file, bytes);
    std::optional<LayerQuantResult> stored = load(name, settings);
    if (!stored) {
        fs::remove(file, ec);
        throw FormatError("'" + file.string() + "': the record received for layer '" + name +
                          "' is not a record of its settings");
    }
    return std::move(*stored);
}

void LayerStore::removeTemporaryFiles() const
{
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(m_directory, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(".layer-", 0) == 0 && name.find(".tmp-") != std::string::npos) fs::remove(entry.path(), ec);
    }
}

std::string LayerStore::keyOf(const std::string& name, const factor::LayerQuantSettings& s) const
{
    std::ostringstream key;
    key << m_prefix;
    if (s.objective != factor::Objective::Plain) key << m_calibrationPrefix;
    key << "|layer=" << name << "|method=" << factor::methodName(s.method) << "|l=" << s.l << "|bpw=" << s.bpw.text()
        << "|paths=" << s.paths << "|iters=" << s.iterations << "|objective=" << factor::objectiveName(s.objective);
    return key.str();
}

fs::path LayerStore::fileFor(const std::string& key) const
{
    return m_directory / ("layer-" + hex64(fnv1a(key)) + ".h5");
}

}  // namespace mdbf::pipeline
