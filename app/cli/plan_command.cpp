// `mdbf plan`: the method, envelope rank and bits of every factorized layer for a model-level budget,
// written as a quantization configuration (docs/CLI.md §3.9, docs/ALGORITHM.md §9).

#include <cstdio>
#include <sstream>

#include "calibration_options.h"
#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/base/text_file.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/pipeline/plan.h"

namespace mdbf::cli {

namespace {

namespace fs = std::filesystem;

struct PlanCliOptions {
    std::string model;
    std::string out;
    std::string bpw;
    std::string minBpw;
    std::string maxBpw;
    std::string methods = "dbf,mdbf";
    std::string ls = "1,2,4,8";
    std::string objective = "plain";
    std::string weighting = "weights";
    int iterations = 260;
    int trialIterations = 6;
    int gridPoints = 7;
    std::uint64_t seed = 0;
    CalibrationCliOptions calib;
    SvdCacheOptions svdCache;
    bool json = false;
};

std::vector<std::string> splitList(const std::string& text)
{
    std::vector<std::string> items;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (!item.empty()) items.push_back(item);
    }
    return items;
}

/// The core's options from the command line; throws InvalidArgument for a value it cannot parse.
pipeline::PlanOptions planOptions(const PlanCliOptions& opt)
{
    pipeline::PlanOptions o;
    o.budget = factor::Bpw::parse(opt.bpw);
    if (!opt.minBpw.empty()) o.minBpw = factor::Bpw::parse(opt.minBpw);
    if (!opt.maxBpw.empty()) o.maxBpw = factor::Bpw::parse(opt.maxBpw);
    o.methods.clear();
    for (const std::string& m : splitList(opt.methods)) o.methods.push_back(factor::parseMethod(m));
    o.ls.clear();
    for (const std::string& l : splitList(opt.ls)) {
        std::size_t used = 0;
        int value = 0;
        try {
            value = std::stoi(l, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != l.size()) throw InvalidArgument("--ls: '" + l + "' is not an integer");
        o.ls.push_back(value);
    }
    o.objective = factor::parseObjective(opt.objective);
    o.weighting = pipeline::parsePlanWeighting(opt.weighting);
    o.iterations = opt.iterations;
    o.trialIterations = opt.trialIterations;
    o.gridPoints = opt.gridPoints;
    o.engine.seed = opt.seed;
    o.engine.decompositions.cache = opt.svdCache.cache();
    if (o.engine.decompositions.cache) o.engine.decompositions.calibration = calibrationIdentity(opt.model, opt.calib);
    o.validate();
    return o;
}

std::string shapeText(std::int64_t n, std::int64_t m) { return std::to_string(n) + "x" + std::to_string(m); }

void printTable(std::FILE* out, const pipeline::ModelPlan& plan)
{
    std::fprintf(out, "%-40s %-9s %-6s %3s %6s %8s %10s\n", "layer", "shape", "method", "l", "k", "bpw",
                 "pred_error");
    for (const pipeline::PlannedLayer& layer : plan.layers) {
        const pipeline::PlanPoint& c = layer.choice;
        std::fprintf(out, "%-40s %-9s %-6s %3d %6lld %8.4f %10.5f%s\n", layer.name.c_str(),
                     shapeText(layer.n, layer.m).c_str(), std::string(factor::methodName(c.format.method)).c_str(),
                     c.format.l, static_cast<long long>(c.k), static_cast<double>(c.bits) /
                     static_cast<double>(layer.n * layer.m), c.error, c.measured ? "" : "  (interpolated)");
    }
}

nlohmann::json planJson(const PlanCliOptions& opt, const pipeline::ModelPlan& plan)
{
    nlohmann::json layers = nlohmann::json::array();
    for (const pipeline::PlannedLayer& layer : plan.layers) {
        const pipeline::PlanPoint& c = layer.choice;
        layers.push_back({{"name", layer.name},
                          {"n", layer.n},
                          {"m", layer.m},
                          {"method", std::string(factor::methodName(c.format.method))},
                          {"l", c.format.l},
                          {"k", c.k},
                          {"bits", c.bits},
                          {"bpw", static_cast<double>(c.bits) / static_cast<double>(layer.n * layer.m)},
                          {"bpw_text", layer.bpw.text()},
                          {"predicted_error", c.error},
                          {"measured", c.measured}});
    }
    nlohmann::json uniform = nlohmann::json::array();
    for (const auto& [format, cost] : plan.uniformCosts) {
        uniform.push_back({{"method", std::string(factor::methodName(format.method))},
                           {"l", format.l},
                           {"predicted_cost", cost}});
    }
    return {{"out", opt.out},
            {"budget", opt.bpw},
            {"factorized_bpw", plan.bits.factorizedBpw()},
            {"factorized_bits", plan.bits.factorizedBits},
            {"factorized_weights", plan.bits.factorizedWeights},
            {"model_bpw", plan.bits.modelBpw()},
            {"predicted_cost", plan.predictedCost},
            {"error", plan.outputError ? "output" : "weight"},
            {"weighting", opt.weighting},
            {"uniform", uniform},
            {"trials", plan.trials},
            {"seconds", plan.seconds},
            {"layers", layers}};
}

int runPlan(const PlanCliOptions& opt, const CommandEnv& env)
{
    pipeline::PlanOptions options;
    try {
        options = planOptions(opt);
    } catch (const InvalidArgument& e) {
        return usageError(e.what());
    }
    const fs::path dir = opt.model;
    requireDistinctOutput(opt.out, OutputKind::File, {dir, opt.calib.text}, "--out");
    requireWritableDirectory(opt.out);
    const io::ModelConfig modelConfig = io::ModelConfig::fromFile(dir / "config.json");
    const io::Checkpoint checkpoint = io::Checkpoint::open(dir);

    if (!opt.calib.text.empty()) {
        eval::CalibrationOptions request;
        request.ctx = opt.calib.ctx;
        request.gram = true;
        request.layers = pipeline::plannedLayerNames(modelConfig);
        const eval::CalibrationStats stats = runCalibration(opt.model, opt.calib, request, env);
        for (const std::string& name : request.layers) options.inputGrams.emplace(name, stats.layer(name).gram);
    } else {
        std::fprintf(stderr, "note: no --calib-text: planning on the weight error alone\n");
    }

    ProgressBar bar("plan");
    const pipeline::ModelPlan plan = pipeline::planModel(modelConfig, checkpoint, options, bar.context(env));
    bar.finish();
    writeFileAtomically(opt.out, plan.config.toJson().dump(2) + "\n");

    if (opt.json) {
        printJson(planJson(opt, plan));
        return kExitOk;
    }
    printTable(stdout, plan);
    std::printf("\npredicted cost (sum of squared relative %s errors): %.5f", plan.outputError ? "output" : "weight",
                plan.predictedCost);
    for (const auto& [format, cost] : plan.uniformCosts) {
        std::printf("; uniform %s %.5f", pipeline::planFormatText(format).c_str(), cost);
    }
    std::printf("\nfactorized layers %.4f bpw (budget %s), model %.4f bpw; %d trials, %.1f s; wrote %s\n",
                plan.bits.factorizedBpw(), opt.bpw.c_str(), plan.bits.modelBpw(), plan.trials, plan.seconds,
                opt.out.c_str());
    return kExitOk;
}

}  // namespace

Command registerPlanCommand(CLI::App& root)
{
    auto opt = std::make_shared<PlanCliOptions>();
    CLI::App* sub = root.add_subcommand(
        "plan", "Choose the method, envelope rank and bits of every layer for a model-level budget");
    addModelDirOption(*sub, opt->model, "Hugging Face model directory");
    sub->add_option("--bpw", opt->bpw, "Bits per weight over the factorized layers, at most (e.g. 1.25)")->required();
    sub->add_option("--out", opt->out, "Quantization configuration to write (JSON)")->required()->check(nonEmptyPath());
    sub->add_option("--methods", opt->methods, "Comma-separated methods to choose from")->capture_default_str();
    sub->add_option("--ls", opt->ls, "Comma-separated envelope ranks tried for mdbf")->capture_default_str();
    sub->add_option("--min-bpw", opt->minBpw, "Lowest per-layer budget tried (default half the budget)");
    sub->add_option("--max-bpw", opt->maxBpw, "Highest per-layer budget tried (default twice the budget)");
    sub->add_option("--grid", opt->gridPoints, "Budgets tried per layer and format")
        ->check(intRange(2, 64))
        ->capture_default_str();
    addIterationsOption(*sub, "--iterations", opt->iterations, "ADMM outer iterations the configuration asks for")
        ->capture_default_str();
    addIterationsOption(*sub, "--trial-iterations", opt->trialIterations, "ADMM outer iterations of every trial")
        ->capture_default_str();
    sub->add_option("--objective", opt->objective, "Objective of the trials and the configuration")
        ->check(CLI::IsMember({"plain", "diag", "gram"}))
        ->capture_default_str();
    sub->add_option("--weigh", opt->weighting,
                    "How layer errors add up: layers (each counts once) or weights (by parameter count)")
        ->check(CLI::IsMember({"layers", "weights"}))
        ->capture_default_str();
    addSeedOption(*sub, opt->seed, "Seed of the factorizer's power iterations");
    CLI::Option* calibText = addCalibrationOptions(*sub, opt->calib);
    opt->svdCache.addTo(*sub);
    sub->callback([opt, calibText] {
        if (opt->objective != "plain" && calibText->count() == 0) {
            throw CLI::RequiredError("--calib-text (--objective " + opt->objective + " needs calibration text)");
        }
    });
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runPlan(*opt, env); }};
}

}  // namespace mdbf::cli
