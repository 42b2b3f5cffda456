#include "factor/gram_svd.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <Eigen/QR>

#include "factor/factor_detail.h"
#include "factor/lapack_int.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/symmetric_eigen.h"

// Reference BLAS/LAPACK entry points as OpenBLAS exports them (LP64: 32-bit integers), with the
// hidden lengths gfortran passes for character arguments.
extern "C" {
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c, const int* ldc,
            std::size_t transaLength, std::size_t transbLength);
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc,
            std::size_t transaLength, std::size_t transbLength);
void ssytrd_(const char* uplo, const int* n, float* a, const int* lda, float* d, float* e, float* tau, float* work,
             const int* lwork, int* info, std::size_t uploLength);
void sstedc_(const char* compz, const int* n, float* d, float* e, float* z, const int* ldz, float* work, const int* lwork,
             int* iwork, const int* liwork, int* info, std::size_t compzLength);
void sormtr_(const char* side, const char* uplo, const char* trans, const int* m, const int* n, const float* a,
             const int* lda, const float* tau, float* c, const int* ldc, float* work, const int* lwork, int* info,
             std::size_t sideLength, std::size_t uploLength, std::size_t transLength);
}

namespace mdbf::factor::detail {

namespace {

constexpr double kReorthogonalize = 1e-3;    // σ/σ_max below which long-side vectors are re-orthogonalized
constexpr double kNumericalZero = 1e-6;      // σ/σ_max below which they are replaced
constexpr std::uint64_t kCompletionSeed = 0x636f6d706c657465ull;

void gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* a, const int* lda,
          const double* b, const int* ldb, double* c, const int* ldc)
{
    const double one = 1.0;
    const double zero = 0.0;
    dgemm_(ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc, 1, 1);
}

void gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* a, const int* lda,
          const float* b, const int* ldb, float* c, const int* ldc)
{
    const float one = 1.0f;
    const float zero = 0.0f;
    sgemm_(ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c, ldc, 1, 1);
}

/// G (r×r, lower triangle) = the Gram matrix of the short side, accumulated in Scalar: column
/// blocks of the lower triangle on `threads` threads, each a single-threaded GEMM (OpenBLAS runs
/// serially inside a parallel region). OpenBLAS's own threading synchronises its threads inside
/// every call and collapses when other work shares the cores; independent blocks do not.
template <typename Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> shortSideGram(const Eigen::Ref<const RowMatrixF>& W,
                                                                    bool rowsShort, int threads)
{
    using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const Eigen::Index r = rowsShort ? W.rows() : W.cols();
    const Eigen::Index len = rowsShort ? W.cols() : W.rows();
    // D (r×len, column-major): the short side's vectors as rows.
    Matrix D(r, len);
    if (rowsShort) D = W.cast<Scalar>();
    else D = W.transpose().cast<Scalar>();
    Matrix G(r, r);
    const Eigen::Index block = std::clamp<Eigen::Index>(r / (4 * std::max(1, threads)), 64, 512);
    const int tasks = static_cast<int>((r + block - 1) / block);
    const int ri = lapackInt(r);
    const int leni = lapackInt(len);
    // Block 0 (the tallest) first, so the dynamic schedule ends with the small ones.
#pragma omp parallel for num_threads(std::max(1, std::min(threads, tasks))) schedule(dynamic, 1)
    for (int task = 0; task < tasks; ++task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * block;
        const int c = static_cast<int>(std::min(block, r - c0));
        const int rows = static_cast<int>(r - c0);
        gemm("N", "T", &rows, &c, &leni, D.data() + c0, &ri, D.data() + c0, &ri, G.data() + c0 + c0 * r, &ri);
    }
    return G;
}

void requireInfo(int info, const char* routine, Eigen::Index r)
{
    if (info != 0)
        throw Error(std::string("the symmetric eigensolver (") + routine + ") failed on a " + std::to_string(r) + "x" +
                    std::to_string(r) + " Gram matrix (info " + std::to_string(info) + ")");
}

