#include "mdbf/factor/envelope_polish.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Cholesky>

#include "factor/factor_detail.h"
#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"
#include "mdbf/factor/path_products.h"

namespace mdbf::factor {

namespace {

// One factor seen from its long side: X = S ⊙ (U·Vᵀ), rows×k, with S ±1 (rows×k), U rows×l (the
// outer envelope, A or B) and V k×l (the middle one, Qa or Qb). With the other factor fixed the
// error is ‖Y‖² + tr(X K Xᵀ) − 2 tr(Xᵀ R): K (k×k) is the other factor's Gram matrix and R
// (rows×k) the target times it (Y·Gᵀ on the F side, Yᵀ·F on the G side).
struct Side {
    MatrixF S;
    MatrixF U;
    MatrixF V;
};

MatrixF sideFactor(const MatrixF& S, const MatrixF& U, const MatrixF& V)
{
    return S.cwiseProduct(U * V.transpose());
}

double frobeniusDot(const MatrixF& a, const MatrixF& b)
{
    double s = 0.0;
    for (Eigen::Index j = 0; j < a.cols(); ++j) s += a.col(j).cast<double>().dot(b.col(j).cast<double>());
    return s;
}

// tr(X K Xᵀ) − 2 tr(Xᵀ R): the side's share of the squared error.
double sideLoss(const MatrixF& X, const MatrixF& K, const MatrixF& R, int threads)
{
    MatrixF XK(X.rows(), X.cols());
    detail::parallelProduct(X, K, XK, threads);
    return frobeniusDot(XK, X) - 2.0 * frobeniusDot(X, R);
}

// The outer envelope row by row: row i of X is U_i·M_i with M_i = Vᵀ diag(S_i) (l×k), so U_i
// minimises U_i (M_i K M_iᵀ) U_iᵀ − 2 U_i M_i R_iᵀ, an l×l least-squares problem. The normal
// matrices come from l GEMMs: column block p of N is ((S diag(V_p)) K ⊙ S) V. A row keeps its old
// value unless the solution is finite and not worse.
void updateOuter(Side& s, const MatrixF& K, const MatrixF& R, int threads)
{
    const Eigen::Index rows = s.S.rows();
    const Eigen::Index l = s.U.cols();
    const MatrixF b = s.S.cwiseProduct(R) * s.V;  // rows×l
    std::vector<MatrixF> N(static_cast<std::size_t>(l));
    MatrixF T, TK(rows, s.S.cols());
    for (Eigen::Index p = 0; p < l; ++p) {
        T = s.S * s.V.col(p).asDiagonal();
        detail::parallelProduct(T, K, TK, threads);
        N[static_cast<std::size_t>(p)] = TK.cwiseProduct(s.S) * s.V;
    }
    parallelChunks(rows, detail::threadsFor(double(rows) * double(l * l) * 64.0, threads),
                   [&](std::int64_t r0, std::int64_t r1) {
                       Eigen::MatrixXd n(l, l);
                       Eigen::VectorXd rhs(l);
                       for (std::int64_t i = r0; i < r1; ++i) {
                           for (Eigen::Index p = 0; p < l; ++p) {
                               rhs[p] = b(i, p);
                               for (Eigen::Index q = 0; q < l; ++q) n(p, q) = N[static_cast<std::size_t>(p)](i, q);
                           }
                           n = 0.5 * (n + n.transpose()).eval();
                           const Eigen::VectorXd old = s.U.row(i).transpose().cast<double>();
                           const Eigen::VectorXd u = n.ldlt().solve(rhs);
                           if (!u.allFinite()) continue;
                           const double before = old.dot(n * old) - 2.0 * rhs.dot(old);
                           const double after = u.dot(n * u) - 2.0 * rhs.dot(u);
                           if (after <= before) s.U.row(i) = u.transpose().cast<float>();
                       }
                   });
}

// The middle envelope by conjugate gradients: X(D) = S ⊙ (U Dᵀ) is linear in D (k×l), with adjoint
// X*(Z) = (S ⊙ Z)ᵀ U, so V minimises the quadratic whose normal equations are X*(X(V) K) = X*(R).
// CG started at the current V decreases that quadratic at every step.
void updateMiddle(Side& s, const MatrixF& K, const MatrixF& R, int iterations, int threads)
{
    if (iterations <= 0) return;
    const Eigen::Index rows = s.S.rows();
    const Eigen::Index k = s.S.cols();
    MatrixF XK(rows, k);
    auto apply = [&](const MatrixF& D) {
        detail::parallelProduct(sideFactor(s.S, s.U, D), K, XK, threads);
        return MatrixF(s.S.cwiseProduct(XK).transpose() * s.U);
    };
    const MatrixF rhs = s.S.cwiseProduct(R).transpose() * s.U;
    MatrixF r = rhs - apply(s.V);
    MatrixF p = r;
    double rr = frobeniusDot(r, r);
    for (int it = 0; it < iterations && rr > 0.0; ++it) {
        const MatrixF ap = apply(p);
        const double pap = frobeniusDot(p, ap);
        if (!(pap > 0.0) || !std::isfinite(pap)) break;
        const float alpha = static_cast<float>(rr / pap);
        s.V += alpha * p;
        r -= alpha * ap;
        const double rrNew = frobeniusDot(r, r);
        p = r + static_cast<float>(rrNew / rr) * p;
        rr = rrNew;
    }
}

// Greedy sign flips row by row: flipping x = X(i,j) changes the side's loss by
// 4x(x K_jj − g_ij) with g = X K − R, and a flip updates g_i by −2x K_j. Rows are independent.
int flipSigns(Side& s, const MatrixF& K, const MatrixF& R, int passes, int threads)
{
    if (passes <= 0) return 0;
    const Eigen::Index rows = s.S.rows();
    const Eigen::Index k = s.S.cols();
    const MatrixF X = sideFactor(s.S, s.U, s.V);
    MatrixF gradient(rows, k);
    detail::parallelProduct(X, K, gradient, threads);
    gradient -= R;
    const RowMatrixF x = X;
    RowMatrixF g = gradient;
    std::vector<int> flipped(static_cast<std::size_t>(rows), 0);
    parallelChunks(rows, detail::threadsFor(double(rows) * double(k), threads), [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t i = r0; i < r1; ++i) {
            const float* xi = x.row(i).data();
            float* gi = g.row(i).data();
            std::vector<float> xs(xi, xi + k);
            int count = 0;
            for (int pass = 0; pass < passes; ++pass) {
                int changed = 0;
                for (Eigen::Index j = 0; j < k; ++j) {
                    const double v = xs[static_cast<std::size_t>(j)];
                    if (v == 0.0) continue;
                    const double kjj = K(j, j);
                    const double delta = 4.0 * v * (v * kjj - gi[j]);
                    // Float gradients: only clear improvements are taken.
                    if (!(delta < -1e-6 * v * v * kjj)) continue;
                    xs[static_cast<std::size_t>(j)] = static_cast<float>(-v);
                    s.S(i, j) = -s.S(i, j);
                    const float step = static_cast<float>(-2.0 * v);
                    const float* kj = K.col(j).data();
                    for (Eigen::Index c = 0; c < k; ++c) gi[c] += step * kj[c];
                    ++changed;
                }
                count += changed;
                if (changed == 0) break;
            }
            flipped[static_cast<std::size_t>(i)] = count;
        }
    });
    int total = 0;
    for (int c : flipped) total += c;
    return total;
}

// One side's steps against fixed K and R: outer envelope, middle envelope, signs. The side is kept
// as it was when a step made the loss worse (possible only through float rounding).
int polishSide(Side& s, const MatrixF& K, const MatrixF& R, const PolishOptions& o, int threads)
{
    double best = sideLoss(sideFactor(s.S, s.U, s.V), K, R, threads);
    int flips = 0;
    auto keepIfBetter = [&](const Side& before) {
        const double now = sideLoss(sideFactor(s.S, s.U, s.V), K, R, threads);
        if (now > best) {
            s = before;
            return false;
        }
        best = now;
        return true;
    };
    Side before = s;
    updateOuter(s, K, R, threads);
    keepIfBetter(before);
    before = s;
    updateMiddle(s, K, R, o.cgIterations, threads);
    keepIfBetter(before);
    before = s;
    const int f = flipSigns(s, K, R, o.flipPasses, threads);
    if (keepIfBetter(before)) flips += f;
    return flips;
}

}  // namespace

