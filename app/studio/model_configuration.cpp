#include "model_configuration.h"

#include <algorithm>
#include <string>
#include <vector>

namespace mdbf::studio {

namespace {

pipeline::ConfiguredResults resultsOf(const ModelConfiguration& config)
{
    pipeline::ConfiguredResults results;
    for (const auto& [key, f] : config)
        if (f && f->result) results.emplace(key.toStdString(), f->result);
    return results;
}

}  // namespace

pipeline::ModelBits accountConfiguration(const io::Checkpoint& checkpoint, const ModelConfiguration& config)
{
    std::vector<pipeline::FactorizedShape> factorized;
    for (const auto& [key, f] : config) {
        if (!f || !f->result) continue;
        const factor::FactorResult& r = *f->result;
        factorized.push_back({key.toStdString(), r.n, r.m, r.k, r.l, r.pathCount, r.method});
    }
    return pipeline::accountModel(checkpoint, factorized);
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
    pipeline::ConfiguredSettings settings;
    for (const auto& [key, f] : config)
        if (f && f->result) settings.emplace(key.toStdString(), settingsInUse(*f));
    return pipeline::quantConfigOf(model, settings);
}

pipeline::QuantizeResult quantizeResultOf(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                          const ModelConfiguration& config, const RunContext& ctx)
{
    return pipeline::quantizeResultOf(model, checkpoint, resultsOf(config), ctx);
}

model::Transformer configuredTransformer(const io::ModelConfig& model, const io::Checkpoint& checkpoint,
                                         const ModelConfiguration& config, const RunContext& ctx)
{
    return pipeline::configuredTransformer(model, checkpoint, resultsOf(config), ctx);
}

}  // namespace mdbf::studio
