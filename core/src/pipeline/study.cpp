#include "mdbf/pipeline/study.h"
#include "mdbf/pipeline/study_file.h"
#include "mdbf/pipeline/layer_store.h"
#include "pipeline/study_record_cache.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/json_text.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/eval/calibration_cache.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/pipeline/sequential_calibration.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/layer_svd.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/io/package.h"
#include "mdbf/model/transformer.h"
#include "mdbf/tokenizer/tokenizer.h"
#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

factor::QuantConfig pointConfig(const StudyPoint& p)
{
    factor::LayerQuantSettings s;
    s.method = p.method;
    s.bpw = p.bpw;
    s.l = p.method == factor::Method::Dbf ? 1 : p.l;
    s.iterations = p.iterations;
    s.objective = p.objective;
    return factor::QuantConfig::uniform(s);
}

/// Calibration statistics on demand: once for the whole model, or, when sequential, per block
/// (SequentialCalibration).
class StatisticsSource {
public:
    StatisticsSource(const StudySpec& spec, const StudyPoint& point, const RunContext& ctx)
        : m_spec(spec), m_ctx(ctx), m_sequential(point.sequential)
    {
        m_options.ctx = spec.calibCtx;
        m_options.gram = point.objective == factor::Objective::Gram;
        if (m_sequential) m_perBlock.emplace(spec.modelDir, spec.calibText, m_options, ctx);
    }

    LayerStatistics operator()(const std::string& name, std::span<const LayerQuantResult> done)
    {
        if (m_perBlock) return (*m_perBlock)(name, done);
        return layerStatistics(all(), name);
    }

    /// The whole model's statistics, collected once (not sequential).
    const eval::CalibrationStats& all()
    {
        if (!m_all) {
            const eval::CalibrationCache cache(m_spec.cacheDir.empty() ? eval::CalibrationCache::defaultDirectory()
                                                                 : m_spec.cacheDir / "calibration");
            m_all = eval::calibrateModel(m_spec.modelDir, m_spec.calibText, m_options,
                                   cache.directory().empty() ? nullptr : &cache, m_ctx);
        }
        return *m_all;
    }

private:
    const StudySpec& m_spec;
    const RunContext& m_ctx;
    bool m_sequential = false;
    eval::CalibrationOptions m_options;
    std::optional<eval::CalibrationStats> m_all;
    std::optional<SequentialCalibration> m_perBlock;
};

std::string cachePrefix(const StudySpec& spec, const StudyPoint& point)
{
    const bool calibrated = point.objective != factor::Objective::Plain;
    eval::CalibrationOptions options;
    options.ctx = spec.calibCtx;
    options.gram = point.objective == factor::Objective::Gram;
    const std::string text = calibrated ? readBinaryFile(spec.calibText) : std::string();
    // Sequential Gram points fit the original model's outputs (outputMatchingTarget).
    const char* sequentialKey = !point.sequential ? "0" : options.gram ? "outputs" : "1";
    return eval::CalibrationCache::key(spec.modelDir, text, options) + "|sequential=" + sequentialKey +
           "|seed=" + std::to_string(spec.seed);
}

/// The plan options a planned point's record depends on besides the point itself.
std::string planKey(const PlanOptions& plan)
{
    std::string key = "|plan=";
    for (const PlanFormat& f : plan.formats()) key += planFormatText(f) + ",";
    key += "grid=" + std::to_string(plan.gridPoints) + ",trials=" + std::to_string(plan.trialIterations) +
           ",weigh=" + std::string(planWeightingName(plan.weighting));
    if (plan.minBpw) key += ",min=" + plan.minBpw->text();
    if (plan.maxBpw) key += ",max=" + plan.maxBpw->text();
    return key;
}

/// The configuration planModel chooses for a planned point, on the same statistics its layers are
/// then fitted with.
factor::QuantConfig plannedConfig(const StudySpec& spec, const StudyPoint& point, const io::ModelConfig& config,
                                  const io::Checkpoint& ckpt, StatisticsSource& statistics, const RunContext& ctx)
{
    PlanOptions options = spec.plan;
    options.budget = point.bpw;
    options.objective = point.objective;
    options.iterations = point.iterations;
    options.engine.seed = spec.seed;
    options.engine.decompositions = spec.decompositions;
    if (point.objective == factor::Objective::Gram) {
        const eval::CalibrationStats& stats = statistics.all();
        for (const std::string& name : plannedLayerNames(config)) {
            options.inputGrams.emplace(name, stats.layer(name).gram);
        }
    }
    options.validate();
    return planModel(config, ckpt, options, ctx).config;
}

