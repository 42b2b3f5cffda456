#include "mdbf/io/checkpoint.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "io/mapped_file.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/parallel.h"
#include "mdbf/base/text_file.h"
#include "mdbf/io/mapped_pages.h"

namespace mdbf::io {

// Safetensors data is little-endian; the float32 path copies bytes unchanged.
static_assert(std::endian::native == std::endian::little, "checkpoint loading assumes a little-endian host");

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// The safetensors format itself refuses headers larger than this.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
/// Safetensors headers nest three levels deep; anything far deeper is garbage, and refusing it
/// early keeps a hostile file from costing unbounded memory or time.
constexpr int kMaxHeaderDepth = 16;
/// Below this many elements a thread team costs more than the conversion.
constexpr std::size_t kParallelConvertElements = std::size_t{1} << 18;

constexpr const char* kSingleFileName = "model.safetensors";
constexpr const char* kIndexFileName = "model.safetensors.index.json";

std::string quoted(const fs::path& path)
{
    // Appending piecewise: GCC 12 reports a bogus -Wrestrict for "'" + std::string + "'".
    std::string s = path.string();
    s.insert(s.begin(), '\'');
    s.push_back('\'');
    return s;
}

[[noreturn]] void fileError(const fs::path& file, const std::string& problem)
{
    throw FormatError(quoted(file) + ": " + problem);
}

[[noreturn]] void tensorError(const fs::path& file, const std::string& tensor, const std::string& problem)
{
    throw FormatError(quoted(file) + ": tensor " + quotedText(tensor) + ": " + problem);
}

std::optional<DType> parseDType(const std::string& name)
{
    if (name == "F32") return DType::F32;
    if (name == "F16") return DType::F16;
    if (name == "BF16") return DType::BF16;
    return std::nullopt;
}

std::string shapeString(const std::vector<std::int64_t>& shape)
{
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

/// A non-negative JSON integer, or nullopt for anything else (negative, fractional, not a number).
std::optional<std::uint64_t> jsonUnsigned(const json& value)
{
    if (value.is_number_unsigned()) return value.get<std::uint64_t>();
    if (value.is_number_integer()) {
        const auto v = value.get<std::int64_t>();
        if (v >= 0) return static_cast<std::uint64_t>(v);
    }
    return std::nullopt;
}

struct Entry {
    TensorInfo info;
    const std::byte* data = nullptr;
};

/// Validates one tensor entry of a safetensors header and returns its description.
/// `dataStart` is the absolute offset of the data region, `dataSize` its length.
Entry parseTensorEntry(const MappedFile& file, const std::string& name, const json& entry, std::uint64_t dataStart,
                       std::uint64_t dataSize)
{
    const fs::path& path = file.path();
    if (!entry.is_object()) tensorError(path, name, std::string("entry is a JSON ") + entry.type_name() + ", expected an object");

    const auto dtypeIt = entry.find("dtype");
    if (dtypeIt == entry.end()) tensorError(path, name, "missing 'dtype'");
    if (!dtypeIt->is_string()) tensorError(path, name, std::string("'dtype' is a JSON ") + dtypeIt->type_name() + ", expected a string");
    const auto dtypeText = dtypeIt->get<std::string>();
    const auto dtype = parseDType(dtypeText);
    if (!dtype) tensorError(path, name, "unsupported dtype '" + dtypeText + "' (supported: F32, F16, BF16)");

    const auto shapeIt = entry.find("shape");
    if (shapeIt == entry.end()) tensorError(path, name, "missing 'shape'");
    if (!shapeIt->is_array()) tensorError(path, name, std::string("'shape' is a JSON ") + shapeIt->type_name() + ", expected an array");
    std::vector<std::int64_t> shape;
    std::uint64_t elements = 1;
    bool overflow = false;
    for (const json& dim : *shapeIt) {
        if (!dim.is_number_integer()) tensorError(path, name, "'shape' holds a non-integer dimension " + dim.dump());
        if (dim.is_number_unsigned()) {
            const auto u = dim.get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                tensorError(path, name, "dimension " + dim.dump() + " is too large");
            }
            shape.push_back(static_cast<std::int64_t>(u));
        } else {
            const auto v = dim.get<std::int64_t>();
            if (v < 0) tensorError(path, name, "negative dimension " + std::to_string(v) + " in shape");
            shape.push_back(v);
        }
        overflow = overflow || __builtin_mul_overflow(elements, static_cast<std::uint64_t>(shape.back()), &elements);
    }

    const auto offsetsIt = entry.find("data_offsets");
    if (offsetsIt == entry.end()) tensorError(path, name, "missing 'data_offsets'");
    if (!offsetsIt->is_array() || offsetsIt->size() != 2) {
        tensorError(path, name, "'data_offsets' must be an array of two integers, got " + offsetsIt->dump());
    }
    const auto begin = jsonUnsigned((*offsetsIt)[0]);
    const auto end = jsonUnsigned((*offsetsIt)[1]);
    if (!begin || !end) tensorError(path, name, "'data_offsets' must hold two non-negative integers, got " + offsetsIt->dump());
    const std::string offsetsText = "data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) + "]";
    if (*begin > *end) tensorError(path, name, offsetsText + " out of order (begin after end)");
    if (*end > dataSize) {
        tensorError(path, name, offsetsText + " outside the data region of " + std::to_string(dataSize) +
                                    " bytes (file truncated?)");
    }

