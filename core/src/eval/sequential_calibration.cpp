#include "mdbf/eval/sequential_calibration.h"

#include "mdbf/base/text_file.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::eval {

int projectionBlock(const std::string& name)
{
    static constexpr std::string_view prefix = "model.layers.";
    if (name.rfind(prefix, 0) != 0) return -1;
    std::size_t i = prefix.size();
    int block = 0;
    bool digits = false;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
        block = block * 10 + (name[i] - '0');
        digits = true;
        ++i;
    }
    return digits ? block : -1;
}

LayerStatistics layerStatistics(const CalibrationStats& stats, const std::string& name)
{
    const LayerCalibration& c = stats.layer(name);
    LayerStatistics s;
    s.channelWeights = c.channelWeights();
    s.inputGram = c.gram;
    s.cross = c.cross;
    return s;
}

SequentialCalibration::SequentialCalibration(std::filesystem::path modelDir, std::filesystem::path textFile,
                                             CalibrationOptions options, RunContext ctx)
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
        CalibrationOptions options = m_options;
        options.layers.clear();
        if (block >= 0) {
            for (const std::string& p : model::Transformer::projectionNames(m_model->config())) {
                if (projectionBlock(p) == block) options.layers.push_back(p);
            }
        } else {
            options.layers.push_back(name);
        }
        m_block = m_options.gram ? collectPairedCalibration(*m_reference, *m_model, m_ids, options, m_ctx)
                                 : collectCalibration(*m_model, m_ids, options, m_ctx);
        m_blockIndex = block;
        ++m_runs;
    }
    return layerStatistics(*m_block, name);
}

}  // namespace mdbf::eval
