#pragma once
// The DBF-vs-MDBF study (docs/ALGORITHM.md §3, §6): model perplexity against model-level bits per weight
// over a grid of (method, l, budget, objective, sequential) points, and the per-layer view of the
// relative error against l at fixed budgets for every layer shape of the model.
//
// Every factorized layer of every point is cached on disk (one small HDF5 file per layer, keyed by
// the model, the layer, the point's settings and, for activation-aware points, the calibration
// text), and so is every finished measurement (the original perplexity, each point's result keyed
// also by the evaluation text and window, each cell of the per-layer view; small JSON records). An
// interrupted study resumes inside the point where it stopped; a repeated one reads everything back.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mdbf/base/run_context.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/pipeline/plan.h"

namespace mdbf::pipeline {

/// One configuration of the grid, applied uniformly to every projection except the output head.
struct StudyPoint {
    factor::Method method = factor::Method::Mdbf;
    int l = 1;                                         ///< envelope rank (1 for dbf)
    factor::Bpw bpw;                                   ///< budget of every factorized projection
    factor::Objective objective = factor::Objective::Plain;
    bool sequential = false;                           ///< calibration from the partly quantized model
    int iterations = 60;                               ///< ADMM outer iterations per layer
    /// planModel chooses the method, l and bits of every layer for `bpw` over the factorized layers
    /// (method and l are then unused): on weight errors for the plain objective, on output errors
    /// under the calibration for gram. Not with diag or sequential.
    bool planned = false;

    /// True when a planned point can take this objective and calibration: plain or gram, one-shot
    /// (the study collects Gram matrices for gram only, and a plan fits every layer from one calibration).
    static bool plannable(factor::Objective objective, bool sequential = false);

    /// e.g. "mdbf l=2 @1.5 diag seq T=60", "plan @1.25 gram T=30".
    std::string label() const;
};

/// What to run for one model.
struct StudySpec {
    std::filesystem::path modelDir;         ///< Hugging Face model directory
    std::filesystem::path evalText;         ///< perplexity text (docs/ALGORITHM.md §7)
    int ctx = 256;                          ///< perplexity window
    std::filesystem::path calibText;        ///< calibration text; required by activation-aware points
    int calibCtx = 256;                     ///< calibration window
    std::vector<StudyPoint> points;         ///< the grid, run in order
    std::vector<factor::Bpw> layerViewBpw;  ///< budgets of the per-layer view (empty: no view)
    std::vector<int> layerViewLs{1, 2, 4, 8};  ///< envelope ranks of the per-layer view (mdbf)
    int layerViewIterations = 20;           ///< ADMM iterations of the per-layer view
    std::filesystem::path cacheDir;         ///< layer and record cache (empty: no cache)
    std::uint64_t seed = 0;                 ///< factorizer seed
    DecompositionStore decompositions;      ///< decomposition cache of the layer view (none by default)
    /// Formats, trial grid, trial iterations and weighting of the planned points; each point sets
    /// the budget, objective, iterations, seed and statistics.
    PlanOptions plan;
    /// Warm starts (opt-in, off so that published figures stay reproducible): a layer of a
    /// non-planned point that the cache does not hold is refined from the cached cold result of the
    /// same layer, objective, statistics and paths at the nearest k among the other points of the
    /// grid (then the same l, then the most iterations). Needs cacheDir. Its result and the point's
    /// record are cached under keys of their own, never under the cold ones.
    bool warmStart = false;
};

/// One projection of one point (the factors themselves stay in the cache).
struct StudyLayer {
    std::string name;
    std::int64_t n = 0, m = 0, k = 0;
    int l = 0;
    double bpw = 0.0;         ///< achieved; the stored precision when kept dense
    double relError = 0.0;    ///< under the point's objective
    double plainError = 0.0;  ///< ‖W − Ŵ‖_F / ‖W‖_F
    bool keptDense = false;
    bool cached = false;      ///< read from the cache rather than computed
    std::int64_t warmStartK = 0;  ///< k of the cached result it was refined from (StudySpec::warmStart); 0: cold
};

/// The outcome of one point.
struct StudyPointResult {
    StudyPoint point;
    double ppl = 0.0;            ///< perplexity on the evaluation text
    double modelBpw = 0.0;       ///< over all weights, dense tensors at stored precision
    double factorizedBpw = 0.0;  ///< over the factorized projections
    double seconds = 0.0;        ///< wall time of this point (factorization + evaluation)
    int cachedLayers = 0;        ///< layers read from the cache
    bool fromCache = false;      ///< the whole result was read back; `seconds` is the first run's
    bool warmStart = false;      ///< run with StudySpec::warmStart (its layers' warmStartK say from where)
    std::vector<StudyLayer> layers;
};

/// One cell of the per-layer view: a layer shape at a budget and an envelope rank.
struct LayerViewCell {
    std::string layer;           ///< the first projection of the model with this shape
    std::int64_t n = 0, m = 0;
    factor::Bpw bpw;
    factor::Method method = factor::Method::Mdbf;
    int l = 1;
    std::int64_t k = 0;          ///< 0 when the budget is infeasible for this l
    double achievedBpw = 0.0;
    double relError = 0.0;       ///< plain objective; NaN when infeasible
};

/// Everything measured for one model.
struct StudyResult {
    std::string model;               ///< directory name
    std::string evalText;            ///< file name of the evaluation text
    int ctx = 0;
    std::int64_t evalTokens = 0;
    double originalPpl = 0.0;
    double originalBpw = 0.0;        ///< stored precision over all weights
    std::vector<StudyPointResult> points;
    std::vector<LayerViewCell> layerView;
    bool cancelled = false;          ///< stopped early: `points` holds the points finished before
};

/// Runs the study of one model: the original perplexity, the per-layer view, then every point
/// (calibration collected once per calibration text unless sequential, per block when sequential).
/// Reports ("layer view", i, N) and ("point", i, N) progress; onPoint is called after each point.
/// A stop request during the points returns what was finished, with `cancelled` set (the unfinished
/// point's finished layers stay cached for the next run); one before that throws Cancelled.
/// Throws InvalidArgument for an activation-aware point without a calibration text, an infeasible
/// budget for every layer, a planned point that is diag or sequential or whose plan options are
/// invalid, IoError / FormatError naming the file for unreadable inputs.
StudyResult runStudy(const StudySpec& spec, const RunContext& ctx = {},
                     const std::function<void(const StudyPointResult&)>& onPoint = {});

}  // namespace mdbf::pipeline
