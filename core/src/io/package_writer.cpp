#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "io/hdf5_io.h"
#include "io/package_schema.h"
#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/base/half.h"
#include "mdbf/io/package.h"
#include "mdbf/kernels/factor_apply.h"

namespace mdbf::io {

namespace fs = std::filesystem;

namespace {

// Dense tensors are written in slabs of about this many bytes so a stop request is honoured
// promptly even for a large embedding table.
constexpr std::size_t kSlabBytes = std::size_t{8} << 20;

std::string errnoText() { return std::strerror(errno); }

// The process umask, read without changing it (umask() would race with threads creating files).
mode_t processUmask()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
    }
    return 022;
}

// The temporary file beside the destination. Removed by the destructor unless committed.
class TempFile {
public:
    explicit TempFile(const fs::path& destination) : m_destination(destination)
    {
        fs::path dir = destination.parent_path();
        if (dir.empty()) dir = ".";
        std::string pattern = (dir / temporarySibling(destination, "XXXXXX").filename()).string();
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) throw IoError("'" + destination.string() + "': cannot create a temporary file in '" + dir.string() +
                                  "': " + errnoText());
        // mkstemp creates the file 0600; a package gets the permissions of any newly created file.
        ::fchmod(fd, 0666 & ~processUmask());
        ::close(fd);
        m_path = pattern;
    }
    ~TempFile()
    {
        if (!m_committed) {
            std::error_code ec;
            fs::remove(m_path, ec);
        }
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    const fs::path& path() const { return m_path; }

    /// Flushes the finished file to disk and renames it over the destination.
    void commit()
    {
        syncPath(m_path, O_RDONLY);
        if (::rename(m_path.c_str(), m_destination.c_str()) != 0) {
            throw IoError("cannot rename the finished package into place: " + errnoText());
        }
        m_committed = true;
        // The rename itself is durable only once the directory is synced; failure here is harmless.
        fs::path dir = m_destination.parent_path();
        if (dir.empty()) dir = ".";
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }

private:
    void syncPath(const fs::path& p, int flags) const
    {
        const int fd = ::open(p.c_str(), flags);
        if (fd < 0 || ::fsync(fd) != 0) {
            const std::string reason = errnoText();
            if (fd >= 0) ::close(fd);
            throw IoError("cannot flush the package to disk: " + reason);
        }
        ::close(fd);
    }

    fs::path m_destination;
    fs::path m_path;
    bool m_committed = false;
};

void checkName(const std::string& name, const char* what)
{
    if (name.empty() || name == "." || name.find('/') != std::string::npos) {
        throw InvalidArgument(std::string("package: ") + what + " name '" + name +
                              "' is not usable as an HDF5 link name (empty, '.' or contains '/')");
    }
}

void validateTensor(const std::string& name, DType dtype, std::span<const std::int64_t> shape, std::size_t bytes)
{
    checkName(name, "tensor");
    std::uint64_t expected = dtypeSize(dtype);
    for (const std::int64_t d : shape) {
        if (d < 0) throw InvalidArgument("package: tensor '" + name + "' has a negative dimension");
        expected *= static_cast<std::uint64_t>(d);
    }
    if (bytes != expected) {
        throw InvalidArgument("package: tensor '" + name + "' holds " + std::to_string(bytes) +
                              " bytes, its shape and dtype need " + std::to_string(expected));
    }
}

void validateLayer(const PackageLayer& layer)
{
    checkName(layer.name, "layer");
    if (layer.paths.empty()) throw InvalidArgument("package: layer '" + layer.name + "' has no paths");
    for (const kernels::FactorPath& p : layer.paths) {
        try {
            kernels::validateFactorPath(p);
        } catch (Error& e) {
            e.addContext("package: layer '" + layer.name + "'");
            throw;
        }
        if (p.n() != layer.n() || p.m() != layer.m() || p.k() != layer.k() || p.l() != layer.l()) {
            throw InvalidArgument("package: layer '" + layer.name + "' mixes paths of different shapes");
        }
    }
    if (layer.method == Method::Dbf && layer.l() != 1) {
        throw InvalidArgument("package: layer '" + layer.name + "' is dbf with l = " + std::to_string(layer.l()));
    }
}

