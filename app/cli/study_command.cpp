// `mdbf study`: perplexity against model bpw over a DBF/MDBF grid, plus the per-layer error-vs-l
// view, written as study.json, points.csv and layer_view.csv (plots: mdbf-study-plot).

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "commands.h"
#include "mdbf/base/error.h"
#include "mdbf/base/output_path.h"
#include "mdbf/pipeline/study.h"
#include "mdbf/pipeline/study_file.h"
#include "mdbf/factor/quant_config.h"

namespace mdbf::cli {

namespace {

namespace fs = std::filesystem;

struct StudyOptions {
    std::vector<std::string> models;
    std::string evalText;
    int ctx = 256;
    std::string calibText;
    int calibCtx = 256;
    std::vector<std::string> bpws{"1", "1.5"};
    std::vector<std::string> methods{"dbf", "mdbf"};
    std::vector<int> ls{2, 4, 8};
    std::vector<std::string> objectives{"plain"};
    std::string sequential = "off";
    int iters = 60;
    std::vector<std::string> extra;
    bool plan = false;                     ///< a planned point per budget and plain/gram objective
    std::vector<int> planLs{2, 4};         ///< envelope ranks the plans try beside dbf
    int planGrid = pipeline::PlanOptions{}.gridPoints;
    int planTrialIters = pipeline::PlanOptions{}.trialIterations;
    std::string planWeighting{pipeline::planWeightingName(pipeline::PlanOptions{}.weighting)};
    std::vector<std::string> viewBpws;
    std::vector<int> viewLs{1, 2, 4, 8};
    int viewIters = 20;
    std::string cache;
    bool warmStart = false;    ///< --warm-start: layers refined from the nearest cached result (StudySpec::warmStart)
    SvdCacheOptions svdCache;  ///< --svd-cache, --svd-cache-dir (the per-layer view's decompositions)
    std::string out;
    std::uint64_t seed = 0;
    bool json = false;
};

std::vector<std::string> splitColon(const std::string& text)
{
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, ':')) parts.push_back(part);
    return parts;
}

/// "plan:bpw[:objective[:iters]]", e.g. "plan:1.25:gram".
pipeline::StudyPoint parsePlannedPoint(const std::string& text, const std::vector<std::string>& p, int defaultIters)
{
    if (p.size() < 2 || p.size() > 4) {
        throw InvalidArgument("--point '" + text + "': expected plan:bpw[:objective[:iters]]");
    }
    pipeline::StudyPoint point;
    point.planned = true;
    try {
        point.bpw = factor::Bpw::parse(p[1]);
        if (p.size() > 2) point.objective = factor::parseObjective(p[2]);
        point.iterations = p.size() > 3 ? std::stoi(p[3]) : defaultIters;
    } catch (const std::logic_error&) {
        throw InvalidArgument("--point '" + text + "': iterations must be an integer");
    }
    if (!pipeline::StudyPoint::plannable(point.objective) || point.iterations < 0) {
        throw InvalidArgument("--point '" + text + "': a planned point takes plain or gram and iterations ≥ 0");
    }
    return point;
}

/// "method:l:bpw[:objective[:seq[:iters]]]", e.g. "mdbf:4:1.5:plain:0:260", or a planned point.
pipeline::StudyPoint parseExtraPoint(const std::string& text, int defaultIters)
{
    const std::vector<std::string> p = splitColon(text);
    if (!p.empty() && p[0] == pipeline::kPlannedMethod) return parsePlannedPoint(text, p, defaultIters);
    if (p.size() < 3 || p.size() > 6) {
        throw InvalidArgument("--point '" + text + "': expected method:l:bpw[:objective[:seq[:iters]]]");
    }
    pipeline::StudyPoint point;
    try {
        point.method = factor::parseMethod(p[0]);
        point.l = std::stoi(p[1]);
        point.bpw = factor::Bpw::parse(p[2]);
        if (p.size() > 3) point.objective = factor::parseObjective(p[3]);
        point.sequential = p.size() > 4 && (p[4] == "1" || p[4] == "seq" || p[4] == "on");
        point.iterations = p.size() > 5 ? std::stoi(p[5]) : defaultIters;
    } catch (const std::logic_error&) {
        throw InvalidArgument("--point '" + text + "': l and iterations must be integers");
    }
    if (point.l < 1 || point.iterations < 0 || (point.method == factor::Method::Dbf && point.l != 1)) {
        throw InvalidArgument("--point '" + text + "': l must be ≥ 1 (1 for dbf) and iterations ≥ 0");
    }
    return point;
}

