#include <cmath>
#include <fstream>
#include <limits>
#include <set>

#include "io/hdf5_io.h"
#include "io/package_schema.h"
#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/half.h"
#include "mdbf/io/package.h"

namespace mdbf::io {

namespace fs = std::filesystem;

namespace {

// Sizes beyond these cannot come from a real model; rejecting them early keeps a damaged header
// from turning into a huge allocation.
constexpr std::int64_t kMaxDimension = std::int64_t{1} << 31;
constexpr std::int64_t kMaxPaths = 1024;

class ContentReader {
public:
    ContentReader(hid_t file, std::uint64_t fileSize, const RunContext& ctx)
        : m_file(file), m_fileSize(fileSize), m_ctx(ctx)
    {
    }

    Package read()
    {
        Package pkg;
        const std::string format = h5::readStringAttribute(m_file, schema::kAttrFormat, "/");
        if (format != kPackageFormat) {
            throw FormatError("root attribute 'format' is '" + format + "', expected '" + std::string(kPackageFormat) +
                              "'");
        }
        const std::int64_t version = h5::readIntAttribute(m_file, schema::kAttrVersion, "/");
        if (version != kPackageVersion) {
            throw FormatError("unsupported package format_version " + std::to_string(version) +
                              " (this build reads version " + std::to_string(kPackageVersion) + ")");
        }
        h5::requireOnlyChildren(m_file, "/",
                                {schema::kConfigDataset, schema::kTokenizerDataset, schema::kQuantConfigDataset,
                                 schema::kDenseGroup, schema::kLayersGroup});
        pkg.modelBpw = h5::readDoubleAttribute(m_file, schema::kAttrModelBpw, "/");
        pkg.factorizedBpw = h5::readDoubleAttribute(m_file, schema::kAttrFactorizedBpw, "/");
        pkg.configJson = h5::readStringDataset(m_file, schema::kConfigDataset, std::string("/") + schema::kConfigDataset);
        pkg.tokenizerJson =
            h5::readStringDataset(m_file, schema::kTokenizerDataset, std::string("/") + schema::kTokenizerDataset);
        pkg.quantConfigJson =
            h5::readStringDataset(m_file, schema::kQuantConfigDataset, std::string("/") + schema::kQuantConfigDataset);

        const std::string densePath = std::string("/") + schema::kDenseGroup;
        const h5::Handle dense = h5::openGroup(m_file, schema::kDenseGroup, densePath);
        for (const std::string& name : h5::childNames(dense.get(), densePath)) {
            pkg.dense.push_back(readTensor(dense.get(), name, densePath + "/" + name));
        }
        const std::string layersPath = std::string("/") + schema::kLayersGroup;
        const h5::Handle layers = h5::openGroup(m_file, schema::kLayersGroup, layersPath);
        for (const std::string& name : h5::childNames(layers.get(), layersPath)) {
            pkg.layers.push_back(readLayer(layers.get(), name, layersPath + "/" + name));
        }
        return pkg;
    }

private:
    void progress(std::uint64_t bytes)
    {
        m_done += bytes;
        m_ctx.report("reading", static_cast<std::int64_t>(std::min(m_done, m_fileSize)),
                     static_cast<std::int64_t>(m_fileSize));
        m_ctx.throwIfStopped();
    }

    // Rejects a claimed data size the file cannot hold before anything is allocated for it.
    // Takes a double so that absurd attribute values cannot overflow the estimate.
    void requirePlausible(double bytes, const std::string& path) const
    {
        if (bytes > static_cast<double>(m_fileSize)) {
            throw FormatError("'" + path + "' claims " + std::to_string(static_cast<long double>(bytes)) +
                              " bytes of data, more than the file's " + std::to_string(m_fileSize));
        }
    }

    PackageTensor readTensor(hid_t parent, const std::string& name, const std::string& path)
    {
        const h5::Handle dataset = h5::openDataset(parent, name, path);
        PackageTensor t;
        t.name = name;
        const std::string encoding = h5::readStringAttribute(dataset.get(), schema::kAttrEncoding, path);
        h5::ElementType type;
        if (encoding == schema::encodingName(DType::F32)) {
            t.dtype = DType::F32;
            type = h5::ElementType::F32;
        } else if (encoding == schema::encodingName(DType::F16)) {
            t.dtype = DType::F16;
            type = h5::ElementType::F16;
        } else if (encoding == schema::encodingName(DType::BF16)) {
            t.dtype = DType::BF16;
            type = h5::ElementType::U16;
        } else {
            throw FormatError("'" + path + "' has unknown encoding '" + encoding +
                              "' (expected float32, float16 or bfloat16)");
        }
        h5::requireType(dataset.get(), type, path);
        std::uint64_t count = 1;
        double approxCount = 1.0;
        for (const hsize_t d : h5::datasetDims(dataset.get(), path)) {
            if (d > static_cast<hsize_t>(kMaxDimension)) throw FormatError("'" + path + "' has an implausible shape");
            t.shape.push_back(static_cast<std::int64_t>(d));
            approxCount *= static_cast<double>(d);
            count *= d;  // exact once approxCount has passed the plausibility check below
        }
        requirePlausible(approxCount * static_cast<double>(dtypeSize(t.dtype)), path);
        const std::uint64_t bytes = count * dtypeSize(t.dtype);
        t.data.resize(bytes);
        h5::readAll(dataset.get(), type, t.data.data(), bytes, path);
        requireFiniteTensor(t.dtype, t.data.data(), static_cast<std::size_t>(count), path, name);
        progress(bytes);
        return t;
    }

