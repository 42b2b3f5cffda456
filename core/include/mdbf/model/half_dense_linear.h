#pragma once
// A dense layer kept at its stored 16-bit precision (F16 or BF16). The weights stay as raw 16-bit
// patterns and are widened on the fly: one token (decode) converts them in registers inside the dot
// products (kernels::halfGemv, dispatched at run time to the CPU's widest path), a window
// (prefill) converts tiles of rows for a GEMM. A large output head or embedding table never has a float32 copy in memory.

#include <cstdint>
#include <span>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/model/linear.h"

namespace mdbf::model {

/// Y = X Wᵀ (+ b) with W n×m row-major stored as F16 or BF16 bit patterns.
/// Immutable after construction; safe to call from several threads.
class HalfDenseLinear final : public Linear {
public:
    /// Takes the dtype (F16 or BF16), the shape n×m, the n·m bit patterns in row-major order and an
    /// optional bias (empty, or n entries). Throws InvalidArgument for dtype F32, non-positive sizes,
    /// a bit vector of the wrong length or a bias of the wrong length.
    HalfDenseLinear(io::DType dtype, std::int64_t rows, std::int64_t cols, std::vector<std::uint16_t> bits,
                    VectorF bias = {});

    std::int64_t outFeatures() const override { return m_rows; }
    std::int64_t inFeatures() const override { return m_cols; }

    /// X is T×m; Y is resized to T×n; `threads` bounds the parallelism. Throws InvalidArgument when
    /// X does not have m columns.
    void forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const override;

    /// "dense F16" or "dense BF16".
    std::string kind() const override;

    io::DType dtype() const { return m_dtype; }

    /// The stored bit patterns, n·m of them, row-major.
    const std::vector<std::uint16_t>& bits() const { return m_bits; }

    /// The bias (empty when the layer has none).
    const VectorF& bias() const { return m_bias; }

    /// Row i of W converted to float32 into `out` (m entries): the embedding lookup of a table kept
    /// at stored precision. Throws InvalidArgument for i outside [0, n) or a wrong output size.
    void row(std::int64_t i, std::span<float> out) const;

    /// W converted to float32 (n×m); for references and exports.
    RowMatrixF toFloat() const;

private:
    void convertRows(std::int64_t begin, std::int64_t count, float* out) const;

    io::DType m_dtype;
    std::int64_t m_rows;
    std::int64_t m_cols;
    std::vector<std::uint16_t> m_bits;
    VectorF m_bias;
};

/// Converts `count` 16-bit patterns of `dtype` (F16 or BF16) to float32; exact for both formats.
void convertHalfBits(io::DType dtype, const std::uint16_t* src, std::size_t count, float* dst);

}  // namespace mdbf::model
