#include "mdbf/eval/quantize.h"

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

namespace mdbf::eval {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// The checkpoint tensor holding a projection's weight: its own, or the embedding for a tied head.
std::string weightTensor(const io::Checkpoint& ckpt, const std::string& name)
{
    const std::string own = name + ".weight";
    if (ckpt.contains(own) || name != "lm_head") return own;
    return "model.embed_tokens.weight";
}

/// What model::Linear::kind() says of a factorized projection, e.g. "mdbf k=51 l=2".
std::string kindText(factor::Method method, std::int64_t k, int l, int paths)
{
    return std::string(factor::methodName(method)) + " k=" + std::to_string(k) + " l=" + std::to_string(l) +
           (paths > 1 ? " P=" + std::to_string(paths) : "");
}

std::int64_t storedBits(io::DType dtype) { return static_cast<std::int64_t>(8 * io::dtypeSize(dtype)); }

}  // namespace

QuantizeResult quantizeCheckpoint(const io::ModelConfig& config, const io::Checkpoint& ckpt,
                                  const QuantizeOptions& options, const RunContext& ctx)
{
    const Clock::time_point start = Clock::now();
    const std::vector<std::string> names = model::Transformer::projectionNames(config);
    const int total = static_cast<int>(names.size());
    QuantizeResult result;
    result.layers.reserve(names.size());
    ctx.report("layer", 0, total);

    for (int index = 0; index < total; ++index) {
        ctx.throwIfStopped();
        const Clock::time_point layerStart = Clock::now();
        const std::string& name = names[static_cast<std::size_t>(index)];
        const factor::LayerQuantSettings settings = options.config.resolve(name);
        const std::string tensor = weightTensor(ckpt, name);
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
            layer.bpw = static_cast<double>(storedBits(info.dtype));
            layer.note = settings.dense ? "dense by configuration" : "kept dense: " + check.message;
        } else if (std::optional<LayerQuantResult> stored =
                       options.store ? options.store->load(name, settings) : std::nullopt;
                   stored && stored->layer && stored->n == layer.n && stored->m == layer.m) {
            layer = std::move(*stored);
            layer.name = name;
            layer.cached = true;
            layer.layer = std::make_shared<model::FactorizedLinear>(
                layer.layer->paths(), layer.layer->bias(), kindText(layer.method, layer.k, layer.l, layer.paths));
        } else {
            factor::FactorizerOptions fo;
            fo.method = settings.method;
            fo.l = settings.l;
            fo.paths = settings.paths;
            fo.bpw = settings.bpw;
            fo.outerIterations = settings.iterations;
            fo.innerIterations = options.innerIterations;
            fo.seed = options.seed;
            fo.objective = settings.objective;
            auto missingStatistics = [&] {
                return InvalidArgument("layer '" + name + "': objective " +
                                       std::string(factor::objectiveName(settings.objective)) +
                                       " needs calibration statistics, none were supplied");
            };
            LayerStatistics statistics;
            if (settings.objective != factor::Objective::Plain && options.statistics) {
                statistics = options.statistics(name, result.layers);
                fo.channelWeights = statistics.channelWeights;
                if (settings.objective == factor::Objective::Gram) fo.inputGram = statistics.inputGram;
            } else if (settings.objective == factor::Objective::DiagonalWeighted) {
                const auto it = options.channelWeights.find(name);
                if (it == options.channelWeights.end()) throw missingStatistics();
                fo.channelWeights = it->second;
            } else if (settings.objective == factor::Objective::Gram) {
                const auto it = options.inputGrams.find(name);
                if (it == options.inputGrams.end()) throw missingStatistics();
                fo.inputGram = it->second;
            }
            const factor::Factorizer factorizer(fo);
            const RowMatrixF original = ckpt.matrix(tensor);
            const bool matchOutputs = settings.objective == factor::Objective::Gram && statistics.cross.size() > 0;
            const RowMatrixF W =
                matchOutputs ? outputMatchingTarget(original, statistics.inputGram, statistics.cross, options.targetDamping)
                             : original;
            VectorF bias;
            if (ckpt.contains(name + ".bias")) {
                const std::vector<float> b = ckpt.toFloat(name + ".bias");
                bias = Eigen::Map<const VectorF>(b.data(), static_cast<Eigen::Index>(b.size()));
            }
            RunContext layerCtx;
            layerCtx.stop = ctx.stop;
            layerCtx.threads = ctx.threads;
            factor::FactorResult fr = factorizer.run(W, layerCtx);
            if (fr.termination == factor::Termination::Cancelled || ctx.stopRequested()) throw Cancelled();

            layer.k = fr.k;
            layer.l = fr.l;
            layer.paths = fr.pathCount;
            layer.bpw = fr.bpw;
            layer.relError = fr.finalError;
            layer.plainError = fr.finalPlainError;
            if (matchOutputs) {
                const double norm = static_cast<double>(original.norm());
                const RowMatrixF approx = factor::reconstruct(fr.paths, ctx.threadCount());
                layer.plainError = norm > 0.0 ? static_cast<double>((original - approx).norm()) / norm : 0.0;
            }
            layer.clamped = fr.clamped;
            layer.iterations = fr.iterations;
            layer.termination = fr.termination;
            layer.note = fr.message;
            layer.layer = std::make_shared<model::FactorizedLinear>(std::move(fr.paths), std::move(bias),
                                                                    kindText(fr.method, fr.k, fr.l, fr.pathCount));
            if (options.store) options.store->save(layer, settings);
        }
        if (layer.layer) {
            result.factorizedWeights += layer.n * layer.m;
            result.factorizedBits +=
                factor::storageBits(layer.n, layer.m, layer.k, layer.l, layer.paths, layer.method);
        }
        layer.seconds = secondsSince(layerStart);
        result.layers.push_back(std::move(layer));
        if (options.onLayer) options.onLayer(result.layers.back(), index, total);
        ctx.report("layer", index + 1, total);
    }

    // Model-level accounting: every checkpoint tensor is a stored weight; those replaced by a
    // factorized layer count its exact storage instead of their own bits. A factorized tied head
    // has no tensor of its own, so its weights join the total alongside the (still dense) embedding.
    std::set<std::string> replaced;
    for (const LayerQuantResult& layer : result.layers) {
        if (!layer.layer) continue;
        const std::string own = layer.name + ".weight";
        if (ckpt.contains(own)) {
            replaced.insert(own);
        } else {
            result.totalWeights += layer.n * layer.m;
        }
    }
    for (const io::TensorInfo& t : ckpt.tensors()) {
        result.totalWeights += t.elementCount();
        if (replaced.count(t.name) == 0) result.totalBits += t.elementCount() * storedBits(t.dtype);
    }
    result.totalBits += result.factorizedBits;
    result.factorizedBpw = result.factorizedWeights > 0 ? static_cast<double>(result.factorizedBits) /
                                                              static_cast<double>(result.factorizedWeights)
                                                        : 0.0;
    result.modelBpw = result.totalWeights > 0
                          ? static_cast<double>(result.totalBits) / static_cast<double>(result.totalWeights)
                          : 0.0;

    ctx.throwIfStopped();
    result.seconds = secondsSince(start);
    return result;
}

