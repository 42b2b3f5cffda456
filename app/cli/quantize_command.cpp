// `mdbf quantize`: whole-model factorization into an HDF5 deployment package (docs/CLI.md §3.5).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <span>

#include "calibration_options.h"
#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/base/text_file.h"
#include "mdbf/dist/task_queue.h"
#include "mdbf/eval/calibration_cache.h"
#include "mdbf/pipeline/layer_store.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/pipeline/sequential_calibration.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/io/package.h"
#include "mdbf/model/transformer.h"
#include "mdbf/model/architecture.h"

namespace mdbf::cli {

namespace {

namespace fs = std::filesystem;

struct QuantizeOptions {
    std::string model;
    std::string out;
    LayerFormatOptions format;
    std::string config;
    int iters = -1;
    std::uint64_t seed = 0;
    std::string exportConfig;
    std::string exportSafetensors;
    std::string objective;  ///< empty: the configuration's objectives
    CalibrationCliOptions calib;
    SvdCacheOptions svdCache;  ///< --svd-cache, --svd-cache-dir
    bool sequential = false;
    std::string workDir;  ///< empty: OUT.work beside the package
    bool json = false;
};

std::string shapeText(std::int64_t n, std::int64_t m) { return std::to_string(n) + "x" + std::to_string(m); }

factor::QuantConfig buildConfig(const QuantizeOptions& opt)
{
    factor::QuantConfig config;
    if (!opt.config.empty()) {
        config = factor::QuantConfig::fromFile(opt.config);
    } else {
        factor::LayerQuantSettings s;
        opt.format.applyTo(s);
        config = factor::QuantConfig::uniform(s);
    }
    if (opt.iters >= 0) config.overrideIterations(opt.iters);
    if (!opt.objective.empty()) config.overrideObjective(factor::parseObjective(opt.objective));
    return config;
}

void printTableHeader(std::FILE* table)
{
    std::fprintf(table, "%-40s %-10s %6s %3s %2s %7s %10s %-9s %8s\n", "layer", "shape", "k", "l", "P", "bpw",
                 "rel_error", "objective", "seconds");
}

void printTableRow(std::FILE* table, const pipeline::LayerQuantResult& r)
{
    if (r.keptDense) {
        std::fprintf(table, "%-40s %-10s %6s %3s %2s %7.3f %10s %-9s %8.2f  %s\n", r.name.c_str(),
                     shapeText(r.n, r.m).c_str(), "-", "-", "-", r.bpw, "-", "-", r.seconds, r.note.c_str());
    } else {
        std::fprintf(table, "%-40s %-10s %6lld %3d %2d %7.4f %10.5f %-9s %8.2f%s%s\n", r.name.c_str(),
                     shapeText(r.n, r.m).c_str(), static_cast<long long>(r.k), r.l, r.paths, r.bpw, r.relError,
                     std::string(factor::objectiveName(r.objective)).c_str(), r.seconds,
                     r.clamped ? "  (k clamped to min(n, m))" : "", r.cached ? "  (reused)" : "");
    }
    std::fflush(table);
}

nlohmann::json layerJson(const pipeline::LayerQuantResult& r)
{
    nlohmann::json j = {{"name", r.name},
                        {"n", r.n},
                        {"m", r.m},
                        {"k", r.k},
                        {"l", r.l},
                        {"paths", r.paths},
                        {"bpw", r.bpw},
                        {"rel_error", r.relError},
                        {"seconds", r.seconds},
                        {"kept_dense", r.keptDense},
                        {"reused", r.cached}};
    if (r.keptDense) {
        j["note"] = r.note;
    } else {
        j["method"] = std::string(factor::methodName(r.method));
        j["objective"] = std::string(factor::objectiveName(r.objective));
        j["rel_error_plain"] = r.plainError;
        j["clamped"] = r.clamped;
        j["svd_cached"] = r.decompositionCached;
    }
    return j;
}

/// Collects the calibration statistics the configuration's objectives need (none for an all-plain
/// configuration) into `qopt`; returns a summary for the JSON output (null when none were needed).
/// Throws InvalidArgument when they are needed but --calib-text is missing.
nlohmann::json calibrate(const QuantizeOptions& opt, const io::ModelConfig& modelConfig, pipeline::QuantizeOptions& qopt,
               const CommandEnv& env)
{
    std::vector<std::string> needed;
    std::string example;
    bool gram = false;
    for (const std::string& name : model::projectionNames(modelConfig)) {
        const factor::LayerQuantSettings s = qopt.config.resolve(name);
        if (s.dense || s.objective == factor::Objective::Plain) continue;
        needed.push_back(name);
        gram = gram || s.objective == factor::Objective::Gram;
        if (example.empty()) example = name + " (objective " + std::string(factor::objectiveName(s.objective)) + ")";
    }
    if (needed.empty()) {
        if (!opt.calib.text.empty()) std::fprintf(stderr, "warning: --calib-text is not used: every objective is plain\n");
        return nullptr;
    }
    if (opt.calib.text.empty())
        throw InvalidArgument("layer " + example + " needs calibration statistics: give --calib-text");
    eval::CalibrationOptions request;
    request.ctx = opt.calib.ctx;
    request.gram = gram;
    if (opt.sequential) {
        // Each block is recorded when its first layer needs statistics, from the partly quantized model.
        auto source = std::make_shared<pipeline::SequentialCalibration>(opt.model, opt.calib.text, request,
                                                                        env.runContext());
        qopt.statistics = [source](const std::string& name, std::span<const pipeline::LayerQuantResult> done) {
            return (*source)(name, done);
        };
        return {{"text", opt.calib.text}, {"ctx", opt.calib.ctx}, {"sequential", true}};
    }
    request.layers = needed;
    const eval::CalibrationStats stats = runCalibration(opt.model, opt.calib, request, env);
    for (const std::string& name : needed) {
        const eval::LayerCalibration& layer = stats.layer(name);
        const factor::Objective objective = qopt.config.resolve(name).objective;
        if (objective == factor::Objective::Gram) {
            qopt.inputGrams.emplace(name, layer.gram);
        } else {
            qopt.channelWeights.emplace(name, layer.channelWeights());
        }
    }
    return {{"text", opt.calib.text},
            {"ctx", stats.ctx},
            {"tokens", stats.tokens},
            {"windows", stats.windows},
            {"cached", stats.fromCache},
            {"sequential", false},
            {"seconds", stats.seconds}};
}

void writeExportedConfig(const QuantizeOptions& opt)
{
    requireWritableDirectory(opt.exportConfig);
    writeFileAtomically(opt.exportConfig, buildConfig(opt).toJson().dump(2) + "\n");
}

fs::path workDirOf(const QuantizeOptions& opt)
{
    return opt.workDir.empty() ? fs::path(opt.out + ".work") : fs::path(opt.workDir);
}

/// What every process of a run builds from the same flags.
struct QuantizeSetup {
    explicit QuantizeSetup(const QuantizeOptions& opt)
        : config(buildConfig(opt)),
          modelConfig(io::ModelConfig::fromFile(fs::path(opt.model) / "config.json")),
          checkpoint(io::Checkpoint::open(opt.model)),
          plans(pipeline::planQuantization(config, modelConfig, checkpoint)),
          store(workDirOf(opt), storePrefix(opt), calibrationPrefix(opt))
    {
        engine.seed = opt.seed;
        engine.decompositions.cache = opt.svdCache.cache();
        // Sequential statistics depend on the layers quantized before, so they key nothing.
        if (engine.decompositions.cache && !opt.sequential)
            engine.decompositions.calibration = calibrationIdentity(opt.model, opt.calib);
    }

