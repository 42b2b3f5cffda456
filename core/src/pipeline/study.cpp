#include "mdbf/pipeline/study.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

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

/// Finished projections of one point as one-layer HDF5 packages, named by a hash of their key. The
/// full key is stored in the file and compared on reading, so a hash collision or a stale file is
/// recomputed, never used.
class StudyLayerCache : public LayerResultStore {
public:
    StudyLayerCache(fs::path directory, std::string prefix) : m_directory(std::move(directory)), m_prefix(std::move(prefix)) {}

    std::optional<LayerQuantResult> load(const std::string& name, const factor::LayerQuantSettings& settings) const override
    {
        const std::string key = keyOf(name, settings);
        const fs::path file = fileFor(key);
        std::error_code ec;
        if (!fs::is_regular_file(file, ec)) return std::nullopt;
        try {
            io::Package package = io::readPackage(file);
            const nlohmann::json meta = parseJsonText(package.quantConfigJson, file.string());
            if (meta.at("key").get<std::string>() != key || package.layers.size() != 1) return std::nullopt;
            io::PackageLayer& stored = package.layers.front();
            LayerQuantResult r;
            r.name = name;
            r.n = stored.n();
            r.m = stored.m();
            r.k = stored.k();
            r.l = static_cast<int>(stored.l());
            r.paths = static_cast<int>(stored.paths.size());
            r.method = stored.method;
            r.objective = stored.objective;
            r.bpw = stored.bpw;
            r.relError = stored.relError;
            r.plainError = meta.at("plain_error").get<double>();
            r.clamped = meta.at("clamped").get<bool>();
            r.iterations = meta.at("iterations").get<int>();
            r.note = "from the study cache";
            VectorF bias;
            if (!package.dense.empty()) {
                const io::PackageTensor& b = package.dense.front();
                bias.resize(static_cast<Eigen::Index>(b.elementCount()));
                std::memcpy(bias.data(), b.data.data(), b.data.size());
            }
            r.layer = std::make_shared<model::FactorizedLinear>(std::move(stored.paths), std::move(bias));
            return r;
        } catch (const std::exception&) {
            return std::nullopt;  // unreadable or foreign: recompute and overwrite
        }
    }

    void save(const LayerQuantResult& r, const factor::LayerQuantSettings& settings) const override
    {
        if (!r.layer) return;
        io::Package package;
        package.configJson = "{}";
        package.tokenizerJson = "{}";
        package.quantConfigJson = nlohmann::json{{"key", keyOf(r.name, settings)},
                                                 {"plain_error", r.plainError},
                                                 {"clamped", r.clamped},
                                                 {"iterations", r.iterations}}
                                      .dump();
        package.modelBpw = r.bpw;
        package.factorizedBpw = r.bpw;
        io::PackageLayer layer;
        layer.name = r.name;
        layer.method = r.method;
        layer.objective = r.objective;
        layer.bpw = r.bpw;
        layer.relError = r.relError;
        layer.paths = r.layer->paths();
        package.layers.push_back(std::move(layer));
        const VectorF& bias = r.layer->bias();
        if (bias.size() > 0) {
            io::PackageTensor t;
            t.name = r.name + ".bias";
            t.dtype = io::DType::F32;
            t.shape = {bias.size()};
            t.data.resize(static_cast<std::size_t>(bias.size()) * sizeof(float));
            std::memcpy(t.data.data(), bias.data(), t.data.size());
            package.dense.push_back(std::move(t));
        }
        fs::create_directories(m_directory);
        io::writePackage(package, fileFor(keyOf(r.name, settings)));
    }

private:
    std::string keyOf(const std::string& name, const factor::LayerQuantSettings& s) const
    {
        std::ostringstream key;
        key << m_prefix << "|layer=" << name << "|method=" << factor::methodName(s.method) << "|l=" << s.l
            << "|bpw=" << s.bpw.text() << "|paths=" << s.paths << "|iters=" << s.iterations
            << "|objective=" << factor::objectiveName(s.objective);
        return key.str();
    }

    fs::path fileFor(const std::string& key) const { return m_directory / ("layer-" + hex64(fnv1a(key)) + ".h5"); }

    fs::path m_directory;
    std::string m_prefix;
};

/// Finished measurements (the original perplexity, a point's result, a cell of the per-layer view)
/// as small JSON files named by a hash of their key, so a repeated or resumed study skips even the
/// evaluation. As with the layers, the full key is stored and compared on reading.
class StudyRecordCache {
public:
    explicit StudyRecordCache(fs::path directory) : m_directory(std::move(directory)) {}

    bool enabled() const { return !m_directory.empty(); }

    std::optional<nlohmann::json> load(const std::string& key) const
    {
        if (!enabled()) return std::nullopt;
        const fs::path file = fileFor(key);
        std::error_code ec;
        if (!fs::is_regular_file(file, ec)) return std::nullopt;
        try {
            nlohmann::json record = readJsonFile(file);
            if (record.at("key").get<std::string>() != key) return std::nullopt;
            return std::move(record.at("value"));
        } catch (const std::exception&) {
            return std::nullopt;  // unreadable or foreign: recompute and overwrite
        }
    }

