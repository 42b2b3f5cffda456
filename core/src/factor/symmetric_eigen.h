#pragma once
// The symmetric eigendecomposition in double through LAPACK (OpenBLAS's DSYEVD), shared by the
// layer SVD (gram_svd.cpp), the input Gram matrix of the gram objective (input_gram.cpp) and the
// G-step of the gram refinement (gram_refiner.cpp).

#include <Eigen/Core>

namespace mdbf::factor::detail {

/// `value` as LAPACK's 32-bit integer; throws InvalidArgument when it does not fit.
int lapackInt(Eigen::Index value);

/// Eigen-decomposes the symmetric G (r×r, r ≥ 1; only its lower triangle is read) in place: on
/// return G holds the orthonormal eigenvectors as columns, in the order of the returned eigenvalues,
/// which ascend (as Eigen's SelfAdjointEigenSolver orders them). Divide and conquer (DSYEVD) on one
/// thread: the tridiagonal reduction is a long series of small BLAS-2 calls, which OpenBLAS's
/// threads make several times slower as soon as anything else shares the cores. 3.0× (r = 2024) and
/// 4.1× (r = 2962) faster than Eigen's QR iteration (docs/ALGORITHM.md §6.3). Throws Error when
/// LAPACK reports a failure (it does not for finite input).
Eigen::VectorXd symmetricEigen(Eigen::MatrixXd& G);

}  // namespace mdbf::factor::detail
