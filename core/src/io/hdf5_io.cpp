#include "io/hdf5_io.h"

#include <algorithm>
#include <bit>
#include <mutex>

#include "mdbf/base/error.h"

namespace mdbf::io::h5 {

static_assert(std::endian::native == std::endian::little,
              "the package stores little-endian data and writes it straight from memory");

namespace {

std::string dimsText(std::span<const hsize_t> dims)
{
    std::string text = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
    return text + "]";
}

[[noreturn]] void writeFailed(const std::string& what, const std::string& path)
{
    throw IoError("cannot " + what + " '" + path + "'");
}

Handle requireHandle(Handle h, const std::string& what, const std::string& path)
{
    if (!h.valid()) writeFailed(what, path);
    return h;
}

Handle fixedStringType(std::size_t size)
{
    Handle type = datatypeHandle(H5Tcopy(H5T_C_S1));
    if (!type.valid() || H5Tset_size(type.get(), size) < 0 || H5Tset_strpad(type.get(), H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
        throw IoError("cannot create an HDF5 string type of " + std::to_string(size) + " bytes");
    }
    return type;
}

Handle scalarSpace()
{
    Handle space = dataspaceHandle(H5Screate(H5S_SCALAR));
    if (!space.valid()) throw IoError("cannot create an HDF5 dataspace");
    return space;
}

void writeAttributeRaw(hid_t object, const char* name, hid_t type, const void* value, const std::string& path)
{
    const Handle space = scalarSpace();
    const Handle attr = attributeHandle(H5Acreate2(object, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!attr.valid() || H5Awrite(attr.get(), type, value) < 0) {
        writeFailed("write attribute '" + std::string(name) + "' of", path);
    }
}

// Reads a string held by a dataset or an attribute with type `type`; `readFn` performs the read
// into the buffer with the given memory type.
template <typename ReadFn>
std::string readString(hid_t type, const std::string& what, ReadFn readFn)
{
    if (H5Tget_class(type) != H5T_STRING) throw FormatError(what + " is not a string");
    if (H5Tis_variable_str(type) > 0) {
        const Handle mem = datatypeHandle(H5Tcopy(H5T_C_S1));
        if (!mem.valid() || H5Tset_size(mem.get(), H5T_VARIABLE) < 0) throw FormatError("cannot read " + what);
        char* ptr = nullptr;
        if (readFn(mem.get(), static_cast<void*>(&ptr)) < 0) throw FormatError("cannot read " + what);
        std::string text = ptr ? std::string(ptr) : std::string();
        H5free_memory(ptr);
        return text;
    }
    const std::size_t size = H5Tget_size(type);
    if (size == 0) throw FormatError(what + " has a string type of size 0");
    const Handle mem = datatypeHandle(H5Tcopy(type));
    std::string text(size, '\0');
    if (!mem.valid() || readFn(mem.get(), static_cast<void*>(text.data())) < 0) {
        throw FormatError("cannot read " + what);
    }
    while (!text.empty() && text.back() == '\0') text.pop_back();
    return text;
}

Handle attributeChecked(hid_t object, const char* name, const std::string& path)
{
    if (H5Aexists(object, name) <= 0) {
        throw FormatError("'" + path + "' has no attribute '" + name + "'");
    }
    Handle attr = attributeHandle(H5Aopen(object, name, H5P_DEFAULT));
    if (!attr.valid()) throw FormatError("cannot open attribute '" + std::string(name) + "' of '" + path + "'");
    const Handle space = dataspaceHandle(H5Aget_space(attr.get()));
    if (!space.valid() || H5Sget_simple_extent_npoints(space.get()) != 1) {
        throw FormatError("attribute '" + std::string(name) + "' of '" + path + "' is not a single value");
    }
    return attr;
}

// Objects carry no modification times, so the same content always gives the same file.
Handle untimedDatasetProperties(const std::string& path)
{
    Handle dcpl = plistHandle(H5Pcreate(H5P_DATASET_CREATE));
    if (!dcpl.valid() || H5Pset_obj_track_times(dcpl.get(), 0) < 0) writeFailed("set up dataset", path);
    return dcpl;
}

hid_t predefinedType(ElementType type)
{
    switch (type) {
    case ElementType::U64: return H5T_STD_U64LE;
    case ElementType::U16: return H5T_STD_U16LE;
    case ElementType::F32: return H5T_IEEE_F32LE;
    case ElementType::F16: break;
    }
    return H5I_INVALID_HID;
}

}  // namespace

std::mutex& libraryMutex()
{
    static std::mutex mutex;
    return mutex;
}

void silenceLibraryErrors()
{
    // A thread-safe build of the library keeps this setting per thread.
    thread_local bool silenced = false;
    if (!silenced) silenced = H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0;
}

Handle makeFloat16Type()
{
    Handle type = datatypeHandle(H5Tcopy(H5T_IEEE_F32LE));
    // Field positions first (they must fit the current 32-bit precision), then shrink to 2 bytes.
    if (!type.valid() || H5Tset_fields(type.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(type.get(), 2) < 0 ||
        H5Tset_precision(type.get(), 16) < 0 || H5Tset_ebias(type.get(), 15) < 0) {
        throw IoError("cannot create the HDF5 float16 datatype");
    }
    return type;
}

bool isFloat16(hid_t type)
{
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 2 || H5Tget_order(type) != H5T_ORDER_LE) return false;
    size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return false;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(type) == 15 &&
           H5Tget_precision(type) == 16 && H5Tget_offset(type) == 0 && H5Tget_norm(type) == H5T_NORM_IMPLIED;
}

const char* elementTypeName(ElementType type)
{
    switch (type) {
    case ElementType::U64: return "uint64";
    case ElementType::U16: return "uint16";
    case ElementType::F32: return "float32";
    case ElementType::F16: return "float16";
    }
    return "?";
}

Handle makeType(ElementType type)
{
    if (type == ElementType::F16) return makeFloat16Type();
    Handle t = datatypeHandle(H5Tcopy(predefinedType(type)));
    if (!t.valid()) throw IoError(std::string("cannot create the HDF5 datatype ") + elementTypeName(type));
    return t;
}

Handle createGroup(hid_t parent, const std::string& name, const std::string& path)
{
    const Handle gcpl = plistHandle(H5Pcreate(H5P_GROUP_CREATE));
    if (!gcpl.valid() || H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
        H5Pset_obj_track_times(gcpl.get(), 0) < 0) {
        writeFailed("create group", path);
    }
    return requireHandle(groupHandle(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT)),
                         "create group", path);
}

void writeAttribute(hid_t object, const char* name, std::int64_t value, const std::string& path)
{
    writeAttributeRaw(object, name, H5T_STD_I64LE, &value, path);
}

void writeAttribute(hid_t object, const char* name, double value, const std::string& path)
{
    writeAttributeRaw(object, name, H5T_IEEE_F64LE, &value, path);
}

void writeAttribute(hid_t object, const char* name, const std::string& value, const std::string& path)
{
    const Handle type = fixedStringType(value.size() + 1);
    writeAttributeRaw(object, name, type.get(), value.c_str(), path);
}

Handle createDataset(hid_t parent, const std::string& name, ElementType type, std::span<const hsize_t> dims,
                     const std::string& path)
{
    const Handle fileType = makeType(type);
    const Handle space = dims.empty() ? scalarSpace()
                                      : dataspaceHandle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    if (!space.valid()) writeFailed("create the dataspace of", path);
    const Handle dcpl = untimedDatasetProperties(path);
    return requireHandle(datasetHandle(H5Dcreate2(parent, name.c_str(), fileType.get(), space.get(), H5P_DEFAULT,
                                                  dcpl.get(), H5P_DEFAULT)),
                         "create dataset", path);
}

void writeRows(hid_t dataset, ElementType type, std::span<const hsize_t> dims, hsize_t firstRow, hsize_t rowCount,
               const void* data, const std::string& path)
{
    const Handle memType = makeType(type);
    if (dims.empty()) {
        if (H5Dwrite(dataset, memType.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) writeFailed("write", path);
        return;
    }
    if (rowCount == 0) return;
    std::vector<hsize_t> start(dims.size(), 0);
    std::vector<hsize_t> count(dims.begin(), dims.end());
    start[0] = firstRow;
    count[0] = rowCount;
    for (const hsize_t d : count) {
        if (d == 0) return;  // nothing to write in an empty extent
    }
    const Handle fileSpace = dataspaceHandle(H5Dget_space(dataset));
    const Handle memSpace = dataspaceHandle(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
    if (!fileSpace.valid() || !memSpace.valid() ||
        H5Sselect_hyperslab(fileSpace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0 ||
        H5Dwrite(dataset, memType.get(), memSpace.get(), fileSpace.get(), H5P_DEFAULT, data) < 0) {
        writeFailed("write", path);
    }
}

void writeStringDataset(hid_t parent, const std::string& name, const std::string& text, const std::string& path)
{
    const Handle type = fixedStringType(text.size() + 1);
    const Handle space = scalarSpace();
    const Handle dcpl = untimedDatasetProperties(path);
    const Handle dataset = requireHandle(
        datasetHandle(H5Dcreate2(parent, name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)),
        "create dataset", path);
    if (H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.c_str()) < 0) writeFailed("write", path);
}

bool hasLink(hid_t parent, const std::string& name) { return H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0; }

namespace {

/// A package is one self-contained file: every object it names is reached by a hard link. Soft
/// links can point anywhere inside the file (including back up the tree) and external links to
/// other files, so both are refused before the object is opened.
void requireHardLink(hid_t parent, const std::string& name, const std::string& path)
{
    H5L_info_t info;
    if (H5Lget_info(parent, name.c_str(), &info, H5P_DEFAULT) < 0) throw FormatError("cannot read the link '" + path + "'");
    if (info.type == H5L_TYPE_SOFT) throw FormatError("'" + path + "' is a soft link; a package holds its objects directly");
    if (info.type != H5L_TYPE_HARD) {
        throw FormatError("'" + path + "' is an external or user-defined link; a package must not refer to other files");
    }
}

}  // namespace

Handle openGroup(hid_t parent, const std::string& name, const std::string& path)
{
    if (!hasLink(parent, name)) throw FormatError("missing group '" + path + "'");
    requireHardLink(parent, name, path);
    Handle group = groupHandle(H5Gopen2(parent, name.c_str(), H5P_DEFAULT));
    if (!group.valid()) throw FormatError("'" + path + "' is not a group");
    return group;
}

Handle openDataset(hid_t parent, const std::string& name, const std::string& path)
{
    if (!hasLink(parent, name)) throw FormatError("missing dataset '" + path + "'");
    requireHardLink(parent, name, path);
    Handle dataset = datasetHandle(H5Dopen2(parent, name.c_str(), H5P_DEFAULT));
    if (!dataset.valid()) throw FormatError("'" + path + "' is not a dataset");
    // External raw storage would make HDF5 read any file the package names (say /etc/passwd) as
    // this dataset's values, and a virtual layout maps other datasets or files in.
    const Handle dcpl = plistHandle(H5Dget_create_plist(dataset.get()));
    if (!dcpl.valid()) throw FormatError("cannot read the storage properties of '" + path + "'");
    if (H5Pget_external_count(dcpl.get()) != 0) {
        throw FormatError("'" + path + "' keeps its data in an external file; a package must be self-contained");
    }
    if (H5Pget_layout(dcpl.get()) == H5D_VIRTUAL) {
        throw FormatError("'" + path + "' is a virtual dataset; a package must be self-contained");
    }
    return dataset;
}

std::vector<std::string> childNames(hid_t group, const std::string& path)
{
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) throw FormatError("cannot list group '" + path + "'");
    H5_index_t index = H5_INDEX_NAME;
    const Handle gcpl = plistHandle(H5Gget_create_plist(group));
    unsigned flags = 0;
    if (gcpl.valid() && H5Pget_link_creation_order(gcpl.get(), &flags) >= 0 && (flags & H5P_CRT_ORDER_TRACKED) &&
        (flags & H5P_CRT_ORDER_INDEXED)) {
        index = H5_INDEX_CRT_ORDER;
    }
    std::vector<std::string> names;
    names.reserve(info.nlinks);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        const ssize_t length = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (length < 0) throw FormatError("cannot list group '" + path + "'");
        std::string name(static_cast<std::size_t>(length) + 1, '\0');
        if (H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT) < 0) {
            throw FormatError("cannot list group '" + path + "'");
        }
        name.resize(static_cast<std::size_t>(length));
        names.push_back(std::move(name));
    }
    return names;
}

void requireOnlyChildren(hid_t group, const std::string& path, std::initializer_list<std::string_view> allowed)
{
    for (const std::string& child : childNames(group, path)) {
        if (std::find(allowed.begin(), allowed.end(), child) == allowed.end()) {
            throw FormatError("'" + path + "' holds an unexpected object " + quotedText(child));
        }
    }
}

bool hasAttribute(hid_t object, const char* name) { return H5Aexists(object, name) > 0; }

std::int64_t readIntAttribute(hid_t object, const char* name, const std::string& path)
{
    const Handle attr = attributeChecked(object, name, path);
    const Handle type = datatypeHandle(H5Aget_type(attr.get()));
    if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER) {
        throw FormatError("attribute '" + std::string(name) + "' of '" + path + "' is not an integer");
    }
    std::int64_t value = 0;
    if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) {
        throw FormatError("cannot read attribute '" + std::string(name) + "' of '" + path + "'");
    }
    return value;
}

