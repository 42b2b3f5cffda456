#pragma once
// Memory-mapped Hugging Face safetensors checkpoints (docs/CLI.md §2.1): a single `model.safetensors`
// or shards listed by `model.safetensors.index.json`. Tensors stay in their stored dtype in the
// mapping; conversion to float32 happens only when a caller asks for a tensor.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/base/vocabulary.h"

namespace mdbf::io {

using mdbf::DType;
using mdbf::dtypeName;
using mdbf::dtypeSize;

/// Where one tensor lives. `offset` is the absolute byte offset of its data in `file`.
struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::filesystem::path file;
    std::uint64_t offset = 0;
    std::uint64_t byteSize = 0;

    /// Product of the shape (1 for a scalar).
    std::int64_t elementCount() const;
};

class MappedFile;

/// A read-only view of every tensor of a checkpoint. Cheap to move; thread-safe for concurrent
/// reads. All validation happens in open(): afterwards every tensor's bytes lie inside its file.
class Checkpoint {
public:
    /// Opens `path`: a directory holding `model.safetensors` or `model.safetensors.index.json`
    /// (+ shards), or a single `.safetensors` file. Throws IoError for missing/unreadable files
    /// and FormatError (naming the file, and the tensor where there is one) for a malformed header,
    /// offsets outside the data, overlapping tensors, shape/dtype/byte-size mismatch, an unknown
    /// dtype, or a shard named by the index that is missing.
    static Checkpoint open(const std::filesystem::path& path);

    Checkpoint(Checkpoint&&) noexcept;
    Checkpoint& operator=(Checkpoint&&) noexcept;
    ~Checkpoint();

    /// All tensors, sorted by name.
    const std::vector<TensorInfo>& tensors() const { return m_tensors; }

    /// True if a tensor of that exact name exists.
    bool contains(std::string_view name) const;

    /// The tensor's description. Throws FormatError "no tensor named '...'" naming the checkpoint.
    const TensorInfo& info(std::string_view name) const;

    /// The stored bytes (little-endian, stored dtype), valid while the Checkpoint lives.
    std::span<const std::byte> raw(std::string_view name) const;

    /// All elements converted to float32, in storage order. Throws FormatError naming the file, the
    /// tensor and the element when a value is NaN or infinite: no figure is computed from such weights.
    std::vector<float> toFloat(std::string_view name) const;

    /// A 2-D tensor as a row-major float32 matrix (shape[0] × shape[1]); a 1-D tensor as a single
    /// row. Throws FormatError for other ranks and, like toFloat, for a non-finite value.
    RowMatrixF matrix(std::string_view name) const;

    /// matrix(name), after which the tensor's mapped pages leave this process's resident memory
    /// (releaseMappedPages, mdbf/io/mapped_pages.h): for a pass that reads each tensor once and works
    /// on the float copy, so that the checkpoint does not accumulate in RSS. Throws as matrix().
    RowMatrixF matrixOnce(std::string_view name) const;

    /// The directory (or file) the checkpoint was opened from.
    const std::filesystem::path& path() const { return m_path; }

    /// Sum of the data bytes of all tensors.
    std::uint64_t totalBytes() const;

private:
    Checkpoint() = default;

    std::filesystem::path m_path;
    std::vector<TensorInfo> m_tensors;
    std::vector<std::shared_ptr<MappedFile>> m_files;
    std::vector<const std::byte*> m_data;  ///< start of each tensor's bytes, parallel to m_tensors
};

/// Converts `count` elements of `dtype` starting at `src` to float32 into `dst`.
void convertToFloat(DType dtype, const std::byte* src, std::size_t count, float* dst);

/// The index of the first NaN or infinite element among `count` elements of `dtype` at `src`, or
/// `count` when all are finite. Reads the stored encoding without converting the tensor.
std::size_t firstNonFinite(DType dtype, const std::byte* src, std::size_t count);

/// Throws FormatError "'<source>': tensor '<name>' holds a non-finite value (<v>) at element <i>" when
/// firstNonFinite finds one; the one check every weight reader applies.
void requireFiniteTensor(DType dtype, const std::byte* src, std::size_t count, const std::string& source,
                         const std::string& name);

}  // namespace mdbf::io
