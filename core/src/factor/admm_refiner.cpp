#include "mdbf/factor/admm_refiner.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include <Eigen/Cholesky>

#include "factor/factor_detail.h"
#include "factor/refine_common.h"
#include "mdbf/base/error.h"
#include "mdbf/base/parallel.h"

namespace mdbf::factor {

namespace {

using Status = detail::RefineStatus;
using Side = detail::AdmmSide;
using detail::inverseNorms;

// Element-wise passes over fewer entries than this run on one thread (a parallel region costs more).
constexpr Eigen::Index kParallelEntries = Eigen::Index{1} << 16;

class Engine : public detail::RefineEngineBase {
public:
    using RefineEngineBase::RefineEngineBase;

    // Buffers of the two Cholesky factors of a half-step (see halfStep).
    mutable MatrixF m_factorStart, m_factorOne;

    int passThreads(const MatrixF& x) const { return x.size() >= kParallelEntries ? m_threads : 1; }

    bool gram(const MatrixF& z, MatrixF& k) const { return detail::parallelGram(z, k, m_threads, m_ctx.stop); }

    // out = diag(scale) · (zOther · op).
    template <typename Op>
    bool product(const MatrixF& zOther, const Op& op, const VectorF& scale, MatrixF& out) const
    {
        out.resize(zOther.rows(), op.cols());
        if (!detail::parallelProduct(zOther, op, out, m_threads, detail::Combine::Assign, m_ctx.stop)) return false;
        parallelChunks(out.cols(), passThreads(out), [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t j = b; j < e; ++j) out.col(j).array() *= scale.array();
        });
        return true;
    }