/// The eigenvectors of the k largest eigenvalues of the symmetric G (r×r, lower triangle in,
/// destroyed), largest first, as the columns of an r×k matrix, all in float: Householder
/// tridiagonal reduction (SSYTRD), divide and conquer on the tridiagonal (SSTEDC, every vector:
/// MRRR, which could compute only k, is not reliable in single precision), and the back-transform
/// of the k wanted vectors only (SORMTR, 2·r²·k flops instead of 2·r³).
MatrixF leadingEigenvectors(MatrixF& G, Eigen::Index k, int threads)
{
    const int r = lapackInt(G.rows());
    VectorF d(r);
    VectorF e(std::max(1, r - 1));
    VectorF tau(std::max(1, r - 1));
    MatrixF Z(r, r);
    {
        // One thread: as in symmetricEigen (mdbf/factor/symmetric_eigen.h), the reduction is a series of small BLAS-2 calls.
        const ThreadScope serial(1);
        int info = 0;
        int lwork = -1;
        float workSize = 0.0f;
        ssytrd_("L", &r, G.data(), &r, d.data(), e.data(), tau.data(), &workSize, &lwork, &info, 1);
        requireInfo(info, "SSYTRD", r);
        // Workspace sizes come back as floats, which may round below the integer LAPACK wants.
        lwork = static_cast<int>(workSize) + r;
        std::vector<float> work(static_cast<std::size_t>(lwork));
        ssytrd_("L", &r, G.data(), &r, d.data(), e.data(), tau.data(), work.data(), &lwork, &info, 1);
        requireInfo(info, "SSYTRD", r);
        const int lworkDc = lapackInt(1 + 4 * static_cast<Eigen::Index>(r) + static_cast<Eigen::Index>(r) * r);
        const int liworkDc = lapackInt(3 + 5 * static_cast<Eigen::Index>(r));
        std::vector<float> workDc(static_cast<std::size_t>(lworkDc));
        std::vector<int> iworkDc(static_cast<std::size_t>(liworkDc));
        sstedc_("I", &r, d.data(), e.data(), Z.data(), &r, workDc.data(), &lworkDc, iworkDc.data(), &liworkDc, &info, 1);
        requireInfo(info, "SSTEDC", r);
    }
    // Ascending order: the wanted vectors are the last k, reversed.
    MatrixF X(r, k);
    for (Eigen::Index i = 0; i < k; ++i) X.col(i) = Z.col(r - 1 - i);
    Z.resize(0, 0);

    // X ← Q·X, column blocks on `threads` threads, each a single-threaded SORMTR.
    const int t = std::max(1, threads);
    const Eigen::Index chunk = std::clamp<Eigen::Index>((k + 2 * t - 1) / (2 * t), 32, 1024);
    const int tasks = static_cast<int>((k + chunk - 1) / chunk);
    std::vector<int> infos(static_cast<std::size_t>(tasks), 0);
#pragma omp parallel for num_threads(std::min(t, tasks)) schedule(dynamic, 1)
    for (int task = 0; task < tasks; ++task) {
        const Eigen::Index c0 = static_cast<Eigen::Index>(task) * chunk;
        const int c = static_cast<int>(std::min(chunk, k - c0));
        // r − 1 reflectors act on the trailing r − 1 rows (SORMTR's uplo = 'L' layout).
        const int lwork = c * 64 + 65 * 64;  // blocked SORMQL's optimum: column panel plus its T
        std::vector<float> work(static_cast<std::size_t>(lwork));
        sormtr_("L", "L", "N", &r, &c, G.data(), &r, tau.data(), X.data() + c0 * r, &r, work.data(), &lwork,
                &infos[static_cast<std::size_t>(task)], 1, 1, 1);
    }
    for (int info : infos) requireInfo(info, "SORMTR", r);
    return X;
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

/// Normalizes the long side's columns Y = op(W)·X to W·x/σ. Its error is about ε_float·σ_max/σ:
/// past 1e-3·σ_max the columns are re-orthogonalized; below 1e-6·σ_max (zero to the Gram
/// matrix's accuracy) they are replaced by a completion of the basis.
void finishLongSide(MatrixF& Y, const VectorF& sigma)
{
    const Eigen::Index q = Y.cols();
    const double sigmaMax = q > 0 ? static_cast<double>(sigma[0]) : 0.0;
    Eigen::Index tailFrom = q;
    Eigen::Index zeroFrom = q;
    for (Eigen::Index i = 0; i < q; ++i) {
        const double s = static_cast<double>(sigma[i]);
        if (s < kReorthogonalize * sigmaMax && tailFrom == q) tailFrom = i;
        if (s < kNumericalZero * sigmaMax && zeroFrom == q) zeroFrom = i;
        const double norm = Y.col(i).cast<double>().norm();
        if (norm > 0.0) Y.col(i) /= static_cast<float>(norm);
    }
    if (tailFrom < q) reorthogonalizeTail(Y, q - tailFrom, zeroFrom);
}

/// U and V from the short side's vectors X and the long side's Y.
void assignSides(bool rowsShort, MatrixF& X, MatrixF& Y, MatrixF& U, MatrixF& V)
{
    U = std::move(rowsShort ? X : Y);
    V = std::move(rowsShort ? Y : X);
}

}  // namespace