    const std::uint64_t elementSize = dtypeSize(*dtype);
    std::uint64_t expectedBytes = 0;
    overflow = overflow || __builtin_mul_overflow(elements, elementSize, &expectedBytes);
    const std::uint64_t actualBytes = *end - *begin;
    if (overflow || expectedBytes != actualBytes) {
        tensorError(path, name, "byte size " + std::to_string(actualBytes) + " of " + offsetsText +
                                    " does not match shape " + shapeString(shape) + " of " + dtypeText + " (" +
                                    (overflow ? std::string("overflow") : std::to_string(expectedBytes)) + " bytes)");
    }

    Entry result;
    result.info.name = name;
    result.info.dtype = *dtype;
    result.info.shape = std::move(shape);
    result.info.file = path;
    result.info.offset = dataStart + *begin;
    result.info.byteSize = actualBytes;
    result.data = file.data() + result.info.offset;
    return result;
}

/// Validates a whole safetensors file and returns its tensors (unsorted).
std::vector<Entry> parseSafetensors(const MappedFile& file)
{
    const fs::path& path = file.path();
    const std::uint64_t fileSize = file.size();
    if (fileSize == 0) fileError(path, "empty file, not a safetensors file");
    if (fileSize < 8) {
        fileError(path, "file is " + std::to_string(fileSize) +
                            " bytes, shorter than the 8-byte header length of a safetensors file");
    }
    std::uint64_t headerBytes = 0;
    for (int i = 7; i >= 0; --i) headerBytes = (headerBytes << 8) | std::to_integer<std::uint64_t>(file.data()[i]);
    if (headerBytes > kMaxHeaderBytes) {
        fileError(path, "header length " + std::to_string(headerBytes) + " exceeds the safetensors limit of " +
                            std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file?)");
    }
    if (headerBytes > fileSize - 8) {
        fileError(path, "header length " + std::to_string(headerBytes) + " runs past the end of the file (" +
                            std::to_string(fileSize) + " bytes; file truncated?)");
    }

    const auto* text = reinterpret_cast<const char*>(file.data() + 8);
    const json header = parseJsonText(std::string_view(text, headerBytes), path.string(), "header", kMaxHeaderDepth);
    if (!header.is_object()) fileError(path, std::string("header is a JSON ") + header.type_name() + ", expected an object");

    const std::uint64_t dataStart = 8 + headerBytes;
    const std::uint64_t dataSize = fileSize - dataStart;
    std::vector<Entry> entries;
    entries.reserve(header.size());
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;
        entries.push_back(parseTensorEntry(file, name, entry, dataStart, dataSize));
    }

    // The tensors must tile the data region exactly, as the format requires: a gap, an overlap or
    // bytes after the last tensor mean the header length or an offset is wrong, and every tensor
    // would be read shifted. Zero-sized tensors sit at the running offset.
    std::vector<const Entry*> byOffset;
    byOffset.reserve(entries.size());
    for (const Entry& e : entries) byOffset.push_back(&e);
    std::sort(byOffset.begin(), byOffset.end(), [](const Entry* a, const Entry* b) {
        return std::pair(a->info.offset, a->info.byteSize) < std::pair(b->info.offset, b->info.byteSize);
    });
    std::uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry* e : byOffset) {
        const std::uint64_t begin = e->info.offset - dataStart;
        if (begin < covered) {
            tensorError(path, e->info.name,
                        "data bytes " + std::to_string(begin) + ".." + std::to_string(begin + e->info.byteSize) +
                            " overlap tensor '" + previous->info.name + "' (ending at byte " + std::to_string(covered) +
                            ")");
        }
        if (begin > covered) {
            tensorError(path, e->info.name,
                        "data starts at byte " + std::to_string(begin) + " of the data region, leaving bytes " +
                            std::to_string(covered) + ".." + std::to_string(begin) +
                            " unused (header length or offsets wrong?)");
        }
        covered = begin + e->info.byteSize;
        previous = e;
    }
    if (covered != dataSize) {
        fileError(path, "the tensors cover " + std::to_string(covered) + " bytes but the data region holds " +
                            std::to_string(dataSize) + " (header length or offsets wrong, or trailing bytes)");
    }
    return entries;
}

