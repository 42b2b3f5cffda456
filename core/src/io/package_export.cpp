#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/io/package.h"
#include "mdbf/kernels/factor_apply.h"

namespace mdbf::io {

namespace fs = std::filesystem;

namespace {

// A file written under a temporary name and renamed over `path` by commit(); removed otherwise.
class AtomicFile {
public:
    explicit AtomicFile(fs::path path)
        : m_path(std::move(path)),
          m_temp(temporarySibling(m_path, std::to_string(::getpid()))),
          m_out(m_temp, std::ios::binary | std::ios::trunc)
    {
        if (!m_out) throw IoError("'" + m_path.string() + "': cannot create file");
    }
    ~AtomicFile()
    {
        if (!m_committed) {
            m_out.close();
            std::error_code ec;
            fs::remove(m_temp, ec);
        }
    }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, std::size_t bytes)
    {
        m_out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
        if (!m_out) throw IoError("'" + m_path.string() + "': write failed");
    }

    void commit()
    {
        m_out.close();
        if (!m_out) throw IoError("'" + m_path.string() + "': write failed");
        std::error_code ec;
        fs::rename(m_temp, m_path, ec);
        if (ec) throw IoError("'" + m_path.string() + "': cannot rename into place: " + ec.message());
        m_committed = true;
    }

private:
    fs::path m_path;
    fs::path m_temp;
    std::ofstream m_out;
    bool m_committed = false;
};

void writeText(const fs::path& path, const std::string& text)
{
    AtomicFile file(path);
    file.write(text.data(), text.size());
    file.commit();
}

}  // namespace

void exportSafetensors(const Package& package, const fs::path& directory, const RunContext& ctx)
{
    std::error_code ec;
    fs::create_directories(directory, ec);
    if (ec || !fs::is_directory(directory)) {
        throw IoError("'" + directory.string() + "': cannot create directory" + (ec ? ": " + ec.message() : ""));
    }
    std::set<std::string> names;
    for (const PackageTensor& t : package.dense) names.insert(t.name);

    // The header lists every tensor with its byte range; dense tensors first, then the layers.
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}, {"source", "mdbf deployment package (factorized layers reconstructed)"}};
    std::uint64_t offset = 0;
    for (const PackageTensor& t : package.dense) {
        header[t.name] = {{"dtype", std::string(dtypeName(t.dtype))},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + t.data.size()}}};
        offset += t.data.size();
    }
    for (const PackageLayer& layer : package.layers) {
        const std::string name = layer.name + ".weight";
        if (layer.paths.empty()) throw InvalidArgument("export: layer '" + layer.name + "' has no paths");
        if (!names.insert(name).second) throw InvalidArgument("export: tensor '" + name + "' is stored twice");
        const std::uint64_t bytes = 4 * static_cast<std::uint64_t>(layer.n() * layer.m());
        header[name] = {{"dtype", "F32"}, {"shape", {layer.n(), layer.m()}}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - (text.size() % 8)) % 8, ' ');  // keeps the data 8-byte aligned

    const std::int64_t total = static_cast<std::int64_t>(package.dense.size() + package.layers.size());
    std::int64_t done = 0;
    AtomicFile weights(directory / "model.safetensors");
    const std::uint64_t headerSize = text.size();
    unsigned char sizeBytes[8];
    for (int i = 0; i < 8; ++i) sizeBytes[i] = static_cast<unsigned char>(headerSize >> (8 * i));
    weights.write(sizeBytes, 8);
    weights.write(text.data(), text.size());
    for (const PackageTensor& t : package.dense) {
        ctx.throwIfStopped();
        weights.write(t.data.data(), t.data.size());
        ctx.report("exporting", ++done, total);
    }
    for (const PackageLayer& layer : package.layers) {
        ctx.throwIfStopped();
        RowMatrixF W = kernels::reconstructDense(layer.paths.front());
        for (std::size_t p = 1; p < layer.paths.size(); ++p) W += kernels::reconstructDense(layer.paths[p]);
        weights.write(W.data(), sizeof(float) * static_cast<std::size_t>(W.size()));
        ctx.report("exporting", ++done, total);
    }
    ctx.throwIfStopped();
    writeText(directory / "config.json", package.configJson);
    writeText(directory / "tokenizer.json", package.tokenizerJson);
    weights.commit();
}

}  // namespace mdbf::io
