#include "mdbf/pipeline/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <queue>
#include <set>
#include <sstream>

#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/input_gram.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/model/architecture.h"
#include "mdbf/pipeline/model_configuration.h"

namespace mdbf::pipeline {

namespace {

__extension__ typedef __int128 Int128;

using Clock = std::chrono::steady_clock;

// Between two measured budgets of a format, the curve is sampled at up to this many k steps.
constexpr std::int64_t kInterpolationSteps = 16;

std::string bpwText(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

factor::Bpw defaultMin(const PlanOptions& o)
{
    return o.minBpw ? *o.minBpw : factor::Bpw::parse(bpwText(o.budget.value() / 2.0));
}

factor::Bpw defaultMax(const PlanOptions& o) { return o.maxBpw ? *o.maxBpw : factor::Bpw::parse(bpwText(o.budget.value() * 2.0)); }

/// Trial budgets: geometric from min to max, with the point nearest the budget (in ratio) replaced by
/// the budget itself so that the uniform setting is among the measured points.
std::vector<factor::Bpw> trialBudgets(const PlanOptions& o)
{
    const double lo = defaultMin(o).value();
    const double hi = defaultMax(o).value();
    std::vector<factor::Bpw> grid;
    std::size_t nearest = 0;
    double nearestDistance = INFINITY;
    for (int i = 0; i < o.gridPoints; ++i) {
        const double t = static_cast<double>(i) / static_cast<double>(o.gridPoints - 1);
        const double v = lo * std::pow(hi / lo, t);
        grid.push_back(i == 0 ? defaultMin(o) : i + 1 == o.gridPoints ? defaultMax(o) : factor::Bpw::parse(bpwText(v)));
        const double distance = std::abs(std::log(v / o.budget.value()));
        if (distance < nearestDistance) {
            nearestDistance = distance;
            nearest = grid.size() - 1;
        }
    }
    grid[nearest] = o.budget;
    return grid;
}

/// The relative error a plan weighs: of the outputs under H when the layer has statistics, else of
/// the weights.
class ErrorMeter {
public:
    /// `gram`: the layer's prepared weighting, null without statistics.
    ErrorMeter(const RowMatrixF& W, std::shared_ptr<const factor::InputGram> gram, factor::Objective objective,
               int threads)
        : m_W(W), m_threads(threads), m_objective(objective), m_gram(std::move(gram))
    {
        if (m_gram && objective != factor::Objective::Gram) m_reference = m_gram->weightedSquaredNorm(W, threads);
    }

    double operator()(const factor::FactorResult& result) const
    {
        if (!m_gram) return result.finalPlainError;
        if (m_objective == factor::Objective::Gram) return result.finalError;  // the same quantity
        if (m_reference <= 0.0) return 0.0;
        const RowMatrixF residual = m_W - factor::reconstruct(result.paths, m_threads);
        return std::sqrt(m_gram->weightedSquaredNorm(residual, m_threads) / m_reference);
    }

private:
    const RowMatrixF& m_W;
    int m_threads;
    factor::Objective m_objective;
    std::shared_ptr<const factor::InputGram> m_gram;
    double m_reference = 0.0;
};

/// The measured points of one format (sorted by k) with log-linear interpolation between neighbours.
void addInterpolated(const std::vector<PlanPoint>& measured, std::int64_t n, std::int64_t m, std::vector<PlanPoint>& out)
{
    for (std::size_t i = 0; i < measured.size(); ++i) {
        out.push_back(measured[i]);
        if (i + 1 == measured.size()) break;
        const PlanPoint& a = measured[i];
        const PlanPoint& b = measured[i + 1];
        const std::int64_t step = std::max<std::int64_t>(1, (b.k - a.k) / kInterpolationSteps);
        const double la = std::log(std::max(a.error, 1e-12));
        const double lb = std::log(std::max(b.error, 1e-12));
        for (std::int64_t k = a.k + step; k < b.k; k += step) {
            PlanPoint p;
            p.format = a.format;
            p.k = k;
            p.bits = factor::storageBits(n, m, k, a.format.l, 1, a.format.method);
            const double t = static_cast<double>(k - a.k) / static_cast<double>(b.k - a.k);
            p.error = std::exp(la + t * (lb - la));
            out.push_back(p);
        }
    }
}

double cost(const PlanPoint& p) { return p.error * p.error; }

/// The lower convex hull of the (bits, cost) points, from the cheapest point towards lower cost.
std::vector<PlanPoint> lowerHull(std::vector<PlanPoint> points)
{
    std::sort(points.begin(), points.end(), [](const PlanPoint& a, const PlanPoint& b) {
        if (a.bits != b.bits) return a.bits < b.bits;
        return cost(a) < cost(b);
    });
    std::vector<PlanPoint> hull;
    for (const PlanPoint& p : points) {
        if (!hull.empty() && cost(p) >= cost(hull.back())) continue;
        while (hull.size() >= 2) {
            const PlanPoint& a = hull[hull.size() - 2];
            const PlanPoint& b = hull.back();
            // b stays only when it lies strictly below the segment a–p.
            const double cross = (static_cast<double>(b.bits - a.bits)) * (cost(p) - cost(a)) -
                                 (cost(b) - cost(a)) * static_cast<double>(p.bits - a.bits);
            if (cross > 0.0) break;
            hull.pop_back();
        }
        hull.push_back(p);
    }
    return hull;
}

struct LayerState {
    double weight = 1.0;
    std::vector<PlanPoint> candidates;
    std::vector<PlanPoint> hull;
    std::size_t at = 0;  ///< index into hull
    PlanPoint choice;
};

/// Greedy marginal gain along the hulls, then single moves to any candidate that still fits.
void allocate(std::vector<LayerState>& layers, Int128 allowed)
{
    Int128 used = 0;
    for (LayerState& s : layers) {
        s.choice = s.hull.front();
        used += s.choice.bits;
    }
    using Step = std::pair<double, std::size_t>;  // (cost change per bit, layer); most negative first
    std::priority_queue<Step, std::vector<Step>, std::greater<>> queue;
    auto push = [&](std::size_t i) {
        const LayerState& s = layers[i];
        if (s.at + 1 >= s.hull.size()) return;
        const PlanPoint& a = s.hull[s.at];
        const PlanPoint& b = s.hull[s.at + 1];
        queue.push({s.weight * (cost(b) - cost(a)) / static_cast<double>(b.bits - a.bits), i});
    };
    for (std::size_t i = 0; i < layers.size(); ++i) push(i);
    while (!queue.empty()) {
        const std::size_t i = queue.top().second;
        queue.pop();
        LayerState& s = layers[i];
        const PlanPoint& next = s.hull[s.at + 1];
        if (used + (next.bits - s.choice.bits) > allowed) continue;  // this layer stops here
        used += next.bits - s.choice.bits;
        ++s.at;
        s.choice = next;
        push(i);
    }
    // What is left is less than any hull step that was refused; spend it on single moves to a larger
    // candidate of any layer, the largest gain first. Every move adds bits, so this ends.
    for (;;) {
        double bestGain = 0.0;
        std::size_t bestLayer = layers.size();
        PlanPoint best;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const LayerState& s = layers[i];
            for (const PlanPoint& p : s.candidates) {
                if (p.bits <= s.choice.bits || used + (p.bits - s.choice.bits) > allowed) continue;
                const double gain = s.weight * (cost(s.choice) - cost(p));
                if (gain > bestGain) {
                    bestGain = gain;
                    bestLayer = i;
                    best = p;
                }
            }
        }
        if (bestLayer == layers.size()) break;
        used += best.bits - layers[bestLayer].choice.bits;
        layers[bestLayer].choice = best;
    }
}

}  // namespace

std::string_view planWeightingName(PlanWeighting weighting)
{
    return weighting == PlanWeighting::Layers ? "layers" : "weights";
}

PlanWeighting parsePlanWeighting(std::string_view text)
{
    if (text == "layers") return PlanWeighting::Layers;
    if (text == "weights") return PlanWeighting::Weights;
    throw InvalidArgument("unknown weighting '" + std::string(text) + "' (expected layers or weights)");
}

std::vector<PlanFormat> PlanOptions::formats() const
{
    if (methods.empty()) throw InvalidArgument("the method list is empty: give dbf, mdbf or both");
    std::vector<PlanFormat> out;
    const bool dbf = std::find(methods.begin(), methods.end(), factor::Method::Dbf) != methods.end();
    if (dbf) out.push_back({factor::Method::Dbf, 1});
    if (std::find(methods.begin(), methods.end(), factor::Method::Mdbf) != methods.end()) {
        if (ls.empty()) throw InvalidArgument("the envelope rank list is empty: give at least one l for mdbf");
        std::set<int> seen;
        for (int l : ls) {
            if (l < 1 || l > factor::kMaxEnvelopeRank)
                throw InvalidArgument("envelope rank l = " + std::to_string(l) + " is outside [1, " +
                                      std::to_string(factor::kMaxEnvelopeRank) + "]");
            if (!seen.insert(l).second || (l == 1 && dbf)) continue;
            out.push_back({factor::Method::Mdbf, l});
        }
    }
    return out;
}

void PlanOptions::validate() const
{
    (void)formats();
    if (gridPoints < 2) throw InvalidArgument("a plan needs at least 2 trial budgets per format");
    if (iterations < 0 || iterations > factor::kMaxIterations || trialIterations < 0 ||
        trialIterations > factor::kMaxIterations)
        throw InvalidArgument("iteration counts must lie in [0, " + std::to_string(factor::kMaxIterations) + "]");
    const double lo = defaultMin(*this).value();
    const double hi = defaultMax(*this).value();
    if (lo > hi) throw InvalidArgument("the lowest layer budget " + bpwText(lo) + " exceeds the highest " + bpwText(hi));
    if (budget.value() < lo || budget.value() > hi)
        throw InvalidArgument("the budget " + budget.text() + " bpw lies outside the layer budgets [" + bpwText(lo) +
                              ", " + bpwText(hi) + "]");
}

std::vector<std::string> plannedLayerNames(const io::ModelConfig& config)
{
    std::vector<std::string> names;
    for (const std::string& name : model::projectionNames(config)) {
        const std::optional<model::LayerIdentity> id = model::identifyLayer(name);
        if (id && model::factorizedByDefault(id->role)) names.push_back(name);
    }
    return names;
}

ModelPlan planModel(const io::ModelConfig& config, const io::Checkpoint& checkpoint, const PlanOptions& options,
                    const RunContext& ctx)
{
    const Clock::time_point start = Clock::now();
    options.validate();
    const std::vector<PlanFormat> formats = options.formats();
    const std::vector<factor::Bpw> grid = trialBudgets(options);
    const std::vector<std::string> names = plannedLayerNames(config);
    const bool calibrated = !options.inputGrams.empty();
    if (options.objective != factor::Objective::Plain && !calibrated)
        throw InvalidArgument("objective " + std::string(factor::objectiveName(options.objective)) +
                              " needs calibration statistics");

    ModelPlan plan;
    plan.outputError = calibrated;
    std::vector<LayerState> states(names.size());
    // (format index, layer) → the error measured at exactly the budget, for the uniform comparison.
    std::vector<std::vector<std::optional<double>>> atBudget(formats.size(),
                                                              std::vector<std::optional<double>>(names.size()));
    const std::int64_t totalTrials = static_cast<std::int64_t>(names.size() * formats.size() * grid.size());
    std::int64_t done = 0;
    ctx.report("plan", 0, totalTrials);
    RunContext trialCtx;
    trialCtx.stop = ctx.stop;
    trialCtx.threads = ctx.threads;

    for (std::size_t li = 0; li < names.size(); ++li) {
        ctx.throwIfStopped();
        const std::string& name = names[li];
        PlannedLayer layer;
        layer.name = name;
        LayerJob job;
        job.settings.objective = options.objective;
        job.settings.iterations = options.trialIterations;
        job.engine = options.engine;
        const Eigen::MatrixXd* gram = nullptr;
        if (calibrated) {
            const auto it = options.inputGrams.find(name);
            if (it == options.inputGrams.end()) throw InvalidArgument("layer '" + name + "' has no calibration statistics");
            gram = &it->second;
            if (options.objective == factor::Objective::Gram) job.statistics.inputGram = *gram;
            if (options.objective == factor::Objective::DiagonalWeighted)
                job.statistics.channelWeights = gram->diagonal().cast<float>();  // d_j = (XᵀX / N)_jj
        }
        // Prepared once: the decomposition, every trial and the meter weigh with the same H.
        job.prepareGram();
        std::shared_ptr<const factor::InputGram> prepared = job.statistics.preparedGram;
        if (gram && !prepared)
            prepared = std::make_shared<const factor::InputGram>(factor::InputGram::prepare(*gram, job.options(0).damping));
        const RowMatrixF W = loadLayerWeights(checkpoint, name);
        layer.n = W.rows();
        layer.m = W.cols();
        const std::shared_ptr<const factor::LayerSvd> svd = decomposeLayerCached(W, job, checkpoint, name, trialCtx).svd;
        const ErrorMeter meter(W, std::move(prepared), options.objective, ctx.threadCount());

        LayerState& state = states[li];
        for (std::size_t fi = 0; fi < formats.size(); ++fi) {
            const PlanFormat& format = formats[fi];
            std::vector<PlanPoint> measured;
            for (const factor::Bpw& bpw : grid) {
                ctx.throwIfStopped();
                const factor::BudgetCheck check = factor::checkBitBudget(layer.n, layer.m, bpw, format.method, format.l, 1);
                const bool repeat = check.budget && !measured.empty() && measured.back().k == check.budget->k;
                if (check.budget && !repeat) {
                    job.settings.method = format.method;
                    job.settings.l = format.l;
                    job.settings.bpw = bpw;
                    const factor::FactorResult result = factorizeLayer(W, *svd, job, options.trialIterations, trialCtx);
                    if (result.termination == factor::Termination::Cancelled) throw Cancelled();
                    measured.push_back({format, result.k, check.budget->bits, meter(result), true});
                    ++plan.trials;
                }
                if (check.budget && bpw == options.budget) atBudget[fi][li] = measured.back().error;
                ctx.report("plan", ++done, totalTrials);
            }
            layer.curve.insert(layer.curve.end(), measured.begin(), measured.end());
            addInterpolated(measured, layer.n, layer.m, state.candidates);
        }
        if (state.candidates.empty())
            throw InvalidArgument("layer '" + name + "' (" + std::to_string(layer.n) + "x" + std::to_string(layer.m) +
                                  ") cannot take any format at up to " + defaultMax(options).text() +
                                  " bpw: raise --max-bpw");
        state.hull = lowerHull(state.candidates);
        plan.layers.push_back(std::move(layer));
    }

    Int128 weights = 0;
    Int128 cheapest = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        weights += static_cast<Int128>(plan.layers[i].n) * plan.layers[i].m;
        cheapest += states[i].hull.front().bits;
    }
    const double meanWeights = static_cast<double>(weights) / static_cast<double>(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (options.weighting == PlanWeighting::Weights)
            states[i].weight = static_cast<double>(plan.layers[i].n * plan.layers[i].m) / meanWeights;
        plan.layers[i].weight = states[i].weight;
    }
    // Σ bits ≤ (p / q) · Σ n·m, in integers.
    const Int128 allowed = static_cast<Int128>(options.budget.numerator()) * weights / options.budget.denominator();
    if (cheapest > allowed) {
        std::ostringstream msg;
        msg << "a budget of " << options.budget.text() << " bpw is below what the layers can take: the cheapest "
            << "trials need " << bpwText(static_cast<double>(cheapest) / static_cast<double>(weights))
            << " bpw (raise --bpw, or lower --min-bpw)";
        throw InvalidArgument(msg.str());
    }
    allocate(states, allowed);

