#include "mdbf/factor/path_products.h"

#include <bit>
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
    const std::int64_t words = signs.wordsPerRow();
    for (std::int64_t i = 0; i < signs.rows(); ++i) {
        const std::uint64_t* row = signs.row(i);
        for (std::int64_t w = 0; w < words; ++w) {
            std::uint64_t bits = row[w];
            while (bits != 0) {
                const std::int64_t j = w * kernels::PackedSigns::kWordBits + std::countr_zero(bits);
                M(i, j) = -M(i, j);
                bits &= bits - 1;
            }
        }
    }
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

RowMatrixF reconstruct(const std::vector<kernels::FactorPath>& paths, int threads)
{
    requireSameShape(paths);
    const int t = threads > 0 ? threads : omp_get_max_threads();
    const detail::ThreadScope serialEigen(1);
    MatrixF W = MatrixF::Zero(paths.front().n(), paths.front().m());
    for (const auto& p : paths) {
        const MatrixF f = denseF(p);
        const MatrixF g = denseG(p);
        detail::parallelProduct(f, g, W, t, detail::Combine::Add);
    }
    return W;
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