/// Accumulates the mapped files and tensors of a checkpoint while it is being opened.
struct Loader {
    std::vector<std::shared_ptr<MappedFile>> files;
    std::vector<Entry> entries;

    /// Maps and validates one safetensors file; returns the names of its tensors.
    std::set<std::string> addFile(const fs::path& path)
    {
        auto file = std::make_shared<MappedFile>(path);
        std::vector<Entry> parsed = parseSafetensors(*file);
        std::set<std::string> names;
        for (Entry& e : parsed) {
            names.insert(e.info.name);
            entries.push_back(std::move(e));
        }
        files.push_back(std::move(file));
        return names;
    }

    void addIndex(const fs::path& indexPath)
    {
        const json index = parseJsonText(readBinaryFile(indexPath), indexPath.string(), "index");
        if (!index.is_object()) fileError(indexPath, std::string("index is a JSON ") + index.type_name() + ", expected an object");
        const auto mapIt = index.find("weight_map");
        if (mapIt == index.end()) fileError(indexPath, "index has no 'weight_map'");
        if (!mapIt->is_object()) fileError(indexPath, std::string("'weight_map' is a JSON ") + mapIt->type_name() + ", expected an object");
        if (mapIt->empty()) fileError(indexPath, "'weight_map' lists no tensors");

        // Shards in order of first mention, each with the tensors the index expects in it.
        std::vector<std::pair<std::string, std::vector<std::string>>> shards;
        for (const auto& [tensor, shard] : mapIt->items()) {
            if (!shard.is_string()) {
                fileError(indexPath, "'weight_map' entry for tensor '" + tensor + "' is a JSON " + shard.type_name() +
                                         ", expected a shard file name");
            }
            const auto shardName = shard.get<std::string>();
            auto it = std::find_if(shards.begin(), shards.end(), [&](const auto& s) { return s.first == shardName; });
            if (it == shards.end()) {
                const fs::path shardPath(shardName);
                // Shards live beside the index; a path that climbs out of it is not a shard name.
                if (shardName.empty() || shardPath.is_absolute() || shardPath.has_parent_path()) {
                    fileError(indexPath, "shard name '" + shardName + "' for tensor '" + tensor +
                                             "' is not a plain file name");
                }
                shards.emplace_back(shardName, std::vector<std::string>{});
                it = std::prev(shards.end());
            }
            it->second.push_back(tensor);
        }

        const fs::path dir = indexPath.parent_path();
        for (const auto& [shardName, expected] : shards) {
            const fs::path shardPath = dir / shardName;
            std::error_code ec;
            if (!fs::exists(shardPath, ec)) {
                fileError(indexPath, "shard '" + shardName + "' named by the index is missing (expected " +
                                         quoted(shardPath) + ")");
            }
            const std::set<std::string> present = addFile(shardPath);
            for (const std::string& tensor : expected) {
                if (!present.contains(tensor)) {
                    fileError(indexPath, "tensor '" + tensor + "' is listed in shard '" + shardName +
                                             "' but not present in " + quoted(shardPath));
                }
            }
        }
    }
};