double readDoubleAttribute(hid_t object, const char* name, const std::string& path)
{
    const Handle attr = attributeChecked(object, name, path);
    const Handle type = datatypeHandle(H5Aget_type(attr.get()));
    const H5T_class_t cls = type.valid() ? H5Tget_class(type.get()) : H5T_NO_CLASS;
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        throw FormatError("attribute '" + std::string(name) + "' of '" + path + "' is not a number");
    }
    double value = 0.0;
    if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
        throw FormatError("cannot read attribute '" + std::string(name) + "' of '" + path + "'");
    }
    return value;
}

std::string readStringAttribute(hid_t object, const char* name, const std::string& path)
{
    const Handle attr = attributeChecked(object, name, path);
    const Handle type = datatypeHandle(H5Aget_type(attr.get()));
    const std::string what = "attribute '" + std::string(name) + "' of '" + path + "'";
    if (!type.valid()) throw FormatError("cannot read " + what);
    return readString(type.get(), what, [&](hid_t mem, void* buf) { return H5Aread(attr.get(), mem, buf); });
}

std::vector<hsize_t> datasetDims(hid_t dataset, const std::string& path)
{
    const Handle space = dataspaceHandle(H5Dget_space(dataset));
    const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    if (rank < 0) throw FormatError("cannot read the shape of '" + path + "'");
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
        throw FormatError("cannot read the shape of '" + path + "'");
    }
    return dims;
}

