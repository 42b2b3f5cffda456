// Portable reference kernels of the 16-bit dense products: one conversion per weight and a
// sequential sum per row. No intrinsics, so this path runs on any CPU.

#include <memory>

#include "kernels/half_product_impl.h"
#include "mdbf/base/half.h"
#include "mdbf/base/parallel.h"

namespace mdbf::kernels::detail {

namespace {

// binary16 decodes through a table: 65536 floats (256 KiB), built once on first use, instead of
// the branches of halfToFloat in the inner loop.
const float* halfTable()
{
    static const std::unique_ptr<float[]> table = [] {
        auto t = std::make_unique<float[]>(65536);
        for (std::uint32_t h = 0; h < 65536; ++h) t[h] = halfToFloat(static_cast<std::uint16_t>(h));
        return t;
    }();
    return table.get();
}

}  // namespace

void halfGemvScalar(HalfFormat format, const std::uint16_t* W, std::int64_t rows, std::int64_t cols, const float* x,
                    float* y, int threads)
{
    const float* table = format == HalfFormat::F16 ? halfTable() : nullptr;
    parallelChunks(rows, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const std::uint16_t* w = W + i * cols;
            float acc = 0.0f;
            if (table != nullptr)
                for (std::int64_t j = 0; j < cols; ++j) acc += table[w[j]] * x[j];
            else
                for (std::int64_t j = 0; j < cols; ++j) acc += bf16ToFloat(w[j]) * x[j];
            y[i] = acc;
        }
    });
}

void convertHalfScalar(HalfFormat format, const std::uint16_t* src, std::size_t count, float* dst)
{
    if (format == HalfFormat::BF16) {
        for (std::size_t i = 0; i < count; ++i) dst[i] = bf16ToFloat(src[i]);
        return;
    }
    const float* table = halfTable();
    for (std::size_t i = 0; i < count; ++i) dst[i] = table[src[i]];
}

}  // namespace mdbf::kernels::detail