    /// Factorizes the layer of `task` (its index in `plans`, its statistics as the payload) and
    /// returns its layer-store record.
    std::string compute(const dist::Task& task, const RunContext& ctx) const
    {
        const pipeline::LayerPlan& plan = plans.at(static_cast<std::size_t>(task.id));
        const pipeline::LayerQuantResult r =
            pipeline::quantizeLayer(plan, checkpoint, pipeline::decodeStatistics(task.payload), engine, ctx);
        return store.encode(r, plan.settings);
    }

    // A stored layer is valid for the same model files, seed and (for calibrated objectives) the
    // same calibration text, window and mode; the layer's own settings complete its key.
    static std::string storePrefix(const QuantizeOptions& opt)
    {
        return "mdbf quantize\n" + eval::CalibrationCache::key(opt.model, {}, {}) + "seed " + std::to_string(opt.seed);
    }

    static std::string calibrationPrefix(const QuantizeOptions& opt)
    {
        if (opt.calib.text.empty()) return {};
        const std::string text = readBinaryFile(opt.calib.text);
        return "|calibration=" + std::to_string(text.size()) + ":" + hex64(fnv1a(text)) +
               "|ctx=" + std::to_string(opt.calib.ctx) + "|sequential=" + (opt.sequential ? "1" : "0");
    }