void validateForWrite(const Package& pkg)
{
    std::set<std::string> seen;
    for (const PackageTensor& t : pkg.dense) {
        validateTensor(t.name, t.dtype, t.shape, t.data.size());
        if (!seen.insert(t.name).second) throw InvalidArgument("package: tensor '" + t.name + "' appears twice");
    }
    seen.clear();
    for (const PackageLayer& layer : pkg.layers) {
        validateLayer(layer);
        if (!seen.insert(layer.name).second) throw InvalidArgument("package: layer '" + layer.name + "' appears twice");
    }
}

}  // namespace

// The open HDF5 file of a package being written, its two groups, and the progress in bytes.
struct PackageWriter::Impl {
    Impl(const fs::path& target, const RunContext& context) : destination(target), ctx(context), temp(target) {}

    void progress(std::int64_t bytes)
    {
        done += bytes;
        ctx.report("writing", done, total);
        ctx.throwIfStopped();
    }

    void writeRoot(const Package& header)
    {
        using h5::writeAttribute;
        writeAttribute(file.get(), schema::kAttrFormat, std::string(kPackageFormat), "/");
        writeAttribute(file.get(), schema::kAttrVersion, kPackageVersion, "/");
        writeAttribute(file.get(), schema::kAttrProducer, std::string("mdbf ") + MDBF_VERSION, "/");
        writeAttribute(file.get(), schema::kAttrModelBpw, header.modelBpw, "/");
        writeAttribute(file.get(), schema::kAttrFactorizedBpw, header.factorizedBpw, "/");
        h5::writeStringDataset(file.get(), schema::kConfigDataset, header.configJson,
                               std::string("/") + schema::kConfigDataset);
        h5::writeStringDataset(file.get(), schema::kTokenizerDataset, header.tokenizerJson,
                               std::string("/") + schema::kTokenizerDataset);
        h5::writeStringDataset(file.get(), schema::kQuantConfigDataset, header.quantConfigJson,
                               std::string("/") + schema::kQuantConfigDataset);
        progress(0);
        dense = h5::createGroup(file.get(), schema::kDenseGroup, densePath);
        layers = h5::createGroup(file.get(), schema::kLayersGroup, layersPath);
    }

    void writeTensor(const std::string& name, DType dtype, std::span<const std::int64_t> shape,
                     std::span<const std::byte> data)
    {
        const std::string path = densePath + "/" + name;
        const h5::ElementType type = dtype == DType::F32   ? h5::ElementType::F32
                                     : dtype == DType::F16 ? h5::ElementType::F16
                                                           : h5::ElementType::U16;
        std::vector<hsize_t> dims(shape.begin(), shape.end());
        const h5::Handle dataset = h5::createDataset(dense.get(), name, type, dims, path);
        h5::writeAttribute(dataset.get(), schema::kAttrEncoding, std::string(schema::encodingName(dtype)), path);
        if (dims.empty()) {
            h5::writeRows(dataset.get(), type, dims, 0, 1, data.data(), path);
            progress(static_cast<std::int64_t>(data.size()));
            return;
        }
        const std::size_t rowBytes = dims[0] == 0 ? 0 : data.size() / dims[0];
        const hsize_t slabRows = rowBytes == 0 ? dims[0] : std::max<hsize_t>(1, kSlabBytes / rowBytes);
        for (hsize_t row = 0; row < dims[0]; row += slabRows) {
            const hsize_t count = std::min(slabRows, dims[0] - row);
            h5::writeRows(dataset.get(), type, dims, row, count, data.data() + row * rowBytes, path);
            progress(static_cast<std::int64_t>(count * rowBytes));
        }
    }