    void save(const std::string& key, nlohmann::json value) const
    {
        if (!enabled()) return;
        std::error_code ec;
        fs::create_directories(m_directory, ec);
        if (ec) throw IoError("'" + m_directory.string() + "': cannot create directory: " + ec.message());
        writeFileAtomically(fileFor(key), nlohmann::json{{"key", key}, {"value", std::move(value)}}.dump() + "\n");
    }

private:
    fs::path fileFor(const std::string& key) const { return m_directory / ("record-" + hex64(fnv1a(key)) + ".json"); }

    fs::path m_directory;
};

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
        if (!m_all) {
            const eval::CalibrationCache cache(m_spec.cacheDir.empty() ? eval::CalibrationCache::defaultDirectory()
                                                                 : m_spec.cacheDir / "calibration");
            m_all = eval::calibrateModel(m_spec.modelDir, m_spec.calibText, m_options,
                                   cache.directory().empty() ? nullptr : &cache, m_ctx);
        }
        return layerStatistics(*m_all, name);
    }

private:
    const StudySpec& m_spec;
    const RunContext& m_ctx;
    bool m_sequential = false;
    eval::CalibrationOptions m_options;
    std::optional<eval::CalibrationStats> m_all;
    std::optional<SequentialCalibration> m_perBlock;
};

std::string csvNumber(double v)
{
    if (!std::isfinite(v)) return "";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.9g", v);
    return buffer;
}

nlohmann::json numberOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json pointToJson(const StudyPointResult& p)
{
    nlohmann::json layers = nlohmann::json::array();
    for (const StudyLayer& l : p.layers) {
        layers.push_back({{"name", l.name}, {"n", l.n}, {"m", l.m}, {"k", l.k}, {"l", l.l}, {"bpw", l.bpw},
                          {"rel_error", l.relError}, {"plain_error", l.plainError}, {"kept_dense", l.keptDense}});
    }
    return {{"label", p.point.label()},
            {"method", std::string(factor::methodName(p.point.method))},
            {"l", p.point.method == factor::Method::Dbf ? 1 : p.point.l},
            {"bpw_requested", p.point.bpw.text()},
            {"objective", std::string(factor::objectiveName(p.point.objective))},
            {"sequential", p.point.sequential},
            {"iterations", p.point.iterations},
            {"ppl", p.ppl},
            {"model_bpw", p.modelBpw},
            {"factorized_bpw", p.factorizedBpw},
            {"seconds", p.seconds},
            {"cached_layers", p.cachedLayers},
            {"from_cache", p.fromCache},
            {"layers", layers}};
}

/// The measured fields of `j` (written by pointToJson) for `point`; throws nlohmann::json errors.
StudyPointResult pointFromJson(const StudyPoint& point, const nlohmann::json& j)
{
    StudyPointResult r;
    r.point = point;
    r.ppl = j.at("ppl").get<double>();
    r.modelBpw = j.at("model_bpw").get<double>();
    r.factorizedBpw = j.at("factorized_bpw").get<double>();
    r.seconds = j.at("seconds").get<double>();
    for (const nlohmann::json& l : j.at("layers")) {
        r.layers.push_back({l.at("name").get<std::string>(), l.at("n").get<std::int64_t>(),
                            l.at("m").get<std::int64_t>(), l.at("k").get<std::int64_t>(), l.at("l").get<int>(),
                            l.at("bpw").get<double>(), l.at("rel_error").get<double>(),
                            l.at("plain_error").get<double>(), l.at("kept_dense").get<bool>(), false});
        r.layers.back().cached = !r.layers.back().keptDense;  // dense layers are never stored
        r.cachedLayers += r.layers.back().cached ? 1 : 0;
    }
    r.fromCache = true;
    return r;
}

