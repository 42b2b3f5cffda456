#pragma once
// The best configuration at a budget (docs/ALGORITHM.md §9, docs/CLI.md §3.9 `mdbf plan`): for every
// projection the default configuration factorizes, the method, envelope rank l and middle dimension
// k that minimise the predicted model cost Σ w_i e_i² (e_i the layer's relative error: of its outputs
// under its input statistics when calibration is given, of its weights otherwise) subject to the
// exact factorized bits per weight (pipeline::accountModel) being at most the budget. Per layer the
// error-against-bits curves come from short trials on one decomposition of the layer; the allocation
// is a greedy walk along the lower convex hulls of the curves.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/run_context.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/pipeline/model_accounting.h"

namespace mdbf::pipeline {

/// One storage format a plan may give a layer.
struct PlanFormat {
    factor::Method method = factor::Method::Dbf;
    int l = 1;  ///< envelope rank (1 for dbf)

    bool operator==(const PlanFormat&) const = default;
};

/// "dbf" or "mdbf l=<l>", as the plan's table shows a format.
std::string planFormatText(const PlanFormat& format);

/// How the layers' squared errors are added up into the predicted model cost.
enum class PlanWeighting {
    Layers,   ///< Σ e_i²: every layer's relative error counts once
    Weights,  ///< Σ (n_i·m_i / mean n·m) e_i²: a layer counts by its share of the weights
};

/// "layers" or "weights".
std::string_view planWeightingName(PlanWeighting weighting);

/// Parses "layers" / "weights". Throws InvalidArgument naming the value otherwise.
PlanWeighting parsePlanWeighting(std::string_view text);

/// What planModel is asked for.
struct PlanOptions {
    factor::Bpw budget;                      ///< the factorized bits per weight not to exceed
    std::vector<factor::Method> methods = {factor::Method::Dbf, factor::Method::Mdbf};
    std::vector<int> ls = {1, 2, 4, 8};      ///< envelope ranks tried for mdbf (dbf is always l = 1)
    std::optional<factor::Bpw> minBpw;       ///< lowest per-layer trial budget (default budget / 2)
    std::optional<factor::Bpw> maxBpw;       ///< highest per-layer trial budget (default 2 · budget)
    int gridPoints = 7;                      ///< trial budgets per format, geometric from min to max, budget among them
    int iterations = 260;                    ///< outer iterations the written configuration asks for
    int trialIterations = 6;                 ///< outer iterations of every trial (0: closed form only)
    factor::Objective objective = factor::Objective::Plain;  ///< of the trials and of the configuration
    PlanWeighting weighting = PlanWeighting::Weights;  ///< the better one on small-llama without calibration (README)
    /// H = XᵀX / N per layer name (the calibration statistics). When present for every planned layer,
    /// e_i is the relative output error sqrt(tr(E H Eᵀ) / tr(W H Wᵀ)); diag and gram need them.
    std::map<std::string, Eigen::MatrixXd, std::less<>> inputGrams;
    EngineSettings engine;                   ///< seed and inner iterations of the trials

    /// The formats tried: dbf, and mdbf at every l (mdbf l = 1 only without dbf: it fits the same model
    /// as dbf and stores more). Throws InvalidArgument for an empty list or l < 1.
    std::vector<PlanFormat> formats() const;

    /// Throws InvalidArgument naming the problem: no method, an l outside [1, kMaxEnvelopeRank],
    /// min > max, a budget outside [min, max], fewer than 2 grid points, negative iteration counts.
    void validate() const;
};

/// One measured or interpolated point of a layer's error-against-bits curve.
struct PlanPoint {
    PlanFormat format;
    std::int64_t k = 0;
    std::int64_t bits = 0;    ///< factor::storageBits at k
    double error = 0.0;       ///< relative error e (measured by a trial, or interpolated between two)
    bool measured = false;
};

/// The choice for one layer.
struct PlannedLayer {
    std::string name;         ///< projection name without ".weight"
    std::int64_t n = 0;
    std::int64_t m = 0;
    PlanPoint choice;         ///< format, k, exact bits and predicted error
    double weight = 1.0;      ///< the factor of e² in the predicted cost (PlanWeighting)
    factor::Bpw bpw;          ///< the decimal budget that resolves to choice.k (factor::budgetForK)
    std::vector<PlanPoint> curve;  ///< the measured trials of this layer, by format then k
};

/// A finished plan.
struct ModelPlan {
    std::vector<PlannedLayer> layers;  ///< the planned projections, in model order
    ModelBits bits;                    ///< accountModel of the plan
    double predictedCost = 0.0;        ///< Σ weight_i · e_i² over the planned layers
    bool outputError = false;          ///< e_i measured on outputs (calibration given), else on weights
    /// Predicted cost of every format used uniformly at the budget (measured trials at exactly the
    /// budget's k); a format that some layer cannot take at the budget is absent.
    std::vector<std::pair<PlanFormat, double>> uniformCosts;
    int trials = 0;                    ///< factorizations run
    double seconds = 0.0;
    factor::QuantConfig config;        ///< what `mdbf quantize --config` takes to reproduce the plan
};

/// Plans the projections of `config` that the default configuration factorizes (the head stays
/// dense), reading weights from `checkpoint`. Reports ("plan", trials done, trials) and polls
/// ctx.stop between trials (a stop throws Cancelled). Deterministic for equal inputs and thread
/// count. Throws InvalidArgument for invalid options, a budget below what the cheapest trials of
/// every layer need (naming that bpw), missing statistics for diag or gram; FormatError for a missing
/// or mis-shaped tensor.
ModelPlan planModel(const io::ModelConfig& config, const io::Checkpoint& checkpoint, const PlanOptions& options,
                    const RunContext& ctx = {});

/// The names planModel plans: model::projectionNames filtered by model::factorizedByDefault.
std::vector<std::string> plannedLayerNames(const io::ModelConfig& config);

}  // namespace mdbf::pipeline
