#pragma once
// Exact block-coordinate descent on one path's stored parameters (docs/ALGORITHM.md §10).
//
// The ADMM refinement (§5) works on dense F and G and reads the signs and rank-l envelopes off them
// at the end (§5.6); nothing there minimises ‖Y − F·G‖ over the envelopes themselves. The polish
// does: with F = S_a ⊙ (A·Qaᵀ) and G = S_b ⊙ (Qb·Bᵀ), every step solves one block exactly or
// improves it monotonically while the rest is fixed:
//   outer envelope (A, or B): row by row, an l×l least-squares problem;
//   signs (S_a rows, or S_b columns): greedy single flips, each lowering the error;
//   middle envelope (Qa, or Qb): conjugate gradients on the k·l-variable quadratic.
// Each sweep does the F side (G fixed) then the G side (F fixed).

#include <string>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor {

/// How much work one polish does. validate() lists what is wrong.
struct PolishOptions {
    int sweeps = 4;          ///< F side then G side, this many times (≥ 0; 0 leaves the path unchanged)
    int flipPasses = 2;      ///< passes of greedy sign flips over every row per side and sweep (≥ 0)
    int cgIterations = 8;    ///< conjugate-gradient steps on the middle envelope per side and sweep (≥ 0)

    /// Empty when valid, otherwise a one-line description of the first problem.
    std::string validate() const;
};

/// What a polish did.
struct PolishOutcome {
    std::vector<double> history;  ///< ‖Y − F·G‖_F / errorScale before the first sweep, then after each sweep
    int sweeps = 0;               ///< complete sweeps
    int flips = 0;                ///< signs changed in all
    bool cancelled = false;       ///< stopped early; the path holds the last complete step
};

/// Polishes `path` (float envelopes, any l ≤ k) in place against the target Y (n×m): the error
/// ‖Y − F·G‖_F never increases, step by step. Uses ctx.threadCount() threads and polls ctx.stop
/// between steps. Deterministic for a given thread count. Throws InvalidArgument when the path does
/// not fit Y or errorScale is not finite and positive.
PolishOutcome polishPath(const Eigen::Ref<const RowMatrixF>& Y, kernels::FactorPath& path, const PolishOptions& options,
                         double errorScale, const RunContext& ctx = {});

}  // namespace mdbf::factor
