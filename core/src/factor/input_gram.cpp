#include "mdbf/factor/input_gram.h"

#include <cmath>
#include <string>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/symmetric_eigen.h"

namespace mdbf::factor {

InputGram InputGram::prepare(const Eigen::MatrixXd& gram, double damping)
{
    const Eigen::Index m = gram.rows();
    if (m < 1 || gram.cols() != m)
        throw InvalidArgument("gram objective: the input Gram matrix is " + std::to_string(gram.rows()) + "x" +
                              std::to_string(gram.cols()) + ", not square and non-empty");
    if (!(damping >= 0.0) || !std::isfinite(damping))
        throw InvalidArgument("gram objective: damping must be finite and ≥ 0");
    if (!gram.allFinite()) throw InvalidArgument("gram objective: the input Gram matrix has a non-finite entry");
    for (Eigen::Index j = 0; j < m; ++j)
        if (gram(j, j) < 0.0)
            throw InvalidArgument("gram objective: diagonal entry " + std::to_string(j) +
                                  " of the input Gram matrix is negative");
    const double meanDiag = gram.diagonal().mean();
    if (!(meanDiag > 0.0)) throw InvalidArgument("gram objective: the input Gram matrix is zero (no activations)");

    // Damping first (channels that never fire would make H singular), then unit mean diagonal.
    Eigen::MatrixXd h = 0.5 * (gram + gram.transpose());
    h.diagonal().array() += damping * meanDiag;
    h /= h.diagonal().mean();

    Eigen::MatrixXd q = h;
    const Eigen::VectorXd lambda = symmetricEigen(q);
    // Below this relative size an eigenvalue is rounding noise of a singular matrix: R⁻¹ would blow up.
    constexpr double kSmallestRelativeEigenvalue = 1e-10;
    if (!(lambda.minCoeff() > kSmallestRelativeEigenvalue * lambda.maxCoeff()))
        throw InvalidArgument("gram objective: the input Gram matrix is singular after damping (damping " +
                              std::to_string(damping) + "); use a positive damping");

    InputGram out;
    out.m_h = h.cast<float>();
    out.m_q = q.cast<float>();
    out.m_lambda = lambda.cast<float>();
    out.m_sqrt = (q * lambda.cwiseSqrt().asDiagonal() * q.transpose()).cast<float>();
    out.m_inverseSqrt = (q * lambda.cwiseSqrt().cwiseInverse().asDiagonal() * q.transpose()).cast<float>();
    out.m_damping = damping;
    return out;
}

double InputGram::weightedSquaredNorm(const Eigen::Ref<const RowMatrixF>& E, int threads) const
{
    if (E.cols() != size())
        throw InvalidArgument("gram objective: a " + std::to_string(E.rows()) + "x" + std::to_string(E.cols()) +
                              " matrix does not fit an input Gram matrix of size " + std::to_string(size()));
    MatrixF er(E.rows(), E.cols());
    detail::parallelProduct(E, m_sqrt, er, threads);
    return er.cast<double>().squaredNorm();
}

}  // namespace mdbf::factor