    // One projection step on side s with L in s.work:
    //     M = L + Γ;  Z = Π_l(M);  Γ = M − Z  (= Γ + L − Z)
    // and, when `cty` is given, the next right-hand side L = CᵀY + ρ (Z − Γ) in the same pass.
    void project(Side& s, const MatrixF* cty, float rho, std::uint64_t seed, const MatrixF& zPrev) const
    {
        const Eigen::Index k = s.work.rows();
        const Eigen::Index q = s.work.cols();
        const int threads = passThreads(s.work);
        const auto alpha = static_cast<float>(m_options.relaxation);
        parallelChunks(q, threads, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t j = b; j < e; ++j) {
                float* g = s.gamma.col(j).data();
                float* w = s.work.col(j).data();
                if (alpha != 1.0f) {
                    const float* zp = zPrev.col(j).data();
                    for (Eigen::Index i = 0; i < k; ++i) w[i] = alpha * w[i] + (1.0f - alpha) * zp[i];
                }
                for (Eigen::Index i = 0; i < k; ++i) {
                    const float v = g[i] + w[i];
                    g[i] = v;
                    w[i] = std::abs(v);
                }
            }
        });
        if (m_options.l >= std::min(k, q)) {
            // The rank constraint is void: Π_l is the identity, so Z = M and Γ = 0.
            std::swap(s.zNew, s.gamma);
            s.gamma.setZero(k, q);
            if (cty) s.work = *cty + rho * s.zNew;
            return;
        }
        MatrixF u, v;
        VectorF sigma;
        RankApproxOptions opts{m_options.powerIterations, m_options.oversample, seed};
        detail::blockPower(s.work, m_options.l, opts, u, sigma, v, m_threads);
        u = u * sigma.asDiagonal();
        s.zNew.resize(k, q);
        parallelChunks(q, threads, [&](std::int64_t b, std::int64_t e) {
            VectorF amp(k);
            for (std::int64_t j = b; j < e; ++j) {
                amp.noalias() = u * v.row(j).transpose();
                float* z = s.zNew.col(j).data();
                float* g = s.gamma.col(j).data();
                const float* a = amp.data();
                if (cty) {
                    const float* c = cty->col(j).data();
                    float* w = s.work.col(j).data();
                    for (Eigen::Index i = 0; i < k; ++i) {
                        const float mv = g[i];
                        const float zz = mv < 0.0f ? -a[i] : a[i];
                        const float gg = mv - zz;
                        z[i] = zz;
                        g[i] = gg;
                        w[i] = c[i] + rho * (zz - gg);
                    }
                } else {
                    for (Eigen::Index i = 0; i < k; ++i) {
                        const float mv = g[i];
                        const float zz = mv < 0.0f ? -a[i] : a[i];
                        z[i] = zz;
                        g[i] = mv - zz;
                    }
                }
            }
        });
    }

    // One half-step: the ADMM inner loop for the free factor of side s, given CᵀC (k×k, without
    // λ) and s.cty. Leaves the new iterate in s.zNew.
    Status halfStep(const MatrixF& ctc, Side& s, double rhoT, std::uint64_t seedBase, std::string& failure) const
    {
        const Eigen::Index k = ctc.rows();
        const double lambda = m_options.reg * static_cast<double>(ctc.diagonal().mean());
        // The two factorizations are independent: one per thread when there are two.
        const bool sameRho = rhoT == 1.0;
        const bool needOne = m_options.innerIterations > 1 && !sameRho;
        // Factorized in place in buffers kept across iterations: no k×k temporaries (35 MB each at
        // k ≈ 3000) come and go.
        using InPlaceLlt = Eigen::LLT<Eigen::Ref<MatrixF>>;
        std::optional<InPlaceLlt> lltStart, lltOne;
        auto factor = [&](std::optional<InPlaceLlt>& llt, MatrixF& buffer, double shift) {
            buffer = ctc;
            buffer.diagonal().array() += static_cast<float>(lambda + shift);
            llt.emplace(buffer);
        };
#pragma omp parallel sections num_threads(needOne && m_threads > 1 && k >= 128 ? 2 : 1)
        {
#pragma omp section
            factor(lltStart, m_factorStart, rhoT);
#pragma omp section
            if (needOne) factor(lltOne, m_factorOne, 1.0);
        }
        if (lltStart->info() != Eigen::Success || (needOne && lltOne->info() != Eigen::Success)) {
            failure = "Cholesky factorization of the " + std::to_string(k) + "x" + std::to_string(k) +
                      " normal matrix failed";
            return Status::Failed;
        }
        const InPlaceLlt& llt1 = sameRho ? *lltStart : *lltOne;

        const Eigen::Index q = s.cty.cols();
        s.work.resize(k, q);
        const float rt = static_cast<float>(rhoT);
        parallelChunks(q, passThreads(s.work), [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t j = b; j < e; ++j) s.work.col(j) = s.cty.col(j) + rt * (s.z.col(j) - s.gamma.col(j));
        });
        if (!choleskySolve(*lltStart, s.work)) return Status::Stopped;
        for (int step = 1; step < m_options.innerIterations; ++step) {
            project(s, &s.cty, 1.0f, detail::mixSeed(seedBase, static_cast<std::uint64_t>(step)), step == 1 ? s.z : s.zNew);
            if (!choleskySolve(llt1, s.work)) return Status::Stopped;
        }
        project(s, nullptr, 0.0f, detail::mixSeed(seedBase, static_cast<std::uint64_t>(m_options.innerIterations)),
                m_options.innerIterations == 1 ? s.z : s.zNew);
        return stopped() ? Status::Stopped : Status::Ok;
    }

    // The half-step of side s against the other side's iterate zOther, whose Gram matrix arrives in
    // `kc` and leaves as CᵀC (scaled in place: the Gram matrix is not needed again, and at k ≈ 3000
    // each k×k copy is 35 MB): C is the other factor with unit-norm rows of zOther (inverse norms left
    // in `inv`), and CᵀY = diag(inv) · (zOther · op) goes to s.cty before the ADMM loop runs.
    template <typename Op>
    Status sideStep(const MatrixF& zOther, MatrixF& kc, const Op& op, VectorF& inv, Side& s, double rhoT,
                    std::uint64_t seedBase, std::string& failure) const
    {
        inv = inverseNorms(kc);
        kc.array().colwise() *= inv.array();
        kc.array().rowwise() *= inv.transpose().array();
        if (!product(zOther, op, inv, s.cty)) return Status::Stopped;
        return halfStep(kc, s, rhoT, seedBase, failure);
    }

    // Σ a_ij b_ij in double with a fixed summation order.
    double dot(const MatrixF& a, const MatrixF& b) const
    {
        const Eigen::Index q = a.cols();
        std::vector<double> partial(static_cast<std::size_t>(q), 0.0);
        parallelChunks(q, passThreads(a), [&](std::int64_t b0, std::int64_t e) {
            for (std::int64_t j = b0; j < e; ++j)
                partial[static_cast<std::size_t>(j)] = a.col(j).cast<double>().dot(b.col(j).cast<double>());
        });
        double sum = 0.0;
        for (double p : partial) sum += p;
        return sum;
    }

    double squaredNorm(const Eigen::Ref<const RowMatrixF>& y) const
    {
        std::vector<double> partial(static_cast<std::size_t>(y.rows()), 0.0);
        parallelChunks(y.rows(), y.size() >= kParallelEntries ? m_threads : 1, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t i = b; i < e; ++i)
                partial[static_cast<std::size_t>(i)] = y.row(i).cast<double>().squaredNorm();
        });
        double sum = 0.0;
        for (double p : partial) sum += p;
        return sum;
    }

    // ‖Y − F G‖² with F = zfᵀ diag(cinv), formed block by block.
    bool exactError(const Eigen::Ref<const RowMatrixF>& y, const MatrixF& zf, const VectorF& cinv, const MatrixF& g,
                    double& e2) const
    {
        const MatrixF f = zf.transpose() * cinv.asDiagonal();
        MatrixF residual = y;
        if (!detail::parallelProduct(f, g, residual, m_threads, detail::Combine::Subtract, m_ctx.stop)) return false;
        e2 = residual.cast<double>().squaredNorm();
        return true;
    }
};

}  // namespace

