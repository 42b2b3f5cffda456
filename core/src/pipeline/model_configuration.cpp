#include "mdbf/pipeline/model_configuration.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/model/architecture.h"
#include "mdbf/pipeline/layer_job.h"

namespace mdbf::pipeline {

namespace {

bool sameSettings(const factor::LayerQuantSettings& a, const factor::LayerQuantSettings& b)
{
    return a.method == b.method && a.bpw == b.bpw && a.l == b.l && a.paths == b.paths && a.iterations == b.iterations &&
           a.objective == b.objective && a.dense == b.dense;
}

/// The fields of `s` that differ from `base`, as rule fields of the config file format.
nlohmann::json differingFields(const factor::LayerQuantSettings& s, const factor::LayerQuantSettings& base)
{
    nlohmann::json j = nlohmann::json::object();
    if (s.method != base.method) j["method"] = std::string(factor::methodName(s.method));
    if (s.bpw != base.bpw) j["bpw"] = s.bpw.text();  // a decimal string keeps the budget exact
    // dbf forces l = 1 on resolution, and a dbf rule must not name another l.
    if (s.method != factor::Method::Dbf && s.l != base.l) j["l"] = s.l;
    if (s.paths != base.paths) j["paths"] = s.paths;
    if (s.iterations != base.iterations) j["iterations"] = s.iterations;
    if (s.objective != base.objective) j["objective"] = std::string(factor::objectiveName(s.objective));
    return j;
}

nlohmann::json settingsJson(const factor::LayerQuantSettings& s)
{
    return {{"method", std::string(factor::methodName(s.method))},
            {"bpw", s.bpw.text()},
            {"l", s.l},
            {"paths", s.paths},
            {"iterations", s.iterations},
            {"objective", std::string(factor::objectiveName(s.objective))}};
}

bool matchesAny(const std::vector<std::string>& patterns, const std::string& name)
{
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return factor::globMatch(p, name); });
}

}  // namespace

factor::QuantConfig quantConfigOf(const io::ModelConfig& model, const ConfiguredSettings& configured)
{
    const std::vector<std::string> names = model::projectionNames(model);

    // The most common settings in use become the defaults (first in model order on a tie).
    std::vector<std::pair<factor::LayerQuantSettings, int>> counts;
    for (const std::string& name : names) {
        const auto it = configured.find(name);
        if (it == configured.end()) continue;
        const factor::LayerQuantSettings& s = it->second;
        auto c = std::find_if(counts.begin(), counts.end(), [&](const auto& e) { return sameSettings(e.first, s); });
        if (c == counts.end()) counts.emplace_back(s, 1);
        else ++c->second;
    }
    factor::LayerQuantSettings defaults;
    int best = 0;
    for (const auto& [s, n] : counts) {
        if (n > best) {
            best = n;
            defaults = s;
        }
    }
    defaults.dense = false;

    // Form A: everything dense, one rule per factorized layer. Form B: the usual dense patterns,
    // one rule per projection that departs from them or from the defaults.
    nlohmann::json rulesA = nlohmann::json::array();
    nlohmann::json rulesB = nlohmann::json::array();
    const std::vector<std::string> usualDense = factor::QuantConfig::defaultDensePatterns();
    for (const std::string& name : names) {
        const auto it = configured.find(name);
        const bool denseByPattern = matchesAny(usualDense, name);
        if (it != configured.end()) {
            const nlohmann::json fields = differingFields(it->second, defaults);
            nlohmann::json a = fields;
            a["pattern"] = name;
            a["dense"] = false;
            rulesA.push_back(std::move(a));
            if (denseByPattern || !fields.empty()) {
                nlohmann::json b = fields;
                b["pattern"] = name;
                if (denseByPattern) b["dense"] = false;
                rulesB.push_back(std::move(b));
            }
        } else if (!denseByPattern) {
            rulesB.push_back({{"pattern", name}, {"dense", true}});
        }
    }
    nlohmann::json json = {{"format", "mdbf-quant-config"}, {"version", 1}, {"defaults", settingsJson(defaults)}};
    if (rulesA.size() < rulesB.size()) {
        json["rules"] = std::move(rulesA);
        json["dense"] = nlohmann::json::array({"*"});
    } else {
        json["rules"] = std::move(rulesB);
        json["dense"] = usualDense;
    }
    return factor::QuantConfig::fromJson(json, "studio configuration");
}

QuantizeResult quantizeResultOf(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                const ConfiguredResults& results, const RunContext& ctx)
{
    const std::vector<std::string> names = model::projectionNames(model);
    for (const auto& [name, r] : results) {
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            throw InvalidArgument("layer '" + name +
                                  "' is not a projection the engine runs; revert it to dense before exporting");
        }
    }
    QuantizeResult result;
    result.layers.reserve(names.size());
    const auto total = static_cast<std::int64_t>(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        ctx.throwIfStopped();
        const std::string& name = names[i];
        const auto it = results.find(name);
        if (it == results.end() || !it->second) {
            LayerQuantResult layer;
            layer.name = name;
            const io::TensorInfo& info =
                checkpoint.info(model::weightTensorOf(name, checkpoint.contains(model::weightName(name))));
            layer.n = info.shape.size() == 2 ? info.shape[0] : 0;
            layer.m = info.shape.size() == 2 ? info.shape[1] : 0;
            layer.keptDense = true;
            layer.bpw = static_cast<double>(storedBitsPerElement(info.dtype));
            layer.note = "not factorized in this configuration";
            result.layers.push_back(std::move(layer));
        } else {
            result.layers.push_back(layerQuantResult(name, *it->second, loadLayerBias(checkpoint, name)));
        }
        ctx.report("layers", static_cast<std::int64_t>(i) + 1, total);
    }
    accountResult(checkpoint, result);
    return result;
}

model::Transformer configuredTransformer(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                         const ConfiguredResults& results, const RunContext& ctx)
{
    const QuantizeResult layers = quantizeResultOf(model, checkpoint, results, ctx);
    model::Transformer transformer = model::Transformer::fromCheckpoint(model, checkpoint, ctx);
    applyQuantization(transformer, layers);
    return transformer;
}

}  // namespace mdbf::pipeline
