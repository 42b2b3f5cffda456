// A damaged or foreign package is refused with a FormatError that names the file and the HDF5
// object, never a crash: each case edits a valid package with the HDF5 C API.

#include <hdf5.h>

#include <fstream>
#include <functional>
#include <limits>

#include <gtest/gtest.h>

#include "cli_runner.h"
#include "deploy_test_util.h"
#include "error_expect.h"
#include "mdbf/base/error.h"
#include "mdbf/io/package.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

namespace fs = std::filesystem;

const std::string kLayer = "/layers/model.layers.0.self_attn.q_proj";  // 70×65, k = 19, l = 3

class PackageErrors : public ::testing::Test {
protected:
    void SetUp() override
    {
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
        io::writePackage(test::syntheticPackage(), path());
    }

    fs::path path() const { return m_dir / "pkg.h5"; }

    // Opens the package read-write, lets `edit` change it, closes it.
    void edit(const std::function<void(hid_t)>& fn)
    {
        const hid_t file = H5Fopen(path().c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        ASSERT_GE(file, 0);
        fn(file);
        ASSERT_GE(H5Fclose(file), 0);
    }

    void expectFormatError(const std::string& fragment)
    {
        try {
            io::readPackage(path());
            ADD_FAILURE() << "the damaged package was accepted";
        } catch (const FormatError& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find(path().string()), std::string::npos) << message;
            EXPECT_NE(message.find(fragment), std::string::npos) << message;
        }
    }

    test::TempDir m_dir;
};

void writeIntAttribute(hid_t object, const char* name, std::int64_t value)
{
    if (H5Aexists(object, name) > 0) H5Adelete(object, name);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(object, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &value);
    H5Aclose(attr);
    H5Sclose(space);
}

void writeStringAttribute(hid_t object, const char* name, const std::string& value)
{
    if (H5Aexists(object, name) > 0) H5Adelete(object, name);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size() + 1);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, value.c_str());
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

// Replaces a dataset by one of another type and shape (filled with `fill` bytes), keeping its
// attributes' meaning by copying the bit order when it is a sign dataset.
void replaceDataset(hid_t file, const std::string& path, hid_t type, std::vector<hsize_t> dims, unsigned char fill = 0)
{
    H5Ldelete(file, path.c_str(), H5P_DEFAULT);
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t dset = H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t count = 1;
    for (const hsize_t d : dims) count *= d;
    std::vector<unsigned char> data(count * H5Tget_size(type), fill);
    H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    writeStringAttribute(dset, "bit_order",
                         "row-major; each row is ceil(cols/64) little-endian uint64 words; entry (i, j) is bit j mod 64 "
                         "(least significant bit first) of word j div 64 of row i; set bit = -1, clear bit = +1; "
                         "padding bits past cols are clear");
    H5Dclose(dset);
    H5Sclose(space);
}

TEST_F(PackageErrors, MissingFileIsAnIoError) { EXPECT_THROW(io::readPackage(m_dir / "absent.h5"), IoError); }

TEST_F(PackageErrors, NotHdf5)
{
    std::ofstream(path(), std::ios::binary | std::ios::trunc) << "{\"this\": \"is json\"}";
    expectFormatError("not an HDF5 file");
}

TEST_F(PackageErrors, TruncatedFile)
{
    const std::string bytes = test::slurp(path());
    for (const double fraction : {0.5, 0.9, 0.999}) {
        std::ofstream(path(), std::ios::binary | std::ios::trunc)
            << bytes.substr(0, static_cast<std::size_t>(static_cast<double>(bytes.size()) * fraction));
        SCOPED_TRACE(fraction);
        expectFormatError("");
    }
}

TEST_F(PackageErrors, MissingGroup)
{
    edit([](hid_t f) { H5Ldelete(f, "layers", H5P_DEFAULT); });
    expectFormatError("missing group '/layers'");
}

TEST_F(PackageErrors, MissingPathGroup)
{
    edit([](hid_t f) { H5Ldelete(f, "/layers/model.layers.10.mlp.down_proj/path1", H5P_DEFAULT); });
    expectFormatError("missing group '/layers/model.layers.10.mlp.down_proj/path1'");
}

TEST_F(PackageErrors, MissingStringDataset)
{
    edit([](hid_t f) { H5Ldelete(f, "tokenizer.json", H5P_DEFAULT); });
    expectFormatError("missing dataset '/tokenizer.json'");
}

TEST_F(PackageErrors, MissingEnvelope)
{
    edit([](hid_t f) { H5Ldelete(f, (kLayer + "/path0/Qb").c_str(), H5P_DEFAULT); });
    expectFormatError("missing dataset '" + kLayer + "/path0/Qb'");
}

TEST_F(PackageErrors, MissingLayerAttribute)
{
    edit([](hid_t f) {
        const hid_t g = H5Gopen2(f, kLayer.c_str(), H5P_DEFAULT);
        H5Adelete(g, "k");
        H5Gclose(g);
    });
    expectFormatError("'" + kLayer + "' has no attribute 'k'");
}