std::string AdmmOptions::validate() const
{
    if (l < 1) return "envelope rank l = " + std::to_string(l) + " must be at least 1";
    if (outerIterations < 0) return "outer iterations = " + std::to_string(outerIterations) + " must be ≥ 0";
    if (innerIterations < 1) return "inner iterations = " + std::to_string(innerIterations) + " must be ≥ 1";
    if (!(reg >= 0.0) || !std::isfinite(reg)) return "regularization " + std::to_string(reg) + " must be finite and ≥ 0";
    if (powerIterations < 1) return "power iterations = " + std::to_string(powerIterations) + " must be ≥ 1";
    if (oversample < 0) return "oversampling = " + std::to_string(oversample) + " must be ≥ 0";
    if (!(rhoStart > 0.0 && rhoStart <= 1.0))
        return "starting penalty ρ_0 = " + std::to_string(rhoStart) + " must be in (0, 1]";
    if (!(rhoPower >= 0.25 && rhoPower <= 8.0)) return "ramp power " + std::to_string(rhoPower) + " must be in [0.25, 8]";
    if (!(relaxation >= 1.0 && relaxation < 2.0))
        return "relaxation α = " + std::to_string(relaxation) + " must be in [1, 2)";
    if (!(stallTolerance >= 0.0 && stallTolerance <= 0.01))
        return "stall tolerance " + std::to_string(stallTolerance) + " must be in [0, 0.01]";
    return {};
}

AdmmRefiner::AdmmRefiner(AdmmOptions options) : m_options(options)
{
    if (std::string why = m_options.validate(); !why.empty()) throw InvalidArgument("ADMM options: " + why);
}

AdmmOutcome AdmmRefiner::refine(const Eigen::Ref<const RowMatrixF>& Y, MatrixF F0, MatrixF G0, double errorScale, const RunContext& ctx, const IterationCallback& onIteration) const
{
    const Eigen::Index n = Y.rows();
    const Eigen::Index m = Y.cols();
    const Eigen::Index k = F0.cols();
    if (F0.rows() != n || G0.rows() != k || G0.cols() != m || k < 1)
        throw InvalidArgument("ADMM refinement: target " + std::to_string(n) + "x" + std::to_string(m) + ", F " +
                              std::to_string(F0.rows()) + "x" + std::to_string(k) + ", G " + std::to_string(G0.rows()) +
                              "x" + std::to_string(G0.cols()) + " do not fit");
    AdmmOutcome out = detail::startOutcome("ADMM refinement", errorScale);
    const int outer = m_options.outerIterations;
    if (outer == 0) return out;

    const int threads = ctx.threadCount();
    // All parallelism is explicit (blocks of columns per thread); Eigen itself runs serially.
    const detail::ThreadScope serialEigen(1);
    const Engine engine(m_options, ctx, threads);

    Side f, g;
    detail::startSides(std::move(F0), std::move(G0), f, g);
    MatrixF kg, kf, kgNew;  // Gram matrices of the sides' iterates; kg and kf become CᵀC in sideStep
    VectorF rinv, cinv, committedInverseNorms;
    const double yy = engine.squaredNorm(Y);
    const double scale2 = errorScale * errorScale;

    Status status = engine.gram(g.z, kg) ? Status::Ok : Status::Stopped;
    for (int t = 0; t < outer && status == Status::Ok; ++t) {
        const double rhoT = detail::rhoSchedule(t, outer, m_options.rhoStart, m_options.rhoPower);

        // F-step: C = Gᵀ with unit-norm rows of G, Z = Fᵀ.
        status = engine.sideStep(g.z, kg, Y.transpose(), rinv, f, rhoT,
                                 detail::mixSeed(m_options.seed, static_cast<std::uint64_t>(t), 0), out.message);
        if (status != Status::Ok) break;

        // G-step: C = F with unit-norm columns, Z = G.
        if (!engine.gram(f.zNew, kf)) {
            status = Status::Stopped;
            break;
        }
        status = engine.sideStep(f.zNew, kf, Y, cinv, g, rhoT,
                                 detail::mixSeed(m_options.seed, static_cast<std::uint64_t>(t), 1), out.message);
        if (status != Status::Ok) break;

        // ‖Y − F G‖² = ‖Y‖² − 2⟨FᵀY, G⟩ + ⟨FᵀF, G Gᵀ⟩, all pieces at hand (G Gᵀ is the next F-step's).
        if (!engine.gram(g.zNew, kgNew)) {
            status = Status::Stopped;
            break;
        }
        double e2 = yy - 2.0 * engine.dot(g.cty, g.zNew) + engine.dot(kf, kgNew);
        if (!std::isfinite(e2)) {
            status = Status::Failed;
            out.message = "non-finite values appeared in outer iteration " + std::to_string(t + 1);
            break;
        }
        if (e2 < detail::kExactErrorBelow * detail::kExactErrorBelow * scale2 && !engine.exactError(Y, f.zNew, cinv, g.zNew, e2)) {
            status = Status::Stopped;
            break;
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
