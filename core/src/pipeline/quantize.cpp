#include "mdbf/pipeline/quantize.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <set>

#include <Eigen/Cholesky>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factorizer.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// The statistics the objective of `settings` needs for layer `name`: on demand when the options
/// supply them so, else from the per-layer maps. Throws InvalidArgument when they are missing.
LayerStatistics statisticsFor(const QuantizeOptions& options, const std::string& name,
                              const factor::LayerQuantSettings& settings, std::span<const LayerQuantResult> done)
{
    LayerStatistics statistics;
    if (settings.objective == factor::Objective::Plain) return statistics;
    if (options.statistics) return options.statistics(name, done);
    if (settings.objective == factor::Objective::DiagonalWeighted) {
        if (const auto it = options.channelWeights.find(name); it != options.channelWeights.end())
            statistics.channelWeights = it->second;
    } else if (const auto it = options.inputGrams.find(name); it != options.inputGrams.end()) {
        statistics.inputGram = it->second;
    }
    return statistics;
}

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
        if (layer.layer) factorized.push_back({layer.name, layer.n, layer.m, layer.k, layer.l, layer.paths, layer.method});
    }
    const ModelBits bits = accountModel(checkpoint, factorized);
    result.factorizedWeights = bits.factorizedWeights;
    result.factorizedBits = bits.factorizedBits;
    result.totalWeights = bits.totalWeights;
    result.totalBits = bits.totalBits;
    result.factorizedBpw = bits.factorizedBpw();
    result.modelBpw = bits.modelBpw();
}

QuantizeResult quantizeCheckpoint(const io::ModelConfig& config, const io::Checkpoint& ckpt,
                                  const QuantizeOptions& options, const RunContext& ctx)
{
    const Clock::time_point start = Clock::now();
    const std::vector<std::string> names = model::projectionNames(config);
    const int total = static_cast<int>(names.size());
    QuantizeResult result;
    result.layers.reserve(names.size());
    ctx.report("layer", 0, total);

    for (int index = 0; index < total; ++index) {
        ctx.throwIfStopped();
        const Clock::time_point layerStart = Clock::now();
        const std::string& name = names[static_cast<std::size_t>(index)];
        const factor::LayerQuantSettings settings = options.config.resolve(name);
        const std::string tensor = model::weightTensorOf(name, ckpt.contains(model::weightName(name)));
        const io::TensorInfo& info = ckpt.info(tensor);
        if (info.shape.size() != 2 || info.shape[0] <= 0 || info.shape[1] <= 0) {
            throw FormatError("'" + info.file.string() + "': tensor '" + tensor + "' of layer '" + name +
                              "' is not a non-empty matrix");
        }
        LayerQuantResult layer;
        layer.name = name;
        layer.n = info.shape[0];
        layer.m = info.shape[1];
        layer.method = settings.method;
        layer.objective = settings.objective;

        const factor::BudgetCheck check =
            settings.dense ? factor::BudgetCheck{}
                           : factor::checkBitBudget(layer.n, layer.m, settings.bpw, settings.method, settings.l,
                                                    settings.paths);
        if (settings.dense || !check.budget) {
            layer.keptDense = true;
            layer.bpw = static_cast<double>(storedBitsPerElement(info.dtype));
            layer.note = settings.dense ? "dense by configuration" : "kept dense: " + check.message;
        } else if (std::optional<LayerQuantResult> stored =
                       options.store ? options.store->load(name, settings) : std::nullopt;
                   stored && stored->layer && stored->n == layer.n && stored->m == layer.m) {
            layer = std::move(*stored);
            layer.name = name;
            layer.cached = true;
            layer.layer = std::make_shared<model::FactorizedLinear>(
                layer.layer->paths(), layer.layer->bias(), factor::layoutText(layer.method, layer.k, layer.l, layer.paths));
        } else {
            LayerJob job;
            job.settings = settings;
            job.engine = options.engine;
            job.statistics = statisticsFor(options, name, settings, result.layers);
            try {
                job.validate();
            } catch (const InvalidArgument& e) {
                throw InvalidArgument("layer '" + name + "': " + e.what());
            }
            const RowMatrixF original = loadLayerWeights(ckpt, name);
            const RowMatrixF W = fittedWeights(original, job);
            RunContext layerCtx;
            layerCtx.stop = ctx.stop;
            layerCtx.threads = ctx.threads;
            ctx.throwIfStopped();
            const std::shared_ptr<const factor::LayerSvd> svd = decomposeLayer(W, job, layerCtx);
            factor::FactorResult fr = factorizeLayer(W, *svd, job, -1, layerCtx);
            if (fr.termination == factor::Termination::Cancelled || ctx.stopRequested()) throw Cancelled();
            double plainError = fr.finalPlainError;
            if (job.matchesOutputs()) {
                const double norm = static_cast<double>(original.norm());
                const RowMatrixF approx = factor::reconstruct(fr.paths, ctx.threadCount());
                plainError = norm > 0.0 ? static_cast<double>((original - approx).norm()) / norm : 0.0;
            }
            layer = layerQuantResult(name, std::move(fr), loadLayerBias(ckpt, name));
            layer.plainError = plainError;
            if (options.store) options.store->save(layer, settings);
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

io::Package makePackage(const std::filesystem::path& modelDir, const io::Checkpoint& ckpt, const QuantizeResult& result,
                        const factor::QuantConfig& config)
{
    io::Package pkg;
    pkg.configJson = readBinaryFile(modelDir / "config.json");
    pkg.tokenizerJson = readBinaryFile(modelDir / "tokenizer.json");
    pkg.quantConfigJson = config.toJson().dump(2);
    pkg.modelBpw = result.modelBpw;
    pkg.factorizedBpw = result.factorizedBpw;

    std::set<std::string> replaced;
    for (const LayerQuantResult& layer : result.layers) {
        if (!layer.layer) continue;
        replaced.insert(model::weightName(layer.name));
        pkg.layers.push_back(packageLayerOf(layer));
    }
    for (const io::TensorInfo& t : ckpt.tensors()) {
        if (replaced.count(t.name) != 0) continue;
        io::PackageTensor pt;
        pt.name = t.name;
        pt.dtype = t.dtype;
        pt.shape = t.shape;
        const std::span<const std::byte> raw = ckpt.raw(t.name);
        pt.data.assign(raw.begin(), raw.end());
        pkg.dense.push_back(std::move(pt));
    }
    return pkg;
}

}  // namespace mdbf::pipeline