/// Picks what to load from a directory: the single file first (as transformers does), then the
/// index, then a lone safetensors file of another name.
void addDirectory(Loader& loader, const fs::path& dir)
{
    std::error_code ec;
    if (fs::is_regular_file(dir / kSingleFileName, ec)) {
        loader.addFile(dir / kSingleFileName);
        return;
    }
    if (fs::exists(dir / kIndexFileName, ec)) {
        loader.addIndex(dir / kIndexFileName);
        return;
    }
    std::vector<fs::path> candidates;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() == ".safetensors" && it->is_regular_file(ec)) candidates.push_back(it->path());
    }
    if (ec) throw IoError(quoted(dir) + ": cannot list directory: " + ec.message());
    if (candidates.empty()) {
        throw IoError(quoted(dir) + ": no " + kSingleFileName + ", " + kIndexFileName +
                      " or other .safetensors file in the directory");
    }
    if (candidates.size() > 1) {
        throw IoError(quoted(dir) + ": " + std::to_string(candidates.size()) + " .safetensors files but no " +
                      kIndexFileName + " saying which to load");
    }
    loader.addFile(candidates.front());
}

/// Decodes `count` unaligned 16-bit words from `src` into floats with `Decode` (a template argument,
/// so the per-element call inlines).
template <float (*Decode)(std::uint16_t)>
void decodeWords(const std::byte* src, std::size_t count, float* dst)
{
    for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t word;
        std::memcpy(&word, src + 2 * i, sizeof word);
        dst[i] = Decode(word);
    }
}

void convertRange(DType dtype, const std::byte* src, std::size_t count, float* dst)
{
    switch (dtype) {
    case DType::F32:
        std::memcpy(dst, src, count * sizeof(float));
        return;
    case DType::F16:
        decodeWords<halfToFloat>(src, count, dst);
        return;
    case DType::BF16:
        decodeWords<bf16ToFloat>(src, count, dst);
        return;
    }
}

}  // namespace

std::int64_t TensorInfo::elementCount() const
{
    std::int64_t n = 1;
    for (const std::int64_t d : shape) n *= d;
    return n;
}

void convertToFloat(DType dtype, const std::byte* src, std::size_t count, float* dst)
{
    // An empty tensor may come with null pointers, which memcpy must not see even for 0 bytes.
    if (count == 0) return;
    if (count < kParallelConvertElements) {
        convertRange(dtype, src, count, dst);
        return;
    }
    const std::size_t elementSize = dtypeSize(dtype);
    parallelChunks(static_cast<std::int64_t>(count), omp_get_max_threads(), [&](std::int64_t begin, std::int64_t end) {
        const auto b = static_cast<std::size_t>(begin);
        convertRange(dtype, src + b * elementSize, static_cast<std::size_t>(end - begin), dst + b);
    });
}

Checkpoint Checkpoint::open(const fs::path& path)
{
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (!fs::exists(status)) throw IoError(quoted(path) + ": no such file or directory");

    Loader loader;
    if (fs::is_directory(status)) {
        addDirectory(loader, path);
    } else if (path.filename().string().ends_with(".index.json")) {
        loader.addIndex(path);
    } else {
        loader.addFile(path);
    }

    std::sort(loader.entries.begin(), loader.entries.end(),
              [](const Entry& a, const Entry& b) { return a.info.name < b.info.name; });
    for (std::size_t i = 1; i < loader.entries.size(); ++i) {
        const TensorInfo& a = loader.entries[i - 1].info;
        const TensorInfo& b = loader.entries[i].info;
        if (a.name == b.name) {
            throw FormatError(quoted(b.file) + ": tensor '" + b.name + "' also appears in " + quoted(a.file));
        }
    }

    Checkpoint checkpoint;
    checkpoint.m_path = path;
    checkpoint.m_files = std::move(loader.files);
    checkpoint.m_tensors.reserve(loader.entries.size());
    checkpoint.m_data.reserve(loader.entries.size());
    for (Entry& e : loader.entries) {
        checkpoint.m_tensors.push_back(std::move(e.info));
        checkpoint.m_data.push_back(e.data);
    }
    return checkpoint;
}

Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