void gramSvd(const Eigen::Ref<const RowMatrixF>& W, int threads, MatrixF& U, VectorF& sigma, MatrixF& V)
{
    const bool rowsShort = W.rows() <= W.cols();
    const Eigen::Index r = std::min(W.rows(), W.cols());
    Eigen::MatrixXd G = shortSideGram<double>(W, rowsShort, threads);
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
    finishLongSide(Y, sigma);
    assignSides(rowsShort, X, Y, U, V);
}

void gramSvdLeading(const Eigen::Ref<const RowMatrixF>& W, Eigen::Index k, int threads, MatrixF& U, VectorF& sigma,
                    MatrixF& V)
{
    const bool rowsShort = W.rows() <= W.cols();
    MatrixF G = shortSideGram<float>(W, rowsShort, threads);
    MatrixF X = leadingEigenvectors(G, k, threads);
    G.resize(0, 0);
    MatrixF Y;
    longSideProduct(W, rowsShort, X, Y, threads);
    // σ_i = ‖W·x_i‖ (the Rayleigh quotient of the Gram matrix, accumulated in double): its error is
    // second order in the eigenvector's, where the float eigenvalue's is first order. The order
    // can change where values nearly tie, so the triplets are sorted again.
    std::vector<double> norms(static_cast<std::size_t>(k));
    for (Eigen::Index i = 0; i < k; ++i) norms[static_cast<std::size_t>(i)] = Y.col(i).cast<double>().norm();
    std::vector<Eigen::Index> order(static_cast<std::size_t>(k));
    for (Eigen::Index i = 0; i < k; ++i) order[static_cast<std::size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) {
        return norms[static_cast<std::size_t>(a)] > norms[static_cast<std::size_t>(b)];
    });
    sigma.resize(k);
    MatrixF Xs(X.rows(), k);
    MatrixF Ys(Y.rows(), k);
    for (Eigen::Index i = 0; i < k; ++i) {
        const Eigen::Index from = order[static_cast<std::size_t>(i)];
        sigma[i] = static_cast<float>(norms[static_cast<std::size_t>(from)]);
        Xs.col(i) = X.col(from);
        Ys.col(i) = Y.col(from);
    }
    X.resize(0, 0);
    Y.resize(0, 0);
    finishLongSide(Ys, sigma);
    assignSides(rowsShort, Xs, Ys, U, V);
}

}  // namespace mdbf::factor::detail
