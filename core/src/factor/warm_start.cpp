#include "factor/warm_start.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/closed_form_init.h"
#include "mdbf/factor/low_rank.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor::detail {

kernels::FactorPath extractPath(const MatrixF& F, const MatrixF& G, int l)
{
    kernels::FactorPath p;
    p.sa = kernels::PackedSigns::fromSigns(F);
    p.sb = kernels::PackedSigns::fromSigns(G);
    const MatrixF absF = F.cwiseAbs();
    RankApprox fa = rankApprox(absF, l, kEnvelopeFitOptions);
    fixEnvelopeSigns(fa.left, fa.right);
    p.A = std::move(fa.left);
    p.Qa = std::move(fa.right);
    const MatrixF absGt = G.cwiseAbs().transpose();
    RankApprox fb = rankApprox(absGt, l, kEnvelopeFitOptions);
    fixEnvelopeSigns(fb.left, fb.right);
    p.B = std::move(fb.left);
    p.Qb = std::move(fb.right);
    return p;
}

namespace {

// The indices of the `keep` components of largest ‖F col i‖·‖G row i‖ (the component's share of
// F·G, independent of how the scale is split), in their original order. Ties keep the lower index.
std::vector<Eigen::Index> mostImportant(const MatrixF& F, const MatrixF& G, Eigen::Index keep)
{
    std::vector<double> score(static_cast<std::size_t>(F.cols()));
    for (Eigen::Index i = 0; i < F.cols(); ++i)
        score[static_cast<std::size_t>(i)] =
            std::sqrt(F.col(i).cast<double>().squaredNorm() * G.row(i).cast<double>().squaredNorm());
    std::vector<Eigen::Index> order(score.size());
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) {
        return score[static_cast<std::size_t>(a)] > score[static_cast<std::size_t>(b)];
    });
    order.resize(static_cast<std::size_t>(keep));
    std::sort(order.begin(), order.end());
    return order;
}

// Appends columns [from, to) of U' = U Σ^{1/2} to F and of V' (R⁻¹ V Σ^{1/2} under Gram) to Gᵀ.
void appendComponents(MatrixF& F, MatrixF& G, const LayerSvd& svd, std::int64_t from, std::int64_t to,
                      const InputGram* gram)
{
    const MatrixF u = svd.leftFactor(to).rightCols(to - from);
    MatrixF v = svd.rightFactor(to).rightCols(to - from);
    if (gram) v = gram->inverseSqrt() * v;
    MatrixF f(F.rows(), F.cols() + u.cols());
    f << F, u;
    MatrixF g(G.rows() + v.cols(), G.cols());
    g << G, v.transpose();
    F = std::move(f);
    G = std::move(g);
}

}  // namespace

std::vector<kernels::FactorPath> warmStartPaths(const FactorResult& previous, const Eigen::Ref<const RowMatrixF>& target,
                                                const LayerSvd& svd, const std::optional<VectorF>& sqrtD,
                                                const InputGram* gram, std::int64_t k, int l, const RunContext& ctx)
{
    const std::int64_t n = target.rows();
    const std::int64_t m = target.cols();
    const auto paths = previous.paths.size();
    if (previous.n != n || previous.m != m || paths == 0 || static_cast<int>(paths) != previous.pathCount)
        throw InvalidArgument("warm start: the previous result is of a " + std::to_string(previous.n) + "x" +
                              std::to_string(previous.m) + " layer with " + std::to_string(paths) +
                              " paths, this layer is " + std::to_string(n) + "x" + std::to_string(m));
    for (const auto& p : previous.paths)
        if (p.n() != n || p.m() != m || p.k() != previous.k)
            throw InvalidArgument("warm start: a path of the previous result does not match its shape");
    const int threads = ctx.threadCount();
    ThreadScope scope(threads);

    std::vector<MatrixF> Fs, Gs;
    for (const auto& p : previous.paths) {
        MatrixF F = denseF(p);
        MatrixF G = denseG(p);
        if (sqrtD) G = G * sqrtD->asDiagonal();  // undo the fold of D^{-1/2} into B
        if (k < previous.k) {
            const std::vector<Eigen::Index> keep = mostImportant(F, G, k);
            F = F(Eigen::all, keep).eval();
            G = G(keep, Eigen::all).eval();
        }
        Fs.push_back(std::move(F));
        Gs.push_back(std::move(G));
    }
    if (k > previous.k) {
        appendComponents(Fs[0], Gs[0], svd, previous.k, k, gram);
        for (std::size_t p = 1; p < paths; ++p) {
            // Paths 2..P model the residual of the others: their new components come from its SVD.
            MatrixF residual = target;
            for (std::size_t q = 0; q < paths; ++q)
                parallelProduct(Fs[q], Gs[q], residual, threads, Combine::Subtract);
            RowMatrixF weighted = residual;
            if (gram) parallelProduct(residual, gram->sqrt(), weighted, threads);
            RunContext inner;
            inner.threads = threads;
            const LayerSvd rs = LayerSvd::computeLeading(weighted, k - previous.k, inner);
            appendComponents(Fs[p], Gs[p], rs, 0, k - previous.k, gram);
        }
    }
    std::vector<kernels::FactorPath> out;
    for (std::size_t p = 0; p < paths; ++p) out.push_back(extractPath(Fs[p], Gs[p], l));
    return out;
}

}  // namespace mdbf::factor::detail