std::string PolishOptions::validate() const
{
    if (sweeps < 0) return "polish sweeps = " + std::to_string(sweeps) + " must be ≥ 0";
    if (flipPasses < 0) return "sign-flip passes = " + std::to_string(flipPasses) + " must be ≥ 0";
    if (cgIterations < 0) return "conjugate-gradient steps = " + std::to_string(cgIterations) + " must be ≥ 0";
    return {};
}

PolishOutcome polishPath(const Eigen::Ref<const RowMatrixF>& Y, kernels::FactorPath& path, const PolishOptions& options,
                         double errorScale, const RunContext& ctx)
{
    if (std::string why = options.validate(); !why.empty()) throw InvalidArgument("polish options: " + why);
    validatePath(path);
    if (path.sa.rows() != Y.rows() || path.sb.cols() != Y.cols())
        throw InvalidArgument("polish: a path for " + std::to_string(path.sa.rows()) + "x" +
                              std::to_string(path.sb.cols()) + " does not fit the " + std::to_string(Y.rows()) + "x" +
                              std::to_string(Y.cols()) + " target");
    if (!(errorScale > 0.0) || !std::isfinite(errorScale))
        throw InvalidArgument("polish: error scale must be finite and positive");

    const int threads = ctx.threadCount();
    const detail::ThreadScope serialEigen(1);
    Side f{detail::unpackSigns(path.sa), path.A, path.Qa};
    Side g{detail::unpackSigns(path.sb).transpose(), path.B, path.Qb};
    const double yy = Y.cast<double>().squaredNorm();
    const double scale2 = errorScale * errorScale;
    PolishOutcome out;

    MatrixF K, R;
    auto gSideTerms = [&]() {  // K = FᵀF, R = Yᵀ F for the G side
        const MatrixF F = sideFactor(f.S, f.U, f.V);
        const MatrixF Ft = F.transpose();
        detail::parallelGram(Ft, K, threads);
        R.resize(Y.cols(), F.cols());
        detail::parallelProduct(Y.transpose(), F, R, threads);
    };
    auto fSideTerms = [&]() {  // K = G Gᵀ, R = Y Gᵀ for the F side
        const MatrixF Gt = sideFactor(g.S, g.U, g.V);
        const MatrixF G = Gt.transpose();
        detail::parallelGram(G, K, threads);
        R.resize(Y.rows(), Gt.cols());
        detail::parallelProduct(Y, Gt, R, threads);
    };
    fSideTerms();
    out.history.push_back(std::sqrt(std::max(0.0, yy + sideLoss(sideFactor(f.S, f.U, f.V), K, R, threads)) / scale2));

    for (int sweep = 0; sweep < options.sweeps; ++sweep) {
        if (ctx.stopRequested()) {
            out.cancelled = true;
            break;
        }
        if (sweep > 0) fSideTerms();
        out.flips += polishSide(f, K, R, options, threads);
        if (ctx.stopRequested()) {
            out.cancelled = true;
            break;
        }
        gSideTerms();
        out.flips += polishSide(g, K, R, options, threads);
        const double e2 = yy + sideLoss(sideFactor(g.S, g.U, g.V), K, R, threads);
        out.history.push_back(std::sqrt(std::max(0.0, e2) / scale2));
        out.sweeps = sweep + 1;
        ctx.report("polish", sweep + 1, options.sweeps);
    }
    path.sa = kernels::PackedSigns::fromSigns(f.S);
    path.A = std::move(f.U);
    path.Qa = std::move(f.V);
    path.sb = kernels::PackedSigns::fromSigns(MatrixF(g.S.transpose()));
    path.B = std::move(g.U);
    path.Qb = std::move(g.V);
    return out;
}

}  // namespace mdbf::factor