nlohmann::json cellToJson(const LayerViewCell& c)
{
    return {{"layer", c.layer}, {"n", c.n}, {"m", c.m}, {"bpw_requested", c.bpw.text()},
            {"method", std::string(factor::methodName(c.method))}, {"l", c.l}, {"k", c.k},
            {"bpw", c.achievedBpw}, {"rel_error", numberOrNull(c.relError)}};
}

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
    const std::string recordKey = cachePrefix(spec, point) + "|point=" + point.label() + "|" + keys.eval;
    if (const std::optional<nlohmann::json> record = records.load(recordKey)) {
        try {
            return pointFromJson(point, *record);
        } catch (const nlohmann::json::exception&) {
            // an incomplete record: measure again
        }
    }
    QuantizeOptions options;
    options.config = pointConfig(point);
    options.engine.seed = spec.seed;
    std::optional<StudyLayerCache> cache;
    if (!spec.cacheDir.empty()) {
        cache.emplace(spec.cacheDir / "layers", cachePrefix(spec, point));
        options.store = &*cache;
    }
    StatisticsSource statistics(spec, point, ctx);
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
    for (const LayerQuantResult& l : q.layers) {
        StudyLayer s{l.name, l.n, l.m, l.k, l.l, l.bpw, l.relError, l.plainError, l.keptDense, l.cached};
        r.cachedLayers += l.cached ? 1 : 0;
        r.layers.push_back(std::move(s));
    }
    model::Transformer model = model::Transformer::load(spec.modelDir);
    applyQuantization(model, q);
    r.ppl = eval::perplexity(model, evalIds, spec.ctx, ctx).ppl;
    ctx.throwIfStopped();
    r.seconds = secondsSince(start);
    records.save(recordKey, pointToJson(r));
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
                    RunContext inner;
                    inner.stop = ctx.stop;
                    inner.threads = ctx.threads;
                    if (!W) {
                        W = loadLayerWeights(ckpt, name);
                        svd = decomposeLayer(*W, job, inner);
                    }
                    const factor::FactorResult fr = factorizeLayer(*W, *svd, job, -1, inner);
                    if (fr.termination == factor::Termination::Cancelled) throw Cancelled();
                    cell.k = fr.k;
                    cell.achievedBpw = fr.bpw;
                    cell.relError = fr.finalError;
                    records.save(recordKey, cellToJson(cell));
                }
                cells.push_back(cell);
                ctx.report("layer view", ++done, total);
            }
        }
    }
    return cells;
}

}  // namespace

std::string StudyPoint::label() const
{
    std::string s = std::string(factor::methodName(method));
    if (method == factor::Method::Mdbf) s += " l=" + std::to_string(l);
    s += " @" + bpw.text() + " " + std::string(factor::objectiveName(objective));
    if (sequential) s += " seq";
    return s + " T=" + std::to_string(iterations);
}

StudyResult runStudy(const StudySpec& spec, const RunContext& ctx,
                     const std::function<void(const StudyPointResult&)>& onPoint)
{
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

nlohmann::json studyToJson(const std::vector<StudyResult>& results)
{
    nlohmann::json models = nlohmann::json::array();
    for (const StudyResult& s : results) {
        nlohmann::json points = nlohmann::json::array();
        for (const StudyPointResult& p : s.points) points.push_back(pointToJson(p));
        nlohmann::json view = nlohmann::json::array();
        for (const LayerViewCell& c : s.layerView) view.push_back(cellToJson(c));
        models.push_back({{"model", s.model},
                          {"eval_text", s.evalText},
                          {"ctx", s.ctx},
                          {"eval_tokens", s.evalTokens},
                          {"original_ppl", s.originalPpl},
                          {"original_bpw", s.originalBpw},
                          {"cancelled", s.cancelled},
                          {"points", points},
                          {"layer_view", view}});
    }
    return {{"format", "mdbf-study"}, {"version", 1}, {"models", models}};
}

void writeStudyFiles(const std::vector<StudyResult>& results, const fs::path& directory)
{
    std::error_code ec;
    fs::create_directories(directory, ec);
    if (ec) throw IoError("'" + directory.string() + "': cannot create directory: " + ec.message());
    writeFileAtomically(directory / "study.json", studyToJson(results).dump(2) + "\n");

    std::ostringstream points;
    points << "model,method,l,bpw_requested,objective,sequential,iterations,model_bpw,factorized_bpw,ppl,original_ppl,"
              "seconds\n";
    std::ostringstream view;
    view << "model,layer,n,m,bpw_requested,method,l,k,bpw,rel_error\n";
    for (const StudyResult& s : results) {
        for (const StudyPointResult& p : s.points) {
            points << s.model << ',' << factor::methodName(p.point.method) << ','
                   << (p.point.method == factor::Method::Dbf ? 1 : p.point.l) << ',' << p.point.bpw.text() << ','
                   << factor::objectiveName(p.point.objective) << ',' << (p.point.sequential ? 1 : 0) << ','
                   << p.point.iterations << ',' << csvNumber(p.modelBpw) << ',' << csvNumber(p.factorizedBpw) << ','
                   << csvNumber(p.ppl) << ',' << csvNumber(s.originalPpl) << ',' << csvNumber(p.seconds) << '\n';
        }
        for (const LayerViewCell& c : s.layerView) {
            view << s.model << ',' << c.layer << ',' << c.n << ',' << c.m << ',' << c.bpw.text() << ','
                 << factor::methodName(c.method) << ',' << c.l << ',' << c.k << ',' << csvNumber(c.achievedBpw) << ','
                 << csvNumber(c.relError) << '\n';
        }
    }
    writeFileAtomically(directory / "points.csv", points.str());
    writeFileAtomically(directory / "layer_view.csv", view.str());
}

}  // namespace mdbf::pipeline
