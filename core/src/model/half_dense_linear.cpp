#include "mdbf/model/half_dense_linear.h"

#include <algorithm>

#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"
#include "mdbf/kernels/half_product.h"

namespace mdbf::model {

namespace {

// Rows converted at once for a window: each tile's GEMM has enough rows to be efficient while the
// tile (kPrefillRows × m floats) stays in L2.
constexpr std::int64_t kPrefillRows = 128;

kernels::HalfFormat formatOf(io::DType dtype)
{
    return dtype == io::DType::BF16 ? kernels::HalfFormat::BF16 : kernels::HalfFormat::F16;
}

}  // namespace

void convertHalfBits(io::DType dtype, const std::uint16_t* src, std::size_t count, float* dst)
{
    kernels::convertHalf(formatOf(dtype), {src, count}, {dst, count});
}

HalfDenseLinear::HalfDenseLinear(io::DType dtype, std::int64_t rows, std::int64_t cols, std::vector<std::uint16_t> bits,
                                 VectorF bias)
    : m_dtype(dtype), m_rows(rows), m_cols(cols), m_bits(std::move(bits)), m_bias(std::move(bias))
{
    if (m_dtype == io::DType::F32) throw InvalidArgument("16-bit dense layer given dtype F32");
    if (m_rows <= 0 || m_cols <= 0) {
        throw InvalidArgument("16-bit dense layer of shape " + std::to_string(m_rows) + "x" + std::to_string(m_cols));
    }
    if (static_cast<std::int64_t>(m_bits.size()) != m_rows * m_cols) {
        throw InvalidArgument("16-bit dense layer of shape " + std::to_string(m_rows) + "x" + std::to_string(m_cols) +
                              " given " + std::to_string(m_bits.size()) + " values");
    }
    if (m_bias.size() != 0 && m_bias.size() != m_rows) {
        throw InvalidArgument("bias has " + std::to_string(m_bias.size()) + " entries, expected " +
                              std::to_string(m_rows));
    }
}

std::string HalfDenseLinear::kind() const { return "dense " + std::string(io::dtypeName(m_dtype)); }

void HalfDenseLinear::convertRows(std::int64_t begin, std::int64_t count, float* out) const
{
    convertHalfBits(m_dtype, m_bits.data() + begin * m_cols, static_cast<std::size_t>(count * m_cols), out);
}

void HalfDenseLinear::row(std::int64_t i, std::span<float> out) const
{
    if (i < 0 || i >= m_rows) {
        throw InvalidArgument("row " + std::to_string(i) + " outside a table of " + std::to_string(m_rows) + " rows");
    }
    if (static_cast<std::int64_t>(out.size()) != m_cols) {
        throw InvalidArgument("row output has " + std::to_string(out.size()) + " entries, the table has " +
                              std::to_string(m_cols) + " columns");
    }
    convertRows(i, 1, out.data());
}

RowMatrixF HalfDenseLinear::toFloat() const
{
    RowMatrixF W(m_rows, m_cols);
    convertRows(0, m_rows, W.data());
    return W;
}

void HalfDenseLinear::forward(const RowMatrixF& X, RowMatrixF& Y, int threads) const
{
    if (X.cols() != m_cols) {
        throw InvalidArgument("dense layer takes " + std::to_string(m_cols) + " features, got " +
                              std::to_string(X.cols()));
    }
    const Eigen::Index T = X.rows();
    Y.resize(T, m_rows);
    if (T == 0) return;
    if (T == 1) {
        // Decode: the weights are streamed once and widened in registers, never copied to float32.
        kernels::halfGemv(formatOf(m_dtype), m_bits, m_rows, m_cols, {X.data(), static_cast<std::size_t>(m_cols)},
                          {Y.data(), static_cast<std::size_t>(m_rows)}, std::max(1, threads));
        if (m_bias.size() != 0) Y.row(0) += m_bias.transpose();
        return;
    }
    const std::int64_t tileRows = kPrefillRows;
    // Each thread converts its own rows tile by tile, so no thread ever holds more than one tile.
    parallelChunks(m_rows, std::max(1, threads), [&](std::int64_t begin, std::int64_t end) {
        RowMatrixF tile(std::min(tileRows, end - begin), m_cols);
        for (std::int64_t r = begin; r < end; r += tileRows) {
            const std::int64_t count = std::min(tileRows, end - r);
            convertRows(r, count, tile.data());
            Y.middleCols(r, count).noalias() = X * tile.topRows(count).transpose();
        }
    });
    if (m_bias.size() != 0) Y.rowwise() += m_bias.transpose();
}

}  // namespace mdbf::model