    std::int64_t readDimension(hid_t group, const char* name, std::int64_t minimum, std::int64_t maximum,
                               const std::string& path) const
    {
        const std::int64_t v = h5::readIntAttribute(group, name, path);
        if (v < minimum || v > maximum) {
            throw FormatError("attribute '" + std::string(name) + "' of '" + path + "' is " + std::to_string(v) +
                              ", expected " + std::to_string(minimum) + ".." + std::to_string(maximum));
        }
        return v;
    }

    kernels::PackedSigns readSigns(hid_t parent, const char* name, std::int64_t rows, std::int64_t cols,
                                   const std::string& path)
    {
        const h5::Handle dataset = h5::openDataset(parent, name, path);
        const std::string order = h5::readStringAttribute(dataset.get(), schema::kAttrBitOrder, path);
        if (order != schema::kBitOrder) throw FormatError("'" + path + "' declares an unknown bit_order '" + order + "'");
        h5::requireType(dataset.get(), h5::ElementType::U64, path);
        kernels::PackedSigns signs(rows, cols);
        const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(signs.wordsPerRow())};
        const std::vector<hsize_t> actual = h5::datasetDims(dataset.get(), path);
        if (actual.size() != 2 || actual[0] != dims[0] || actual[1] != dims[1]) {
            std::string shape;
            for (std::size_t i = 0; i < actual.size(); ++i) {
                if (i > 0) shape += 'x';
                shape += std::to_string(actual[i]);
            }
            throw FormatError("'" + path + "' holds words of shape " + (shape.empty() ? "scalar" : shape) + ", but " +
                              std::to_string(rows) + "x" + std::to_string(cols) + " signs need " +
                              std::to_string(dims[0]) + "x" + std::to_string(dims[1]) + " uint64 words");
        }
        const std::uint64_t bytes = 8 * signs.words().size();
        h5::readAll(dataset.get(), h5::ElementType::U64, signs.words().data(), bytes, path);
        const int used = static_cast<int>(cols % kernels::PackedSigns::kWordBits);
        if (used != 0) {
            const std::uint64_t padding = ~std::uint64_t{0} << used;
            for (std::int64_t i = 0; i < rows; ++i) {
                if (signs.row(i)[signs.wordsPerRow() - 1] & padding) {
                    throw FormatError("'" + path + "' has padding bits set in row " + std::to_string(i));
                }
            }
        }
        progress(bytes);
        return signs;
    }

    MatrixF readEnvelope(hid_t parent, const char* name, std::int64_t rows, std::int64_t cols, const std::string& path)
    {
        const h5::Handle dataset = h5::openDataset(parent, name, path);
        h5::requireType(dataset.get(), h5::ElementType::F16, path);
        const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
        h5::requireDims(dataset.get(), dims, path);
        std::vector<std::uint16_t> bits(static_cast<std::size_t>(rows * cols));
        h5::readAll(dataset.get(), h5::ElementType::F16, bits.data(), 2 * bits.size(), path);
        MatrixF M(rows, cols);
        for (std::int64_t i = 0; i < rows; ++i) {
            for (std::int64_t j = 0; j < cols; ++j) {
                const float v = halfToFloat(bits[static_cast<std::size_t>(i * cols + j)]);
                if (!std::isfinite(v)) {
                    throw FormatError("'" + path + "' holds a non-finite value at (" + std::to_string(i) + ", " +
                                      std::to_string(j) + ")");
                }
                M(i, j) = v;
            }
        }
        progress(2 * bits.size());
        return M;
    }

