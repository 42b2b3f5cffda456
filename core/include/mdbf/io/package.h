#pragma once
// The HDF5 deployment package (schema in docs/package-format.md): everything needed
// to run a compressed model in one file — config.json, tokenizer.json and the quantization
// configuration as string datasets, every non-factorized tensor at its stored precision under
// /dense, and every factorized layer under /layers/<name> as packed sign words plus FP16 envelopes.
//
// Writes go to a temporary file in the destination directory that is renamed into place only when
// complete, so a crash, an error or a cancellation never leaves a partial package behind (nor
// disturbs a previous file at the destination). writePackage and readPackage may be called from any
// thread; their HDF5 work is serialized (the system HDF5 library is not thread-safe).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdbf/base/run_context.h"
#include "mdbf/base/vocabulary.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/kernels/factor_path.h"
#include "mdbf/io/model_config.h"

namespace mdbf::io {

/// Value of the root attribute `format`.
inline constexpr std::string_view kPackageFormat = "mdbf-package";
/// Value of the root attribute `format_version` this build writes and reads.
inline constexpr std::int64_t kPackageVersion = 1;

/// A tensor kept at its stored precision (embeddings, norms, biases, an output head, layers kept
/// dense). `data` holds the elements in C order, little-endian, in `dtype`.
struct PackageTensor {
    std::string name;                  ///< checkpoint tensor name, e.g. "model.norm.weight"
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> data;       ///< elementCount() · dtypeSize(dtype) bytes

    /// Product of the shape (1 for a scalar).
    std::int64_t elementCount() const;
};

/// One factorized projection: P paths with shared n, m, k, l, and what produced them.
struct PackageLayer {
    std::string name;                          ///< projection name without ".weight"
    Method method = Method::Mdbf;
    Objective objective = Objective::Plain;
    double bpw = 0.0;                          ///< achieved bits per weight (docs/ALGORITHM.md §3)
    double relError = 0.0;                     ///< rel_error under `objective`
    std::vector<kernels::FactorPath> paths;    ///< envelopes hold FP16-representable values

    std::int64_t n() const { return paths.empty() ? 0 : paths.front().n(); }
    std::int64_t m() const { return paths.empty() ? 0 : paths.front().m(); }
    std::int64_t k() const { return paths.empty() ? 0 : paths.front().k(); }
    std::int64_t l() const { return paths.empty() ? 0 : paths.front().l(); }
};

/// The whole content of a package.
struct Package {
    std::string configJson;       ///< the source model's config.json, verbatim
    std::string tokenizerJson;    ///< the source model's tokenizer.json, verbatim
    std::string quantConfigJson;  ///< the quantization configuration used (factor::QuantConfig JSON)
    double modelBpw = 0.0;        ///< bits per weight over all tensors, dense ones at stored precision
    double factorizedBpw = 0.0;   ///< bits per weight over the factorized layers only
    std::vector<PackageTensor> dense;
    std::vector<PackageLayer> layers;
};

/// Writes `package` to `destination` through a temporary file in the same directory, renamed into
/// place when complete. Reports progress in bytes ("writing") and polls ctx.stop between datasets
/// and between slabs of large ones. On any error or a stop request the temporary file is removed,
/// a previous file at `destination` is left untouched, and IoError / InvalidArgument (inconsistent
/// content: names with '/', duplicate names, wrong data sizes, mismatched paths) / Cancelled is
/// thrown. Envelope values are stored as binary16 (rounded to nearest if not representable).
void writePackage(const Package& package, const std::filesystem::path& destination, const RunContext& ctx = {});

/// A package written piece by piece, so that its tensors and layers need not be in memory at once:
/// a temporary file beside `destination`, renamed into place by commit(); destroying the writer
/// before commit() removes it, leaving a previous file at `destination` untouched. Tensors and
/// layers are stored in the order they are added. HDF5 work is serialized as writePackage's.
class PackageWriter {
public:
    /// Creates the temporary file and writes the root attributes and the strings of `header` (its
    /// `dense` and `layers` are ignored). `expectedBytes` is the total progress reports ("writing",
    /// bytes) count towards. Throws IoError, Cancelled.
    PackageWriter(const std::filesystem::path& destination, const Package& header, std::int64_t expectedBytes,
                  const RunContext& ctx = {});
    ~PackageWriter();
    PackageWriter(const PackageWriter&) = delete;
    PackageWriter& operator=(const PackageWriter&) = delete;

    /// Adds a dense tensor of `shape` whose C-order little-endian elements in `dtype` are `data`.
    /// Throws InvalidArgument (bad name, duplicate, size not matching shape and dtype), IoError, Cancelled.
    void addDense(const std::string& name, DType dtype, std::span<const std::int64_t> shape,
                  std::span<const std::byte> data);

    /// Adds a factorized layer. Throws InvalidArgument (as writePackage), IoError, Cancelled.
    void addLayer(const PackageLayer& layer);

    /// Finishes the file, flushes it to disk and renames it into place. Throws IoError, Cancelled.
    void commit();

private:
    struct Impl;
    void closeLocked();
    std::unique_ptr<Impl> m_impl;
};

/// The bytes a layer's datasets take in a package (sign words and FP16 envelopes), for progress.
std::int64_t packageLayerBytes(const PackageLayer& layer);

/// Reads and validates a package: format and version, every group, dataset and attribute the
/// schema requires, shapes and datatypes, packed sign words covering n·k and k·m bits with clear
/// padding, finite envelopes, consistent n, m, k, l, P. Reports progress in bytes ("reading") and
/// polls ctx.stop between datasets (throws Cancelled). Throws IoError when the file cannot be
/// opened and FormatError naming the file and the HDF5 object for anything malformed.
Package readPackage(const std::filesystem::path& path, const RunContext& ctx = {});

/// The model configuration the package stores (`/config.json`), parsed through the shared JSON path
/// and validated as ModelConfig::fromJson does. `source` names the package. Throws FormatError
/// naming "<source>:/config.json".
ModelConfig packageModelConfig(const Package& package, const std::string& source);

/// Writes the model of a package as a Hugging Face checkpoint directory: `config.json` and
/// `tokenizer.json` from the package, and `model.safetensors` holding every dense tensor at its
/// stored precision and every factorized layer reconstructed densely (Ŵ = Σ_p F_p G_p) as F32.
/// `directory` is created if needed; each file is written to a temporary file and renamed into
/// place. Reports progress in tensors ("exporting") and polls ctx.stop between tensors; on an error
/// or a stop the temporary files are removed (files already renamed stay). Throws IoError,
/// Cancelled, or InvalidArgument for inconsistent content.
void exportSafetensors(const Package& package, const std::filesystem::path& directory, const RunContext& ctx = {});

}  // namespace mdbf::io