TEST_F(PackageErrors, MissingRootAttribute)
{
    edit([](hid_t f) { H5Adelete(f, "format"); });
    expectFormatError("has no attribute 'format'");
}

TEST_F(PackageErrors, WrongFormatName)
{
    edit([](hid_t f) { writeStringAttribute(f, "format", "something-else"); });
    expectFormatError("'something-else'");
}

TEST_F(PackageErrors, UnknownVersion)
{
    edit([](hid_t f) { writeIntAttribute(f, "format_version", 2); });
    expectFormatError("unsupported package format_version 2");
}

TEST_F(PackageErrors, AttributeOfWrongType)
{
    edit([](hid_t f) {
        const hid_t g = H5Gopen2(f, kLayer.c_str(), H5P_DEFAULT);
        writeStringAttribute(g, "n", "seventy");
        H5Gclose(g);
    });
    expectFormatError("attribute 'n' of '" + kLayer + "' is not an integer");
}

TEST_F(PackageErrors, InconsistentDimensions)
{
    edit([](hid_t f) {
        const hid_t g = H5Gopen2(f, kLayer.c_str(), H5P_DEFAULT);
        writeIntAttribute(g, "l", 20);  // l > k
        H5Gclose(g);
    });
    expectFormatError("attribute 'l' of '" + kLayer + "' is 20");
}

TEST_F(PackageErrors, UnknownMethod)
{
    edit([](hid_t f) {
        const hid_t g = H5Gopen2(f, kLayer.c_str(), H5P_DEFAULT);
        writeStringAttribute(g, "method", "svd");
        H5Gclose(g);
    });
    expectFormatError(kLayer);
}

TEST_F(PackageErrors, PackedBitsShorterThanNk)
{
    // 70×19 signs need 70 rows of one word; 69 rows cover fewer than n·k bits.
    edit([](hid_t f) { replaceDataset(f, kLayer + "/path0/sa", H5T_STD_U64LE, {69, 1}); });
    expectFormatError("'" + kLayer + "/path0/sa' holds words of shape 69x1, but 70x19 signs need 70x1 uint64 words");
}

TEST_F(PackageErrors, PackedWordsPerRowTooFew)
{
    // sb is 19×65: two words per row.
    edit([](hid_t f) { replaceDataset(f, kLayer + "/path0/sb", H5T_STD_U64LE, {19, 1}); });
    expectFormatError("19x65 signs need 19x2 uint64 words");
}

TEST_F(PackageErrors, SignsOfWrongDatatype)
{
    edit([](hid_t f) { replaceDataset(f, kLayer + "/path0/sa", H5T_STD_U32LE, {70, 2}); });
    expectFormatError("'" + kLayer + "/path0/sa' has the wrong datatype, expected little-endian uint64");
}

TEST_F(PackageErrors, PaddingBitsSet)
{
    // All bits set: columns 19..63 of each row are padding and must be clear.
    edit([](hid_t f) { replaceDataset(f, kLayer + "/path0/sa", H5T_STD_U64LE, {70, 1}, 0xff); });
    expectFormatError("'" + kLayer + "/path0/sa' has padding bits set in row 0");
}

TEST_F(PackageErrors, EnvelopeOfWrongDatatype)
{
    edit([](hid_t f) { replaceDataset(f, kLayer + "/path0/A", H5T_IEEE_F32LE, {70, 3}); });
    expectFormatError("'" + kLayer + "/path0/A' has the wrong datatype, expected little-endian float16");
}

TEST_F(PackageErrors, EnvelopeOfWrongShape)
{
    edit([](hid_t f) { replaceDataset(f, kLayer + "/path0/B", H5T_STD_U16LE, {65, 3}); });
    expectFormatError("'" + kLayer + "/path0/B' has the wrong datatype");
    edit([](hid_t f) {
        const hid_t a = H5Dopen2(f, (kLayer + "/path0/A").c_str(), H5P_DEFAULT);
        const hid_t type = H5Dget_type(a);
        H5Dclose(a);
        replaceDataset(f, kLayer + "/path0/B", type, {64, 3});
        H5Tclose(type);
    });
    expectFormatError("'" + kLayer + "/path0/B' has shape [64, 3], expected [65, 3]");
}

TEST_F(PackageErrors, NonFiniteEnvelope)
{
    edit([](hid_t f) {
        const hid_t d = H5Dopen2(f, (kLayer + "/path0/Qa").c_str(), H5P_DEFAULT);
        std::vector<std::uint16_t> bits(19 * 3, 0x3c00);
        bits[5] = 0x7e00;  // NaN
        const hid_t type = H5Dget_type(d);  // the file's float16 type: the bits are written unconverted
        H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits.data());
        H5Tclose(type);
        H5Dclose(d);
    });
    expectFormatError("'" + kLayer + "/path0/Qa' holds a non-finite value at (1, 2)");
}

