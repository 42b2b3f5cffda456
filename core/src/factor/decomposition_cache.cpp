#include "mdbf/factor/decomposition_cache.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <chrono>

#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"

namespace mdbf::factor {

namespace fs = std::filesystem;

namespace {

// Entry layout (little-endian): magic, u32 version, u32 key bytes, key text, u64 n, u64 m, u64 r,
// float σ[r], float U[n·r] and V[m·r] column-major, u64 checksum of everything before it.
constexpr char kMagic[8] = {'M', 'D', 'B', 'F', 'S', 'V', 'D', '\0'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint64_t kMaxDimension = std::uint64_t{1} << 24;

/// 64-bit FNV-1a over 8-byte words (bytes for the tail): cheap enough for 250 MB entries and
/// sensitive to any flipped or truncated byte.
class Checksum {
public:
    void add(const void* data, std::size_t bytes)
    {
        const auto* p = static_cast<const unsigned char*>(data);
        std::size_t i = 0;
        for (; i + 8 <= bytes; i += 8) {
            std::uint64_t word;
            std::memcpy(&word, p + i, 8);
            m_hash = (m_hash ^ word) * 0x100000001b3ull;
        }
        for (; i < bytes; ++i) m_hash = (m_hash ^ p[i]) * 0x100000001b3ull;
    }
    std::uint64_t value() const { return m_hash; }

private:
    std::uint64_t m_hash = 0xcbf29ce484222325ull;
};

std::string hex(std::uint64_t v)
{
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
    return text;
}

class Reader {
public:
    explicit Reader(const fs::path& path) : m_in(path, std::ios::binary) {}
    bool read(void* data, std::size_t bytes)
    {
        if (!m_in.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes))) return false;
        m_sum.add(data, bytes);
        return true;
    }
    bool ok() const { return static_cast<bool>(m_in); }
    const Checksum& sum() const { return m_sum; }
    bool readRaw(void* data, std::size_t bytes)
    {
        return static_cast<bool>(m_in.read(static_cast<char*>(data), static_cast<std::streamsize>(bytes)));
    }

private:
    std::ifstream m_in;
    Checksum m_sum;
};

}  // namespace

DecompositionKey DecompositionKey::forFile(const fs::path& file, std::string tensor, std::string objective,
                                           std::string calibration)
{
    std::error_code ec;
    const fs::path absolute = fs::absolute(file, ec);
    DecompositionKey key;
    key.file = (ec ? file : absolute).lexically_normal().string();
    key.fileSize = fs::file_size(file, ec);
    if (ec) throw IoError(quotedText(file.string()) + ": cannot read the file size (" + ec.message() + ")");
    const auto mtime = fs::last_write_time(file, ec);
    if (ec) throw IoError(quotedText(file.string()) + ": cannot read the modification time (" + ec.message() + ")");
    key.fileMtimeNs = std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
    key.tensor = std::move(tensor);
    key.objective = std::move(objective);
    key.calibration = std::move(calibration);
    return key;
}

std::string DecompositionKey::text() const
{
    // Length-prefixed fields: no choice of names can make two different keys print alike.
    std::string out;
    for (const std::string* field : {&file, &tensor, &objective, &calibration}) {
        out += std::to_string(field->size());
        out += ':';
        out += *field;
        out += '\n';
    }
    out += "size=" + std::to_string(fileSize) + "\nmtime_ns=" + std::to_string(fileMtimeNs) + "\n";
    return out;
}

DecompositionCache::DecompositionCache(fs::path folder) : m_folder(std::move(folder)) {}

fs::path DecompositionCache::defaultFolder()
{
    if (const char* dir = std::getenv("MDBF_CACHE_DIR"); dir && *dir) return fs::path(dir);
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "mdbf" / "decompositions";
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "mdbf" / "decompositions";
    return fs::temp_directory_path() / "mdbf-decompositions";
}

fs::path DecompositionCache::entryPath(const DecompositionKey& key) const
{
    Checksum sum;
    const std::string text = key.text();
    sum.add(text.data(), text.size());
    return m_folder / (hex(sum.value()) + ".svd");
}

