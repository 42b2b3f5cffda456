#include "mdbf/pipeline/layer_job.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include <Eigen/Cholesky>

#include "mdbf/base/error.h"
#include "mdbf/factor/path_products.h"
#include "mdbf/model/architecture.h"

namespace mdbf::pipeline {

factor::FactorizerOptions LayerJob::settingsOptions(int iterations) const
{
    factor::FactorizerOptions o;
    o.method = settings.method;
    o.l = settings.method == factor::Method::Dbf ? 1 : settings.l;
    o.paths = settings.paths;
    o.bpw = settings.bpw;
    o.outerIterations = iterations < 0 ? settings.iterations : iterations;
    o.innerIterations = engine.innerIterations;
    o.rhoStart = engine.rhoStart;
    o.rhoPower = engine.rhoPower;
    o.relaxation = engine.relaxation;
    o.stallTolerance = engine.stallTolerance;
    o.seed = engine.seed;
    o.objective = settings.objective;
    if (const std::string problem = o.validate(); !problem.empty())
        throw InvalidArgument("factorization options: " + problem);
    const std::string objective(factor::objectiveName(settings.objective));
    const bool missing = (settings.objective == factor::Objective::DiagonalWeighted && statistics.channelWeights.size() == 0) ||
                         (settings.objective == factor::Objective::Gram && statistics.inputGram.size() == 0);
    if (missing) throw InvalidArgument("objective " + objective + " needs calibration statistics, none were supplied");
    return o;
}

void LayerJob::validate() const { (void)settingsOptions(0); }

factor::FactorizerOptions LayerJob::options(int iterations) const
{
    factor::FactorizerOptions o = settingsOptions(iterations);
    if (settings.objective == factor::Objective::DiagonalWeighted) o.channelWeights = statistics.channelWeights;
    if (settings.objective == factor::Objective::Gram) {
        o.inputGram = statistics.inputGram;
        o.preparedGram = statistics.preparedGram;
    }
    return o;
}

void LayerJob::prepareGram()
{
    if (settings.objective != factor::Objective::Gram || statistics.preparedGram) return;
    const factor::FactorizerOptions o = settingsOptions(0);
    statistics.preparedGram =
        std::make_shared<const factor::InputGram>(factor::InputGram::prepare(statistics.inputGram, o.damping));
}

bool LayerJob::matchesOutputs() const
{
    return settings.objective == factor::Objective::Gram && statistics.cross.size() > 0;
}

RowMatrixF loadLayerWeights(const io::Checkpoint& checkpoint, const std::string& name)
{
    const std::string tensor = model::weightTensorOf(name, checkpoint.contains(model::weightName(name)));
    const io::TensorInfo& info = checkpoint.info(tensor);
    if (info.shape.size() != 2 || info.shape[0] <= 0 || info.shape[1] <= 0) {
        throw FormatError("'" + info.file.string() + "': tensor '" + tensor + "' of layer '" + name +
                          "' is not a non-empty matrix");
    }
    return checkpoint.matrixOnce(tensor);  // the float copy is what every step uses
}

VectorF loadLayerBias(const io::Checkpoint& checkpoint, const std::string& name)
{
    const std::string tensor = model::biasName(name);
    if (!checkpoint.contains(tensor)) return {};
    const std::vector<float> b = checkpoint.toFloat(tensor);
    return Eigen::Map<const VectorF>(b.data(), static_cast<Eigen::Index>(b.size()));
}

RowMatrixF fittedWeights(const RowMatrixF& W, const LayerJob& job)
{
    if (!job.matchesOutputs()) return W;
    return outputMatchingTarget(W, job.statistics.inputGram, job.statistics.cross, job.engine.targetDamping);
}

std::shared_ptr<const factor::LayerSvd> decomposeLayer(const RowMatrixF& fitted, const LayerJob& job,
                                                       const RunContext& ctx)
{
    const factor::FactorizerOptions options = job.options(0);
    if (options.objective == factor::Objective::Plain)
        return std::make_shared<const factor::LayerSvd>(factor::LayerSvd::compute(fitted, ctx));
    return std::make_shared<const factor::LayerSvd>(factor::LayerSvd::compute(factor::Factorizer(options).target(fitted), ctx));
}

LayerDecomposition decomposeLayerCached(const RowMatrixF& fitted, const LayerJob& job, const io::Checkpoint& checkpoint,
                                        const std::string& name, const RunContext& ctx)
{
    const DecompositionStore& store = job.engine.decompositions;
    const bool plain = job.settings.objective == factor::Objective::Plain;
    if (!store.cache || job.matchesOutputs() || (!plain && store.calibration.empty()))
        return {decomposeLayer(fitted, job, ctx), false, {}};
    const std::string tensor = model::weightTensorOf(name, checkpoint.contains(model::weightName(name)));
    const factor::DecompositionKey key = factor::DecompositionKey::forFile(
        checkpoint.info(tensor).file, tensor, std::string(objectiveName(job.settings.objective)),
        plain ? std::string() : store.calibration);
    if (std::optional<factor::LayerSvd> svd = store.cache->get(key))
        return {std::make_shared<const factor::LayerSvd>(std::move(*svd)), true, {}};
    LayerDecomposition out{decomposeLayer(fitted, job, ctx), false, {}};
    try {
        store.cache->put(key, *out.svd);
    } catch (const Error& e) {
        out.warning = std::string("the decomposition was not cached: ") + e.what();
    }
    return out;
}

namespace {

// The factorizer of `job` with `iterations` outer iterations and the per-iteration feed.
factor::Factorizer factorizerOf(const LayerJob& job, int iterations,
                                std::function<void(const factor::IterationReport&)> onIteration)
{
    factor::FactorizerOptions options = job.options(iterations);
    options.onIteration = std::move(onIteration);
    return factor::Factorizer(std::move(options));
}

}  // namespace

factor::FactorResult factorizeLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition,
                                    const LayerJob& job, int iterations, const RunContext& ctx,
                                    std::function<void(const factor::IterationReport&)> onIteration)
{
    return factorizerOf(job, iterations, std::move(onIteration)).run(fitted, decomposition, ctx);
}

