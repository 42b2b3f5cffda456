#include "mdbf/factor/low_rank.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"

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

namespace {

constexpr Eigen::Index kRowBlock = 256;   // rows of A (columns for Aᵀ) per task of the skinny products
constexpr Eigen::Index kDotColumns = 16;  // below this many columns of Y, Aᵀ Y is computed as dot products

// Y = A X for a tall-or-wide A (rows×cols) and a skinny X (cols×b), as one Eigen product per block of
// kRowBlock rows on one thread: blocked GEMM beats streaming A with b axpys per column 2–5× for
// b = 5…40 (4096×2966 and 2966×11008, 2 threads), and since the blocks do not depend on the thread
// count, neither do the results.
void skinnyProduct(const MatrixF& A, const MatrixF& X, MatrixF& Y, int threads)
{
    const Eigen::Index rows = A.rows();
    Y.resize(rows, X.cols());
    const int tasks = static_cast<int>((rows + kRowBlock - 1) / kRowBlock);
    const detail::ThreadScope serialEigen(1);
    detail::parallelTasks(tasks, threadsFor(static_cast<double>(A.size()), threads), {}, [&](int task) {
        const Eigen::Index r0 = static_cast<Eigen::Index>(task) * kRowBlock;
        const Eigen::Index len = std::min(kRowBlock, rows - r0);
        Y.middleRows(r0, len).noalias() = A.middleRows(r0, len) * X;
    });
}

// X = Aᵀ Y (cols×b). For few columns of Y, b dot products per column of A reading it once are the
// faster; from kDotColumns on, blocked products as in skinnyProduct.
void skinnyProductT(const MatrixF& A, const MatrixF& Y, MatrixF& X, int threads)
{
    const Eigen::Index cols = A.cols(), b = Y.cols();
    X.resize(cols, b);
    const int t = threadsFor(static_cast<double>(A.size()), threads);
    if (b < kDotColumns) {
        parallelChunks(cols, t, [&](std::int64_t j0, std::int64_t j1) {
            for (std::int64_t j = j0; j < j1; ++j)
                for (Eigen::Index c = 0; c < b; ++c) X(j, c) = A.col(j).dot(Y.col(c));
        });
        return;
    }
    const int tasks = static_cast<int>((cols + kRowBlock - 1) / kRowBlock);
    const detail::ThreadScope serialEigen(1);
    detail::parallelTasks(tasks, t, {}, [&](int task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * kRowBlock;
        const Eigen::Index len = std::min(kRowBlock, cols - c0);
        X.middleRows(c0, len).noalias() = A.middleCols(c0, len).transpose() * Y;
    });
}

}  // namespace

bool parallelGram(const MatrixF& z, MatrixF& k, int threads, const std::stop_token& stop)
{
    const Eigen::Index n = z.rows();
    constexpr Eigen::Index kBlock = 128;
    k.resize(n, n);
    const int tasks = static_cast<int>((n + kBlock - 1) / kBlock);
    const int t = threadsFor(static_cast<double>(n) * static_cast<double>(z.size()) / 64.0, threads);
    // Block 0 (the tallest) first, so the dynamic schedule ends with the small ones.
    const bool done = detail::parallelTasks(tasks, t, stop, [&](int task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * kBlock;
        const Eigen::Index c = std::min(kBlock, n - c0);
        k.block(c0, c0, n - c0, c).noalias() = z.middleRows(c0, n - c0) * z.middleRows(c0, c).transpose();
    });
    if (!done) return false;
    for (Eigen::Index j = 1; j < n; ++j)
        for (Eigen::Index i = 0; i < j; ++i) k(i, j) = k(j, i);
    return true;
}

void blockPower(const MatrixF& A, int l, const RankApproxOptions& options, MatrixF& U, VectorF& sigma, MatrixF& V,
                int threads, const std::stop_token& stop)
{
    const Eigen::Index rows = A.rows();
    const Eigen::Index cols = A.cols();
    const Eigen::Index b = std::min<Eigen::Index>(l + std::max(0, options.oversample), std::min(rows, cols));
    MatrixF omega(cols, b);
    fillGaussian(omega, options.seed);
    orthonormalize(omega);
    MatrixF y(rows, b);
    for (int it = 0; it < options.powerIterations; ++it) {
        if (stop.stop_requested()) throw Cancelled();
        skinnyProduct(A, omega, y, threads);
        orthonormalize(y);
        skinnyProductT(A, y, omega, threads);
        orthonormalize(omega);
    }
    skinnyProduct(A, omega, y, threads);
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

RankApprox rankApprox(const MatrixF& M, int l, const RankApproxOptions& options, const std::stop_token& stop)
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
    const int threads = omp_get_max_threads();
    const detail::ThreadScope serialEigen(1);
    if (useExactSvd(M, r, options.oversample)) {
        exactSvd(M, r, U, sigma, V);
    } else {
        detail::blockPower(M, r, options, U, sigma, V, threads, stop);
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

VectorF leadingSingularValues(const MatrixF& M, int count, const RankApproxOptions& options,
                              const std::stop_token& stop)
{
    const int r = static_cast<int>(std::min<Eigen::Index>(std::max(0, count), std::min(M.rows(), M.cols())));
    if (r <= 0) return VectorF();
    MatrixF U, V;
    VectorF sigma;
    const int threads = omp_get_max_threads();
    const detail::ThreadScope serialEigen(1);
    if (useExactSvd(M, 2 * r, options.oversample)) {
        exactSvd(M, r, U, sigma, V);
    } else {
        detail::blockPower(M, r, options, U, sigma, V, threads, stop);
    }
    return sigma;
}

}  // namespace mdbf::factor