void requireType(hid_t dataset, ElementType type, const std::string& path)
{
    const Handle actual = datatypeHandle(H5Dget_type(dataset));
    if (!actual.valid()) throw FormatError("cannot read the datatype of '" + path + "'");
    const bool ok = type == ElementType::F16 ? isFloat16(actual.get())
                                             : H5Tequal(actual.get(), predefinedType(type)) > 0;
    if (!ok) {
        throw FormatError("'" + path + "' has the wrong datatype, expected little-endian " + elementTypeName(type));
    }
}

void requireDims(hid_t dataset, std::span<const hsize_t> expected, const std::string& path)
{
    const std::vector<hsize_t> dims = datasetDims(dataset, path);
    if (!std::equal(dims.begin(), dims.end(), expected.begin(), expected.end())) {
        throw FormatError("'" + path + "' has shape " + dimsText(dims) + ", expected " + dimsText(expected));
    }
}

void readAll(hid_t dataset, ElementType type, void* out, std::size_t bytes, const std::string& path)
{
    const Handle dcpl = plistHandle(H5Dget_create_plist(dataset));
    if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS && bytes > 0) {
        const hsize_t stored = H5Dget_storage_size(dataset);
        if (stored != bytes) {
            throw FormatError("'" + path + "' stores " + std::to_string(stored) + " bytes of data, expected " +
                              std::to_string(bytes));
        }
    }
    if (bytes == 0) return;
    const Handle memType = makeType(type);
    if (H5Dread(dataset, memType.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        throw FormatError("cannot read the data of '" + path + "' (file damaged or truncated)");
    }
}

std::string readStringDataset(hid_t parent, const std::string& name, const std::string& path)
{
    const Handle dataset = openDataset(parent, name, path);
    const std::vector<hsize_t> dims = datasetDims(dataset.get(), path);
    if (!dims.empty()) throw FormatError("'" + path + "' is not a scalar string dataset");
    const Handle type = datatypeHandle(H5Dget_type(dataset.get()));
    if (!type.valid()) throw FormatError("cannot read the datatype of '" + path + "'");
    return readString(type.get(), "'" + path + "'", [&](hid_t mem, void* buf) {
        return H5Dread(dataset.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    });
}

}  // namespace mdbf::io::h5
