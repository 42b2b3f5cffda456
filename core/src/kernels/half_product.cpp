#include "mdbf/kernels/half_product.h"

#include <string>

#include "kernels/kernel_table.h"
#include "mdbf/base/error.h"

namespace mdbf::kernels {

void halfGemv(HalfFormat format, std::span<const std::uint16_t> W, std::int64_t rows, std::int64_t cols,
              std::span<const float> x, std::span<float> y, int threads, KernelPath path)
{
    const KernelPath resolved = resolveKernelPath(path);
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    if (rows < 0 || cols < 0 || static_cast<std::int64_t>(W.size()) != rows * cols)
        throw InvalidArgument("16-bit GEMV of shape " + shape + " given " + std::to_string(W.size()) + " weights");
    if (static_cast<std::int64_t>(x.size()) != cols || static_cast<std::int64_t>(y.size()) != rows)
        throw InvalidArgument("16-bit GEMV of shape " + shape + ": x has " + std::to_string(x.size()) +
                              " entries and y " + std::to_string(y.size()));
    if (rows == 0) return;
    if (cols == 0) {
        for (float& v : y) v = 0.0f;
        return;
    }
    detail::kernelTable(resolved).halfGemv(format, W.data(), rows, cols, x.data(), y.data(), threads);
}

void convertHalf(HalfFormat format, std::span<const std::uint16_t> src, std::span<float> dst, KernelPath path)
{
    const KernelPath resolved = resolveKernelPath(path);
    if (src.size() != dst.size())
        throw InvalidArgument("16-bit conversion of " + std::to_string(src.size()) + " values into " +
                              std::to_string(dst.size()));
    if (src.empty()) return;
    detail::kernelTable(resolved).convertHalf(format, src.data(), src.size(), dst.data());
}

}  // namespace mdbf::kernels
