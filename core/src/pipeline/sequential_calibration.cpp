#include "mdbf/pipeline/sequential_calibration.h"

#include "mdbf/base/text_file.h"
#include "mdbf/model/architecture.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::pipeline {

int projectionBlock(const std::string& name)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(name);
    return id ? id->block : -1;
}

std::vector<std::vector<std::size_t>> quantizationRounds(std::span<const LayerPlan> plans, bool sequential)
{
    std::vector<std::vector<std::size_t>> rounds;
    int block = 0;
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const int b = projectionBlock(plans[i].name);
        if (rounds.empty() || (sequential && (b != block || b < 0))) rounds.emplace_back();
        rounds.back().push_back(i);
        block = b;
    }
    return rounds;
}

LayerStatistics layerStatistics(const eval::CalibrationStats& stats, const std::string& name)
{
    const eval::LayerCalibration& c = stats.layer(name);
    LayerStatistics s;
    s.channelWeights = c.channelWeights();
    s.inputGram = c.gram;
    s.cross = c.cross;
    return s;
}

SequentialCalibration::SequentialCalibration(std::filesystem::path modelDir, std::filesystem::path textFile,
                                             eval::CalibrationOptions options, RunContext ctx)
    : m_modelDir(std::move(modelDir)), m_textFile(std::move(textFile)), m_options(std::move(options)), m_ctx(std::move(ctx))
{
}

LayerStatistics SequentialCalibration::operator()(const std::string& name, std::span<const LayerQuantResult> done)
{
    const int block = projectionBlock(name);
    if (!m_block || m_blockIndex != block) {
        if (!m_model) {
            m_model.emplace(model::Transformer::load(m_modelDir, m_ctx));
            if (m_options.gram) m_reference.emplace(model::Transformer::load(m_modelDir, m_ctx));
            const Tokenizer tokenizer = Tokenizer::fromModelDir(m_modelDir);
            m_ids = tokenizer.encode(readUtf8File(m_textFile));
        }
        for (const LayerQuantResult& r : done) {
            if (r.layer && m_applied.insert(r.name).second) m_model->replaceLinear(r.name, r.layer);
        }
        eval::CalibrationOptions options = m_options;
        options.layers.clear();
        if (block >= 0) {
            for (const std::string& p : model::projectionNames(m_model->config())) {
                if (projectionBlock(p) == block) options.layers.push_back(p);
            }
        } else {
            options.layers.push_back(name);
        }
        m_block = m_options.gram ? eval::collectPairedCalibration(*m_reference, *m_model, m_ids, options, m_ctx)
                                 : eval::collectCalibration(*m_model, m_ids, options, m_ctx);
        m_blockIndex = block;
        ++m_runs;
    }
    return layerStatistics(*m_block, name);
}

}  // namespace mdbf::pipeline
