#include "mdbf/factor/low_rank.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include "factor/factor_detail.h"

namespace mdbf::factor {

namespace detail {

std::uint64_t mixSeed(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c)
{
    auto mix = [](std::uint64_t z) {
        z += 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    std::uint64_t h = mix(seed);
    h = mix(h ^ a);
    h = mix(h ^ (b + 0x632be59bd9b4e019ull));
    h = mix(h ^ (c + 0x8cb92ba72f3d8dd7ull));
    return h;
}

void fillGaussian(MatrixF& out, std::uint64_t seed)
{
    std::uint64_t state = seed;
    auto next = [&state]() {
        state += 0x9e3779b97f4a7c15ull;
        std::uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    // Box–Muller on 53-bit uniforms; the first uniform is kept away from 0 for the logarithm.
    const double scale = 1.0 / 9007199254740992.0;
    float* data = out.data();
    const Eigen::Index size = out.size();
    for (Eigen::Index i = 0; i < size; i += 2) {
        const double u1 = (static_cast<double>(next() >> 11) + 0.5) * scale;
        const double u2 = static_cast<double>(next() >> 11) * scale;
        const double r = std::sqrt(-2.0 * std::log(u1));
        data[i] = static_cast<float>(r * std::cos(6.283185307179586 * u2));
        if (i + 1 < size) data[i + 1] = static_cast<float>(r * std::sin(6.283185307179586 * u2));
    }
}

void orthonormalize(MatrixF& X)
{
    Eigen::HouseholderQR<MatrixF> qr(X);
    X = qr.householderQ() * MatrixF::Identity(X.rows(), X.cols());
}

void blockPower(const MatrixF& A, int l, const RankApproxOptions& options, MatrixF& U, VectorF& sigma, MatrixF& V)
{
    const Eigen::Index rows = A.rows();
    const Eigen::Index cols = A.cols();
    const Eigen::Index b = std::min<Eigen::Index>(l + std::max(0, options.oversample), std::min(rows, cols));
    MatrixF omega(cols, b);
    fillGaussian(omega, options.seed);
    orthonormalize(omega);
    MatrixF y(rows, b);
    for (int it = 0; it < options.powerIterations; ++it) {
        y.noalias() = A * omega;
        orthonormalize(y);
        omega.noalias() = A.transpose() * y;
        orthonormalize(omega);
    }
    y.noalias() = A * omega;
    Eigen::HouseholderQR<MatrixF> qr(y);
    const Eigen::MatrixXd r = qr.matrixQR().topRows(b).template triangularView<Eigen::Upper>().toDenseMatrix().cast<double>();
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);
    const MatrixF q = qr.householderQ() * MatrixF::Identity(rows, b);
    U.noalias() = q * svd.matrixU().leftCols(l).cast<float>();
    V.noalias() = omega * svd.matrixV().leftCols(l).cast<float>();
    sigma = svd.singularValues().head(l).cast<float>();
}

}  // namespace detail

namespace {

constexpr Eigen::Index kTinyMatrix = 4096;  // entries; below this an exact SVD is cheapest

bool useExactSvd(const MatrixF& M, int wanted, int oversample)
{
    const Eigen::Index small = std::min(M.rows(), M.cols());
    return small <= wanted + std::max(0, oversample) || M.size() <= kTinyMatrix;
}

// Exact thin SVD in double, leading `count` triplets (count ≤ min(rows, cols)).
void exactSvd(const MatrixF& M, int count, MatrixF& U, VectorF& sigma, MatrixF& V)
{
    const Eigen::MatrixXd md = M.cast<double>();
    Eigen::BDCSVD<Eigen::MatrixXd> svd(md, Eigen::ComputeThinU | Eigen::ComputeThinV);
    U = svd.matrixU().leftCols(count).cast<float>();
    V = svd.matrixV().leftCols(count).cast<float>();
    sigma = svd.singularValues().head(count).cast<float>();
}

}  // namespace

RankApprox rankApprox(const MatrixF& M, int l, const RankApproxOptions& options)
{
    RankApprox out;
    const int wanted = std::max(1, l);
    out.left = MatrixF::Zero(M.rows(), wanted);
    out.right = MatrixF::Zero(M.cols(), wanted);
    out.sigma = VectorF::Zero(wanted);
    const int r = static_cast<int>(std::min<Eigen::Index>(wanted, std::min(M.rows(), M.cols())));
    if (r <= 0) return out;
    MatrixF U, V;
    VectorF sigma;
    if (useExactSvd(M, r, options.oversample)) {
        exactSvd(M, r, U, sigma, V);
    } else {
        detail::blockPower(M, r, options, U, sigma, V);
    }
    const VectorF root = sigma.cwiseMax(0.0f).cwiseSqrt();
    out.left.leftCols(r) = U * root.asDiagonal();
    out.right.leftCols(r) = V * root.asDiagonal();
    out.sigma.head(r) = sigma;
    return out;
}

void fixEnvelopeSigns(MatrixF& left, MatrixF& right)
{
    for (Eigen::Index j = 0; j < left.cols(); ++j) {
        if (left.col(j).cast<double>().sum() < 0.0) {
            left.col(j) = -left.col(j);
            right.col(j) = -right.col(j);
        }
    }
}

MatrixF signRankProject(const MatrixF& M, int l, const RankApproxOptions& options)
{
    if (l >= std::min(M.rows(), M.cols())) return M;
    const MatrixF magnitude = M.cwiseAbs();
    const RankApprox approx = rankApprox(magnitude, l, options);
    MatrixF Z = approx.left * approx.right.transpose();
    Z = (M.array() < 0.0f).select(-Z.array(), Z.array()).matrix();
    return Z;
}

VectorF leadingSingularValues(const MatrixF& M, int count, const RankApproxOptions& options)
{
    const int r = static_cast<int>(std::min<Eigen::Index>(std::max(0, count), std::min(M.rows(), M.cols())));
    if (r <= 0) return VectorF();
    MatrixF U, V;
    VectorF sigma;
    if (useExactSvd(M, 2 * r, options.oversample)) {
        exactSvd(M, r, U, sigma, V);
    } else {
        detail::blockPower(M, r, options, U, sigma, V);
    }
    return sigma;
}

}  // namespace mdbf::factor
