#include "mdbf/factor/path_products.h"

#include <algorithm>
#include <string>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/base/half.h"

namespace mdbf::factor {

namespace detail {

MatrixF unpackSigns(const kernels::PackedSigns& signs)
{
    MatrixF out = MatrixF::Ones(signs.rows(), signs.cols());
    applySigns(signs, out);
    return out;
}

void applySigns(const kernels::PackedSigns& signs, MatrixF& M)
{
    for (std::int64_t i = 0; i < signs.rows(); ++i)
        forEachSetBit(signs.row(i), signs.cols(), [&](std::int64_t j) { M(i, j) = -M(i, j); });
}

}  // namespace detail

namespace {

std::string shapeOf(const auto& x)
{
    return std::to_string(x.rows()) + "x" + std::to_string(x.cols());
}

// out = S v for a packed ±1 matrix S (rows×cols), as additions and subtractions.
void signMatVec(const kernels::PackedSigns& S, const float* v, float* out)
{
    const std::int64_t cols = S.cols();
    for (std::int64_t i = 0; i < S.rows(); ++i) {
        const std::uint64_t* row = S.row(i);
        float acc = 0.0f;
        for (std::int64_t j = 0; j < cols; ++j) {
            const bool negative = (row[j / kernels::PackedSigns::kWordBits] >> (j % kernels::PackedSigns::kWordBits)) & 1u;
            acc += negative ? -v[j] : v[j];
        }
        out[i] = acc;
    }
}

void requireSameShape(const std::vector<kernels::FactorPath>& paths)
{
    if (paths.empty()) throw InvalidArgument("factorized layer has no paths");
    for (const auto& p : paths) {
        validatePath(p);
        if (p.n() != paths.front().n() || p.m() != paths.front().m())
            throw InvalidArgument("factorized layer mixes paths of shape " + std::to_string(p.n()) + "x" +
                                  std::to_string(p.m()) + " and " + std::to_string(paths.front().n()) + "x" +
                                  std::to_string(paths.front().m()));
    }
}

/// requireSameShape, then that an input of `width` (`what` has `width` `unit`) fits the layer.
void requireInputWidth(const std::vector<kernels::FactorPath>& paths, std::int64_t width, const char* what,
                       const char* unit)
{
    requireSameShape(paths);
    const std::int64_t m = paths.front().m();
    if (width != m)
        throw InvalidArgument(std::string(what) + " has " + std::to_string(width) + " " + unit +
                              ", the layer expects " + std::to_string(m));
}

}  // namespace

void validatePath(const kernels::FactorPath& path)
{
    const std::int64_t n = path.sa.rows();
    const std::int64_t k = path.sa.cols();
    const std::int64_t m = path.sb.cols();
    const std::int64_t l = path.A.cols();
    const bool ok = n >= 1 && k >= 1 && m >= 1 && l >= 1 && path.sb.rows() == k && path.A.rows() == n &&
                    path.Qa.rows() == k && path.Qa.cols() == l && path.Qb.rows() == k && path.Qb.cols() == l &&
                    path.B.rows() == m && path.B.cols() == l;
    if (!ok)
        throw InvalidArgument("inconsistent factor path: sa " + std::to_string(n) + "x" + std::to_string(k) + ", sb " +
                              std::to_string(path.sb.rows()) + "x" + std::to_string(m) + ", A " + shapeOf(path.A) +
                              ", Qa " + shapeOf(path.Qa) + ", Qb " + shapeOf(path.Qb) + ", B " + shapeOf(path.B));
}

MatrixF denseF(const kernels::FactorPath& path)
{
    validatePath(path);
    MatrixF F = path.A * path.Qa.transpose();
    detail::applySigns(path.sa, F);
    return F;
}

MatrixF denseG(const kernels::FactorPath& path)
{
    validatePath(path);
    MatrixF G = path.Qb * path.B.transpose();
    detail::applySigns(path.sb, G);
    return G;
}

RowMatrixF reconstruct(const std::vector<kernels::FactorPath>& paths, int threads, const std::stop_token& stop)
{
    requireSameShape(paths);
    const int t = threads > 0 ? threads : omp_get_max_threads();
    const detail::ThreadScope serialEigen(1);
    MatrixF W = MatrixF::Zero(paths.front().n(), paths.front().m());
    for (const auto& p : paths) {
        const MatrixF f = denseF(p);
        const MatrixF g = denseG(p);
        if (!detail::parallelProduct(f, g, W, t, detail::Combine::Add, stop)) throw Cancelled();
    }
    return W;
}

RowMatrixF reconstructRows(const std::vector<kernels::FactorPath>& paths, const std::vector<Eigen::Index>& rows,
                           int threads)
{
    requireSameShape(paths);
    const std::int64_t n = paths.front().n();
    const std::int64_t m = paths.front().m();
    for (const Eigen::Index i : rows)
        if (i < 0 || i >= n)
            throw InvalidArgument("row " + std::to_string(i) + " of a reconstruction with " + std::to_string(n) + " rows");
    const auto s = static_cast<Eigen::Index>(rows.size());
    const int t = threads > 0 ? threads : omp_get_max_threads();
    const detail::ThreadScope serialEigen(1);
    // G is built a block of columns at a time, never whole: at 4096×11008 it is 130 MB.
    constexpr Eigen::Index kBlock = 256;
    static_assert(kBlock % kernels::PackedSigns::kWordBits == 0);
    RowMatrixF out = RowMatrixF::Zero(s, m);
    for (const auto& p : paths) {
        const Eigen::Index k = p.k();
        RowMatrixF f(s, k);  // the sampled rows of F = S_a ⊙ (A·Qaᵀ)
        for (Eigen::Index i = 0; i < s; ++i) {
            f.row(i).noalias() = p.A.row(rows[static_cast<std::size_t>(i)]) * p.Qa.transpose();
            detail::forEachSetBit(p.sa.row(rows[static_cast<std::size_t>(i)]), k,
                                  [&](std::int64_t c) { f(i, c) = -f(i, c); });
        }
        const int blocks = static_cast<int>((m + kBlock - 1) / kBlock);
        detail::parallelTasks(blocks, t, {}, [&](int block) {
            const Eigen::Index j0 = static_cast<Eigen::Index>(block) * kBlock;
            const Eigen::Index width = std::min<Eigen::Index>(kBlock, m - j0);
            RowMatrixF g = p.Qb * p.B.middleRows(j0, width).transpose();  // G[:, j0 : j0 + width]
            const std::int64_t firstWord = j0 / kernels::PackedSigns::kWordBits;
            for (Eigen::Index r = 0; r < k; ++r)
                detail::forEachSetBit(p.sb.row(r) + firstWord, width, [&](std::int64_t j) { g(r, j) = -g(r, j); });
            out.middleCols(j0, width).noalias() += f * g;
        });
    }
    return out;
}

VectorF applyFactors(const std::vector<kernels::FactorPath>& paths, const VectorF& x)
{
    requireInputWidth(paths, x.size(), "input", "entries");
    const std::int64_t n = paths.front().n();
    const std::int64_t m = paths.front().m();
    VectorF y = VectorF::Zero(n);
    for (const auto& p : paths) {
        const std::int64_t k = p.k();
        VectorF z = VectorF::Zero(k);
        VectorF scaledX(m), t(k);
        for (std::int64_t j = 0; j < p.l(); ++j) {
            scaledX = p.B.col(j).cwiseProduct(x);
            signMatVec(p.sb, scaledX.data(), t.data());
            z += p.Qb.col(j).cwiseProduct(t);
        }
        VectorF scaledZ(k), u(n);
        for (std::int64_t i = 0; i < p.l(); ++i) {
            scaledZ = p.Qa.col(i).cwiseProduct(z);
            signMatVec(p.sa, scaledZ.data(), u.data());
            y += p.A.col(i).cwiseProduct(u);
        }
    }
    return y;
}

RowMatrixF applyFactorsWindow(const std::vector<kernels::FactorPath>& paths, const RowMatrixF& X)
{
    requireInputWidth(paths, X.cols(), "input window", "columns");
    const std::int64_t n = paths.front().n();
    MatrixF Y = MatrixF::Zero(X.rows(), n);
    for (const auto& p : paths) {
        const MatrixF sb = detail::unpackSigns(p.sb);  // k×m
        const MatrixF sa = detail::unpackSigns(p.sa);  // n×k
        MatrixF Z = MatrixF::Zero(X.rows(), p.k());
        for (std::int64_t j = 0; j < p.l(); ++j) {
            const MatrixF scaled = X * p.B.col(j).asDiagonal();
            Z.noalias() += (scaled * sb.transpose()) * p.Qb.col(j).asDiagonal();
        }
        for (std::int64_t i = 0; i < p.l(); ++i) {
            const MatrixF scaled = Z * p.Qa.col(i).asDiagonal();
            Y.noalias() += (scaled * sa.transpose()) * p.A.col(i).asDiagonal();
        }
    }
    return Y;
}

void roundEnvelopesToHalf(kernels::FactorPath& path)
{
    for (MatrixF* M : {&path.A, &path.Qa, &path.Qb, &path.B})
        for (Eigen::Index i = 0; i < M->size(); ++i) M->data()[i] = roundToHalf(M->data()[i]);
}

}  // namespace mdbf::factor
