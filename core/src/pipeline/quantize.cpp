#include "mdbf/pipeline/quantize.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>

#include <Eigen/Cholesky>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/base/thread_scope.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/io/mapped_pages.h"
#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

LayerQuantResult layerQuantResult(const std::string& name, factor::FactorResult result, VectorF bias)
{
    LayerQuantResult layer;
    layer.name = name;
    layer.n = result.n;
    layer.m = result.m;
    layer.k = result.k;
    layer.l = result.l;
    layer.paths = result.pathCount;
    layer.method = result.method;
    layer.objective = result.objective;
    layer.bpw = result.bpw;
    layer.relError = result.finalError;
    layer.plainError = result.finalPlainError;
    layer.clamped = result.clamped;
    layer.iterations = result.iterations;
    layer.termination = result.termination;
    layer.seconds = result.seconds;
    layer.note = result.message;
    const std::string kind = factor::layoutText(result.method, result.k, result.l, result.pathCount);
    layer.layer = std::make_shared<model::FactorizedLinear>(std::move(result.paths), std::move(bias), kind);
    return layer;
}

io::PackageLayer packageLayerOf(const LayerQuantResult& layer)
{
    io::PackageLayer pl;
    pl.name = layer.name;
    pl.method = layer.method;
    pl.objective = layer.objective;
    pl.bpw = layer.bpw;
    pl.relError = layer.relError;
    if (layer.layer) pl.paths = layer.layer->paths();
    return pl;
}

void accountResult(const io::Checkpoint& checkpoint, QuantizeResult& result)
{
    std::vector<FactorizedShape> factorized;
    for (const LayerQuantResult& layer : result.layers) {
        if (!layer.keptDense) factorized.push_back({layer.name, layer.n, layer.m, layer.k, layer.l, layer.paths, layer.method});
    }
    const ModelBits bits = accountModel(checkpoint, factorized);
    result.factorizedWeights = bits.factorizedWeights;
    result.factorizedBits = bits.factorizedBits;
    result.totalWeights = bits.totalWeights;
    result.totalBits = bits.totalBits;
    result.factorizedBpw = bits.factorizedBpw();
    result.modelBpw = bits.modelBpw();
}

std::vector<LayerPlan> planQuantization(const factor::QuantConfig& quant, const io::ModelConfig& config,
                                        const io::Checkpoint& ckpt)
{
    std::vector<LayerPlan> plans;
    for (const std::string& name : model::projectionNames(config)) {
        const std::string tensor = model::weightTensorOf(name, ckpt.contains(model::weightName(name)));
        const io::TensorInfo& info = ckpt.info(tensor);
        if (info.shape.size() != 2 || info.shape[0] <= 0 || info.shape[1] <= 0) {
            throw FormatError("'" + info.file.string() + "': tensor '" + tensor + "' of layer '" + name +
                              "' is not a non-empty matrix");
        }
        LayerPlan plan;
        plan.name = name;
        plan.n = info.shape[0];
        plan.m = info.shape[1];
        plan.settings = quant.resolve(name);
        plan.denseBpw = static_cast<double>(storedBitsPerElement(info.dtype));
        const factor::LayerQuantSettings& s = plan.settings;
        const factor::BudgetCheck check =
            s.dense ? factor::BudgetCheck{} : factor::checkBitBudget(plan.n, plan.m, s.bpw, s.method, s.l, s.paths);
        if (s.dense || !check.budget) {
            plan.keptDense = true;
            plan.note = s.dense ? "dense by configuration" : "kept dense: " + check.message;
        }
        plans.push_back(std::move(plan));
    }
    return plans;
}

LayerStatistics layerStatistics(const QuantizeOptions& options, const LayerPlan& plan,
                                std::span<const LayerQuantResult> done)
{
    LayerStatistics statistics;
    if (plan.settings.objective == factor::Objective::Plain) return statistics;
    if (options.statistics) return options.statistics(plan.name, done);
    if (plan.settings.objective == factor::Objective::DiagonalWeighted) {
        if (const auto it = options.channelWeights.find(plan.name); it != options.channelWeights.end())
            statistics.channelWeights = it->second;
    } else if (const auto it = options.inputGrams.find(plan.name); it != options.inputGrams.end()) {
        statistics.inputGram = it->second;
    }
    return statistics;
}

LayerQuantResult keptDenseResult(const LayerPlan& plan)
{
    LayerQuantResult layer;
    layer.name = plan.name;
    layer.n = plan.n;
    layer.m = plan.m;
    layer.method = plan.settings.method;
    layer.objective = plan.settings.objective;
    layer.keptDense = true;
    layer.bpw = plan.denseBpw;
    layer.note = plan.note;
    return layer;
}