/// The grid's settings of point `other` for the layer of `plan` (its paths and objective kept).
factor::LayerQuantSettings settingsOfPoint(const StudyPoint& other, const LayerPlan& plan)
{
    factor::LayerQuantSettings s = plan.settings;
    s.method = other.method;
    s.l = other.method == factor::Method::Dbf ? 1 : other.l;
    s.bpw = other.bpw;
    s.iterations = other.iterations;
    return s;
}

/// Where the layer of `plan` in `point` starts under StudySpec::warmStart: the cold result, in
/// `cold`, of another point of the grid on the same statistics (objective, sequential) at the
/// nearest k, then the same l, then the most iterations, then the earlier point; nothing when no
/// such result is cached. Warm results are kept under `prefix` (the cold store's) plus the source's
/// settings, so a layer refined from one result is never read back as another's or as cold.
std::optional<WarmStart> warmStartOf(const StudySpec& spec, const StudyPoint& point, const LayerStore& cold,
                                     const std::string& prefix, const LayerPlan& plan)
{
    const factor::LayerQuantSettings& own = plan.settings;
    const factor::BudgetCheck target = factor::checkBitBudget(plan.n, plan.m, own.bpw, own.method, own.l, own.paths);
    if (!target.budget) return std::nullopt;
    struct Candidate {
        factor::LayerQuantSettings settings;
        std::int64_t distance = 0;
        bool otherL = false;
        std::size_t index = 0;
    };
    std::vector<Candidate> candidates;
    for (std::size_t i = 0; i < spec.points.size(); ++i) {
        const StudyPoint& other = spec.points[i];
        if (other.planned || other.objective != point.objective || other.sequential != point.sequential) continue;
        const factor::LayerQuantSettings s = settingsOfPoint(other, plan);
        if (s.method == own.method && s.l == own.l && s.bpw == own.bpw && s.iterations == own.iterations) continue;
        const factor::BudgetCheck check = factor::checkBitBudget(plan.n, plan.m, s.bpw, s.method, s.l, s.paths);
        if (!check.budget || !cold.contains(plan.name, s)) continue;
        candidates.push_back({s, std::abs(check.budget->k - target.budget->k), s.l != own.l, i});
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return std::tuple(a.distance, a.otherL, -a.settings.iterations, a.index) <
               std::tuple(b.distance, b.otherL, -b.settings.iterations, b.index);
    });
    for (const Candidate& c : candidates) {
        std::optional<LayerQuantResult> stored = cold.load(plan.name, c.settings);
        if (!stored || !stored->layer || stored->n != plan.n || stored->m != plan.m) continue;  // unreadable
        WarmStart warm;
        factor::FactorResult& previous = warm.previous;
        previous.paths = stored->layer->paths();
        previous.n = stored->n;
        previous.m = stored->m;
        previous.k = stored->k;
        previous.l = stored->l;
        previous.pathCount = stored->paths;
        previous.method = stored->method;
        previous.objective = stored->objective;
        const std::string source = "|warm-from=" + std::string(factor::methodName(c.settings.method)) +
                                   ",l=" + std::to_string(c.settings.l) + ",bpw=" + c.settings.bpw.text() +
                                   ",iters=" + std::to_string(c.settings.iterations);
        warm.store = std::make_shared<LayerStore>(cold.directory(), prefix + source);
        return warm;
    }
    return std::nullopt;
}

/// What a study's records share: the model (as the calibration cache names it), the evaluation
/// text by content and the window.
struct StudyKeys {
    std::string model;
    std::string eval;
};

