#pragma once
// LAPACK's LP64 interface (OpenBLAS) takes 32-bit integers for dimensions and strides.

#include <limits>
#include <string>

#include <Eigen/Core>

#include "mdbf/base/error.h"

namespace mdbf::factor::detail {

/// `value` as LAPACK's 32-bit integer; throws InvalidArgument when it does not fit.
inline int lapackInt(Eigen::Index value)
{
    if (value > std::numeric_limits<int>::max())
        throw InvalidArgument("matrix dimension " + std::to_string(value) + " exceeds LAPACK's 32-bit indices");
    return static_cast<int>(value);
}

}  // namespace mdbf::factor::detail
