#pragma once
// The Summary of one factorization (docs/CONVENTIONS.md §3.3): the deployed parameters plus what happened.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mdbf/factor/bit_budget.h"
#include "mdbf/kernels/factor_path.h"

namespace mdbf::factor {

using mdbf::Objective;
using mdbf::objectiveName;
using mdbf::parseObjective;

/// How a factorization ended, and what that means for the result's parameters.
enum class Termination {
    Converged,       ///< all iterations ran and the error settled (last changes below tolerance)
    IterationLimit,  ///< all iterations ran (or none were asked for) but the error was still moving
    Cancelled,       ///< stopped early: the parameters are the best complete iterate so far (at least the closed form)
    Failed,          ///< numerical failure: the parameters are the best valid ones found (at least the closed form)
};

/// "converged", "iteration_limit", "cancelled", "failed".
std::string_view terminationName(Termination termination);

/// The outcome of Factorizer::run. Errors are relative: ‖W − Ŵ‖/‖W‖ under the objective (with D^{1/2}
/// applied to both for DiagonalWeighted, sqrt(tr(E H Eᵀ) / tr(W H Wᵀ)) with E = W − Ŵ for Gram), Ŵ
/// rebuilt from the FP16-rounded envelopes, and 0 for W = 0 when Ŵ = 0.
struct FactorResult {
    std::vector<kernels::FactorPath> paths{}; ///< P paths; envelopes hold FP16 values; dbf paths are in
                                              ///< the merged form (A = a, Qa = c, Qb = 1, B = b)
    std::int64_t n = 0;                      ///< out_features
    std::int64_t m = 0;                      ///< in_features
    std::int64_t k = 0;                      ///< middle dimension
    int l = 1;                               ///< envelope rank (1 for dbf)
    int pathCount = 1;                       ///< P
    Method method = Method::Mdbf;
    Objective objective = Objective::Plain;
    double bpw = 0.0;                        ///< achieved bits per weight (exact accounting of §3)
    bool clamped = false;                    ///< the budget asked for k > min(n, m)
    std::int64_t unclampedK = 0;             ///< k before clamping

    double initialError = 0.0;               ///< closed-form start, FP16-rounded, under `objective`
    double finalError = 0.0;                 ///< rel_error of the returned parameters, under `objective`
    double finalPlainError = 0.0;            ///< ‖W − Ŵ‖_F / ‖W‖_F whatever the objective
    /// 0: the three errors above are exact. Otherwise they are estimates from this many evenly
    /// spaced rows of W and Ŵ (a closed-form preview, FactorizerOptions::errorSampleRows).
    std::int64_t errorSampleRows = 0;
    std::vector<double> errorHistory{};      ///< relative error (objective) after each outer iteration,
                                             ///< all paths in sequence, before the final FP16 rounding
    std::vector<double> polishHistory{};     ///< per path: the error before the polish and after each
                                             ///< sweep (§10); empty without a polish
    int iterations = 0;                      ///< outer iterations completed (over all paths)
    double seconds = 0.0;                    ///< wall time of run(), SVD included when run() computed it
    double svdSeconds = 0.0;                 ///< part of `seconds` spent in SVDs of the layer
    Termination termination = Termination::IterationLimit;
    std::string message{};                   ///< one line: why it ended, or what was noteworthy

    /// "rel_error (plain)", "rel_error (diag)" or "rel_error (gram)": the name to show next to the errors.
    std::string errorLabel() const;
};

}  // namespace mdbf::factor
