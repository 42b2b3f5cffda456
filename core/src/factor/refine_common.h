#pragma once
// What the plain (AdmmRefiner) and the Gram-weighted (GramRefiner) alternations share: the ρ ramp
// of docs/ALGORITHM.md §5.2, the per-side ADMM state, and how an outer iteration is committed and a run finished.

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <Eigen/Cholesky>

#include "mdbf/base/error.h"
#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/admm_refiner.h"

namespace mdbf::factor::detail {

inline constexpr double kNormEpsilon = 1e-12;     // added to factor norms before normalising (zero rows)
inline constexpr Eigen::Index kSolveChunk = 256;  // right-hand sides per triangular-solve task
// Below this relative error the expanded error formula loses too many digits to cancellation, so
// the residual is formed explicitly.
inline constexpr double kExactErrorBelow = 0.03;

enum class RefineStatus { Ok, Stopped, Failed };

// One side of the alternation: Z = Fᵀ (k×n) or G (k×m).
struct AdmmSide {
    MatrixF z;      // last committed iterate
    MatrixF zNew;   // iterate of the outer iteration in progress
    MatrixF gamma;  // scaled dual Γ, kept across outer iterations
    MatrixF cty;    // right-hand side CᵀY of the current half-step
    MatrixF work;   // least-squares iterate L (and scratch of the projection)
};

// ρ_t of the first inner solve of outer iteration t (0-based) out of `outer` (§5.2), ramping from
// rhoStart to 1.
inline double rhoSchedule(int t, int outer, double rhoStart = 0.03, double power = 3.0)
{
    const double x = std::min(1.0, static_cast<double>(t) / std::max(1, outer - 3));
    return rhoStart + (1.0 - rhoStart) * std::pow(x, power);
}

// True when each of the last kStallWindow entries of the error history lies less than
// tolerance · itself below the one before (or above it): the refinement has stopped paying.
inline bool stalled(const std::vector<double>& h, double tolerance)
{
    if (!(tolerance > 0.0) || h.size() <= static_cast<std::size_t>(kStallWindow)) return false;
    for (std::size_t i = h.size() - kStallWindow; i < h.size(); ++i)
        if (h[i - 1] - h[i] >= tolerance * h[i]) return false;
    return true;
}

// 1 / (‖row i‖ + ε) of a factor from its Gram matrix (the diagonal holds the squared row norms).
inline VectorF inverseNorms(const MatrixF& gramMatrix)
{
    VectorF out(gramMatrix.rows());
    for (Eigen::Index i = 0; i < out.size(); ++i)
        out[i] = static_cast<float>(1.0 / (std::sqrt(std::max(0.0, static_cast<double>(gramMatrix(i, i)))) + kNormEpsilon));
    return out;
}

// The outcome a refinement starts from: F0 and G0 as they are (returned unchanged when no outer
// iteration completes). Throws InvalidArgument, the message opening with `what`, unless errorScale
// is finite and positive.
inline AdmmOutcome startOutcome(const char* what, double errorScale)
{
    if (!(errorScale > 0.0) || !std::isfinite(errorScale))
        throw InvalidArgument(std::string(what) + ": error scale must be finite and positive");
    return {};
}

// Both sides at the start: Z = F0ᵀ (k×n) and G0 (k×m), duals zero. Takes the start over, so that
// no copy of it outlives the setup.
inline void startSides(MatrixF F0, MatrixF G0, AdmmSide& f, AdmmSide& g)
{
    f.z = F0.transpose();
    f.gamma = MatrixF::Zero(F0.cols(), F0.rows());
    F0.resize(0, 0);
    g.z = std::move(G0);
    g.gamma = MatrixF::Zero(g.z.rows(), g.z.cols());
}

// What the engines of both alternations hold (options, run context, thread count) and the
// Cholesky solve they share.
class RefineEngineBase {
public:
    RefineEngineBase(const AdmmOptions& options, const RunContext& ctx, int threads)
        : m_options(options), m_ctx(ctx), m_threads(threads)
    {
    }

    bool stopped() const { return m_ctx.stopRequested(); }

    // X ← (L Lᵀ)⁻¹ X, right-hand sides split into column blocks solved on all threads. Each column
    // is solved on its own, so the result does not depend on the schedule. False when a stop was
    // requested (X then partly solved).
    template <typename Llt>
    bool choleskySolve(const Llt& llt, MatrixF& x) const
    {
        const Eigen::Index q = x.cols();
        const int tasks = static_cast<int>((q + kSolveChunk - 1) / kSolveChunk);
        const auto& lower = llt.matrixL();
        const auto& upper = llt.matrixU();
        const double work = static_cast<double>(x.rows()) * static_cast<double>(x.rows()) * static_cast<double>(q);
        const int threads = work >= 4.0e6 ? m_threads : 1;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int t = 0; t < tasks; ++t) {
            if (m_ctx.stopRequested()) continue;
            const Eigen::Index c0 = static_cast<Eigen::Index>(t) * kSolveChunk;
            auto block = x.middleCols(c0, std::min(kSolveChunk, q - c0));
            lower.solveInPlace(block);
            upper.solveInPlace(block);
        }
        return !stopped();
    }

protected:
    const AdmmOptions& m_options;
    const RunContext& m_ctx;
    int m_threads;
};

// Makes outer iteration t (0-based) the committed one: its iterates, the Gram matrix of its G and
// the inverse column norms of its F; records its relative error sqrt(e2 / scale2) and reports it.
inline void commitIteration(int t, int outer, double e2, double scale2, AdmmSide& f, AdmmSide& g, MatrixF& kg,
                            MatrixF& kgNew, VectorF& committedInverseNorms, const VectorF& inverseNorms,
                            AdmmOutcome& out, const AdmmRefiner::IterationCallback& onIteration,
                            const RunContext& ctx)
{
    std::swap(f.z, f.zNew);
    std::swap(g.z, g.zNew);
    std::swap(kg, kgNew);
    committedInverseNorms = inverseNorms;
    const double rel = std::sqrt(std::max(0.0, e2) / scale2);
    out.history.push_back(rel);
    out.iterations = t + 1;
    if (onIteration) onIteration(t + 1, rel);
    ctx.report("refine", t + 1, outer);
}

// Records how the run ended and reads F (unit columns) and G (carrying the scale) off the last
// committed iterate; with no complete iteration `out` keeps the start.
inline void finishRefinement(RefineStatus status, AdmmSide& f, AdmmSide& g, const VectorF& committedInverseNorms,
                             AdmmOutcome& out)
{
    if (status == RefineStatus::Stopped) out.cancelled = true;
    if (status == RefineStatus::Failed) {
        out.failed = true;
        if (out.message.empty()) out.message = "refinement failed";
    }
    if (out.iterations > 0) {
        out.F = f.z.transpose() * committedInverseNorms.asDiagonal();
        out.G = std::move(g.z);
    }
}

}  // namespace mdbf::factor::detail
