#pragma once
// Matrix aliases shared across modules. Weights follow the Hugging Face layout: W is n×m
// (out_features × in_features), row-major as stored in checkpoints; activations are T×m row-major
// (one row per token).

#include <Eigen/Core>

namespace mdbf {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixF = Eigen::MatrixXf;  ///< column-major, used inside numerical code
using VectorF = Eigen::VectorXf;
/// IEEE binary16 storage for what is only looked at (half of RowMatrixF's bytes, 11-bit precision).
using RowMatrixH = Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace mdbf
