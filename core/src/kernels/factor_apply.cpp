#include "mdbf/kernels/factor_apply.h"

#include <algorithm>
#include <string>

#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"
#include "mdbf/kernels/binary_product.h"

namespace mdbf::kernels {

namespace {

std::string dims(std::int64_t r, std::int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

void requireShape(const char* field, std::int64_t rows, std::int64_t cols, std::int64_t wantRows,
                  std::int64_t wantCols)
{
    if (rows != wantRows || cols != wantCols)
        throw InvalidArgument(std::string("factor path: ") + field + " is " + dims(rows, cols) + ", expected " +
                              dims(wantRows, wantCols));
}

// Buffers of the two binary products, kept per calling thread so that decoding one token does
// not allocate. Rows are indexed t·l + j (token t, envelope component j).
struct ApplyScratch {
    RowMatrixF scaledIn;   // T·l × m: B[:,j] ⊙ x_t
    RowMatrixF innerOut;   // T·l × k: S_b (B[:,j] ⊙ x_t)
    RowMatrixF scaledMid;  // T·l × k: Qa[:,i] ⊙ z_t
    RowMatrixF outerOut;   // T·l × n: S_a (Qa[:,i] ⊙ z_t)
};

// binaryGemm's raw overload, named for taking its address.
void binaryGemmFloat(const PackedSigns& S, const float* X, std::int64_t T, std::int64_t ldx, float* Y, std::int64_t ldy,
                     int threads, KernelPath path)
{
    binaryGemm(S, X, T, ldx, Y, ldy, threads, path);
}

// One token (decoding) takes the table kernels, several the full-precision window kernels
// (binary_product.h): the tables are built per token, which only pays while S is read once.
// AVX-512 too: its float kernel of one token measured slower than the AVX2 tables (README,
// Benchmarks).
bool decodesThroughTables(KernelPath /*resolved*/) { return true; }

// Tokens per pass: bounds the scratch (T·l rows per buffer) while keeping enough columns per
// binary product for the table kernels; the signs are re-read once per pass, from cache.
constexpr std::int64_t kTokenBlock = 64;

// Y += Σ_p F_p G_p X for one block of tokens (X: T × m, Y: T × n).
void applyBlock(std::span<const FactorPath> paths, const Eigen::Ref<const RowMatrixF>& X, Eigen::Ref<RowMatrixF> Y,
                ApplyScratch& s, int threads, KernelPath path)
{
    const bool tables = X.rows() == 1 && decodesThroughTables(path);
    const auto product = tables ? &binaryGemmTables : &binaryGemmFloat;
    const std::int64_t T = X.rows();
    const std::int64_t m = X.cols();
    const std::int64_t n = Y.cols();
    // Token-wise elementwise work is spread over the same threads; a few tokens run inline.
    const int tokenThreads = T >= 16 ? threads : 1;
    for (const FactorPath& p : paths) {
        const std::int64_t l = p.l();
        const std::int64_t k = p.k();
        s.scaledIn.resize(T * l, m);
        s.innerOut.resize(T * l, k);
        s.scaledMid.resize(T * l, k);
        s.outerOut.resize(T * l, n);

        parallelChunks(T, tokenThreads, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t t = begin; t < end; ++t)
                for (std::int64_t j = 0; j < l; ++j)
                    s.scaledIn.row(t * l + j) = X.row(t).cwiseProduct(p.B.col(j).transpose());
        });
        product(p.sb, s.scaledIn.data(), T * l, m, s.innerOut.data(), k, threads, path);

        parallelChunks(T, tokenThreads, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t t = begin; t < end; ++t) {
                // z_t = Σ_j Qb[:,j] ⊙ (S_b (B[:,j] ⊙ x_t)), built in the first slot of token t.
                auto z = s.scaledMid.row(t * l);
                z = s.innerOut.row(t * l).cwiseProduct(p.Qb.col(0).transpose());
                for (std::int64_t j = 1; j < l; ++j)
                    z += s.innerOut.row(t * l + j).cwiseProduct(p.Qb.col(j).transpose());
                for (std::int64_t i = l - 1; i >= 0; --i)
                    s.scaledMid.row(t * l + i) = z.cwiseProduct(p.Qa.col(i).transpose());
            }
        });
        product(p.sa, s.scaledMid.data(), T * l, k, s.outerOut.data(), n, threads, path);

        parallelChunks(T, tokenThreads, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t t = begin; t < end; ++t)
                for (std::int64_t i = 0; i < l; ++i)
                    Y.row(t) += s.outerOut.row(t * l + i).cwiseProduct(p.A.col(i).transpose());
        });
    }
}