RowMatrixF outputMatchingTarget(const RowMatrixF& W, const Eigen::MatrixXd& gram, const Eigen::MatrixXd& cross,
                                double damping)
{
    const Eigen::Index m = W.cols();
    if (gram.rows() != m || gram.cols() != m || cross.rows() != m || cross.cols() != m)
        throw InvalidArgument("output-matching target: W has " + std::to_string(m) + " columns but H is " +
                              std::to_string(gram.rows()) + "×" + std::to_string(gram.cols()) + " and C " +
                              std::to_string(cross.rows()) + "×" + std::to_string(cross.cols()));
    if (!(damping >= 0.0) || !std::isfinite(damping))
        throw InvalidArgument("output-matching target: damping must be finite and ≥ 0");
    Eigen::MatrixXd damped = gram;
    damped.diagonal().array() += damping * gram.diagonal().mean();
    const Eigen::LLT<Eigen::MatrixXd> llt(damped);
    if (llt.info() != Eigen::Success)
        throw InvalidArgument("output-matching target: the input Gram matrix is not positive definite after damping");
    // W* − W = W (Cᵀ − H) H_λ⁻¹, solved as H_λ Zᵀ = (Cᵀ − H)ᵀ Wᵀ since H_λ is symmetric.
    const Eigen::MatrixXd Wd = W.cast<double>();
    const Eigen::MatrixXd rhs = (cross - gram) * Wd.transpose();
    const Eigen::MatrixXd correction = llt.solve(rhs).transpose();
    return (Wd + correction).cast<float>();
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
        replaced.insert(layer.name + ".weight");
        io::PackageLayer pl;
        pl.name = layer.name;
        pl.method = layer.method;
        pl.objective = layer.objective;
        pl.bpw = layer.bpw;
        pl.relError = layer.relError;
        pl.paths = layer.layer->paths();
        pkg.layers.push_back(std::move(pl));
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

}  // namespace mdbf::eval
