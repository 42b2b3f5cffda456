#include "mdbf/model/half_dense_linear.h"

#include <algorithm>
#include <array>
#include <memory>

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "mdbf/base/error.h"
#include "mdbf/base/half.h"
#include "mdbf/base/parallel.h"

namespace mdbf::model {

namespace {

// Rows converted at once: a tile of kDecodeRows × m floats stays in L1/L2 for the single-token
// product; prefill uses taller tiles so each small GEMM has enough columns to be efficient.
constexpr std::int64_t kDecodeRows = 16;
constexpr std::int64_t kPrefillRows = 128;

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// Eight 16-bit patterns widened to float32: bfloat16 is the upper half of a float32, binary16 goes
// through the F16C conversion.
template <io::DType D>
__m256 load8(const std::uint16_t* w)
{
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
    if constexpr (D == io::DType::BF16) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else {
        return _mm256_cvtph_ps(h);
    }
}

// Σ_j w_j x_j over one row, converting the weights in registers: the decode product streams the
// 16-bit weights once and never writes a float32 copy.
template <io::DType D>
float dotRow(const std::uint16_t* w, const float* x, std::int64_t m)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    std::int64_t j = 0;
    for (; j + 32 <= m; j += 32) {
        acc0 = _mm256_fmadd_ps(load8<D>(w + j), _mm256_loadu_ps(x + j), acc0);
        acc1 = _mm256_fmadd_ps(load8<D>(w + j + 8), _mm256_loadu_ps(x + j + 8), acc1);
        acc2 = _mm256_fmadd_ps(load8<D>(w + j + 16), _mm256_loadu_ps(x + j + 16), acc2);
        acc3 = _mm256_fmadd_ps(load8<D>(w + j + 24), _mm256_loadu_ps(x + j + 24), acc3);
    }
    for (; j + 8 <= m; j += 8) acc0 = _mm256_fmadd_ps(load8<D>(w + j), _mm256_loadu_ps(x + j), acc0);
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float total = _mm_cvtss_f32(s);
    for (; j < m; ++j) total += (D == io::DType::BF16 ? bf16ToFloat(w[j]) : halfToFloat(w[j])) * x[j];
    return total;
}
#endif

#if !defined(__F16C__)
// Without F16C the decode is a table lookup: 65536 floats, built once on first use.
const float* halfTable()
{
    static const std::unique_ptr<float[]> table = [] {
        auto t = std::make_unique<float[]>(65536);
        for (std::uint32_t h = 0; h < 65536; ++h) t[h] = halfToFloat(static_cast<std::uint16_t>(h));
        return t;
    }();
    return table.get();
}
#endif

}  // namespace

void convertHalfBits(io::DType dtype, const std::uint16_t* src, std::size_t count, float* dst)
{
    if (dtype == io::DType::BF16) {
        for (std::size_t i = 0; i < count; ++i) dst[i] = bf16ToFloat(src[i]);
        return;
    }
#if defined(__F16C__)
    std::size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < count; ++i) dst[i] = halfToFloat(src[i]);
#else
    const float* table = halfTable();
    for (std::size_t i = 0; i < count; ++i) dst[i] = table[src[i]];
#endif
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
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
    if (T == 1) {
        const float* x = X.data();
        float* y = Y.data();
        parallelChunks(m_rows, std::max(1, threads), [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t r = begin; r < end; ++r) {
                const std::uint16_t* w = m_bits.data() + r * m_cols;
                y[r] = m_dtype == io::DType::BF16 ? dotRow<io::DType::BF16>(w, x, m_cols)
                                                 : dotRow<io::DType::F16>(w, x, m_cols);
            }
        });
        if (m_bias.size() != 0) Y.row(0) += m_bias.transpose();
        return;
    }
#endif
    const std::int64_t tileRows = T == 1 ? kDecodeRows : kPrefillRows;
    // Each thread converts its own rows tile by tile, so no thread ever holds more than one tile.
    parallelChunks(m_rows, std::max(1, threads), [&](std::int64_t begin, std::int64_t end) {
        RowMatrixF tile(std::min(tileRows, end - begin), m_cols);
        for (std::int64_t r = begin; r < end; r += tileRows) {
            const std::int64_t count = std::min(tileRows, end - r);
            convertRows(r, count, tile.data());
            const auto W = tile.topRows(count);
            if (T == 1) {
                Y.row(0).segment(r, count).noalias() = X.row(0) * W.transpose();
            } else {
                Y.middleCols(r, count).noalias() = X * W.transpose();
            }
        }
    });
    if (m_bias.size() != 0) Y.rowwise() += m_bias.transpose();
}

}  // namespace mdbf::model