    void writeSigns(hid_t parent, const char* name, const kernels::PackedSigns& s, const std::string& path)
    {
        const hsize_t dims[2] = {static_cast<hsize_t>(s.rows()), static_cast<hsize_t>(s.wordsPerRow())};
        const h5::Handle dataset = h5::createDataset(parent, name, h5::ElementType::U64, dims, path);
        h5::writeAttribute(dataset.get(), schema::kAttrBitOrder, std::string(schema::kBitOrder), path);
        h5::writeRows(dataset.get(), h5::ElementType::U64, dims, 0, dims[0], s.words().data(), path);
        progress(static_cast<std::int64_t>(8 * s.words().size()));
    }

    void writeEnvelope(hid_t parent, const char* name, const MatrixF& M, const std::string& path)
    {
        // The file is row-major (C order); MatrixF is column-major.
        std::vector<std::uint16_t> bits(static_cast<std::size_t>(M.size()));
        for (Eigen::Index i = 0; i < M.rows(); ++i)
            for (Eigen::Index j = 0; j < M.cols(); ++j)
                bits[static_cast<std::size_t>(i * M.cols() + j)] = floatToHalf(M(i, j));
        const hsize_t dims[2] = {static_cast<hsize_t>(M.rows()), static_cast<hsize_t>(M.cols())};
        const h5::Handle dataset = h5::createDataset(parent, name, h5::ElementType::F16, dims, path);
        h5::writeRows(dataset.get(), h5::ElementType::F16, dims, 0, dims[0], bits.data(), path);
        progress(static_cast<std::int64_t>(2 * bits.size()));
    }

    void writeLayer(const PackageLayer& layer)
    {
        using h5::writeAttribute;
        const std::string path = layersPath + "/" + layer.name;
        const h5::Handle group = h5::createGroup(layers.get(), layer.name, path);
        writeAttribute(group.get(), "n", layer.n(), path);
        writeAttribute(group.get(), "m", layer.m(), path);
        writeAttribute(group.get(), "k", layer.k(), path);
        writeAttribute(group.get(), "l", layer.l(), path);
        writeAttribute(group.get(), "paths", static_cast<std::int64_t>(layer.paths.size()), path);
        writeAttribute(group.get(), "method", std::string(methodName(layer.method)), path);
        writeAttribute(group.get(), "objective", std::string(objectiveName(layer.objective)), path);
        writeAttribute(group.get(), "bpw", layer.bpw, path);
        writeAttribute(group.get(), "rel_error", layer.relError, path);
        for (std::size_t p = 0; p < layer.paths.size(); ++p) {
            const kernels::FactorPath& fp = layer.paths[p];
            const std::string pathName = schema::pathGroupName(p);
            const std::string at = path + "/" + pathName;
            const h5::Handle pg = h5::createGroup(group.get(), pathName, at);
            writeSigns(pg.get(), "sa", fp.sa, at + "/sa");
            writeSigns(pg.get(), "sb", fp.sb, at + "/sb");
            const MatrixF* envelopes[4] = {&fp.A, &fp.Qa, &fp.Qb, &fp.B};
            for (int e = 0; e < 4; ++e) {
                writeEnvelope(pg.get(), schema::kEnvelopeNames[e], *envelopes[e], at + "/" + schema::kEnvelopeNames[e]);
            }
        }
    }

    // Runs one step of the writer with the library lock held, naming the package in errors.
    template <class Step>
    void guarded(Step&& step)
    {
        if (committed) throw InvalidArgument("package '" + destination.string() + "' is already complete");
        const std::lock_guard<std::mutex> lock(h5::libraryMutex());
        try {
            step();
        } catch (const Cancelled&) {
            throw;
        } catch (Error& e) {
            e.addContext("'" + destination.string() + "'");
            throw;
        }
    }

    const std::string densePath = std::string("/") + schema::kDenseGroup;
    const std::string layersPath = std::string("/") + schema::kLayersGroup;
    fs::path destination;
    RunContext ctx;
    TempFile temp;
    h5::Handle file;
    h5::Handle dense;
    h5::Handle layers;
    std::set<std::string> denseNames;
    std::set<std::string> layerNames;
    std::int64_t total = 0;
    std::int64_t done = 0;
    bool committed = false;
};