std::vector<pipeline::StudyPoint> gridPoints(const StudyOptions& opt)
{
    std::vector<bool> sequentialModes;
    if (opt.sequential == "off" || opt.sequential == "both") sequentialModes.push_back(false);
    if (opt.sequential == "on" || opt.sequential == "both") sequentialModes.push_back(true);
    std::vector<pipeline::StudyPoint> points;
    for (const std::string& b : opt.bpws) {
        const factor::Bpw bpw = factor::Bpw::parse(b);
        for (const std::string& methodText : opt.methods) {
            const factor::Method method = factor::parseMethod(methodText);
            const std::vector<int> ls = method == factor::Method::Dbf ? std::vector<int>{1} : opt.ls;
            for (const int l : ls) {
                for (const std::string& objectiveText : opt.objectives) {
                    const factor::Objective objective = factor::parseObjective(objectiveText);
                    for (const bool sequential : sequentialModes) {
                        // Sequential quantization changes nothing for the plain objective.
                        if (sequential && objective == factor::Objective::Plain) continue;
                        points.push_back({method, l, bpw, objective, sequential, opt.iters});
                    }
                }
            }
        }
    }
    if (opt.plan) {
        for (const std::string& b : opt.bpws) {
            for (const std::string& objectiveText : opt.objectives) {
                const factor::Objective objective = factor::parseObjective(objectiveText);
                if (!pipeline::StudyPoint::plannable(objective)) continue;
                pipeline::StudyPoint point;
                point.planned = true;
                point.bpw = factor::Bpw::parse(b);
                point.objective = objective;
                point.iterations = opt.iters;
                points.push_back(point);
            }
        }
    }
    for (const std::string& e : opt.extra) points.push_back(parseExtraPoint(e, opt.iters));
    return points;
}

int runStudy(const StudyOptions& opt, const CommandEnv& env)
{
    const std::vector<pipeline::StudyPoint> points = gridPoints(opt);
    const bool needsCalibration = std::any_of(points.begin(), points.end(), [](const pipeline::StudyPoint& p) {
        return p.objective != factor::Objective::Plain;
    });
    if (needsCalibration && opt.calibText.empty()) {
        throw InvalidArgument("activation-aware objectives need --calib-text");
    }
    const fs::path outDir = opt.out;
    std::vector<fs::path> inputs(opt.models.begin(), opt.models.end());
    inputs.emplace_back(opt.evalText);
    inputs.emplace_back(opt.calibText);
    requireDistinctOutput(outDir, OutputKind::Directory, inputs, "--out");
    std::vector<pipeline::StudyResult> results;
    for (const std::string& model : opt.models) {
        pipeline::StudySpec spec;
        spec.modelDir = model;
        spec.evalText = opt.evalText;
        spec.ctx = opt.ctx;
        spec.calibText = opt.calibText;
        spec.calibCtx = opt.calibCtx;
        spec.points = points;
        spec.plan.ls = opt.planLs;
        spec.plan.gridPoints = opt.planGrid;
        spec.plan.trialIterations = opt.planTrialIters;
        spec.plan.weighting = pipeline::parsePlanWeighting(opt.planWeighting);
        for (const std::string& b : opt.viewBpws) spec.layerViewBpw.push_back(factor::Bpw::parse(b));
        spec.layerViewLs = opt.viewLs;
        spec.layerViewIterations = opt.viewIters;
        spec.cacheDir = opt.cache.empty() ? outDir / "cache" : fs::path(opt.cache);
        spec.decompositions.cache = opt.svdCache.cache();
        spec.seed = opt.seed;
        spec.warmStart = opt.warmStart;

        ProgressBar bar("study " + fs::path(model).filename().string());
        std::fprintf(stderr, "%s: %zu points, ppl on %s at ctx %d\n", model.c_str(), points.size(), opt.evalText.c_str(),
                     opt.ctx);
        const auto onPoint = [&bar](const pipeline::StudyPointResult& r) {
            bar.finish();
            std::fprintf(stderr, "  %-34s model %7.4f bpw  factorized %6.4f bpw  ppl %10.4f  %6.1f s%s%s\n",
                         r.point.label().c_str(), r.modelBpw, r.factorizedBpw, r.ppl, r.seconds,
                         r.fromCache            ? "  (read from the study cache)"
                         : r.cachedLayers > 0 ? ("  (" + std::to_string(r.cachedLayers) + " layers cached)").c_str()
                                              : "",
                         r.warmStart ? "  (warm start)" : "");
        };
        results.push_back(pipeline::runStudy(spec, bar.context(env), onPoint));
        bar.finish();
        std::fprintf(stderr, "  original ppl %.4f at %.2f bpw\n", results.back().originalPpl, results.back().originalBpw);
        if (results.back().cancelled) break;
    }
    pipeline::writeStudyFiles(results, outDir);
    if (!results.empty() && results.back().cancelled) {
        // What finished is kept: the files hold it, and the cache lets a rerun resume.
        std::fprintf(stderr, "mdbf: study stopped after %zu of %zu points of %s; wrote %s/study.json with those\n",
                     results.back().points.size(), points.size(), results.back().model.c_str(), opt.out.c_str());
        return kExitCancelled;
    }
    if (opt.json) {
        printJson({{"out", opt.out},
                   {"files", {"study.json", "points.csv", "layer_view.csv"}},
                   {"study", pipeline::studyToJson(results)}});
    } else {
        std::printf("wrote %s/study.json, points.csv and layer_view.csv (plots: mdbf-study-plot --study %s/study.json)\n",
                    opt.out.c_str(), opt.out.c_str());
    }
    return kExitOk;
}

}  // namespace

