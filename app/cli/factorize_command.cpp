// `mdbf factorize`: one layer of a checkpoint through DBF or MDBF (docs/ALGORITHM.md, docs/CLI.md §3.4).

#include <cstdio>

#include <algorithm>

#include "calibration_options.h"
#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/decomposition_cache.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/model/transformer.h"
#include "mdbf/model/architecture.h"

namespace mdbf::cli {

namespace {

namespace fs = std::filesystem;

struct FactorizeOptions {
    std::string model;
    std::string layer;
    LayerFormatOptions format;
    int iters = 260;
    int inner = 3;
    double rhoStart = 0.03;
    double rhoPower = 3.0;
    double relaxation = 1.0;
    double stallTolerance = factor::FactorizerOptions{}.stallTolerance;
    std::uint64_t seed = 0;
    std::string objective = "plain";
    CalibrationCliOptions calib;
    bool history = false;
    bool json = false;
    SvdCacheOptions svdCache;  ///< --svd-cache, --svd-cache-dir
};

/// The checkpoint's name for the layer's weight: accepts "x.weight" and "x".
std::string weightTensorName(const io::Checkpoint& checkpoint, const std::string& layer)
{
    const std::string base = layerBaseName(layer);
    const std::string weight = base + ".weight";
    if (checkpoint.contains(weight)) return weight;
    if (checkpoint.contains(base)) return base;
    throw FormatError("'" + checkpoint.path().string() + "': no tensor named '" + weight +
                      "' (mdbf inspect lists the layers)");
}

/// Fills the objective's statistics into `job` from a calibration run over --calib-text.
/// Returns the run's summary for the JSON output.
nlohmann::json calibrate(const FactorizeOptions& opt, const std::string& layer, pipeline::LayerJob& job,
                         const CommandEnv& env)
{
    const fs::path dir = opt.model;
    const std::vector<std::string> projections =
        model::projectionNames(io::ModelConfig::fromFile(dir / "config.json"));
    if (std::find(projections.begin(), projections.end(), layer) == projections.end()) {
        throw InvalidArgument("--objective " + opt.objective + ": '" + layer +
                              "' is not a projection of the model, so it has no calibration activations");
    }
    eval::CalibrationOptions request;
    request.ctx = opt.calib.ctx;
    request.gram = job.settings.objective == factor::Objective::Gram;
    // H is m×m per layer: collect it for this layer only. The cheap d_j are collected for every
    // layer, so one cache file serves any layer of the model.
    if (request.gram) request.layers = {layer};
    const eval::CalibrationStats stats = runCalibration(opt.model, opt.calib, request, env);
    const eval::LayerCalibration& statistics = stats.layer(layer);
    if (request.gram) {
        job.statistics.inputGram = statistics.gram;
    } else {
        job.statistics.channelWeights = statistics.channelWeights();
    }
    return {{"text", opt.calib.text},
            {"ctx", stats.ctx},
            {"tokens", stats.tokens},
            {"windows", stats.windows},
            {"cached", stats.fromCache},
            {"seconds", stats.seconds}};
}

int runFactorize(const FactorizeOptions& opt, const CommandEnv& env)
{
    pipeline::LayerJob job;
    factor::LayerQuantSettings& settings = job.settings;
    opt.format.applyTo(settings);
    settings.iterations = opt.iters;
    settings.objective = factor::parseObjective(opt.objective);
    job.engine.innerIterations = opt.inner;
    job.engine.rhoStart = opt.rhoStart;
    job.engine.rhoPower = opt.rhoPower;
    job.engine.relaxation = opt.relaxation;
    job.engine.stallTolerance = opt.stallTolerance;
    job.engine.seed = opt.seed;
    if (settings.method == factor::Method::Dbf && settings.l != 1) {
        throw InvalidArgument("--method dbf has a rank-1 envelope; --l " + std::to_string(opt.format.l) +
                              " needs --method mdbf");
    }
    if (settings.objective == factor::Objective::Plain) job.validate();  // the settings alone are checked here

    const io::Checkpoint checkpoint = io::Checkpoint::open(opt.model);
    const std::string tensor = weightTensorName(checkpoint, opt.layer);
    const io::TensorInfo& info = checkpoint.info(tensor);
    if (info.shape.size() != 2) {
        throw FormatError("'" + checkpoint.path().string() + "': tensor '" + tensor +
                          "' is not a matrix, so it cannot be factorized");
    }
    ProgressBar bar("factorize " + layerBaseName(tensor));
    const int total = opt.iters * opt.format.paths;
    auto feed = [&bar, total](const factor::IterationReport& r) { bar.update("iteration", r.iteration, total); };
    // Checked before calibration and before the matrix is read and decomposed, so an infeasible
    // budget fails at once.
    factor::computeBitBudget(info.shape[0], info.shape[1], settings.bpw, settings.method,
                             settings.method == factor::Method::Dbf ? 1 : settings.l, settings.paths);
    nlohmann::json calibration;
    if (settings.objective != factor::Objective::Plain) {
        calibration = calibrate(opt, layerBaseName(tensor), job, env);
    } else if (!opt.calib.text.empty()) {
        std::fprintf(stderr, "warning: --calib-text is not used by --objective plain\n");
    }
    job.prepareGram();  // once, for the decomposition and the refinement
    const RowMatrixF W = checkpoint.matrixOnce(tensor);  // the float copy is what is factorized
    const RunContext ctx = bar.context(env);
    job.engine.decompositions.cache = opt.svdCache.cache();
    if (job.engine.decompositions.cache && settings.objective != factor::Objective::Plain)
        job.engine.decompositions.calibration = calibrationIdentity(opt.model, opt.calib);
    pipeline::LayerDecomposition decomposition =
        pipeline::decomposeLayerCached(W, job, checkpoint, layerBaseName(tensor), ctx);
    if (!decomposition.warning.empty()) std::fprintf(stderr, "warning: %s\n", decomposition.warning.c_str());
    const bool svdCached = decomposition.cached;
    const double svdSeconds = decomposition.svd->seconds();
    // Handed over: the refinement runs without the decomposition in memory.
    factor::FactorResult result = pipeline::factorizeLayer(W, std::move(decomposition.svd), job, -1, ctx, feed);
    if (!svdCached) {
        result.svdSeconds = svdSeconds;
        result.seconds += svdSeconds;
    }
    bar.finish();
    if (result.termination == factor::Termination::Cancelled) throw Cancelled();

    const std::string name = layerBaseName(tensor);
    if (opt.json) {
        nlohmann::json j = {{"layer", name},
                            {"n", result.n},
                            {"m", result.m},
                            {"method", std::string(factor::methodName(result.method))},
                            {"objective", std::string(factor::objectiveName(result.objective))},
                            {"k", result.k},
                            {"l", result.l},
                            {"paths", result.pathCount},
                            {"bpw", result.bpw},
                            {"requested_bpw", settings.bpw.value()},
                            {"clamped", result.clamped},
                            {"iters", result.iterations},
                            {"rel_error", result.finalError},
                            {"rel_error_init", result.initialError},
                            {"rel_error_plain", result.finalPlainError},
                            {"seconds", result.seconds},
                            {"svd_seconds", result.svdSeconds},
                            {"svd_cached", svdCached},
                            {"termination", std::string(factor::terminationName(result.termination))}};
        if (result.clamped) j["unclamped_k"] = result.unclampedK;
        if (opt.history) j["error_history"] = result.errorHistory;
        if (!calibration.is_null()) j["calibration"] = calibration;
        printJson(j);
        return kExitOk;
    }
    std::printf("layer      %s (%lld x %lld)\n", name.c_str(), static_cast<long long>(result.n),
                static_cast<long long>(result.m));
    std::printf("method     %s, l = %d, P = %d, objective %s\n", std::string(factor::methodName(result.method)).c_str(),
                result.l, result.pathCount, std::string(factor::objectiveName(result.objective)).c_str());
    std::printf("budget     %s bpw requested -> k = %lld, %.6f bpw achieved%s\n", settings.bpw.text().c_str(),
                static_cast<long long>(result.k), result.bpw,
                result.clamped ? (" (clamped from k = " + std::to_string(result.unclampedK) + ")").c_str() : "");
    // The plain error keeps its short label (the objective is named on the line above); a weighted
    // one is labelled with its objective and followed by the plain error of the same result.
    const bool weighted = result.objective != factor::Objective::Plain;
    std::printf("%-10s %.6f closed form -> %.6f after %d iterations (%s)\n",
                weighted ? result.errorLabel().c_str() : "rel_error", result.initialError, result.finalError,
                result.iterations, std::string(factor::terminationName(result.termination)).c_str());
    if (weighted) std::printf("rel_error (plain) %.6f\n", result.finalPlainError);
    if (svdCached) std::printf("time       %.2f s (SVD from the cache)\n", result.seconds);
    else std::printf("time       %.2f s (SVD %.2f s)\n", result.seconds, result.svdSeconds);
    if (opt.history) {
        for (std::size_t i = 0; i < result.errorHistory.size(); ++i) {
            std::printf("%5zu %.6f\n", i + 1, result.errorHistory[i]);
        }
    }
    return kExitOk;
}

}  // namespace

Command registerFactorizeCommand(CLI::App& root)
{
    auto opt = std::make_shared<FactorizeOptions>();
    CLI::App* sub = root.add_subcommand("factorize", "Factorize one layer with DBF or MDBF and report its error");
    sub->add_option("--model", opt->model, "Hugging Face model directory")->required()->check(CLI::ExistingDirectory);
    sub->add_option("--layer", opt->layer, "Tensor name, with or without .weight")->required();
    sub->add_option("--method", opt->format.method, "dbf or mdbf")->required()->check(CLI::IsMember({"dbf", "mdbf"}));
    sub->add_option("--bpw", opt->format.bpw, "Bits per weight (e.g. 1.5)")->required()->check(bpwText());
    sub->add_option("--l", opt->format.l, "Envelope rank (1 for dbf)")
        ->check(intRange(1, factor::kMaxEnvelopeRank))
        ->capture_default_str();
    sub->add_option("--paths", opt->format.paths, "Additive paths P")->check(intRange(1, factor::kMaxPathCount))->capture_default_str();
    addIterationsOption(*sub, "--iters", opt->iters, "ADMM outer iterations per path (0 = closed form)")
        ->capture_default_str();
    addIterationsOption(*sub, "--inner", opt->inner, "ADMM steps per half-step", 1)->capture_default_str();
    sub->add_option("--rho-start", opt->rhoStart, "Starting ADMM penalty of the ramp, in (0, 1]")->capture_default_str();
    sub->add_option("--rho-power", opt->rhoPower, "Power of the ADMM penalty ramp")->capture_default_str();
    sub->add_option("--relax", opt->relaxation, "Over-relaxation of the ADMM projection, in [1, 2)")->capture_default_str();
    sub->add_option("--stall-tol", opt->stallTolerance,
                    "End the refinement when 8 iterations in a row each gain less than this fraction (0: never)")
        ->capture_default_str();
    addSeedOption(*sub, opt->seed, "Seed of the power iterations")->capture_default_str();
    sub->add_option("--objective", opt->objective,
                        "plain: ‖W − Ŵ‖; diag: weighted by the inputs' channel second moments; gram: by their full "
                        "Gram matrix (diag and gram need --calib-text)")
            ->check(CLI::IsMember({"plain", "diag", "gram"}))
            ->capture_default_str();
    CLI::Option* calibText = addCalibrationOptions(*sub, opt->calib);
    sub->callback([opt, calibText] {
        if (opt->objective != "plain" && calibText->count() == 0) {
            throw CLI::RequiredError("--calib-text (--objective " + opt->objective + " needs calibration text)");
        }
    });
    sub->add_flag("--history", opt->history, "Also print the error after every outer iteration");
    opt->svdCache.addTo(*sub);
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runFactorize(*opt, env); }};
}

}  // namespace mdbf::cli
