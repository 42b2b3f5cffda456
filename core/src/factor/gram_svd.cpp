#include "factor/gram_svd.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/QR>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"

// Reference BLAS/LAPACK entry points as OpenBLAS exports them (LP64: 32-bit integers), with the
// hidden lengths gfortran passes for character arguments.
extern "C" {
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c, const int* ldc,
            std::size_t transaLength, std::size_t transbLength);
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc,
            std::size_t transaLength, std::size_t transbLength);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, std::size_t jobzLength, std::size_t uploLength);
}

namespace mdbf::factor::detail {

namespace {

constexpr double kReorthogonalize = 1e-3;    // σ/σ_max below which long-side vectors are re-orthogonalized
constexpr double kNumericalZero = 1e-6;      // σ/σ_max below which they are replaced
constexpr std::uint64_t kCompletionSeed = 0x636f6d706c657465ull;

int lapackInt(Eigen::Index value)
{
    if (value > std::numeric_limits<int>::max())
        throw InvalidArgument("matrix dimension " + std::to_string(value) + " exceeds LAPACK's 32-bit indices");
    return static_cast<int>(value);
}

/// G (r×r, lower triangle) = the Gram matrix of the short side, accumulated in double: column
/// blocks of the lower triangle on `threads` threads, each a single-threaded DGEMM (OpenBLAS runs
/// serially inside a parallel region). OpenBLAS's own threading synchronises its threads inside
/// every call and collapses when other work shares the cores; independent blocks do not.
Eigen::MatrixXd shortSideGram(const Eigen::Ref<const RowMatrixF>& W, bool rowsShort, int threads)
{
    const Eigen::Index r = rowsShort ? W.rows() : W.cols();
    const Eigen::Index len = rowsShort ? W.cols() : W.rows();
    // D (r×len, column-major): the short side's vectors as rows.
    Eigen::MatrixXd D(r, len);
    if (rowsShort) D = W.cast<double>();
    else D = W.transpose().cast<double>();
    Eigen::MatrixXd G(r, r);
    const Eigen::Index block = std::clamp<Eigen::Index>(r / (4 * std::max(1, threads)), 64, 512);
    const int tasks = static_cast<int>((r + block - 1) / block);
    const int ri = lapackInt(r);
    const int leni = lapackInt(len);
    const double one = 1.0;
    const double zero = 0.0;
    // Block 0 (the tallest) first, so the dynamic schedule ends with the small ones.
#pragma omp parallel for num_threads(std::max(1, std::min(threads, tasks))) schedule(dynamic, 1)
    for (int task = 0; task < tasks; ++task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * block;
        const int c = static_cast<int>(std::min(block, r - c0));
        const int rows = static_cast<int>(r - c0);
        dgemm_("N", "T", &rows, &c, &leni, &one, D.data() + c0, &ri, D.data() + c0, &ri, &zero, G.data() + c0 + c0 * r,
               &ri, 1, 1);
    }
    return G;
}

/// Eigen-decomposes the symmetric G in place (lower triangle in, eigenvectors out, ascending).
Eigen::VectorXd symmetricEigen(Eigen::MatrixXd& G)
{
    const int r = lapackInt(G.rows());
    // One thread: the tridiagonal reduction is a long series of small BLAS-2 calls, and OpenBLAS's
    // threads, which meet at the end of every call, make it several times slower as soon as
    // anything else runs on the machine (measured: 4096², 23 s on 1 thread, 98 s on 2 when shared).
    const ThreadScope serial(1);
    Eigen::VectorXd w(r);
    int info = 0;
    int lwork = -1;
    int liwork = -1;
    double workSize = 0.0;
    int iworkSize = 0;
    dsyevd_("V", "L", &r, G.data(), &r, w.data(), &workSize, &lwork, &iworkSize, &liwork, &info, 1, 1);
    if (info != 0) throw Error("DSYEVD workspace query failed (info " + std::to_string(info) + ")");
    lwork = static_cast<int>(workSize);
    liwork = iworkSize;
    std::vector<double> work(static_cast<std::size_t>(std::max(1, lwork)));
    std::vector<int> iwork(static_cast<std::size_t>(std::max(1, liwork)));
    dsyevd_("V", "L", &r, G.data(), &r, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
    if (info != 0)
        throw Error("the symmetric eigensolver (DSYEVD) did not converge on a " + std::to_string(r) + "x" +
                    std::to_string(r) + " Gram matrix (info " + std::to_string(info) + ")");
    return w;
}

/// Y (len×r) = op(W) · X: Wᵀ·X when the rows are the short side, W·X otherwise. Column blocks of X
/// on `threads` threads, each a single-threaded SGEMM (OpenBLAS runs serially inside a parallel
/// region), which keeps its speed when other work shares the cores.
void longSideProduct(const Eigen::Ref<const RowMatrixF>& W, bool rowsShort, const MatrixF& X, MatrixF& Y, int threads)
{
    const Eigen::Index r = X.rows();
    const Eigen::Index len = rowsShort ? W.cols() : W.rows();
    const Eigen::Index q = X.cols();
    Y.resize(len, q);
    // W row-major is Wᵀ column-major with leading dimension outerStride.
    const int lda = lapackInt(W.outerStride());
    const int t = std::max(1, threads);
    const Eigen::Index chunk = std::clamp<Eigen::Index>((q + 2 * t - 1) / (2 * t), 32, 1024);
    const int tasks = static_cast<int>((q + chunk - 1) / chunk);
    const float one = 1.0f;
    const float zero = 0.0f;
    const int leni = lapackInt(len);
    const int ri = lapackInt(r);
#pragma omp parallel for num_threads(std::min(t, tasks)) schedule(dynamic, 1)
    for (int task = 0; task < tasks; ++task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * chunk;
        const int c = static_cast<int>(std::min(chunk, q - c0));
        const float* x = X.data() + c0 * r;
        float* y = Y.data() + c0 * len;
        if (rowsShort) sgemm_("N", "N", &leni, &c, &ri, &one, W.data(), &lda, x, &ri, &zero, y, &leni, 1, 1);
        else sgemm_("T", "N", &leni, &c, &ri, &one, W.data(), &lda, x, &ri, &zero, y, &leni, 1, 1);
    }
}

/// Makes the last `tail` columns of Y orthonormal and orthogonal to the leading ones (which are
/// orthonormal): projected out twice, then Householder QR with the signs of the diagonal of R
/// restored, so each column keeps its direction as far as orthogonality allows. Columns whose
/// singular value is numerically zero (`zeroFrom` on) carry no direction and start from seeded
/// Gaussian vectors instead.
void reorthogonalizeTail(MatrixF& Y, Eigen::Index tail, Eigen::Index zeroFrom)
{
    const Eigen::Index head = Y.cols() - tail;
    MatrixF T = Y.rightCols(tail);
    if (zeroFrom < Y.cols()) {
        MatrixF noise(Y.rows(), Y.cols() - zeroFrom);
        fillGaussian(noise, kCompletionSeed);
        T.rightCols(Y.cols() - zeroFrom) = noise;
    }
    for (int pass = 0; pass < 2; ++pass) {
        if (head > 0) {
            const MatrixF coeff = Y.leftCols(head).transpose() * T;
            T.noalias() -= Y.leftCols(head) * coeff;
        }
    }
    Eigen::HouseholderQR<MatrixF> qr(T);
    MatrixF Q = qr.householderQ() * MatrixF::Identity(Y.rows(), tail);
    for (Eigen::Index j = 0; j < tail; ++j)
        if (qr.matrixQR()(j, j) < 0.0f) Q.col(j) = -Q.col(j);
    Y.rightCols(tail) = Q;
}

}  // namespace

void gramSvd(const Eigen::Ref<const RowMatrixF>& W, int threads, MatrixF& U, VectorF& sigma, MatrixF& V)
{
    const bool rowsShort = W.rows() <= W.cols();
    const Eigen::Index r = std::min(W.rows(), W.cols());
    Eigen::MatrixXd G = shortSideGram(W, rowsShort, threads);
    const Eigen::VectorXd w = symmetricEigen(G);

    // Descending order: the eigenvalues come ascending.
    sigma.resize(r);
    MatrixF X(r, r);
    for (Eigen::Index i = 0; i < r; ++i) {
        sigma[i] = static_cast<float>(std::sqrt(std::max(0.0, w[r - 1 - i])));
        X.col(i) = G.col(r - 1 - i).cast<float>();
    }
    G.resize(0, 0);

    MatrixF Y;
    longSideProduct(W, rowsShort, X, Y, threads);
    // The long side is W·x/σ in float, with an error of about ε_float·σ_max/σ: past 1e-3·σ_max the
    // columns are re-orthogonalized; below 1e-6·σ_max (zero to the Gram matrix's accuracy) they are
    // replaced by a completion of the basis.
    const double sigmaMax = static_cast<double>(sigma[0]);
    Eigen::Index tailFrom = r;
    Eigen::Index zeroFrom = r;
    for (Eigen::Index i = 0; i < r; ++i) {
        const double s = static_cast<double>(sigma[i]);
        if (s < kReorthogonalize * sigmaMax && tailFrom == r) tailFrom = i;
        if (s < kNumericalZero * sigmaMax && zeroFrom == r) zeroFrom = i;
        const double norm = Y.col(i).cast<double>().norm();
        if (norm > 0.0) Y.col(i) /= static_cast<float>(norm);
    }
    if (tailFrom < r) reorthogonalizeTail(Y, r - tailFrom, zeroFrom);
    if (rowsShort) {
        U = std::move(X);
        V = std::move(Y);
    } else {
        U = std::move(Y);
        V = std::move(X);
    }
}

}  // namespace mdbf::factor::detail