namespace {

std::size_t findTensor(const std::vector<TensorInfo>& tensors, std::string_view name)
{
    const auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                                     [](const TensorInfo& t, std::string_view n) { return t.name < n; });
    if (it == tensors.end() || it->name != name) return tensors.size();
    return static_cast<std::size_t>(it - tensors.begin());
}

}  // namespace

bool Checkpoint::contains(std::string_view name) const { return findTensor(m_tensors, name) < m_tensors.size(); }

const TensorInfo& Checkpoint::info(std::string_view name) const
{
    const std::size_t i = findTensor(m_tensors, name);
    if (i == m_tensors.size()) throw FormatError(quoted(m_path) + ": no tensor named '" + std::string(name) + "'");
    return m_tensors[i];
}

std::span<const std::byte> Checkpoint::raw(std::string_view name) const
{
    const TensorInfo& t = info(name);
    const auto i = static_cast<std::size_t>(&t - m_tensors.data());
    return {m_data[i], static_cast<std::size_t>(t.byteSize)};
}

std::size_t firstNonFinite(DType dtype, const std::byte* src, std::size_t count)
{
    // An all-ones exponent field marks infinity and NaN in every IEEE encoding.
    const auto scan = [&](auto word, auto exponentMask) -> std::size_t {
        using Word = decltype(word);
        for (std::size_t i = 0; i < count; ++i) {
            Word w;
            std::memcpy(&w, src + i * sizeof(Word), sizeof w);
            if ((w & exponentMask) == exponentMask) return i;
        }
        return count;
    };
    switch (dtype) {
    case DType::F32: return scan(std::uint32_t{}, std::uint32_t{0x7f800000u});
    case DType::F16: return scan(std::uint16_t{}, std::uint16_t{0x7c00u});
    case DType::BF16: return scan(std::uint16_t{}, std::uint16_t{0x7f80u});
    }
    return count;
}

void requireFiniteTensor(DType dtype, const std::byte* src, std::size_t count, const std::string& source,
                         const std::string& name)
{
    const std::size_t bad = firstNonFinite(dtype, src, count);
    if (bad == count) return;
    float value = 0.0f;
    convertToFloat(dtype, src + bad * dtypeSize(dtype), 1, &value);
    throw FormatError(quotedText(source) + ": tensor " + quotedText(name) + " holds a non-finite value (" +
                      std::to_string(value) + ") at element " + std::to_string(bad));
}

std::vector<float> Checkpoint::toFloat(std::string_view name) const
{
    const TensorInfo& t = info(name);
    const std::span<const std::byte> bytes = raw(name);
    requireFiniteTensor(t.dtype, bytes.data(), static_cast<std::size_t>(t.elementCount()), t.file.string(), t.name);
    std::vector<float> out(static_cast<std::size_t>(t.elementCount()));
    convertToFloat(t.dtype, bytes.data(), out.size(), out.data());
    return out;
}

RowMatrixF Checkpoint::matrix(std::string_view name) const
{
    const TensorInfo& t = info(name);
    if (t.shape.size() != 1 && t.shape.size() != 2) {
        throw FormatError(quoted(t.file) + ": tensor '" + t.name + "' has shape " + shapeString(t.shape) +
                          ", expected a matrix (rank 1 or 2)");
    }
    const Eigen::Index rows = t.shape.size() == 2 ? t.shape[0] : 1;
    const Eigen::Index cols = t.shape.back();
    const std::span<const std::byte> bytes = raw(name);
    requireFiniteTensor(t.dtype, bytes.data(), static_cast<std::size_t>(t.elementCount()), t.file.string(), t.name);
    RowMatrixF m(rows, cols);
    convertToFloat(t.dtype, bytes.data(), static_cast<std::size_t>(t.elementCount()), m.data());
    return m;
}

RowMatrixF Checkpoint::matrixOnce(std::string_view name) const
{
    RowMatrixF m = matrix(name);
    releaseMappedPages(raw(name));
    return m;
}

std::uint64_t Checkpoint::totalBytes() const
{
    std::uint64_t total = 0;
    for (const TensorInfo& t : m_tensors) total += t.byteSize;
    return total;
}

}  // namespace mdbf::io
