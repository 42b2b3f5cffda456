#include "mdbf/factor/layer_svd.h"

#include <chrono>
#include <cmath>
#include <string>

#include "factor/factor_detail.h"
#include "factor/gram_svd.h"
#include "mdbf/base/error.h"

namespace mdbf::factor {

namespace {

void requireFinite(const Eigen::Ref<const RowMatrixF>& W)
{
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
        for (Eigen::Index j = 0; j < W.cols(); ++j) {
            if (!std::isfinite(W(i, j)))
                throw InvalidArgument("weight matrix has a non-finite value at (" + std::to_string(i) + ", " +
                                      std::to_string(j) + ")");
        }
    }
}

double sumOfSquares(const VectorF& sigma)
{
    double sum = 0.0;
    for (Eigen::Index i = 0; i < sigma.size(); ++i) sum += static_cast<double>(sigma[i]) * sigma[i];
    return sum;
}

}  // namespace

LayerSvd LayerSvd::decompose(const Eigen::Ref<const RowMatrixF>& W, std::int64_t k, const RunContext& ctx)
{
    if (W.rows() < 1 || W.cols() < 1)
        throw InvalidArgument("cannot decompose an empty " + std::to_string(W.rows()) + "x" +
                              std::to_string(W.cols()) + " matrix");
    const Eigen::Index r = std::min(W.rows(), W.cols());
    if (k < 1 || k > r)
        throw InvalidArgument("cannot compute the leading " + std::to_string(k) + " singular triplets of a " +
                              std::to_string(W.rows()) + "x" + std::to_string(W.cols()) + " matrix");
    requireFinite(W);
    ctx.throwIfStopped();
    const auto start = std::chrono::steady_clock::now();
    detail::ThreadScope threads(ctx.threadCount());

    LayerSvd out;
    if (W.squaredNorm() == 0.0f) {
        // Any orthonormal bases are valid for a zero matrix; identity-like ones are the
        // deterministic choice.
        out.m_u = MatrixF::Identity(W.rows(), k);
        out.m_v = MatrixF::Identity(W.cols(), k);
        out.m_sigma = VectorF::Zero(k);
    } else if (k == r) {
        detail::gramSvd(W, ctx.threadCount(), out.m_u, out.m_sigma, out.m_v);
    } else {
        detail::gramSvdLeading(W, k, ctx.threadCount(), out.m_u, out.m_sigma, out.m_v);
    }
    out.m_norm = k == r ? std::sqrt(sumOfSquares(out.m_sigma)) : std::sqrt(W.cast<double>().squaredNorm());
    out.m_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

LayerSvd LayerSvd::compute(const Eigen::Ref<const RowMatrixF>& W, const RunContext& ctx)
{
    return decompose(W, std::min(W.rows(), W.cols()), ctx);
}

LayerSvd LayerSvd::computeLeading(const Eigen::Ref<const RowMatrixF>& W, std::int64_t k, const RunContext& ctx)
{
    return decompose(W, k, ctx);
}

LayerSvd LayerSvd::fromParts(MatrixF u, VectorF sigma, MatrixF v, double seconds, double frobeniusNorm)
{
    const Eigen::Index r = sigma.size();
    if (u.cols() != r || v.cols() != r || r > std::min(u.rows(), v.rows()) || r < 1)
        throw InvalidArgument("SVD parts of inconsistent shapes: U " + std::to_string(u.rows()) + "x" +
                              std::to_string(u.cols()) + ", " + std::to_string(r) + " singular values, V " +
                              std::to_string(v.rows()) + "x" + std::to_string(v.cols()));
    LayerSvd out;
    out.m_u = std::move(u);
    out.m_sigma = std::move(sigma);
    out.m_v = std::move(v);
    out.m_seconds = seconds;
    out.m_norm = frobeniusNorm > 0.0 ? frobeniusNorm : std::sqrt(sumOfSquares(out.m_sigma));
    return out;
}

void LayerSvd::checkK(std::int64_t k) const
{
    if (k < 0 || k > rank())
        throw InvalidArgument("truncation rank k = " + std::to_string(k) + " is outside [0, " +
                              std::to_string(rank()) + "] of the layer SVD" +
                              (complete() ? std::string()
                                          : " (it holds only the leading triplets: recompute it with "
                                            "LayerSvd::computeLeading for at least k, or LayerSvd::compute)"));
}

MatrixF LayerSvd::leftFactor(std::int64_t k) const
{
    checkK(k);
    return m_u.leftCols(k) * m_sigma.head(k).cwiseSqrt().asDiagonal();
}

MatrixF LayerSvd::rightFactor(std::int64_t k) const
{
    checkK(k);
    return m_v.leftCols(k) * m_sigma.head(k).cwiseSqrt().asDiagonal();
}

MatrixF LayerSvd::truncated(std::int64_t k) const
{
    checkK(k);
    return m_u.leftCols(k) * m_sigma.head(k).asDiagonal() * m_v.leftCols(k).transpose();
}

}  // namespace mdbf::factor