std::optional<LayerSvd> DecompositionCache::get(const DecompositionKey& key) const
{
    const fs::path path = entryPath(key);
    std::error_code ec;
    const std::uint64_t fileSize = fs::file_size(path, ec);
    if (ec) return std::nullopt;
    Reader in(path);
    if (!in.ok()) return std::nullopt;
    char magic[8];
    std::uint32_t version = 0;
    std::uint32_t keyBytes = 0;
    if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !in.read(&version, 4) || version != kVersion ||
        !in.read(&keyBytes, 4))
        return std::nullopt;
    const std::string expected = key.text();
    if (keyBytes != expected.size()) return std::nullopt;
    std::string stored(keyBytes, '\0');
    if (!in.read(stored.data(), keyBytes) || stored != expected) return std::nullopt;
    std::uint64_t dims[3];
    if (!in.read(dims, sizeof dims)) return std::nullopt;
    const auto [n, m, r] = dims;
    if (n < 1 || m < 1 || n > kMaxDimension || m > kMaxDimension || r != std::min(n, m)) return std::nullopt;
    const std::uint64_t expectedSize = 8 + 4 + 4 + keyBytes + sizeof dims + 4 * r * (n + m + 1) + 8;
    if (fileSize != expectedSize) return std::nullopt;
    VectorF sigma(static_cast<Eigen::Index>(r));
    MatrixF u(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(r));
    MatrixF v(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(r));
    if (!in.read(sigma.data(), 4 * r) || !in.read(u.data(), 4 * n * r) || !in.read(v.data(), 4 * m * r))
        return std::nullopt;
    const std::uint64_t computed = in.sum().value();
    std::uint64_t storedSum = 0;
    if (!in.readRaw(&storedSum, 8) || storedSum != computed) return std::nullopt;
    try {
        return LayerSvd::fromParts(std::move(u), std::move(sigma), std::move(v));
    } catch (const Error&) {
        return std::nullopt;
    }
}

void DecompositionCache::put(const DecompositionKey& key, const LayerSvd& svd) const
{
    // An entry's ‖W‖_F is Σσ² over its triplets, which only a complete decomposition has.
    if (!svd.complete())
        throw InvalidArgument("only complete decompositions are cached (this one holds the leading " +
                              std::to_string(svd.rank()) + " triplets)");
    std::error_code ec;
    fs::create_directories(m_folder, ec);
    if (ec) throw IoError(quotedText(m_folder.string()) + ": cannot create the cache folder (" + ec.message() + ")");
    const fs::path target = entryPath(key);
    static std::atomic<std::uint64_t> counter{0};
    const fs::path temp = temporarySibling(target, std::to_string(::getpid()) + "-" + std::to_string(counter++));
    try {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        if (!out) throw IoError(quotedText(temp.string()) + ": cannot create the file");
        Checksum sum;
        auto write = [&](const void* data, std::size_t bytes) {
            out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
            sum.add(data, bytes);
        };
        const std::string text = key.text();
        const auto keyBytes = static_cast<std::uint32_t>(text.size());
        const std::uint64_t dims[3] = {static_cast<std::uint64_t>(svd.rows()), static_cast<std::uint64_t>(svd.cols()),
                                       static_cast<std::uint64_t>(svd.rank())};
        write(kMagic, 8);
        write(&kVersion, 4);
        write(&keyBytes, 4);
        write(text.data(), text.size());
        write(dims, sizeof dims);
        write(svd.singularValues().data(), 4 * dims[2]);
        write(svd.u().data(), 4 * dims[0] * dims[2]);
        write(svd.v().data(), 4 * dims[1] * dims[2]);
        const std::uint64_t checksum = sum.value();
        out.write(reinterpret_cast<const char*>(&checksum), 8);
        out.close();
        if (!out) throw IoError(quotedText(temp.string()) + ": write failed (disk full?)");
        fs::rename(temp, target, ec);
        if (ec) throw IoError(quotedText(target.string()) + ": cannot move the entry into place (" + ec.message() + ")");
    } catch (...) {
        fs::remove(temp, ec);
        throw;
    }
}

}  // namespace mdbf::factor
