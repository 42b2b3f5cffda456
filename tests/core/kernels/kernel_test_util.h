#pragma once
// Random inputs and dense double-precision references shared by the kernel tests.

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "mdbf/base/matrix.h"
#include "mdbf/kernels/kernel_path.h"
#include "mdbf/kernels/packed_signs.h"

namespace mdbf::kernels {

/// Readable kernel paths in gtest messages.
inline void PrintTo(KernelPath path, std::ostream* os) { *os << kernelPathName(path); }

}  // namespace mdbf::kernels

namespace mdbf::kernels::test {

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Unit roundoff of float32.
inline constexpr double kFloatEps = 1.0 / (1 << 24);

/// Independent random ±1 entries.
inline PackedSigns randomSigns(std::int64_t rows, std::int64_t cols, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::bernoulli_distribution negative(0.5);
    PackedSigns s(rows, cols);
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j)
            if (negative(rng)) s.setNegative(i, j);
    return s;
}

/// Entries uniform in [-1, 1].
inline RowMatrixF randomMatrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    RowMatrixF m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
    return m;
}

/// Small integers in [-8, 8]: every partial sum of up to 2^20 of them is exact in float32.
inline RowMatrixF randomIntegerMatrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> u(-8, 8);
    RowMatrixF m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(u(rng));
    return m;
}

/// X Sᵀ in double from the unpacked signs.
inline RowMatrixD denseProduct(const PackedSigns& S, const RowMatrixF& X)
{
    return X.cast<double>() * S.toFloat().cast<double>().transpose();
}

/// Worst-case float32 summation error of Σ_j ±X(t, j) in any order: (cols − 1)·u·Σ_j |X(t, j)|,
/// plus a tiny absolute slack; one bound per token.
inline Eigen::VectorXd summationBound(const RowMatrixF& X)
{
    const double terms = static_cast<double>(std::max<Eigen::Index>(X.cols() - 1, 1));
    return (X.cast<double>().cwiseAbs().rowwise().sum() * (terms * kFloatEps * 1.0001)).array() + 1e-30;
}

/// Passes when |Y(t, i) − R(t, i)| ≤ factor·bound(t) for every entry.
inline ::testing::AssertionResult withinBound(const RowMatrixF& Y, const RowMatrixD& R, const Eigen::VectorXd& bound,
                                              double factor)
{
    if (Y.rows() != R.rows() || Y.cols() != R.cols())
        return ::testing::AssertionFailure() << "shape " << Y.rows() << "x" << Y.cols() << " vs " << R.rows()
                                             << "x" << R.cols();
    for (Eigen::Index t = 0; t < Y.rows(); ++t)
        for (Eigen::Index i = 0; i < Y.cols(); ++i) {
            const double err = std::abs(static_cast<double>(Y(t, i)) - R(t, i));
            if (!(err <= factor * bound(t)))
                return ::testing::AssertionFailure() << "entry (" << t << "," << i << "): " << Y(t, i) << " vs "
                                                     << R(t, i) << ", error " << err << " > bound "
                                                     << factor * bound(t);
        }
    return ::testing::AssertionSuccess();
}

/// Strided buffers for the raw GEMM forms: T tokens of ldx floats (random, the first `cols` used)
/// and T result rows of ldy floats holding kGuard, which nothing may overwrite past `rows`.
struct StridedCase {
    static constexpr float kGuard = 12345.0f;
    PackedSigns S;
    RowMatrixF Xs;
    RowMatrixF Ys;
};

inline StridedCase stridedCase(std::int64_t rows, std::int64_t cols, std::int64_t T, std::int64_t ldx,
                               std::int64_t ldy)
{
    return {randomSigns(rows, cols, 21), randomMatrix(T, ldx, 22), RowMatrixF::Constant(T, ldy, StridedCase::kGuard)};
}

/// Skips the current test when the requested path cannot run on this CPU.
#define MDBF_REQUIRE_KERNEL_PATH(path)                                                                  \
    do {                                                                                                \
        if ((path) == ::mdbf::kernels::KernelPath::Avx2 && !::mdbf::kernels::avx2Available())          \
            GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C; the avx2 kernel path is not tested";             \
        if ((path) == ::mdbf::kernels::KernelPath::Avx512 && !::mdbf::kernels::avx512Available())      \
            GTEST_SKIP() << "this CPU lacks AVX-512 F/BW/VL; the avx512 kernel path is not tested";     \
    } while (0)

/// gtest parameter names "Scalar" / "Avx2" / "Avx512".
inline std::string pathParamName(const ::testing::TestParamInfo<KernelPath>& info)
{
    switch (info.param) {
    case KernelPath::Avx2:
        return "Avx2";
    case KernelPath::Avx512:
        return "Avx512";
    case KernelPath::Scalar:
        return "Scalar";
    case KernelPath::Auto:
        break;
    }
    return "Auto";
}

}  // namespace mdbf::kernels::test
