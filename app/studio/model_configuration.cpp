#include "model_configuration.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/transformer.h"

namespace mdbf::studio {

namespace {

std::int64_t storedBits(io::DType dtype) { return static_cast<std::int64_t>(8 * io::dtypeSize(dtype)); }

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

/// The checkpoint tensor holding a projection's weight: its own, or the embedding for a tied head.
std::string weightTensor(const io::Checkpoint& checkpoint, const std::string& name)
{
    const std::string own = name + ".weight";
    if (checkpoint.contains(own) || name != "lm_head") return own;
    return "model.embed_tokens.weight";
}

}  // namespace

double ConfigurationBits::modelBpw() const
{
    return totalWeights > 0 ? static_cast<double>(totalBits) / static_cast<double>(totalWeights) : 0.0;
}

double ConfigurationBits::factorizedBpw() const
{
    return factorizedWeights > 0 ? static_cast<double>(factorizedBits) / static_cast<double>(factorizedWeights) : 0.0;
}

ConfigurationBits accountConfiguration(const io::Checkpoint& checkpoint, const ModelConfiguration& config)
{
    ConfigurationBits bits;
    std::set<std::string> replaced;
    for (const auto& [key, f] : config) {
        if (!f || !f->result) continue;
        const factor::FactorResult& r = *f->result;
        bits.factorizedWeights += r.n * r.m;
        bits.factorizedBits += factor::storageBits(r.n, r.m, r.k, r.l, r.pathCount, r.method);
        const std::string own = key.toStdString() + ".weight";
        if (checkpoint.contains(own)) replaced.insert(own);
        else bits.totalWeights += r.n * r.m;  // a tied head: the embedding it reads stays stored
    }
    for (const io::TensorInfo& t : checkpoint.tensors()) {
        bits.totalWeights += t.elementCount();
        if (replaced.count(t.name) == 0) bits.totalBits += t.elementCount() * storedBits(t.dtype);
    }
    bits.totalBits += bits.factorizedBits;
    return bits;
}

factor::LayerQuantSettings settingsInUse(const LayerFactorization& f)
{
    const factor::FactorResult& r = *f.result;
    factor::LayerQuantSettings s;
    s.method = r.method;
    s.l = r.method == factor::Method::Dbf ? 1 : r.l;
    s.paths = r.pathCount;
    s.objective = r.objective;
    s.bpw = f.settings.bpw;
    if (!f.refined) s.iterations = 0;
    else if (f.complete) s.iterations = f.settings.iterations;
    else s.iterations = r.iterations / std::max(1, r.pathCount);
    s.dense = false;
    return s;
}

factor::QuantConfig quantConfigOf(const io::ModelConfig& model, const ModelConfiguration& config)
{
    const std::vector<std::string> names = model::Transformer::projectionNames(model);

    // The most common settings in use become the defaults (first in model order on a tie).
    std::vector<std::pair<factor::LayerQuantSettings, int>> counts;
    for (const std::string& name : names) {
        const auto it = config.find(QString::fromStdString(name));
        if (it == config.end() || !it->second) continue;
        const factor::LayerQuantSettings s = settingsInUse(*it->second);
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
        const auto it = config.find(QString::fromStdString(name));
        const bool configured = it != config.end() && it->second;
        const bool denseByPattern = matchesAny(usualDense, name);
        if (configured) {
            const nlohmann::json fields = differingFields(settingsInUse(*it->second), defaults);
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

eval::QuantizeResult quantizeResultOf(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                      const ModelConfiguration& config, const RunContext& ctx)
{
    const std::vector<std::string> names = model::Transformer::projectionNames(model);
    for (const auto& [key, f] : config) {
        if (std::find(names.begin(), names.end(), key.toStdString()) == names.end()) {
            throw InvalidArgument("layer '" + key.toStdString() +
                                  "' is not a projection the engine runs; revert it to dense before exporting");
        }
    }
    eval::QuantizeResult result;
    result.layers.reserve(names.size());
    const auto total = static_cast<std::int64_t>(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        ctx.throwIfStopped();
        const std::string& name = names[i];
        eval::LayerQuantResult layer;
        layer.name = name;
        const auto it = config.find(QString::fromStdString(name));
        if (it == config.end() || !it->second) {
            const io::TensorInfo& info = checkpoint.info(weightTensor(checkpoint, name));
            layer.n = info.shape.size() == 2 ? info.shape[0] : 0;
            layer.m = info.shape.size() == 2 ? info.shape[1] : 0;
            layer.keptDense = true;
            layer.bpw = static_cast<double>(storedBits(info.dtype));
            layer.note = "not factorized in this configuration";
        } else {
            const LayerFactorization& f = *it->second;
            const factor::FactorResult& r = *f.result;
            layer.n = r.n;
            layer.m = r.m;
            layer.k = r.k;
            layer.l = r.l;
            layer.paths = r.pathCount;
            layer.method = r.method;
            layer.objective = r.objective;
            layer.bpw = r.bpw;
            layer.relError = r.finalError;
            layer.plainError = r.finalPlainError;
            layer.clamped = r.clamped;
            layer.iterations = r.iterations;
            layer.termination = r.termination;
            layer.seconds = r.seconds;
            layer.note = r.message;
            VectorF bias;
            if (checkpoint.contains(name + ".bias")) {
                const std::vector<float> b = checkpoint.toFloat(name + ".bias");
                bias = Eigen::Map<const VectorF>(b.data(), static_cast<Eigen::Index>(b.size()));
            }
            const std::string kind = std::string(factor::methodName(r.method)) + " k=" + std::to_string(r.k) +
                                     " l=" + std::to_string(r.l) +
                                     (r.pathCount > 1 ? " P=" + std::to_string(r.pathCount) : "");
            layer.layer = std::make_shared<model::FactorizedLinear>(r.paths, std::move(bias), kind);
        }
        result.layers.push_back(std::move(layer));
        ctx.report("layers", static_cast<std::int64_t>(i) + 1, total);
    }
    const ConfigurationBits bits = accountConfiguration(checkpoint, config);
    result.factorizedWeights = bits.factorizedWeights;
    result.factorizedBits = bits.factorizedBits;
    result.totalWeights = bits.totalWeights;
    result.totalBits = bits.totalBits;
    result.factorizedBpw = bits.factorizedBpw();
    result.modelBpw = bits.modelBpw();
    return result;
}

model::Transformer configuredTransformer(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                         const ModelConfiguration& config, const RunContext& ctx)
{
    const eval::QuantizeResult layers = quantizeResultOf(model, checkpoint, config, ctx);
    model::Transformer transformer = model::Transformer::fromCheckpoint(model, checkpoint, ctx);
    eval::applyQuantization(transformer, layers);
    return transformer;
}

}  // namespace mdbf::studio