TEST_F(PackageErrors, UnexpectedObjectInLayer)
{
    edit([](hid_t f) { H5Gclose(H5Gcreate2(f, (kLayer + "/path7").c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)); });
    expectFormatError("unexpected object 'path7'");
}

TEST_F(PackageErrors, DenseEncodingMismatch)
{
    edit([](hid_t f) {
        const hid_t d = H5Dopen2(f, "/dense/model.norm.weight", H5P_DEFAULT);
        writeStringAttribute(d, "encoding", "bfloat16");  // the data is float16
        H5Dclose(d);
    });
    expectFormatError("'/dense/model.norm.weight' has the wrong datatype, expected little-endian uint16");
    edit([](hid_t f) {
        const hid_t d = H5Dopen2(f, "/dense/model.norm.weight", H5P_DEFAULT);
        writeStringAttribute(d, "encoding", "int4");
        H5Dclose(d);
    });
    expectFormatError("unknown encoding 'int4'");
}

TEST_F(PackageErrors, DenseWithoutEncoding)
{
    edit([](hid_t f) {
        const hid_t d = H5Dopen2(f, "/dense/lm_head.weight", H5P_DEFAULT);
        H5Adelete(d, "encoding");
        H5Dclose(d);
    });
    expectFormatError("'/dense/lm_head.weight' has no attribute 'encoding'");
}

// ---- a package is self-contained and holds only what the schema names -----------------------

TEST_F(PackageErrors, ExternalRawStorageIsRefused)
{
    // A dense tensor whose values live in another file: HDF5 would read that file as weights.
    const fs::path outside = m_dir / "outside.bin";
    test::writeTextFile(outside, std::string(37 * 13 * 4, '\x01'));
    edit([&](hid_t f) {
        H5Ldelete(f, "/dense/lm_head.weight", H5P_DEFAULT);
        const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_external(dcpl, outside.c_str(), 0, 37 * 13 * 4);
        const hsize_t dims[2] = {37, 13};
        const hid_t space = H5Screate_simple(2, dims, nullptr);
        const hid_t d = H5Dcreate2(f, "/dense/lm_head.weight", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        writeStringAttribute(d, "encoding", "float32");
        H5Dclose(d);
        H5Sclose(space);
        H5Pclose(dcpl);
    });
    expectFormatError("'/dense/lm_head.weight' keeps its data in an external file");
}

TEST_F(PackageErrors, ExternalAndSoftLinksAreRefused)
{
    edit([](hid_t f) {
        H5Ldelete(f, "/dense/model.norm.weight", H5P_DEFAULT);
        H5Lcreate_external("other.h5", "/dense/model.norm.weight", f, "/dense/model.norm.weight", H5P_DEFAULT,
                           H5P_DEFAULT);
    });
    expectFormatError("'/dense/model.norm.weight' is an external or user-defined link");
    io::writePackage(test::syntheticPackage(), path());
    edit([](hid_t f) {
        H5Ldelete(f, (kLayer + "/path0/sb").c_str(), H5P_DEFAULT);
        H5Lcreate_soft((kLayer + "/path0/sa").c_str(), f, (kLayer + "/path0/sb").c_str(), H5P_DEFAULT, H5P_DEFAULT);
    });
    expectFormatError("'" + kLayer + "/path0/sb' is a soft link");
}

TEST_F(PackageErrors, ObjectsTheSchemaDoesNotNameAreRefused)
{
    // A hard link from a path group back up to /layers would make the tree a cycle.
    edit([](hid_t f) { H5Lcreate_hard(f, "/layers", f, (kLayer + "/path0/loop").c_str(), H5P_DEFAULT, H5P_DEFAULT); });
    expectFormatError("'" + kLayer + "/path0' holds an unexpected object 'loop'");
    io::writePackage(test::syntheticPackage(), path());
    edit([](hid_t f) {
        const hsize_t dims[1] = {4};
        const hid_t space = H5Screate_simple(1, dims, nullptr);
        H5Dclose(H5Dcreate2(f, (kLayer + "/path0/extra").c_str(), H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT));
        H5Sclose(space);
    });
    expectFormatError("unexpected object 'extra'");
    io::writePackage(test::syntheticPackage(), path());
    edit([](hid_t f) { H5Gclose(H5Gcreate2(f, "/notes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)); });
    expectFormatError("'/' holds an unexpected object 'notes'");
}

TEST_F(PackageErrors, NonFiniteDenseTensorIsRefused)
{
    edit([](hid_t f) {
        const hid_t d = H5Dopen2(f, "/dense/lm_head.weight", H5P_DEFAULT);
        std::vector<float> values(37 * 13, 0.5f);
        values[20] = std::numeric_limits<float>::infinity();
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
        H5Dclose(d);
    });
    expectFormatError("tensor 'lm_head.weight' holds a non-finite value (inf) at element 20");
}

}  // namespace
}  // namespace mdbf