StudyPointResult runPoint(const StudySpec& spec, const StudyPoint& point, const io::ModelConfig& config,
                          const io::Checkpoint& ckpt, std::span<const std::int32_t> evalIds, const StudyKeys& keys,
                          const StudyRecordCache& records, const RunContext& ctx)
{
    const Clock::time_point start = Clock::now();
    if (point.objective != factor::Objective::Plain && spec.calibText.empty()) {
        throw InvalidArgument("study point '" + point.label() + "' needs a calibration text");
    }
    if (point.planned && !StudyPoint::plannable(point.objective, point.sequential)) {
        throw InvalidArgument("study point '" + point.label() + "': a planned point takes the plain or gram "
                              "objective, without sequential calibration");
    }
    const bool warm = spec.warmStart && !point.planned;
    const std::string recordKey = cachePrefix(spec, point) + "|point=" + point.label() +
                                  (point.planned ? planKey(spec.plan) : std::string()) +
                                  (warm ? "|warm-start" : "") + "|" + keys.eval;
    if (const std::optional<nlohmann::json> record = records.load(recordKey)) {
        try {
            StudyPointResult r = studyPointFromJson(*record, "study record", "value");
            r.point = point;
            r.cachedLayers = 0;
            for (StudyLayer& layer : r.layers) {
                layer.cached = !layer.keptDense;  // dense layers are never stored
                r.cachedLayers += layer.cached ? 1 : 0;
            }
            r.fromCache = true;
            r.warmStart = warm;
            return r;
        } catch (const Error&) {
            // an incomplete record: measure again
        }
    }
    StatisticsSource statistics(spec, point, ctx);
    QuantizeOptions options;
    options.config = point.planned ? plannedConfig(spec, point, config, ckpt, statistics, ctx) : pointConfig(point);
    options.engine.seed = spec.seed;
    options.engine.decompositions = spec.decompositions;
    std::optional<LayerStore> cache;
    if (!spec.cacheDir.empty()) {
        cache.emplace(spec.cacheDir / "layers", cachePrefix(spec, point));
        options.store = &*cache;
    }
    if (warm && cache) {
        options.warmStart = [&spec, &point, &cache, prefix = cachePrefix(spec, point)](const LayerPlan& plan) {
            return warmStartOf(spec, point, *cache, prefix, plan);
        };
    }
    if (point.objective != factor::Objective::Plain) {
        options.statistics = [&statistics](const std::string& name, std::span<const LayerQuantResult> done) {
            return statistics(name, done);
        };
    }
    const QuantizeResult q = quantizeCheckpoint(config, ckpt, options, ctx);

    StudyPointResult r;
    r.point = point;
    r.modelBpw = q.modelBpw;
    r.factorizedBpw = q.factorizedBpw;
    r.warmStart = warm;
    for (const LayerQuantResult& l : q.layers) {
        StudyLayer s{l.name, l.n, l.m, l.k, l.l, l.bpw, l.relError, l.plainError, l.keptDense, l.cached, l.warmStartK};
        r.cachedLayers += l.cached ? 1 : 0;
        r.layers.push_back(std::move(s));
    }
    model::Transformer model = model::Transformer::load(spec.modelDir);
    applyQuantization(model, q);
    r.ppl = eval::perplexity(model, evalIds, spec.ctx, ctx).ppl;
    ctx.throwIfStopped();
    r.seconds = secondsSince(start);
    records.save(recordKey, studyPointToJson(r));
    return r;
}

std::vector<LayerViewCell> runLayerView(const StudySpec& spec, const io::ModelConfig& config,
                                        const io::Checkpoint& ckpt, const StudyKeys& keys,
                                        const StudyRecordCache& records, const RunContext& ctx)
{
    std::vector<LayerViewCell> cells;
    if (spec.layerViewBpw.empty()) return cells;
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> shapes;  // first projection per shape
    for (const std::string& name : model::projectionNames(config)) {
        if (name == model::headName()) continue;
        const io::TensorInfo& info = ckpt.info(model::weightName(name));
        shapes.try_emplace({info.shape[0], info.shape[1]}, name);
    }
    struct Variant {
        factor::Method method;
        int l;
    };
    std::vector<Variant> variants{{factor::Method::Dbf, 1}};
    for (const int l : spec.layerViewLs) variants.push_back({factor::Method::Mdbf, l});
    const int total = static_cast<int>(shapes.size() * spec.layerViewBpw.size() * variants.size());
    int done = 0;
    ctx.report("layer view", 0, total);
    for (const auto& [shape, name] : shapes) {
        std::optional<RowMatrixF> W;  // read and decomposed only when a cell is not cached
        std::shared_ptr<const factor::LayerSvd> svd;
        for (const factor::Bpw& bpw : spec.layerViewBpw) {
            for (const Variant& v : variants) {
                ctx.throwIfStopped();
                LayerViewCell cell{name, shape.first, shape.second, bpw, v.method, v.l, 0, 0.0,
                                   std::numeric_limits<double>::quiet_NaN()};
                const std::string recordKey = keys.model + "|view|layer=" + name + "|bpw=" + bpw.text() +
                                              "|method=" + std::string(factor::methodName(v.method)) +
                                              "|l=" + std::to_string(v.l) + "|iters=" +
                                              std::to_string(spec.layerViewIterations) +
                                              "|seed=" + std::to_string(spec.seed);
                const std::optional<nlohmann::json> record = records.load(recordKey);
                const factor::BudgetCheck check =
                    factor::checkBitBudget(shape.first, shape.second, bpw, v.method, v.l, 1);
                if (record && record->contains("k") && record->contains("bpw")) {
                    cell.k = record->at("k").get<std::int64_t>();
                    cell.achievedBpw = record->at("bpw").get<double>();
                    const nlohmann::json& error = record->value("rel_error", nlohmann::json());
                    if (error.is_number()) cell.relError = error.get<double>();  // null: infeasible
                } else if (check.budget) {
                    LayerJob job;
                    job.settings.method = v.method;
                    job.settings.l = v.l;
                    job.settings.bpw = bpw;
                    job.settings.iterations = spec.layerViewIterations;
                    job.engine.seed = spec.seed;
                    job.engine.decompositions = spec.decompositions;
                    RunContext inner;
                    inner.stop = ctx.stop;
                    inner.threads = ctx.threads;
                    if (!W) {
                        W = loadLayerWeights(ckpt, name);
                        svd = decomposeLayerCached(*W, job, ckpt, name, inner).svd;
                    }
                    const factor::FactorResult fr = factorizeLayer(*W, *svd, job, -1, inner);
                    if (fr.termination == factor::Termination::Cancelled) throw Cancelled();
                    cell.k = fr.k;
                    cell.achievedBpw = fr.bpw;
                    cell.relError = fr.finalError;
                    records.save(recordKey, layerViewCellToJson(cell));
                }
                cells.push_back(cell);
                ctx.report("layer view", ++done, total);
            }
        }
    }
    return cells;
}

}  // namespace