PackageWriter::PackageWriter(const fs::path& destination, const Package& header, std::int64_t expectedBytes,
                             const RunContext& ctx)
{
    ctx.throwIfStopped();
    const std::lock_guard<std::mutex> lock(h5::libraryMutex());
    h5::silenceLibraryErrors();
    try {
        m_impl = std::make_unique<Impl>(destination, ctx);
        m_impl->total = expectedBytes;
        const h5::Handle fcpl = h5::plistHandle(H5Pcreate(H5P_FILE_CREATE));
        const h5::Handle fapl = h5::plistHandle(H5Pcreate(H5P_FILE_ACCESS));
        if (!fcpl.valid() || !fapl.valid() ||
            H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
            H5Pset_obj_track_times(fcpl.get(), 0) < 0 ||
            H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0) {
            throw IoError("cannot set up the HDF5 file properties");
        }
        const fs::path& temp = m_impl->temp.path();
        m_impl->file = h5::fileHandle(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()));
        if (!m_impl->file.valid()) throw IoError("cannot create the HDF5 file '" + temp.string() + "'");
        m_impl->writeRoot(header);
    } catch (const Cancelled&) {
        closeLocked();
        throw;
    } catch (Error& e) {
        closeLocked();
        e.addContext("'" + destination.string() + "'");
        throw;
    }
}

PackageWriter::~PackageWriter()
{
    if (!m_impl) return;
    const std::lock_guard<std::mutex> lock(h5::libraryMutex());
    closeLocked();
}

void PackageWriter::closeLocked()
{
    if (!m_impl) return;
    // HDF5 handles are closed before the temporary file is removed (Impl's member order).
    m_impl->layers.close();
    m_impl->dense.close();
    m_impl->file.close();
    m_impl.reset();
}

void PackageWriter::addDense(const std::string& name, DType dtype, std::span<const std::int64_t> shape,
                             std::span<const std::byte> data)
{
    m_impl->guarded([&] {
        validateTensor(name, dtype, shape, data.size());
        if (!m_impl->denseNames.insert(name).second) {
            throw InvalidArgument("package: tensor '" + name + "' appears twice");
        }
        m_impl->writeTensor(name, dtype, shape, data);
    });
}

void PackageWriter::addLayer(const PackageLayer& layer)
{
    m_impl->guarded([&] {
        validateLayer(layer);
        if (!m_impl->layerNames.insert(layer.name).second) {
            throw InvalidArgument("package: layer '" + layer.name + "' appears twice");
        }
        m_impl->writeLayer(layer);
    });
}

void PackageWriter::commit()
{
    m_impl->guarded([&] {
        m_impl->ctx.throwIfStopped();
        m_impl->layers.close();
        m_impl->dense.close();
        if (!m_impl->file.close()) throw IoError("cannot finish the HDF5 file '" + m_impl->temp.path().string() + "'");
        m_impl->temp.commit();
        m_impl->committed = true;
    });
}

std::int64_t packageLayerBytes(const PackageLayer& layer)
{
    std::int64_t bytes = 0;
    for (const kernels::FactorPath& p : layer.paths) {
        bytes += static_cast<std::int64_t>(8 * (p.sa.words().size() + p.sb.words().size()));
        bytes += 2 * p.l() * (p.n() + p.m() + 2 * p.k());
    }
    return bytes;
}

std::int64_t PackageTensor::elementCount() const
{
    std::int64_t count = 1;
    for (const std::int64_t d : shape) count *= d;
    return count;
}

void writePackage(const Package& package, const fs::path& destination, const RunContext& ctx)
{
    validateForWrite(package);
    std::int64_t total = 0;
    for (const PackageTensor& t : package.dense) total += static_cast<std::int64_t>(t.data.size());
    for (const PackageLayer& layer : package.layers) total += packageLayerBytes(layer);
    PackageWriter writer(destination, package, total, ctx);
    for (const PackageTensor& t : package.dense) writer.addDense(t.name, t.dtype, t.shape, t.data);
    for (const PackageLayer& layer : package.layers) writer.addLayer(layer);
    writer.commit();
}

}  // namespace mdbf::io
