#pragma once
// Element-wise comparison with stated tolerances: |a - b| <= atol + rtol * |b|.

#include <cmath>
#include <sstream>
#include <string>

#include <Eigen/Core>
#include <gtest/gtest.h>

namespace mdbf::test {

template <typename A, typename B>
::testing::AssertionResult allClose(const Eigen::MatrixBase<A>& actualExpr, const Eigen::MatrixBase<B>& expectedExpr,
                                    double rtol, double atol)
{
    // Evaluated once: element access on a product expression would recompute the product per element.
    const auto actual = actualExpr.eval();
    const auto expected = expectedExpr.eval();
    if (actual.rows() != expected.rows() || actual.cols() != expected.cols()) {
        return ::testing::AssertionFailure() << "shape " << actual.rows() << "x" << actual.cols() << " vs "
                                             << expected.rows() << "x" << expected.cols();
    }
    double worst = 0.0;
    Eigen::Index wi = 0, wj = 0;
    int failures = 0;
    for (Eigen::Index i = 0; i < actual.rows(); ++i) {
        for (Eigen::Index j = 0; j < actual.cols(); ++j) {
            const double a = static_cast<double>(actual(i, j));
            const double b = static_cast<double>(expected(i, j));
            const double excess = std::abs(a - b) - (atol + rtol * std::abs(b));
            if (!(excess <= 0.0)) {
                ++failures;
                if (failures == 1 || excess > worst) {
                    worst = excess;
                    wi = i;
                    wj = j;
                }
            }
        }
    }
    if (failures == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << failures << " entries out of tolerance (rtol " << rtol << ", atol "
                                         << atol << "); worst at (" << wi << "," << wj << "): " << actual(wi, wj)
                                         << " vs " << expected(wi, wj);
}

}  // namespace mdbf::test