    PackageLayer readLayer(hid_t parent, const std::string& name, const std::string& path)
    {
        const h5::Handle group = h5::openGroup(parent, name, path);
        PackageLayer layer;
        layer.name = name;
        const std::int64_t n = readDimension(group.get(), "n", 1, kMaxDimension, path);
        const std::int64_t m = readDimension(group.get(), "m", 1, kMaxDimension, path);
        const std::int64_t k = readDimension(group.get(), "k", 1, std::min(n, m), path);
        const std::int64_t l = readDimension(group.get(), "l", 1, k, path);
        const std::int64_t paths = readDimension(group.get(), "paths", 1, kMaxPaths, path);
        try {
            layer.method = parseMethod(h5::readStringAttribute(group.get(), "method", path));
            layer.objective = parseObjective(h5::readStringAttribute(group.get(), "objective", path));
        } catch (const InvalidArgument& e) {
            throw FormatError("'" + path + "': " + e.what());
        }
        if (layer.method == Method::Dbf && l != 1) {
            throw FormatError("'" + path + "' is a dbf layer with l = " + std::to_string(l) + " (dbf requires l = 1)");
        }
        layer.bpw = h5::readDoubleAttribute(group.get(), "bpw", path);
        layer.relError = h5::readDoubleAttribute(group.get(), "rel_error", path);

        // Sign words and envelopes of all paths, checked against the file size before allocating.
        const double N = static_cast<double>(n), M = static_cast<double>(m), K = static_cast<double>(k);
        const double perPath = 8.0 * (N * std::ceil(K / 64.0) + K * std::ceil(M / 64.0)) +
                               2.0 * static_cast<double>(l) * (N + M + 2.0 * K);
        requirePlausible(perPath * static_cast<double>(paths), path);

        std::set<std::string> expected;
        for (std::int64_t p = 0; p < paths; ++p) expected.insert(schema::pathGroupName(static_cast<std::size_t>(p)));
        for (const std::string& child : h5::childNames(group.get(), path)) {
            if (expected.count(child) == 0) {
                throw FormatError("'" + path + "' holds an unexpected object '" + child + "' (attribute paths = " +
                                  std::to_string(paths) + ")");
            }
        }
        for (std::int64_t p = 0; p < paths; ++p) {
            const std::string pathName = schema::pathGroupName(static_cast<std::size_t>(p));
            const std::string at = path + "/" + pathName;
            const h5::Handle pg = h5::openGroup(group.get(), pathName, at);
            h5::requireOnlyChildren(pg.get(), at,
                                    {"sa", "sb", schema::kEnvelopeNames[0], schema::kEnvelopeNames[1],
                                     schema::kEnvelopeNames[2], schema::kEnvelopeNames[3]});
            kernels::FactorPath fp;
            fp.sa = readSigns(pg.get(), "sa", n, k, at + "/sa");
            fp.sb = readSigns(pg.get(), "sb", k, m, at + "/sb");
            fp.A = readEnvelope(pg.get(), "A", n, l, at + "/A");
            fp.Qa = readEnvelope(pg.get(), "Qa", k, l, at + "/Qa");
            fp.Qb = readEnvelope(pg.get(), "Qb", k, l, at + "/Qb");
            fp.B = readEnvelope(pg.get(), "B", m, l, at + "/B");
            layer.paths.push_back(std::move(fp));
        }
        return layer;
    }

    hid_t m_file;
    std::uint64_t m_fileSize;
    const RunContext& m_ctx;
    std::uint64_t m_done = 0;
};

}  // namespace

Package readPackage(const fs::path& path, const RunContext& ctx)
{
    std::error_code ec;
    const std::uint64_t fileSize = fs::file_size(path, ec);
    if (ec) throw IoError("'" + path.string() + "': cannot open package: " + ec.message());
    if (!std::ifstream(path, std::ios::binary)) throw IoError("'" + path.string() + "': cannot open package for reading");
    const std::lock_guard<std::mutex> lock(h5::libraryMutex());
    h5::silenceLibraryErrors();
    const h5::Handle fapl = h5::plistHandle(H5Pcreate(H5P_FILE_ACCESS));
    if (!fapl.valid() || H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0) {
        throw IoError("'" + path.string() + "': cannot set up the HDF5 file properties");
    }
    const h5::Handle file = h5::fileHandle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    if (!file.valid()) {
        throw FormatError("'" + path.string() + "': not an HDF5 file, or truncated or damaged");
    }
    try {
        return ContentReader(file.get(), fileSize, ctx).read();
    } catch (const Cancelled&) {
        throw;
    } catch (Error& e) {
        e.addContext("'" + path.string() + "'");
        throw;
    }
}

ModelConfig packageModelConfig(const Package& package, const std::string& source)
{
    const std::string where = source + ":/config.json";
    return ModelConfig::fromJson(parseJsonText(package.configJson, where), where);
}

}  // namespace mdbf::io
