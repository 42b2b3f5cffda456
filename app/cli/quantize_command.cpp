// `mdbf quantize`: whole-model factorization into an HDF5 deployment package (docs/CLI.md §3.5).

#include <cstdio>

#include "calibration_options.h"
#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/base/text_file.h"
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
    std::string bpw;
    std::string method;
    int l = 1;
    int paths = 1;
    std::string config;
    int iters = -1;
    std::uint64_t seed = 0;
    std::string exportConfig;
    std::string exportSafetensors;
    std::string objective;  ///< empty: the configuration's objectives
    CalibrationCliOptions calib;
    bool sequential = false;
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
        s.method = factor::parseMethod(opt.method);
        s.bpw = factor::Bpw::parse(opt.bpw);
        s.l = opt.l;
        s.paths = opt.paths;
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
        std::fprintf(table, "%-40s %-10s %6lld %3d %2d %7.4f %10.5f %-9s %8.2f%s\n", r.name.c_str(),
                     shapeText(r.n, r.m).c_str(), static_cast<long long>(r.k), r.l, r.paths, r.bpw, r.relError,
                     std::string(factor::objectiveName(r.objective)).c_str(), r.seconds,
                     r.clamped ? "  (k clamped to min(n, m))" : "");
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
                        {"kept_dense", r.keptDense}};
    if (r.keptDense) {
        j["note"] = r.note;
    } else {
        j["method"] = std::string(factor::methodName(r.method));
        j["objective"] = std::string(factor::objectiveName(r.objective));
        j["rel_error_plain"] = r.plainError;
        j["clamped"] = r.clamped;
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
        RunContext ctx;
        ctx.stop = env.stop;
        ctx.threads = env.threads;
        auto source = std::make_shared<pipeline::SequentialCalibration>(opt.model, opt.calib.text, request, ctx);
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

int runQuantize(const QuantizeOptions& opt, const CommandEnv& env)
{
    const fs::path dir = opt.model;
    // Nothing this command writes may replace what it reads, however the paths are spelled.
    const std::vector<fs::path> inputs = {dir, opt.config, opt.calib.text};
    if (!opt.exportConfig.empty()) requireDistinctOutput(opt.exportConfig, OutputKind::File, inputs, "--export-config");
    if (!opt.out.empty()) requireDistinctOutput(opt.out, OutputKind::File, inputs, "--out");
    if (!opt.exportSafetensors.empty()) {
        requireDistinctOutput(opt.exportSafetensors, OutputKind::Directory, inputs, "--export-safetensors");
    }
    const factor::QuantConfig config = buildConfig(opt);
    if (!opt.exportConfig.empty()) {
        requireWritableDirectory(opt.exportConfig);
        writeFileAtomically(opt.exportConfig, config.toJson().dump(2) + "\n");
    }
    if (opt.out.empty()) {
        // Only the configuration was asked for.
        if (opt.json) {
            printJson({{"config", opt.exportConfig}, {"quant_config", config.toJson()}});
        } else {
            std::printf("wrote the quantization configuration to %s\n", opt.exportConfig.c_str());
        }
        return kExitOk;
    }

    // Everything that can fail cheaply is checked before the long factorization starts.
    requireWritableDirectory(opt.out);
    const io::ModelConfig modelConfig = io::ModelConfig::fromFile(dir / "config.json");
    const io::Checkpoint checkpoint = io::Checkpoint::open(dir);
    if (!fs::is_regular_file(dir / "tokenizer.json")) {
        throw IoError("'" + (dir / "tokenizer.json").string() + "': no such file (the package needs it)");
    }

    pipeline::QuantizeOptions qopt;
    qopt.config = config;
    qopt.engine.seed = opt.seed;
    const nlohmann::json calibration = calibrate(opt, modelConfig, qopt, env);

    ProgressBar bar("quantize");
    const RunContext ctx = bar.context(env);
    std::FILE* table = opt.json ? stderr : stdout;
    printTableHeader(table);
    qopt.onLayer = [&](const pipeline::LayerQuantResult& r, int, int) {
        bar.finish();
        printTableRow(table, r);
    };
    const pipeline::QuantizeResult result = pipeline::quantizeCheckpoint(modelConfig, checkpoint, qopt, ctx);
    const io::Package package = pipeline::makePackage(dir, checkpoint, result, config);
    io::writePackage(package, opt.out, ctx);
    if (!opt.exportSafetensors.empty()) io::exportSafetensors(package, opt.exportSafetensors, ctx);
    bar.finish();

    std::error_code ec;
    const std::uintmax_t bytes = fs::file_size(opt.out, ec);
    int dense = 0;
    for (const auto& r : result.layers) dense += r.keptDense ? 1 : 0;
    if (opt.json) {
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& r : result.layers) layers.push_back(layerJson(r));
        nlohmann::json summary = {{"out", opt.out},
                                  {"model_bpw", result.modelBpw},
                                  {"factorized_bpw", result.factorizedBpw},
                                  {"seconds", result.seconds},
                                  {"package_bytes", ec ? 0 : bytes},
                                  {"layers", layers}};
        if (!opt.exportSafetensors.empty()) summary["export_safetensors"] = opt.exportSafetensors;
        if (!calibration.is_null()) summary["calibration"] = calibration;
        printJson(summary);
        return kExitOk;
    }
    std::printf("\nwrote %s (%.2f MiB): model %.4f bpw over all weights, factorized layers %.4f bpw; "
                "%zu layers factorized, %d kept dense, %.1f s\n",
                opt.out.c_str(), static_cast<double>(ec ? 0 : bytes) / (1024.0 * 1024.0), result.modelBpw,
                result.factorizedBpw, result.layers.size() - static_cast<std::size_t>(dense), dense, result.seconds);
    if (!opt.exportSafetensors.empty()) {
        std::printf("wrote the reconstructed dense model to %s\n", opt.exportSafetensors.c_str());
    }
    return kExitOk;
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
    CLI::Option* bpw = budget->add_option("--bpw", opt->bpw, "Bits per weight for every projection (e.g. 1.5)")
                           ->check([](const std::string& text) -> std::string {
                               try {
                                   factor::Bpw::parse(text);
                                   return {};
                               } catch (const Error& e) {
                                   return e.what();
                               }
                           });
    CLI::Option* config = budget->add_option("--config", opt->config, "Quantization configuration (JSON)")
                              ->check(CLI::ExistingFile);
    budget->require_option(1);
    CLI::Option* method = sub->add_option("--method", opt->method, "dbf or mdbf (with --bpw)")
                              ->check(CLI::IsMember({"dbf", "mdbf"}));
    CLI::Option* l = sub->add_option("--l", opt->l, "Envelope rank (with --bpw; 1 for dbf)")
                         ->check(intRange(1, factor::kMaxEnvelopeRank));
    CLI::Option* paths = sub->add_option("--paths", opt->paths, "Additive paths P (with --bpw)")
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
    sub->add_flag("--sequential", opt->sequential,
                  "Calibrate block by block on the model whose earlier blocks are already quantized "
                  "(gram: fit each layer to the original model's outputs)")
        ->needs(calibText);
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