void applyRaw(std::span<const FactorPath> paths, const float* x, std::int64_t T, float* y, int threads,
              KernelPath path)
{
    const std::int64_t n = paths.front().n();
    const std::int64_t m = paths.front().m();
    Eigen::Map<const RowMatrixF> X(x, T, m);
    Eigen::Map<RowMatrixF> Y(y, T, n);
    Y.setZero();
    // A named reference: lambdas run on worker threads must see the caller's buffers, not their own.
    thread_local ApplyScratch callerScratch;
    ApplyScratch& s = callerScratch;
    for (std::int64_t t0 = 0; t0 < T; t0 += kTokenBlock) {
        const std::int64_t tb = std::min(kTokenBlock, T - t0);
        applyBlock(paths, X.middleRows(t0, tb), Y.middleRows(t0, tb), s, threads, path);
    }
}

// Validates the list and returns the resolved code path; throws before any work is done.
KernelPath checkPaths(std::span<const FactorPath> paths, std::int64_t inputSize, KernelPath path)
{
    if (paths.empty()) throw InvalidArgument("factorized apply: no factor paths given");
    for (const FactorPath& p : paths) {
        validateFactorPath(p);
        if (p.n() != paths.front().n() || p.m() != paths.front().m())
            throw InvalidArgument("factorized apply: path of shape " + dims(p.n(), p.m()) + " mixed with " +
                                  dims(paths.front().n(), paths.front().m()));
    }
    if (inputSize != paths.front().m())
        throw InvalidArgument("factorized apply: activations have " + std::to_string(inputSize) +
                              " features, the layer takes " + std::to_string(paths.front().m()));
    return resolveKernelPath(path);
}

}  // namespace

void validateFactorPath(const FactorPath& p)
{
    const std::int64_t n = p.sa.rows();
    const std::int64_t k = p.sa.cols();
    const std::int64_t m = p.sb.cols();
    const std::int64_t l = p.A.cols();
    if (l < 1) throw InvalidArgument("factor path: envelope rank l is " + std::to_string(l) + ", must be >= 1");
    requireShape("S_b", p.sb.rows(), p.sb.cols(), k, m);
    requireShape("A", p.A.rows(), p.A.cols(), n, l);
    requireShape("Qa", p.Qa.rows(), p.Qa.cols(), k, l);
    requireShape("Qb", p.Qb.rows(), p.Qb.cols(), k, l);
    requireShape("B", p.B.rows(), p.B.cols(), m, l);
    for (const PackedSigns* s : {&p.sa, &p.sb})
        if (static_cast<std::int64_t>(s->words().size()) != s->rows() * s->wordsPerRow())
            throw InvalidArgument("factor path: packed signs " + dims(s->rows(), s->cols()) + " hold " +
                                  std::to_string(s->words().size()) + " words");
}

void prepareFactorPaths(std::span<const FactorPath> paths, KernelPath path)
{
    const KernelPath resolved = resolveKernelPath(path);
    if (!decodesThroughTables(resolved)) return;
    for (const FactorPath& p : paths) {
        prepareGemvTables(p.sa, resolved);
        prepareGemvTables(p.sb, resolved);
    }
}

void applyFactorPaths(std::span<const FactorPath> paths, const RowMatrixF& X, RowMatrixF& Y, int threads,
                      KernelPath path)
{
    const KernelPath resolved = checkPaths(paths, X.cols(), path);
    Y.resize(X.rows(), paths.front().n());
    applyRaw(paths, X.data(), X.rows(), Y.data(), threads, resolved);
}

void applyFactorPaths(std::span<const FactorPath> paths, std::span<const float> x, std::span<float> y, int threads,
                      KernelPath path)
{
    const KernelPath resolved = checkPaths(paths, static_cast<std::int64_t>(x.size()), path);
    if (static_cast<std::int64_t>(y.size()) != paths.front().n())
        throw InvalidArgument("factorized apply: output has " + std::to_string(y.size()) +
                              " entries, the layer gives " + std::to_string(paths.front().n()));
    applyRaw(paths, x.data(), 1, y.data(), threads, resolved);
}

RowMatrixF reconstructDense(const FactorPath& p)
{
    validateFactorPath(p);
    using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const RowMatrixD envA = p.A.cast<double>() * p.Qa.cast<double>().transpose();
    const RowMatrixD envB = p.Qb.cast<double>() * p.B.cast<double>().transpose();
    const RowMatrixD F = p.sa.toFloat().cast<double>().cwiseProduct(envA);
    const RowMatrixD G = p.sb.toFloat().cast<double>().cwiseProduct(envB);
    return (F * G).cast<float>();
}

}  // namespace mdbf::kernels
