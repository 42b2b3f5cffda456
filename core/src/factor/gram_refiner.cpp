#include "mdbf/factor/gram_refiner.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>

#include "factor/factor_detail.h"
#include "factor/refine_common.h"
#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"
#include "mdbf/factor/symmetric_eigen.h"

namespace mdbf::factor {

namespace {

using Status = detail::RefineStatus;
using Side = detail::AdmmSide;
using detail::inverseNorms;
using detail::kExactErrorBelow;
using detail::rhoSchedule;

double dot(const MatrixF& a, const MatrixF& b) { return (a.cast<double>().array() * b.cast<double>().array()).sum(); }

class GramEngine : public detail::RefineEngineBase {
public:
    GramEngine(const AdmmOptions& options, const InputGram& gram, const RunContext& ctx, int threads)
        : RefineEngineBase(options, ctx, threads), m_gram(gram)
    {
    }

    // out = lhs · rhs in column blocks on all threads; false when a stop was requested.
    template <typename Lhs, typename Rhs>
    bool multiply(const Lhs& lhs, const Rhs& rhs, MatrixF& out) const
    {
        out.resize(lhs.rows(), rhs.cols());
        return detail::parallelProduct(lhs, rhs, out, m_threads, detail::Combine::Assign, m_ctx.stop);
    }

    // M = L + Γ;  Z = Π_l(M);  Γ = M − Z, with L in s.work and Z left in s.zNew.
    void project(Side& s, std::uint64_t seed) const
    {
        s.gamma += s.work;
        const Eigen::Index k = s.gamma.rows();
        const Eigen::Index q = s.gamma.cols();
        if (m_options.l >= std::min(k, q)) {
            // The rank constraint is void: Π_l is the identity.
            s.zNew = s.gamma;
            s.gamma.setZero();
            return;
        }
        const MatrixF magnitude = s.gamma.cwiseAbs();
        MatrixF u, v;
        VectorF sigma;
        const RankApproxOptions opts{m_options.powerIterations, m_options.oversample, seed};
        detail::blockPower(magnitude, m_options.l, opts, u, sigma, v, m_threads);
        u = u * sigma.asDiagonal();
        s.zNew.noalias() = u * v.transpose();
        s.zNew = (s.gamma.array() < 0.0f).select(-s.zNew.array(), s.zNew.array()).matrix();
        s.gamma -= s.zNew;
    }

    // X ← solution G of A G H + μ G = X through A = P Λ_A Pᵀ, H = Q Λ_H Qᵀ; `inverse` holds
    // 1 / (λ_A,i λ_H,j + μ) (k×m).
    bool sylvesterSolve(const MatrixF& p, const MatrixF& inverse, MatrixF& x) const
    {
        const MatrixF& q = m_gram.eigenvectors();
        MatrixF t1, t2;
        if (!multiply(p.transpose(), x, t1) || !multiply(t1, q, t2)) return false;
        t2.array() *= inverse.array();
        if (!multiply(t2, q.transpose(), t1) || !multiply(p, t1, x)) return false;
        return true;
    }

    // The ADMM loop of one half-step given the first solve (ρ_t) and the later ones (ρ = 1):
    //   L = solve(CᵀY + ρ_t (Z − Γ));  repeat: Z = Π_l(L + Γ); Γ += L − Z; L = solve(CᵀY + Z − Γ);
    //   finally Z = Π_l(L + Γ); Γ += L − Z.
    template <typename SolveStart, typename SolveOne>
    Status admmLoop(Side& s, double rhoT, std::uint64_t seedBase, SolveStart solveStart, SolveOne solveOne) const
    {
        s.work = s.cty + static_cast<float>(rhoT) * (s.z - s.gamma);
        if (!solveStart(s.work)) return Status::Stopped;
        for (int step = 1; step < m_options.innerIterations; ++step) {
            project(s, detail::mixSeed(seedBase, static_cast<std::uint64_t>(step)));
            s.work = s.cty + (s.zNew - s.gamma);
            if (!solveOne(s.work)) return Status::Stopped;
        }
        project(s, detail::mixSeed(seedBase, static_cast<std::uint64_t>(m_options.innerIterations)));
        return stopped() ? Status::Stopped : Status::Ok;
    }