LayerQuantResult quantizeLayer(const LayerPlan& plan, const io::Checkpoint& ckpt, LayerStatistics statistics,
                               const EngineSettings& engine, const RunContext& ctx,
                               const factor::FactorResult* warmFrom)
{
    const Clock::time_point start = Clock::now();
    // Every Eigen product of the job (the target, the objective's transform, the errors) runs on
    // the requested threads whichever thread calls, so every process of a job computes alike.
    const ThreadScope threads(ctx.threadCount());
    LayerJob job;
    job.settings = plan.settings;
    job.engine = engine;
    job.statistics = std::move(statistics);
    try {
        job.validate();
        job.prepareGram();  // once, for the decomposition and the refinement
    } catch (const InvalidArgument& e) {
        throw InvalidArgument("layer '" + plan.name + "': " + e.what());
    }
    const RowMatrixF original = loadLayerWeights(ckpt, plan.name);  // its mapped bytes released
    // Only an output-matching target differs from the weights; otherwise fit `original` itself.
    std::optional<RowMatrixF> fitted;
    const RowMatrixF& W = job.matchesOutputs() ? fitted.emplace(fittedWeights(original, job)) : original;
    RunContext layerCtx;
    layerCtx.stop = ctx.stop;
    layerCtx.threads = ctx.threads;
    ctx.throwIfStopped();
    LayerDecomposition decomposition = decomposeLayerCached(W, job, ckpt, plan.name, layerCtx);
    factor::FactorResult fr;
    try {
        // A cold start takes the decomposition over: the refinement runs without it in memory.
        fr = warmFrom ? refineLayer(W, *decomposition.svd, job, *warmFrom, -1, layerCtx)
                      : factorizeLayer(W, std::move(decomposition.svd), job, -1, layerCtx);
    } catch (const InvalidArgument& e) {
        if (!warmFrom) throw;
        throw InvalidArgument("layer '" + plan.name + "': " + e.what());
    }
    if (fr.termination == factor::Termination::Cancelled || ctx.stopRequested()) throw Cancelled();
    double plainError = fr.finalPlainError;
    if (job.matchesOutputs()) {
        const double norm = static_cast<double>(original.norm());
        const RowMatrixF approx = factor::reconstruct(fr.paths, ctx.threadCount());
        plainError = norm > 0.0 ? static_cast<double>((original - approx).norm()) / norm : 0.0;
    }
    LayerQuantResult layer = layerQuantResult(plan.name, std::move(fr), loadLayerBias(ckpt, plan.name));
    layer.plainError = plainError;
    layer.decompositionCached = decomposition.cached;
    layer.warmStartK = warmFrom ? warmFrom->k : 0;
    if (!decomposition.warning.empty()) layer.note += (layer.note.empty() ? "" : "; ") + decomposition.warning;
    layer.seconds = secondsSince(start);
    return layer;
}

QuantizeResult quantizeCheckpoint(const io::ModelConfig& config, const io::Checkpoint& ckpt,
                                  const QuantizeOptions& options, const RunContext& ctx)
{
    const Clock::time_point start = Clock::now();
    const std::vector<LayerPlan> plans = planQuantization(options.config, config, ckpt);
    const int total = static_cast<int>(plans.size());
    QuantizeResult result;
    result.layers.reserve(plans.size());
    ctx.report("layer", 0, total);

    for (int index = 0; index < total; ++index) {
        ctx.throwIfStopped();
        const Clock::time_point layerStart = Clock::now();
        const LayerPlan& plan = plans[static_cast<std::size_t>(index)];
        LayerQuantResult layer;
        if (plan.keptDense) {
            layer = keptDenseResult(plan);
        } else if (std::optional<LayerQuantResult> stored =
                       options.store ? options.store->load(plan.name, plan.settings) : std::nullopt;
                   stored && stored->layer && stored->n == plan.n && stored->m == plan.m) {
            layer = std::move(*stored);
            layer.cached = true;
        } else if (std::optional<WarmStart> warm = options.warmStart ? options.warmStart(plan) : std::nullopt) {
            const LayerResultStore* store = warm->store.get();
            if (std::optional<LayerQuantResult> kept = store ? store->load(plan.name, plan.settings) : std::nullopt;
                kept && kept->layer && kept->n == plan.n && kept->m == plan.m) {
                layer = std::move(*kept);
                layer.cached = true;
            } else {
                layer = quantizeLayer(plan, ckpt, layerStatistics(options, plan, result.layers), options.engine, ctx,
                                      &warm->previous);
                if (store) store->save(layer, plan.settings);
            }
            layer.warmStartK = warm->previous.k;
        } else {
            layer = quantizeLayer(plan, ckpt, layerStatistics(options, plan, result.layers),
                                  options.engine, ctx);
            if (options.store) options.store->save(layer, plan.settings);
        }
        layer.seconds = secondsSince(layerStart);
        result.layers.push_back(std::move(layer));
        if (options.onLayer) options.onLayer(result.layers.back(), index, total);
        ctx.report("layer", index + 1, total);
    }
    accountResult(ckpt, result);
    ctx.throwIfStopped();
    result.seconds = secondsSince(start);
    return result;
}