    factor::QuantConfig config;
    io::ModelConfig modelConfig;
    io::Checkpoint checkpoint;
    std::vector<pipeline::LayerPlan> plans;
    pipeline::LayerStore store;
    pipeline::EngineSettings engine;
};

// Between rounds of tasks rank 0 tells the other ranks whether another round follows.
constexpr int kAnotherRound = 1;
constexpr int kNoMoreRounds = 0;

/// A rank other than 0: waits for rank 0's preparation, then factorizes the layers it is handed,
/// round after round. Its errors travel to rank 0, which reports them and ends the job.
int runQuantizeWorker(const QuantizeOptions& opt, const CommandEnv& env, dist::TaskQueue& queue)
{
    const int status = queue.broadcast(kExitOk);
    if (status != kExitOk) return status;  // rank 0 reported why
    std::optional<QuantizeSetup> setup;
    std::exception_ptr setupError;
    try {
        setup.emplace(opt);
    } catch (...) {
        setupError = std::current_exception();
    }
    const RunContext ctx = env.runContext();
    while (queue.broadcast(kNoMoreRounds) == kAnotherRound) {
        queue.run({}, [&](const dist::Task& task) {
            if (setupError) std::rethrow_exception(setupError);
            return setup->compute(task, ctx);
        }, {}, ctx);
    }
    return kExitOk;
}

/// Hands out the layers not yet in the work folder and writes the package from its records.
int quantizeAndWrite(const QuantizeOptions& opt, const CommandEnv& env, dist::TaskQueue& queue,
                     const QuantizeSetup& setup, pipeline::QuantizeOptions& qopt, const nlohmann::json& calibration,
                     int removed)
{
    const fs::path dir = opt.model;
    const auto start = std::chrono::steady_clock::now();
    ProgressBar bar("quantize");
    const RunContext ctx = bar.context(env);
    std::FILE* table = opt.json ? stderr : stdout;
    printTableHeader(table);
    const std::vector<pipeline::LayerPlan>& plans = setup.plans;
    const int total = static_cast<int>(plans.size());
    int finished = 0;
    auto show = [&](const pipeline::LayerQuantResult& r) {
        bar.finish();
        printTableRow(table, r);
        ctx.report("layer", ++finished, total);
    };

    // Finished layers come from the work folder; the others are spread over the processes, largest
    // first so that no long layer starts last. Results are kept as figures only (the factorizations
    // stay in the work folder until the package is written), except that sequential calibration
    // keeps them to swap them into its model before it records the next block.
    pipeline::QuantizeResult result;
    result.layers.resize(plans.size());
    const bool keepLayers = opt.sequential;
    auto figuresOnly = [keepLayers](pipeline::LayerQuantResult& r) {
        if (!keepLayers) r.layer.reset();
    };
    const RunContext computeCtx = env.runContext();
    for (const std::vector<std::size_t>& round : pipeline::quantizationRounds(plans, opt.sequential)) {
        std::vector<dist::Task> tasks;
        for (const std::size_t i : round) {
            const pipeline::LayerPlan& plan = plans[i];
            pipeline::LayerQuantResult& r = result.layers[i];
            if (plan.keptDense) {
                r = pipeline::keptDenseResult(plan);
            } else if (std::optional<pipeline::LayerQuantResult> stored = setup.store.load(plan.name, plan.settings);
                       stored && stored->n == plan.n && stored->m == plan.m) {
                r = std::move(*stored);
                r.cached = true;
                figuresOnly(r);
            } else {
                // Only the earlier rounds' layers count as done: a block resumed with some of its own
                // layers finished is recorded as an uninterrupted run records it.
                const std::span<const pipeline::LayerQuantResult> earlier(result.layers.data(), round.front());
                const pipeline::LayerStatistics statistics = pipeline::layerStatistics(qopt, plan, earlier);
                tasks.push_back({static_cast<int>(i), pipeline::encodeStatistics(statistics)});
                continue;
            }
            show(r);
        }
        if (tasks.empty()) continue;
        std::stable_sort(tasks.begin(), tasks.end(), [&](const dist::Task& a, const dist::Task& b) {
            const pipeline::LayerPlan& pa = plans[static_cast<std::size_t>(a.id)];
            const pipeline::LayerPlan& pb = plans[static_cast<std::size_t>(b.id)];
            return pa.n * pa.m > pb.n * pb.m;
        });
        queue.broadcast(kAnotherRound);
        queue.run(std::move(tasks),
                  [&setup, computeCtx](const dist::Task& task) { return setup.compute(task, computeCtx); },
                  [&](int id, std::string record, int) {
                      const pipeline::LayerPlan& plan = plans.at(static_cast<std::size_t>(id));
                      pipeline::LayerQuantResult r = setup.store.put(plan.name, plan.settings, record);
                      figuresOnly(r);
                      r.note.clear();
                      show(r);
                      result.layers[static_cast<std::size_t>(id)] = std::move(r);
                  },
                  ctx);
    }
    queue.broadcast(kNoMoreRounds);
    pipeline::accountResult(setup.checkpoint, result);
    std::map<std::string, const pipeline::LayerPlan*, std::less<>> byName;
    for (const pipeline::LayerPlan& plan : plans) byName.emplace(plan.name, &plan);
    auto layerOf = [&](const pipeline::LayerQuantResult& r) {
        const pipeline::LayerPlan& plan = *byName.at(r.name);
        std::optional<pipeline::LayerQuantResult> stored = setup.store.load(plan.name, plan.settings);
        if (!stored) {
            throw IoError("'" + setup.store.directory().string() + "': the record of layer '" + r.name +
                          "' is missing or unreadable");
        }
        return pipeline::packageLayerOf(*stored);
    };
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    pipeline::writeQuantizedPackage(dir, setup.checkpoint, result, setup.config, layerOf, opt.out, ctx);
    if (!opt.exportSafetensors.empty()) io::exportSafetensors(io::readPackage(opt.out, ctx), opt.exportSafetensors, ctx);
    bar.finish();

    std::error_code ec;
    const std::uintmax_t bytes = fs::file_size(opt.out, ec);
    int dense = 0;
    int reused = 0;
    for (const auto& r : result.layers) {
        dense += r.keptDense ? 1 : 0;
        reused += r.cached ? 1 : 0;
    }
    const int computed = total - dense - reused;
    if (opt.json) {
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& r : result.layers) layers.push_back(layerJson(r));
        nlohmann::json summary = {{"out", opt.out},
                                  {"model_bpw", result.modelBpw},
                                  {"factorized_bpw", result.factorizedBpw},
                                  {"seconds", result.seconds},
                                  {"package_bytes", ec ? 0 : bytes},
                                  {"work_dir", workDirOf(opt).string()},
                                  {"processes", queue.size()},
                                  {"layers_computed", computed},
                                  {"layers_reused", reused},
                                  {"temporary_files_removed", removed},
                                  {"layers", layers}};
        if (!opt.exportSafetensors.empty()) summary["export_safetensors"] = opt.exportSafetensors;
        if (!calibration.is_null()) summary["calibration"] = calibration;
        printJson(summary);
        return kExitOk;
    }
    std::printf("\nwrote %s (%.2f MiB): model %.4f bpw over all weights, factorized layers %.4f bpw; "
                "%d layers factorized (%d reused from %s), %d kept dense, %d process%s, %.1f s\n",
                opt.out.c_str(), static_cast<double>(ec ? 0 : bytes) / (1024.0 * 1024.0), result.modelBpw,
                result.factorizedBpw, computed + reused, reused, workDirOf(opt).c_str(), dense, queue.size(),
                queue.size() == 1 ? "" : "es", result.seconds);
    if (!opt.exportSafetensors.empty()) {
        std::printf("wrote the reconstructed dense model to %s\n", opt.exportSafetensors.c_str());
    }
    return kExitOk;
}

/// Rank 0 (or the only process): prepares, then quantizes and writes. An error once the other ranks
/// work is reported here and ends the job at once, while `setup` (which rank 0's computing thread
/// reads) is still alive.
int runQuantizeRoot(const QuantizeOptions& opt, const CommandEnv& env, dist::TaskQueue& queue)
{
    const fs::path dir = opt.model;
    std::optional<QuantizeSetup> setup;
    std::optional<FileLock> lock;
    pipeline::QuantizeOptions qopt;
    nlohmann::json calibration;
    int removed = 0;
    try {
        if (!opt.exportConfig.empty()) writeExportedConfig(opt);
        // Everything that can fail cheaply is checked before the long factorization starts.
        requireWritableDirectory(opt.out);
        if (!fs::is_regular_file(dir / "tokenizer.json")) {
            throw IoError("'" + (dir / "tokenizer.json").string() + "': no such file (the package needs it)");
        }
        setup.emplace(opt);
        const fs::path workDir = workDirOf(opt);
        std::error_code ec;
        fs::create_directories(workDir, ec);
        if (ec) throw IoError("'" + workDir.string() + "': cannot create the work folder: " + ec.message());
        lock.emplace(workDir / "lock", "another mdbf quantize");
        // With the work folder locked, no live run of this command writes these any more.
        setup->store.removeTemporaryFiles();
        removed = removeTemporarySiblings(opt.out);
        qopt.config = setup->config;
        qopt.engine = setup->engine;
        calibration = calibrate(opt, setup->modelConfig, qopt, env);
    } catch (const Cancelled&) {
        queue.broadcast(kExitCancelled);
        throw;
    } catch (...) {
        queue.broadcast(kExitError);
        throw;
    }
    queue.broadcast(kExitOk);
    try {
        return quantizeAndWrite(opt, env, queue, *setup, qopt, calibration, removed);
    } catch (const Cancelled&) {
        // The other ranks may be in the middle of a layer: end them all at once.
        if (queue.size() > 1) {
            std::fputs("mdbf: cancelled\n", stderr);
            queue.abort(kExitCancelled);
        }
        throw;
    } catch (const std::exception& e) {
        if (queue.size() > 1) {
            std::fprintf(stderr, "mdbf: error: %s\n", e.what());
            queue.abort(kExitError);
        }
        throw;
    }
}

int runQuantize(const QuantizeOptions& opt, const CommandEnv& env)
{
    // Nothing this command writes may replace what it reads, however the paths are spelled.
    const std::vector<fs::path> inputs = {opt.model, opt.config, opt.calib.text};
    if (!opt.exportConfig.empty()) requireDistinctOutput(opt.exportConfig, OutputKind::File, inputs, "--export-config");
    if (!opt.out.empty()) {
        requireDistinctOutput(opt.out, OutputKind::File, inputs, "--out");
        requireDistinctOutput(workDirOf(opt), OutputKind::Directory, inputs, "--work-dir");
    }
    if (!opt.exportSafetensors.empty()) {
        requireDistinctOutput(opt.exportSafetensors, OutputKind::Directory, inputs, "--export-safetensors");
    }
    if (opt.out.empty()) {
        // Only the configuration was asked for.
        writeExportedConfig(opt);
        if (opt.json) {
            printJson({{"config", opt.exportConfig}, {"quant_config", buildConfig(opt).toJson()}});
        } else {
            std::printf("wrote the quantization configuration to %s\n", opt.exportConfig.c_str());
        }
        return kExitOk;
    }
    const std::unique_ptr<dist::TaskQueue> queue = dist::openTaskQueue();
    if (!queue->isRoot()) return runQuantizeWorker(opt, env, *queue);
    return runQuantizeRoot(opt, env, *queue);
}

}  // namespace