Command registerStudyCommand(CLI::App& root)
{
    auto opt = std::make_shared<StudyOptions>();
    CLI::App* sub = root.add_subcommand("study", "Perplexity against model bpw for DBF and MDBF over a grid of budgets");
    sub->add_option("--model", opt->models, "Hugging Face model directory (repeatable)")
        ->required()
        ->check(CLI::ExistingDirectory);
    sub->add_option("--eval-text", opt->evalText, "Text for perplexity")->required()->check(CLI::ExistingFile);
    sub->add_option("--ctx", opt->ctx, "Perplexity window")->check(intRange(2, kMaxContext))->capture_default_str();
    sub->add_option("--calib-text", opt->calibText, "Calibration text (activation-aware objectives)")
        ->check(CLI::ExistingFile);
    sub->add_option("--calib-ctx", opt->calibCtx, "Calibration window")->check(intRange(2, kMaxContext))->capture_default_str();
    sub->add_option("--bpw", opt->bpws, "Budgets (comma-separated)")->delimiter(',')->capture_default_str();
    sub->add_option("--methods", opt->methods, "dbf and/or mdbf")
        ->delimiter(',')
        ->check(CLI::IsMember({"dbf", "mdbf"}))
        ->capture_default_str();
    sub->add_option("--ls", opt->ls, "Envelope ranks of mdbf")
        ->delimiter(',')
        ->check(intRange(1, factor::kMaxEnvelopeRank))
        ->capture_default_str();
    sub->add_option("--objectives", opt->objectives, "plain, diag, gram")
        ->delimiter(',')
        ->check(CLI::IsMember({"plain", "diag", "gram"}))
        ->capture_default_str();
    sub->add_option("--sequential", opt->sequential, "Sequential calibration for activation-aware points: off, on, both")
        ->check(CLI::IsMember({"off", "on", "both"}))
        ->capture_default_str();
    addIterationsOption(*sub, "--iters", opt->iters, "ADMM outer iterations of grid points")->capture_default_str();
    sub->add_option("--point", opt->extra,
                    "Extra point method:l:bpw[:objective[:seq[:iters]]] or plan:bpw[:objective[:iters]] (repeatable)");
    sub->add_flag("--plan", opt->plan, "Also a planned point (mdbf plan) per budget and plain/gram objective");
    sub->add_option("--plan-ls", opt->planLs, "Envelope ranks the planned points try for mdbf")
        ->delimiter(',')
        ->check(intRange(1, factor::kMaxEnvelopeRank))
        ->capture_default_str();
    sub->add_option("--plan-grid", opt->planGrid, "Budgets a plan tries per layer and format")
        ->check(intRange(2, 64))
        ->capture_default_str();
    addIterationsOption(*sub, "--plan-trial-iters", opt->planTrialIters, "ADMM outer iterations of a plan's trials")
        ->capture_default_str();
    sub->add_option("--plan-weigh", opt->planWeighting, "How a plan adds up layer errors: layers or weights")
        ->check(CLI::IsMember({"layers", "weights"}))
        ->capture_default_str();
    sub->add_option("--layer-view-bpw", opt->viewBpws, "Budgets of the per-layer error-vs-l view (empty: none)")
        ->delimiter(',');
    sub->add_option("--layer-view-ls", opt->viewLs, "Envelope ranks of the per-layer view")
        ->delimiter(',')
        ->check(intRange(1, factor::kMaxEnvelopeRank))
        ->capture_default_str();
    addIterationsOption(*sub, "--layer-view-iters", opt->viewIters, "ADMM iterations of the per-layer view")
        ->capture_default_str();
    sub->add_option("--cache", opt->cache, "Cache of factorized layers and finished measurements (default OUT/cache)")
        ->check(nonEmptyPath());
    sub->add_flag("--warm-start", opt->warmStart,
                  "Refine each layer from the cached result of the same layer at the nearest k (recorded per point)");
    sub->add_option("--out", opt->out, "Output directory")->required()->check(nonEmptyPath());
    opt->svdCache.addTo(*sub);
    addSeedOption(*sub, opt->seed, "Factorizer seed")->capture_default_str();
    addJsonFlag(*sub, opt->json);
    return {sub, [opt](const CommandEnv& env) { return runStudy(*opt, env); }};
}

}  // namespace mdbf::cli