bool StudyPoint::plannable(factor::Objective objective, bool sequential)
{
    return !sequential && objective != factor::Objective::DiagonalWeighted;
}

std::string StudyPoint::label() const
{
    std::string s = std::string(planned ? kPlannedMethod : factor::methodName(method));
    if (!planned && method == factor::Method::Mdbf) s += " l=" + std::to_string(l);
    s += " @" + bpw.text() + " " + std::string(factor::objectiveName(objective));
    if (sequential) s += " seq";
    return s + " T=" + std::to_string(iterations);
}

StudyResult runStudy(const StudySpec& spec, const RunContext& ctx,
                     const std::function<void(const StudyPointResult&)>& onPoint)
{
    if (spec.warmStart && spec.cacheDir.empty())
        throw InvalidArgument("study: warm starts refine results of the layer cache, which needs a cache folder");
    const io::ModelConfig config = io::ModelConfig::fromFile(spec.modelDir / "config.json");
    const io::Checkpoint ckpt = io::Checkpoint::open(spec.modelDir);
    const Tokenizer tokenizer = Tokenizer::fromModelDir(spec.modelDir);
    const std::string evalText = readUtf8File(spec.evalText);
    const std::vector<std::int32_t> evalIds = tokenizer.encode(evalText);

    StudyResult result;
    result.model = spec.modelDir.filename().string();
    if (result.model.empty()) result.model = spec.modelDir.parent_path().filename().string();
    result.evalText = spec.evalText.filename().string();
    result.ctx = spec.ctx;
    result.evalTokens = static_cast<std::int64_t>(evalIds.size());
    std::int64_t weights = 0, bits = 0;
    for (const io::TensorInfo& t : ckpt.tensors()) {
        weights += t.elementCount();
        bits += t.elementCount() * static_cast<std::int64_t>(8 * io::dtypeSize(t.dtype));
    }
    result.originalBpw = weights > 0 ? static_cast<double>(bits) / static_cast<double>(weights) : 0.0;
    const StudyRecordCache records(spec.cacheDir.empty() ? fs::path() : spec.cacheDir / "records");
    StudyKeys keys;
    keys.model = eval::CalibrationCache::key(spec.modelDir, {}, eval::CalibrationOptions{});
    keys.eval =
        "eval " + std::to_string(evalText.size()) + " " + hex64(fnv1a(evalText)) + "|ctx=" + std::to_string(spec.ctx);
    const std::string originalKey = keys.model + "|original|" + keys.eval;
    const std::optional<nlohmann::json> original = records.load(originalKey);
    if (original && original->is_number()) {
        result.originalPpl = original->get<double>();
    } else {
        const model::Transformer model = model::Transformer::load(spec.modelDir);
        result.originalPpl = eval::perplexity(model, evalIds, spec.ctx, ctx).ppl;
        ctx.throwIfStopped();
        records.save(originalKey, result.originalPpl);
    }
    ctx.throwIfStopped();
    // The view is cheap next to the points, so it comes first and survives an early stop.
    result.layerView = runLayerView(spec, config, ckpt, keys, records, ctx);

    const int total = static_cast<int>(spec.points.size());
    for (int i = 0; i < total; ++i) {
        ctx.report("point", i, total);
        try {
            result.points.push_back(
                runPoint(spec, spec.points[static_cast<std::size_t>(i)], config, ckpt, evalIds, keys, records, ctx));
        } catch (const Cancelled&) {
            result.cancelled = true;
            return result;
        }
        if (onPoint) onPoint(result.points.back());
    }
    ctx.report("point", total, total);
    return result;
}

}  // namespace mdbf::pipeline
