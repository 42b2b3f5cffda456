#pragma once
// Seeded random test matrices, so every test draws its data the same way.

#include <random>

#include "mdbf/base/matrix.h"

namespace mdbf::test {

/// A rows×cols matrix of independent N(0, scale²) entries drawn from std::mt19937(seed) in storage
/// order (so a row-major and a column-major request with the same seed differ).
template <typename Matrix = RowMatrixF>
Matrix gaussianMatrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, float scale = 1.0f)
{
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    Matrix m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
    return m;
}

/// A weight-like n×m matrix: N(0, 0.02²) noise plus a rank-8 product of N(0, 0.05²) factors, so its
/// spectrum has a few strong directions above a noise floor.
inline RowMatrixF layerLikeMatrix(Eigen::Index n, Eigen::Index m, unsigned seed)
{
    RowMatrixF w = gaussianMatrix(n, m, seed, 0.02f);
    w += gaussianMatrix(n, 8, seed + 1, 0.05f) * gaussianMatrix(8, m, seed + 2, 0.05f);
    return w;
}

}  // namespace mdbf::test