void applyQuantization(model::Transformer& model, const QuantizeResult& result)
{
    for (const LayerQuantResult& layer : result.layers) {
        if (layer.layer) model.replaceLinear(layer.name, layer.layer);
    }
}

QuantizeResult quantizeModel(model::Transformer& model, const io::Checkpoint& ckpt, const QuantizeOptions& options,
                             const RunContext& ctx)
{
    QuantizeResult result = quantizeCheckpoint(model.config(), ckpt, options, ctx);
    applyQuantization(model, result);
    return result;
}

namespace {

// The package's strings and figures, without tensors or layers.
io::Package packageHeader(const std::filesystem::path& modelDir, const QuantizeResult& result,
                          const factor::QuantConfig& config)
{
    io::Package pkg;
    pkg.configJson = readBinaryFile(modelDir / "config.json");
    pkg.tokenizerJson = readBinaryFile(modelDir / "tokenizer.json");
    pkg.quantConfigJson = config.toJson().dump(2);
    pkg.modelBpw = result.modelBpw;
    pkg.factorizedBpw = result.factorizedBpw;
    return pkg;
}

// The checkpoint tensors the package keeps dense: those no factorized layer replaces, in file order.
std::vector<const io::TensorInfo*> denseTensors(const io::Checkpoint& ckpt, const QuantizeResult& result)
{
    std::set<std::string> replaced;
    for (const LayerQuantResult& layer : result.layers) {
        if (!layer.keptDense) replaced.insert(model::weightName(layer.name));
    }
    std::vector<const io::TensorInfo*> dense;
    for (const io::TensorInfo& t : ckpt.tensors()) {
        if (replaced.count(t.name) == 0) dense.push_back(&t);
    }
    return dense;
}

}  // namespace

io::Package makePackage(const std::filesystem::path& modelDir, const io::Checkpoint& ckpt, const QuantizeResult& result,
                        const factor::QuantConfig& config)
{
    io::Package pkg = packageHeader(modelDir, result, config);
    for (const LayerQuantResult& layer : result.layers) {
        if (layer.layer) pkg.layers.push_back(packageLayerOf(layer));
    }
    for (const io::TensorInfo* t : denseTensors(ckpt, result)) {
        io::PackageTensor pt;
        pt.name = t->name;
        pt.dtype = t->dtype;
        pt.shape = t->shape;
        const std::span<const std::byte> raw = ckpt.raw(t->name);
        pt.data.assign(raw.begin(), raw.end());
        pkg.dense.push_back(std::move(pt));
    }
    return pkg;
}

void writeQuantizedPackage(const std::filesystem::path& modelDir, const io::Checkpoint& ckpt,
                           const QuantizeResult& result, const factor::QuantConfig& config,
                           const std::function<io::PackageLayer(const LayerQuantResult&)>& layerOf,
                           const std::filesystem::path& destination, const RunContext& ctx)
{
    const std::vector<const io::TensorInfo*> dense = denseTensors(ckpt, result);
    std::int64_t total = 0;
    for (const io::TensorInfo* t : dense) total += static_cast<std::int64_t>(ckpt.raw(t->name).size());
    for (const LayerQuantResult& layer : result.layers) {
        // Sign words round up to 64 bits per row; the estimate only drives the progress figure.
        if (!layer.keptDense) total += layer.paths * (layer.k * (layer.n + layer.m) / 8 + 2 * layer.l * (layer.n + layer.m + 2 * layer.k));
    }
    io::PackageWriter writer(destination, packageHeader(modelDir, result, config), total, ctx);
    for (const io::TensorInfo* t : dense) {
        writer.addDense(t->name, t->dtype, t->shape, ckpt.raw(t->name));
        io::releaseMappedPages(ckpt.raw(t->name));
    }
    for (const LayerQuantResult& layer : result.layers) {
        if (!layer.keptDense) writer.addLayer(layerOf(layer));
    }
    writer.commit();
}

}  // namespace mdbf::pipeline