factor::FactorResult factorizeLayer(const RowMatrixF& fitted, std::shared_ptr<const factor::LayerSvd> decomposition,
                                    const LayerJob& job, int iterations, const RunContext& ctx,
                                    std::function<void(const factor::IterationReport&)> onIteration)
{
    return factorizerOf(job, iterations, std::move(onIteration)).run(fitted, std::move(decomposition), ctx);
}

factor::FactorResult refineLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition, const LayerJob& job,
                                 const factor::FactorResult& previous, int iterations, const RunContext& ctx,
                                 std::function<void(const factor::IterationReport&)> onIteration)
{
    return factorizerOf(job, iterations, std::move(onIteration)).refineFrom(fitted, decomposition, previous, ctx);
}

factor::FactorResult previewLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition,
                                  const LayerJob& job, std::int64_t sampleRows, const RunContext& ctx)
{
    factor::FactorizerOptions options = job.options(0);
    options.errorSampleRows = sampleRows;
    return factor::Factorizer(std::move(options)).run(fitted, decomposition, ctx);
}

std::shared_ptr<const RowMatrixH> residualOf(const RowMatrixF& fitted, factor::FactorResult& result, const LayerJob& job,
                                             const RunContext& ctx)
{
    const RowMatrixF approx = factor::reconstruct(result.paths, ctx.threadCount(), ctx.stop);
    if (result.errorSampleRows > 0) {
        result.finalError = factor::relativeError(fitted, approx, job.options(0));
        result.finalPlainError = result.objective == factor::Objective::Plain
                                     ? result.finalError
                                     : factor::relativeError(fitted, approx, factor::FactorizerOptions{});
        // Estimates come only from a closed form (FactorizerOptions::errorSampleRows), whose start is its end.
        result.initialError = result.finalError;
        result.errorSampleRows = 0;
        char error[32];
        std::snprintf(error, sizeof error, "%.4f", result.finalError);
        result.message = "closed form only (0 iterations): " + result.errorLabel() + " " + error;
    }
    auto residual = std::make_shared<RowMatrixH>(fitted.rows(), fitted.cols());
    *residual = (fitted - approx).cast<Eigen::half>();
    return residual;
}

LayerView describeLayer(const RowMatrixF& fitted, const factor::LayerSvd& decomposition, factor::FactorResult& result,
                        const LayerJob& job, const RunContext& ctx)
{
    LayerView view;
    view.spectra = factor::EnvelopeSpectra::ofSvd(decomposition, result.k, result.l, factor::kSpectrumValues, ctx.stop);
    view.residual = residualOf(fitted, result, job, ctx);
    return view;
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

namespace {

template <class Matrix>
void appendMatrix(std::string& out, const Matrix& M)
{
    const std::int64_t shape[2] = {static_cast<std::int64_t>(M.rows()), static_cast<std::int64_t>(M.cols())};
    out.append(reinterpret_cast<const char*>(shape), sizeof shape);
    out.append(reinterpret_cast<const char*>(M.data()), static_cast<std::size_t>(M.size()) * sizeof(typename Matrix::Scalar));
}

template <class Matrix>
Matrix takeMatrix(std::string_view& in)
{
    std::int64_t shape[2] = {0, 0};
    if (in.size() < sizeof shape) throw FormatError("layer statistics: truncated record");
    std::memcpy(shape, in.data(), sizeof shape);
    in.remove_prefix(sizeof shape);
    constexpr std::int64_t kMaxSide = std::int64_t{1} << 24;
    if (shape[0] < 0 || shape[1] < 0 || shape[0] > kMaxSide || shape[1] > kMaxSide)
        throw FormatError("layer statistics: bad shape");
    if (Matrix::ColsAtCompileTime == 1 && shape[1] != 1) throw FormatError("layer statistics: bad shape");
    const std::size_t bytes = static_cast<std::size_t>(shape[0] * shape[1]) * sizeof(typename Matrix::Scalar);
    if (in.size() < bytes) throw FormatError("layer statistics: truncated record");
    Matrix M(shape[0], shape[1]);
    if (bytes > 0) std::memcpy(M.data(), in.data(), bytes);
    in.remove_prefix(bytes);
    return M;
}

}  // namespace

std::string encodeStatistics(const LayerStatistics& statistics)
{
    std::string out;
    appendMatrix(out, statistics.channelWeights);
    appendMatrix(out, statistics.inputGram);
    appendMatrix(out, statistics.cross);
    return out;
}

LayerStatistics decodeStatistics(std::string_view bytes)
{
    LayerStatistics statistics;
    statistics.channelWeights = takeMatrix<VectorF>(bytes);
    statistics.inputGram = takeMatrix<Eigen::MatrixXd>(bytes);
    statistics.cross = takeMatrix<Eigen::MatrixXd>(bytes);
    if (!bytes.empty()) throw FormatError("layer statistics: trailing bytes");
    return statistics;
}

}  // namespace mdbf::pipeline
