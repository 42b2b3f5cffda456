#pragma once
// Small typed helpers over the HDF5 C API used by the package writer and reader (private to
// core/io). Writing helpers throw IoError naming the HDF5 object; reading helpers throw FormatError
// naming the object and what was expected. Callers add the file name as context.

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/hdf5_handle.h"

namespace mdbf::io::h5 {

/// The distribution's HDF5 library is built without thread safety: every use of it in the process
/// holds this mutex (package writes and reads are serialized).
std::mutex& libraryMutex();

/// Turns off HDF5's own printing of its error stack (for the calling thread; the thread-safe build
/// keeps the setting per thread): failures surface as
/// exceptions with one-line messages instead.
void silenceLibraryErrors();

/// A new IEEE binary16 little-endian datatype (sign bit 15, exponent bits 10–14 with bias 15,
/// mantissa bits 0–9): h5py and numpy read it as float16.
Handle makeFloat16Type();

/// True when `type` is IEEE binary16 little-endian as made by makeFloat16Type().
bool isFloat16(hid_t type);

/// The element types the package uses; `String` is a fixed-length UTF-8 string.
enum class ElementType { U64, U16, F32, F16 };

/// "uint64", "uint16", "float32", "float16".
const char* elementTypeName(ElementType type);

/// A new file datatype for `type` (little-endian).
Handle makeType(ElementType type);

// ---- writing -------------------------------------------------------------------------------

/// Creates a group that tracks the creation order of its links (so readers list them in write order).
Handle createGroup(hid_t parent, const std::string& name, const std::string& path);

/// Scalar attributes: int64, double, or a fixed-length UTF-8 string.
void writeAttribute(hid_t object, const char* name, std::int64_t value, const std::string& path);
void writeAttribute(hid_t object, const char* name, double value, const std::string& path);
void writeAttribute(hid_t object, const char* name, const std::string& value, const std::string& path);

/// Creates a contiguous dataset of `type` with the given dimensions.
Handle createDataset(hid_t parent, const std::string& name, ElementType type, std::span<const hsize_t> dims,
                     const std::string& path);

/// Writes rows [firstRow, firstRow + rowCount) of a dataset whose dimensions are `dims` (the
/// remaining dimensions whole), from `data` laid out in C order in the file's element type.
void writeRows(hid_t dataset, ElementType type, std::span<const hsize_t> dims, hsize_t firstRow, hsize_t rowCount,
               const void* data, const std::string& path);

/// Creates a scalar fixed-length UTF-8 string dataset holding `text` (any length, no terminator).
void writeStringDataset(hid_t parent, const std::string& name, const std::string& text, const std::string& path);

// ---- reading -------------------------------------------------------------------------------

/// True when `parent` has a link called `name`.
bool hasLink(hid_t parent, const std::string& name);

/// Opens a group or dataset; FormatError "missing group/dataset '<path>'" (or "is not a ..."), and
/// for anything that is not stored in this file: a soft, external or user-defined link, a dataset
/// with external raw storage or a virtual layout.
Handle openGroup(hid_t parent, const std::string& name, const std::string& path);
Handle openDataset(hid_t parent, const std::string& name, const std::string& path);

/// Link names of a group, in creation order when the group tracks it, otherwise in name order.
std::vector<std::string> childNames(hid_t group, const std::string& path);

/// Throws FormatError "'<path>' holds an unexpected object '<name>'" for the first link of `group`
/// that `allowed` does not list: a package holds only what its schema names.
void requireOnlyChildren(hid_t group, const std::string& path, std::initializer_list<std::string_view> allowed);

/// True when the object has an attribute of that name.
bool hasAttribute(hid_t object, const char* name);

/// Scalar attributes; FormatError for a missing attribute or one of another class or shape.
std::int64_t readIntAttribute(hid_t object, const char* name, const std::string& path);
double readDoubleAttribute(hid_t object, const char* name, const std::string& path);
std::string readStringAttribute(hid_t object, const char* name, const std::string& path);

/// The dimensions of a dataset (empty for a scalar).
std::vector<hsize_t> datasetDims(hid_t dataset, const std::string& path);

/// Checks the element type exactly (class, size, byte order, float layout); FormatError otherwise.
void requireType(hid_t dataset, ElementType type, const std::string& path);

/// Checks rank and dimensions; FormatError "has shape [a, b], expected [c, d]" otherwise.
void requireDims(hid_t dataset, std::span<const hsize_t> expected, const std::string& path);

/// Reads the whole dataset (type already checked) into `out`, which holds `bytes` bytes. Checks
/// first that contiguous storage holds exactly that many bytes, so a damaged header cannot make the
/// read run past the data.
void readAll(hid_t dataset, ElementType type, void* out, std::size_t bytes, const std::string& path);

/// Reads a scalar fixed-length string dataset, dropping trailing NUL padding.
std::string readStringDataset(hid_t parent, const std::string& name, const std::string& path);

}  // namespace mdbf::io::h5