Command registerQuantizeCommand(CLI::App& root)
{
    auto opt = std::make_shared<QuantizeOptions>();
    CLI::App* sub = root.add_subcommand(
        "quantize", "Factorize every projection of a model and write an HDF5 deployment package");
    sub->add_option("--model", opt->model, "Hugging Face model directory")->required()->check(CLI::ExistingDirectory);
    CLI::Option* out = sub->add_option("--out", opt->out, "Package file to write (FILE.h5)")->check(nonEmptyPath());

    CLI::Option_group* budget = sub->add_option_group("budget", "Either a uniform budget or a configuration file");
    CLI::Option* bpw =
        budget->add_option("--bpw", opt->format.bpw, "Bits per weight for every projection (e.g. 1.5)")->check(bpwText());
    CLI::Option* config = budget->add_option("--config", opt->config, "Quantization configuration (JSON)")
                              ->check(CLI::ExistingFile);
    budget->require_option(1);
    CLI::Option* method = sub->add_option("--method", opt->format.method, "dbf or mdbf (with --bpw)")
                              ->check(CLI::IsMember({"dbf", "mdbf"}));
    CLI::Option* l = sub->add_option("--l", opt->format.l, "Envelope rank (with --bpw; 1 for dbf)")
                         ->check(intRange(1, factor::kMaxEnvelopeRank));
    CLI::Option* paths = sub->add_option("--paths", opt->format.paths, "Additive paths P (with --bpw)")
                             ->check(intRange(1, factor::kMaxPathCount));
    bpw->needs(method);
    method->needs(bpw);
    l->needs(bpw);
    paths->needs(bpw);
    method->excludes(config);
    addIterationsOption(*sub, "--iters", opt->iters, "ADMM outer iterations per path (overrides the configuration)");
    addSeedOption(*sub, opt->seed, "Seed of the factorizer's power iterations");
    sub->add_option("--objective", opt->objective,
                    "Objective of every layer, overriding the configuration's (diag and gram need --calib-text)")
        ->check(CLI::IsMember({"plain", "diag", "gram"}));
    CLI::Option* calibText = addCalibrationOptions(*sub, opt->calib);
    opt->svdCache.addTo(*sub);
    sub->add_flag("--sequential", opt->sequential,
                  "Calibrate block by block on the model whose earlier blocks are already quantized "
                  "(gram: fit each layer to the original model's outputs)")
        ->needs(calibText);
    sub->add_option("--work-dir", opt->workDir,
                    "Folder of the finished layers, from which a rerun of the same command continues "
                    "(default: OUT.work beside the package)")
        ->check(nonEmptyPath())
        ->needs(out);
    CLI::Option* exportConfig =
        sub->add_option("--export-config", opt->exportConfig, "Also write the quantization configuration (JSON) here")
            ->check(nonEmptyPath());
    sub->add_option("--export-safetensors", opt->exportSafetensors,
                    "Also write the model with reconstructed dense weights as a Hugging Face checkpoint directory")
        ->check(nonEmptyPath())
        ->needs(out);
    // A configuration can be exported without quantizing, to edit it and come back with --config.
    sub->callback([opt, out, exportConfig, calibText] {
        if (out->count() == 0 && exportConfig->count() == 0) {
            throw CLI::RequiredError("--out (or --export-config alone to only write the configuration)");
        }
        if (!opt->objective.empty() && opt->objective != "plain" && out->count() > 0 && calibText->count() == 0) {
            throw CLI::RequiredError("--calib-text (--objective " + opt->objective + " needs calibration text)");
        }
    });
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runQuantize(*opt, env); }};
}

}  // namespace mdbf::cli
