#pragma once
// What the plain (AdmmRefiner) and the Gram-weighted (GramRefiner) alternations share: the ρ ramp
// of docs/ALGORITHM.md §5.2, the per-side ADMM state, and how an outer iteration is committed and a run finished.

#include <algorithm>
#include <cmath>
#include <utility>

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

// ρ_t of the first inner solve of outer iteration t (0-based) out of `outer` (§5.2).
inline double rhoSchedule(int t, int outer)
{
    const double x = std::min(1.0, static_cast<double>(t) / std::max(1, outer - 3));
    return 0.03 + 0.97 * x * x * x;
}

// 1 / (‖row i‖ + ε) of a factor from its Gram matrix (the diagonal holds the squared row norms).
inline VectorF inverseNorms(const MatrixF& gramMatrix)
{
    VectorF out(gramMatrix.rows());
    for (Eigen::Index i = 0; i < out.size(); ++i)
        out[i] = static_cast<float>(1.0 / (std::sqrt(std::max(0.0, static_cast<double>(gramMatrix(i, i)))) + kNormEpsilon));
    return out;
}

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
