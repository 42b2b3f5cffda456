#include "mdbf/factor/closed_form_init.h"

#include <string>
#include <utility>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor {

namespace {

/// Throws InvalidArgument unless `svd` is of an n×m matrix and k (≤ its rank), l and P are usable.
void checkArguments(const LayerSvd& svd, std::int64_t n, std::int64_t m, std::int64_t k, int l, int paths)
{
    if (svd.rows() != n || svd.cols() != m)
        throw InvalidArgument("closed form: the SVD is of a " + std::to_string(svd.rows()) + "x" +
                              std::to_string(svd.cols()) + " matrix, the layer is " + std::to_string(n) + "x" +
                              std::to_string(m));
    if (k < 1 || k > svd.rank() || l < 1 || paths < 1)
        throw InvalidArgument("closed form: invalid k = " + std::to_string(k) + ", l = " + std::to_string(l) +
                              " or P = " + std::to_string(paths) + " for a " + std::to_string(n) + "x" +
                              std::to_string(m) + " layer" +
                              (k > svd.rank() && !svd.complete()
                                   ? " (the decomposition holds only the leading " + std::to_string(svd.rank()) +
                                         " triplets: recompute it with LayerSvd::computeLeading for k or LayerSvd::compute)"
                                   : std::string()));
}

}  // namespace

kernels::FactorPath closedFormPath(MatrixF uPrime, MatrixF vPrime, int l, const std::stop_token& stop)
{
    if (l < 1) throw InvalidArgument("envelope rank l = " + std::to_string(l) + " must be at least 1");
    if (uPrime.cols() != vPrime.cols() || uPrime.cols() < 1 || uPrime.rows() < 1 || vPrime.rows() < 1)
        throw InvalidArgument("closed form: U' is " + std::to_string(uPrime.rows()) + "x" +
                              std::to_string(uPrime.cols()) + " and V' is " + std::to_string(vPrime.rows()) + "x" +
                              std::to_string(vPrime.cols()));
    kernels::FactorPath path;
    path.sa = kernels::PackedSigns::fromSigns(uPrime);
    path.sb = kernels::PackedSigns::fromSigns(vPrime.transpose());
    if (stop.stop_requested()) throw Cancelled();

    uPrime = uPrime.cwiseAbs();
    RankApprox fa = rankApprox(uPrime, l, kEnvelopeFitOptions, stop);
    fixEnvelopeSigns(fa.left, fa.right);
    path.A = std::move(fa.left);
    path.Qa = std::move(fa.right);

    if (stop.stop_requested()) throw Cancelled();
    vPrime = vPrime.cwiseAbs();
    RankApprox fb = rankApprox(vPrime, l, kEnvelopeFitOptions, stop);
    fixEnvelopeSigns(fb.left, fb.right);
    path.B = std::move(fb.left);
    path.Qb = std::move(fb.right);
    return path;
}

std::vector<kernels::FactorPath> closedFormInit(const Eigen::Ref<const RowMatrixF>& target, const LayerSvd& targetSvd,
                                                std::int64_t k, int l, int paths, const RunContext& ctx)
{
    const std::int64_t n = target.rows();
    const std::int64_t m = target.cols();
    checkArguments(targetSvd, n, m, k, l, paths);
    detail::ThreadScope threads(ctx.threadCount());
    std::vector<kernels::FactorPath> out;
    out.reserve(static_cast<std::size_t>(paths));
    out.push_back(closedFormPath(targetSvd.leftFactor(k), targetSvd.rightFactor(k), l, ctx.stop));
    if (paths > 1) {
        MatrixF residual = target;
        for (int p = 1; p < paths; ++p) {
            const MatrixF f = denseF(out.back());
            const MatrixF g = denseG(out.back());
            detail::parallelProduct(f, g, residual, ctx.threadCount(), detail::Combine::Subtract);
            const RowMatrixF residualRows = residual;
            RunContext inner;
            inner.threads = ctx.threadCount();
            // Only the residual's leading k triplets are used.
            const LayerSvd svd = LayerSvd::computeLeading(residualRows, k, inner);
            out.push_back(closedFormPath(svd.leftFactor(k), svd.rightFactor(k), l, ctx.stop));
        }
    }
    return out;
}

std::vector<kernels::FactorPath> closedFormInitGram(const Eigen::Ref<const RowMatrixF>& W, const InputGram& gram,
                                                    const LayerSvd& weightedSvd, std::int64_t k, int l, int paths,
                                                    const RunContext& ctx)
{
    const std::int64_t n = W.rows();
    const std::int64_t m = W.cols();
    if (gram.size() != m)
        throw InvalidArgument("closed form: the input Gram matrix is " + std::to_string(gram.size()) + "x" +
                              std::to_string(gram.size()) + ", the layer has " + std::to_string(m) + " input channels");
    checkArguments(weightedSvd, n, m, k, l, paths);
    const int threads = ctx.threadCount();
    detail::ThreadScope scope(threads);
    const MatrixF& rInv = gram.inverseSqrt();
    auto pathFrom = [&](const LayerSvd& svd) {
        MatrixF vPrime(m, k);
        detail::parallelProduct(rInv, svd.rightFactor(k), vPrime, threads);
        return closedFormPath(svd.leftFactor(k), std::move(vPrime), l, ctx.stop);
    };
    std::vector<kernels::FactorPath> out;
    out.reserve(static_cast<std::size_t>(paths));
    out.push_back(pathFrom(weightedSvd));
    if (paths > 1) {
        MatrixF residual = W;
        for (int p = 1; p < paths; ++p) {
            const MatrixF f = denseF(out.back());
            const MatrixF g = denseG(out.back());
            detail::parallelProduct(f, g, residual, threads, detail::Combine::Subtract);
            RowMatrixF weighted(n, m);
            detail::parallelProduct(residual, gram.sqrt(), weighted, threads);
            RunContext inner;
            inner.threads = threads;
            out.push_back(pathFrom(LayerSvd::computeLeading(weighted, k, inner)));
        }
    }
    return out;
}

}  // namespace mdbf::factor