    ConfiguredSettings configured;
    std::vector<FactorizedShape> shapes;
    for (std::size_t i = 0; i < names.size(); ++i) {
        PlannedLayer& layer = plan.layers[i];
        layer.choice = states[i].choice;
        layer.bpw = factor::budgetForK(layer.n, layer.m, layer.choice.k, layer.choice.format.method,
                                       layer.choice.format.l, 1);
        plan.predictedCost += layer.weight * cost(layer.choice);
        factor::LayerQuantSettings s;
        s.method = layer.choice.format.method;
        s.l = layer.choice.format.l;
        s.bpw = layer.bpw;
        s.iterations = options.iterations;
        s.objective = options.objective;
        configured.emplace(layer.name, s);
        shapes.push_back({layer.name, layer.n, layer.m, layer.choice.k, s.l, 1, s.method});
    }
    plan.bits = accountModel(checkpoint, shapes);
    if (static_cast<Int128>(plan.bits.factorizedBits) * options.budget.denominator() >
        static_cast<Int128>(options.budget.numerator()) * plan.bits.factorizedWeights)
        throw InvalidArgument("internal: the plan exceeds its budget");  // the allocation guarantees it
    plan.config = quantConfigOf(config, configured);
    for (std::size_t fi = 0; fi < formats.size(); ++fi) {
        double total = 0.0;
        bool complete = true;
        for (std::size_t i = 0; i < names.size(); ++i) {
            const std::optional<double>& e = atBudget[fi][i];
            if (!e) complete = false;
            else total += plan.layers[i].weight * *e * *e;
        }
        if (complete) plan.uniformCosts.emplace_back(formats[fi], total);
    }
    plan.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return plan;
}

std::string planFormatText(const PlanFormat& format)
{
    return format.method == factor::Method::Dbf ? "dbf" : "mdbf l=" + std::to_string(format.l);
}

}  // namespace mdbf::pipeline
