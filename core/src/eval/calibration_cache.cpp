#include "mdbf/eval/calibration_cache.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"

namespace mdbf::eval {

namespace fs = std::filesystem;

namespace {

// The file layout (docs/calibration-cache.md) is little-endian, written and read with memcpy.
static_assert(std::endian::native == std::endian::little, "the calibration cache format is little-endian");

constexpr char kMagic[8] = {'M', 'D', 'B', 'F', 'C', 'A', 'L', '\0'};
constexpr std::uint32_t kVersion = 1;

std::string stripWeight(std::string name)
{
    constexpr std::string_view suffix = ".weight";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        name.resize(name.size() - suffix.size());
    return name;
}

bool endsWith(const std::string& s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class Writer {
public:
    template <typename T>
    void put(const T& value)
    {
        static_assert(std::is_trivially_copyable_v<T>);
        m_bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
    }
    void putBytes(std::string_view bytes)
    {
        put(static_cast<std::uint64_t>(bytes.size()));
        m_bytes.append(bytes);
    }
    void putDoubles(const double* data, std::size_t count)
    {
        m_bytes.append(reinterpret_cast<const char*>(data), count * sizeof(double));
    }
    std::string& bytes() { return m_bytes; }

private:
    std::string m_bytes;
};

// Bounds-checked reading; every failure is a FormatError the loader turns into a note.
class Reader {
public:
    explicit Reader(std::string_view bytes) : m_bytes(bytes) {}

    template <typename T>
    T get(const char* what)
    {
        T value;
        take(&value, sizeof(T), what);
        return value;
    }
    std::string getBytes(const char* what, std::uint64_t limit)
    {
        const auto size = get<std::uint64_t>(what);
        if (size > limit || size > remaining()) throw FormatError(std::string("implausible length of ") + what);
        std::string out(m_bytes.substr(m_pos, size));
        m_pos += size;
        return out;
    }
    void getDoubles(double* out, std::uint64_t count, const char* what)
    {
        if (count > remaining() / sizeof(double)) throw FormatError(std::string("truncated ") + what);
        take(out, count * sizeof(double), what);
    }
    std::size_t remaining() const { return m_bytes.size() - m_pos; }

private:
    void take(void* out, std::size_t size, const char* what)
    {
        if (size > remaining()) throw FormatError(std::string("truncated ") + what);
        std::memcpy(out, m_bytes.data() + m_pos, size);
        m_pos += size;
    }

    std::string_view m_bytes;
    std::size_t m_pos = 0;
};

std::string serialize(const std::string& key, const CalibrationStats& stats)
{
    Writer w;
    w.bytes().append(kMagic, sizeof kMagic);
    w.put(kVersion);
    w.put(std::uint32_t{0});
    w.putBytes(key);
    w.put(static_cast<std::int64_t>(stats.ctx));
    w.put(stats.tokens);
    w.put(stats.windows);
    w.put(static_cast<std::uint8_t>(stats.hasGram ? 1 : 0));
    w.put(static_cast<std::uint64_t>(stats.layers.size()));
    for (const auto& [name, layer] : stats.layers) {
        const auto m = static_cast<std::uint64_t>(layer.secondMoments.size());
        w.putBytes(name);
        w.put(m);
        w.putDoubles(layer.secondMoments.data(), m);
        if (stats.hasGram) w.putDoubles(layer.gram.data(), m * m);  // column-major, symmetric
    }
    w.put(fnv1a(w.bytes()));
    return std::move(w.bytes());
}

CalibrationStats deserialize(std::string_view bytes, const std::string& key)
{
    constexpr std::size_t kChecksum = sizeof(std::uint64_t);
    if (bytes.size() < sizeof kMagic + kChecksum || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        throw FormatError("not a calibration cache file");
    std::uint64_t stored = 0;
    std::memcpy(&stored, bytes.data() + bytes.size() - kChecksum, kChecksum);
    const std::string_view body = bytes.substr(0, bytes.size() - kChecksum);
    if (fnv1a(body) != stored) throw FormatError("checksum mismatch (truncated or damaged)");

    Reader r(body.substr(sizeof kMagic));
    if (const auto version = r.get<std::uint32_t>("version"); version != kVersion)
        throw FormatError("format version " + std::to_string(version) + ", expected " + std::to_string(kVersion));
    r.get<std::uint32_t>("reserved field");
    if (r.getBytes("key", r.remaining()) != key) throw FormatError("stored for another request");
    CalibrationStats stats;
    const auto ctx = r.get<std::int64_t>("ctx");
    stats.tokens = r.get<std::int64_t>("token count");
    stats.windows = r.get<std::int64_t>("window count");
    stats.hasGram = r.get<std::uint8_t>("gram flag") != 0;
    if (ctx < 1 || ctx > (std::int64_t{1} << 30) || stats.windows < 1 || stats.tokens != stats.windows * ctx)
        throw FormatError("inconsistent window figures");
    stats.ctx = static_cast<int>(ctx);
    const auto count = r.get<std::uint64_t>("layer count");
    if (count > r.remaining()) throw FormatError("implausible layer count");
    for (std::uint64_t i = 0; i < count; ++i) {
        std::string name = r.getBytes("layer name", 4096);
        const auto m = r.get<std::uint64_t>("layer width");
        if (m < 1 || m > r.remaining() / sizeof(double)) throw FormatError("implausible width of layer '" + name + "'");
        LayerCalibration layer;
        layer.secondMoments.resize(static_cast<Eigen::Index>(m));
        r.getDoubles(layer.secondMoments.data(), m, "channel moments");
        if (stats.hasGram) {
            if (m > r.remaining() / sizeof(double) / m) throw FormatError("truncated Gram matrix of '" + name + "'");
            layer.gram.resize(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(m));
            r.getDoubles(layer.gram.data(), m * m, "Gram matrix");
        }
        if (!layer.secondMoments.allFinite() || (stats.hasGram && !layer.gram.allFinite()))
            throw FormatError("non-finite statistics for layer '" + name + "'");
        stats.layers.emplace(std::move(name), std::move(layer));
    }
    if (r.remaining() != 0) throw FormatError("trailing bytes");
    return stats;
}

}  // namespace

fs::path CalibrationCache::defaultDirectory()
{
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg && fs::path(xdg).is_absolute())
        return fs::path(xdg) / "mdbf";
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "mdbf";
    return {};
}

CalibrationCache::CalibrationCache(fs::path directory) : m_directory(std::move(directory)) {}

std::string CalibrationCache::key(const fs::path& modelDir, std::string_view text, const CalibrationOptions& options)
{
    std::string key = "mdbf calibration statistics\n";
    // The files that decide the activations: configuration and tokenizer by content, the weights
    // (possibly gigabytes) by name, size and modification time.
    // A checkpoint without tokenizer.json is tokenized by its tokenizer.model.
    const char* tokenizerFile = fs::is_regular_file(modelDir / "tokenizer.json") ? "tokenizer.json" : "tokenizer.model";
    for (const char* name : {"config.json", tokenizerFile}) {
        const std::string bytes = readBinaryFile(modelDir / name);
        key += std::string(name) + " " + std::to_string(bytes.size()) + " " + hex64(fnv1a(bytes)) + "\n";
    }
    std::vector<std::string> weights;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(modelDir, ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_regular_file(ec) && (endsWith(name, ".safetensors") || endsWith(name, ".safetensors.index.json")))
            weights.push_back(name);
    }
    std::sort(weights.begin(), weights.end());
    for (const std::string& name : weights) {
        const fs::path path = modelDir / name;
        const auto size = fs::file_size(path, ec);
        const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
        key += name + " " + std::to_string(size) + " " + std::to_string(mtime) + "\n";
    }
    key += "text " + std::to_string(text.size()) + " " + hex64(fnv1a(text)) + "\n";
    key += "ctx " + std::to_string(options.ctx) + "\n";
    key += std::string("gram ") + (options.gram ? "1" : "0") + "\n";
    std::vector<std::string> layers;
    for (const std::string& layer : options.layers) layers.push_back(stripWeight(layer));
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    key += "layers";
    if (layers.empty()) key += " *";
    for (const std::string& layer : layers) key += " " + layer;
    key += "\n";
    return key;
}

fs::path CalibrationCache::fileFor(const std::string& key) const
{
    return m_directory / ("calibration-" + hex64(fnv1a(key)) + ".bin");
}

std::optional<CalibrationStats> CalibrationCache::load(const std::string& key, std::string* note) const
{
    const fs::path file = fileFor(key);
    std::error_code ec;
    if (!fs::exists(file, ec)) return std::nullopt;
    try {
        CalibrationStats stats = deserialize(readBinaryFile(file), key);
        stats.fromCache = true;
        stats.cacheFile = file;
        return stats;
    } catch (const std::exception& e) {
        if (note) *note = "ignored calibration cache file '" + file.string() + "': " + e.what();
        return std::nullopt;
    }
}

void CalibrationCache::store(const std::string& key, const CalibrationStats& stats) const
{
    const fs::path file = fileFor(key);
    std::error_code ec;
    fs::create_directories(m_directory, ec);
    if (ec) throw IoError("'" + m_directory.string() + "': cannot create the cache directory: " + ec.message());
    try {
        writeFileAtomically(file, serialize(key, stats));
    } catch (IoError& e) {
        e.addContext("writing the calibration cache");
        throw;
    }
}

}  // namespace mdbf::eval