    // F-step: the plain half-step with CᵀC = ctc (k×k).
    Status choleskyHalfStep(const MatrixF& ctc, Side& s, double rhoT, std::uint64_t seedBase, std::string& failure) const
    {
        const double lambda = m_options.reg * static_cast<double>(ctc.diagonal().mean());
        auto factor = [&](double shift) {
            MatrixF lhs = ctc;
            lhs.diagonal().array() += static_cast<float>(lambda + shift);
            return Eigen::LLT<MatrixF>(lhs);
        };
        const Eigen::LLT<MatrixF> lltStart = factor(rhoT);
        const Eigen::LLT<MatrixF> lltOne = rhoT == 1.0 ? lltStart : factor(1.0);
        if (lltStart.info() != Eigen::Success || lltOne.info() != Eigen::Success) {
            failure = "Cholesky factorization of the " + std::to_string(ctc.rows()) + "x" + std::to_string(ctc.rows()) +
                      " weighted normal matrix failed";
            return Status::Failed;
        }
        return admmLoop(
            s, rhoT, seedBase, [&](MatrixF& x) { return choleskySolve(lltStart, x); },
            [&](MatrixF& x) { return choleskySolve(lltOne, x); });
    }

    // G-step: A G H + (λ + ρ) G = CᵀY + ρ (Z − Γ) with A = FᵀF (k×k).
    Status sylvesterHalfStep(const MatrixF& a, Side& s, double rhoT, std::uint64_t seedBase, std::string& failure) const
    {
        const VectorF& lambdaH = m_gram.eigenvalues();
        const double lambda = m_options.reg * static_cast<double>(a.diagonal().mean()) *
                              static_cast<double>(m_gram.matrix().diagonal().mean());
        Eigen::MatrixXd vectors = a.cast<double>();
        Eigen::VectorXd lambdaA;
        try {
            lambdaA = symmetricEigen(vectors);
        } catch (const Error& e) {
            failure = "eigendecomposition of the " + std::to_string(a.rows()) + "x" + std::to_string(a.rows()) +
                      " factor Gram matrix failed: " + e.what();
            return Status::Failed;
        }
        const MatrixF p = vectors.cast<float>();
        // FᵀF is positive semidefinite; rounding can leave tiny negative eigenvalues.
        lambdaA = lambdaA.cwiseMax(0.0);
        auto inverseDenominators = [&](double shift) {
            MatrixF out(a.rows(), lambdaH.size());
            for (Eigen::Index j = 0; j < out.cols(); ++j)
                for (Eigen::Index i = 0; i < out.rows(); ++i)
                    out(i, j) = static_cast<float>(1.0 / (lambdaA[i] * lambdaH[j] + lambda + shift));
            return out;
        };
        const MatrixF inverseStart = inverseDenominators(rhoT);
        const MatrixF inverseOne = rhoT == 1.0 ? inverseStart : inverseDenominators(1.0);
        return admmLoop(
            s, rhoT, seedBase, [&](MatrixF& x) { return sylvesterSolve(p, inverseStart, x); },
            [&](MatrixF& x) { return sylvesterSolve(p, inverseOne, x); });
    }

private:
    const InputGram& m_gram;
};

}  // namespace

GramRefiner::GramRefiner(AdmmOptions options) : m_options(options)
{
    if (std::string why = m_options.validate(); !why.empty()) throw InvalidArgument("ADMM options: " + why);
}

AdmmOutcome GramRefiner::refine(const Eigen::Ref<const RowMatrixF>& W, const InputGram& gram, MatrixF F0, MatrixF G0,
                                double errorScale, const RunContext& ctx,
                                const AdmmRefiner::IterationCallback& onIteration) const
{
    const Eigen::Index n = W.rows();
    const Eigen::Index m = W.cols();
    const Eigen::Index k = F0.cols();
    if (F0.rows() != n || G0.rows() != k || G0.cols() != m || k < 1 || gram.size() != m)
        throw InvalidArgument("gram refinement: target " + std::to_string(n) + "x" + std::to_string(m) + ", F " +
                              std::to_string(F0.rows()) + "x" + std::to_string(k) + ", G " + std::to_string(G0.rows()) +
                              "x" + std::to_string(G0.cols()) + ", H " + std::to_string(gram.size()) + "x" +
                              std::to_string(gram.size()) + " do not fit");
    AdmmOutcome out = detail::startOutcome("gram refinement", errorScale);
    const int outer = m_options.outerIterations;
    if (outer == 0) return out;

    const int threads = ctx.threadCount();
    const detail::ThreadScope serialEigen(1);  // all parallelism is explicit, as in AdmmRefiner
    const GramEngine engine(m_options, gram, ctx, threads);
    const MatrixF& h = gram.matrix();

    Side f, g;
    detail::startSides(std::move(F0), std::move(G0), f, g);
    MatrixF wh, gh, kg, kgNew, kf, ctcF, ctcG;
    VectorF committedInverseNorms;
    const double scale2 = errorScale * errorScale;

    Status status = Status::Ok;
    if (!engine.multiply(W, h, wh) || !engine.multiply(g.z, h, gh) || !engine.multiply(gh, g.z.transpose(), kg))
        status = Status::Stopped;
    const double whw = status == Status::Ok ? (W.cast<double>().array() * wh.cast<double>().array()).sum() : 0.0;

    for (int t = 0; t < outer && status == Status::Ok; ++t) {
        const double rhoT = rhoSchedule(t, outer, m_options.rhoStart, m_options.rhoPower);

        // F-step: C = (G R)ᵀ with diag(G H Gᵀ) scaled to 1, Z = Fᵀ.
        const VectorF rinv = inverseNorms(kg);
        ctcF = rinv.asDiagonal() * kg * rinv.asDiagonal();
        if (!engine.multiply(g.z, wh.transpose(), f.cty)) {
            status = Status::Stopped;
            break;
        }
        f.cty = rinv.asDiagonal() * f.cty;
        status = engine.choleskyHalfStep(ctcF, f, rhoT, detail::mixSeed(m_options.seed, static_cast<std::uint64_t>(t), 0),
                                         out.message);
        if (status != Status::Ok) break;

        // G-step: C = F with unit-norm columns, Z = G.
        if (!detail::parallelGram(f.zNew, kf, threads, ctx.stop)) {
            status = Status::Stopped;
            break;
        }
        const VectorF cinv = inverseNorms(kf);
        ctcG = cinv.asDiagonal() * kf * cinv.asDiagonal();
        if (!engine.multiply(f.zNew, wh, g.cty)) {
            status = Status::Stopped;
            break;
        }
        g.cty = cinv.asDiagonal() * g.cty;
        status = engine.sylvesterHalfStep(ctcG, g, rhoT,
                                          detail::mixSeed(m_options.seed, static_cast<std::uint64_t>(t), 1), out.message);
        if (status != Status::Ok) break;

        // tr(E H Eᵀ) = tr(W H Wᵀ) − 2⟨Fᵀ W H, G⟩ + ⟨FᵀF, G H Gᵀ⟩ (G H Gᵀ is the next F-step's).
        if (!engine.multiply(g.zNew, h, gh) || !engine.multiply(gh, g.zNew.transpose(), kgNew)) {
            status = Status::Stopped;
            break;
        }
        double e2 = whw - 2.0 * dot(g.cty, g.zNew) + dot(ctcG, kgNew);
        if (!std::isfinite(e2)) {
            status = Status::Failed;
            out.message = "non-finite values appeared in outer iteration " + std::to_string(t + 1);
            break;
        }
        if (e2 < kExactErrorBelow * kExactErrorBelow * scale2) {
            const MatrixF fNow = f.zNew.transpose() * cinv.asDiagonal();
            RowMatrixF residual = W;
            if (!detail::parallelProduct(fNow, g.zNew, residual, threads, detail::Combine::Subtract, ctx.stop)) {
                status = Status::Stopped;
                break;
            }
            e2 = gram.weightedSquaredNorm(residual, threads);
        }
        detail::commitIteration(t, outer, e2, scale2, f, g, kg, kgNew, committedInverseNorms, cinv, out, onIteration,
                                ctx);
        if (detail::stalled(out.history, m_options.stallTolerance)) {
            out.stalled = true;
            break;
        }
    }
    detail::finishRefinement(status, f, g, committedInverseNorms, out);
    return out;
}

}  // namespace mdbf::factor
