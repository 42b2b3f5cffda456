#include "mdbf/kernels/binary_product.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "kernels/binary_product_impl.h"
#include "mdbf/base/error.h"

namespace mdbf::kernels {

namespace detail {

float* AlignedScratch::floats(std::size_t count)
{
    if (count > m_capacity) {
        const std::size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
        m_data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
        if (!m_data) throw std::bad_alloc();
        m_capacity = count;
    }
    return m_data.get();
}

TileScale tableTileScale(float maxAbs, bool nonFinite)
{
    if (nonFinite || !std::isfinite(maxAbs)) return {std::numeric_limits<float>::quiet_NaN(), 0.0f};
    if (maxAbs < 0x1p-100f) return {0.0f, 0.0f};
    return {maxAbs / kTableLevels, kTableLevels / maxAbs};
}

}  // namespace detail

namespace {

// The block layout of the SIMD table kernel (binary_product_impl.h) of S. Bytes of the words are
// taken in memory order, which is column order on the little-endian CPUs with those kernels.
std::vector<std::uint8_t> tableBlocks(const PackedSigns& S)
{
    const std::int64_t tiles = (S.cols() + detail::kTableTileCols - 1) / detail::kTableTileCols;
    const std::int64_t blocks = (S.rows() + detail::kTableBlockRows - 1) / detail::kTableBlockRows;
    const std::int64_t rowBytes = S.wordsPerRow() * 8;
    constexpr std::int64_t kLane = 16;  // bytes per 128-bit lane
    std::vector<std::uint8_t> out(static_cast<std::size_t>(blocks * tiles * detail::kTableBlockBytes), 0);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(S.words().data());
    for (std::int64_t i = 0; i < S.rows(); ++i) {
        const std::int64_t b = i / detail::kTableBlockRows;
        const std::int64_t r = i % detail::kTableBlockRows;
        for (std::int64_t t = 0; t < tiles; ++t) {
            std::uint8_t* block = out.data() + detail::tableBlockOffset(blocks, tiles, b, t) + r;
            // Byte k of the row's 32 bytes of the tile goes to lane k / 16 of vector k % 16.
            for (std::int64_t k = 0; k < 2 * kLane && t * 2 * kLane + k < rowBytes; ++k)
                block[k % kLane * 2 * kLane + k / kLane * kLane] = bytes[i * rowBytes + t * 2 * kLane + k];
        }
    }
    return out;
}

std::string shapeOf(const PackedSigns& S)
{
    return std::to_string(S.rows()) + "x" + std::to_string(S.cols());
}

// Validates a strided product and runs it through the full-precision kernels or the tables.
void runProduct(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads, KernelPath path, bool tables)
{
    const KernelPath resolved = resolveKernelPath(path);
    if (T < 0 || ldx < S.cols() || ldy < S.rows())
        throw InvalidArgument("binary product with a " + shapeOf(S) + " sign matrix: bad strides (T " +
                              std::to_string(T) + ", ldx " + std::to_string(ldx) + ", ldy " +
                              std::to_string(ldy) + ")");
    if (static_cast<std::int64_t>(S.words().size()) != S.rows() * S.wordsPerRow())
        throw InvalidArgument("binary product: packed sign matrix " + shapeOf(S) + " holds " +
                              std::to_string(S.words().size()) + " words, expected " +
                              std::to_string(S.rows() * S.wordsPerRow()));
    if (T == 0 || S.rows() == 0) return;
    if (S.cols() == 0) {
        for (std::int64_t t = 0; t < T; ++t) std::fill_n(Y + t * ldy, S.rows(), 0.0f);
        return;
    }
    detail::SignRows view{S.words().data(), S.rows(), S.cols(), S.wordsPerRow()};
    const detail::KernelTable& kernels = detail::kernelTable(resolved);
    if (!tables) {
        kernels.binaryGemm(view, X, T, ldx, Y, ldy, threads);
        return;
    }
    // The SIMD table kernel streams the bits in its own order, built once per matrix (by
    // prepareGemvTables when the matrix is loaded, else here on the first call).
    std::shared_ptr<const std::vector<std::uint8_t>> layout;
    if (resolved != KernelPath::Scalar) {
        layout = S.derivedLayout(&tableBlocks);
        view.blocks = layout->data();
    }
    for (std::int64_t t = 0; t < T; ++t) kernels.binaryGemvTables(view, X + t * ldx, Y + t * ldy, threads);
}

void checkGemv(const PackedSigns& S, std::span<const float> x, std::span<float> y)
{
    if (static_cast<std::int64_t>(x.size()) != S.cols() || static_cast<std::int64_t>(y.size()) != S.rows())
        throw InvalidArgument("binary GEMV with a " + shapeOf(S) + " sign matrix: x has " +
                              std::to_string(x.size()) + " entries and y " + std::to_string(y.size()));
}

}  // namespace

void binaryGemm(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                int threads, KernelPath path)
{
    runProduct(S, X, T, ldx, Y, ldy, threads, path, false);
}

void binaryGemmTables(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y,
                      std::int64_t ldy, int threads, KernelPath path)
{
    runProduct(S, X, T, ldx, Y, ldy, threads, path, true);
}

void binaryGemv(const PackedSigns& S, std::span<const float> x, std::span<float> y, int threads, KernelPath path)
{
    checkGemv(S, x, y);
    binaryGemm(S, x.data(), 1, S.cols(), y.data(), S.rows(), threads, path);
}

void binaryGemvTables(const PackedSigns& S, std::span<const float> x, std::span<float> y, int threads,
                      KernelPath path)
{
    checkGemv(S, x, y);
    binaryGemmTables(S, x.data(), 1, S.cols(), y.data(), S.rows(), threads, path);
}

void prepareGemvTables(const PackedSigns& S, KernelPath path)
{
    if (resolveKernelPath(path) != KernelPath::Scalar && S.rows() > 0 && S.cols() > 0) S.derivedLayout(&tableBlocks);
}

void binaryGemm(const PackedSigns& S, const RowMatrixF& X, RowMatrixF& Y, int threads, KernelPath path)
{
    if (X.cols() != S.cols())
        throw InvalidArgument("binary GEMM with a " + shapeOf(S) + " sign matrix: activations have " +
                              std::to_string(X.cols()) + " columns");
    Y.resize(X.rows(), S.rows());
    binaryGemm(S, X.data(), X.rows(), X.cols(), Y.data(), S.rows(), threads, path);
}

}  // namespace mdbf::kernels
