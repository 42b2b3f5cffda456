#include "mdbf/eval/calibration.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "eval/recording_linear.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/calibration_cache.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/tokenizer/tokenizer.h"

namespace mdbf::eval {

namespace {

using Clock = std::chrono::steady_clock;

std::string stripWeight(std::string_view name)
{
    constexpr std::string_view suffix = ".weight";
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
        name.remove_suffix(suffix.size());
    return std::string(name);
}

// Swaps wrappers into a model and puts the wrapped copies back when it goes out of scope, so the
// model is whole again however the run ends.
class WrapperInstallation {
public:
    explicit WrapperInstallation(model::Transformer& model) : m_model(model) {}
    WrapperInstallation(const WrapperInstallation&) = delete;
    WrapperInstallation& operator=(const WrapperInstallation&) = delete;

    ~WrapperInstallation()
    {
        for (auto& [name, original] : m_originals) {
            try {
                m_model.replaceLinear(name, original);
            } catch (...) {
                // Same name and shape as when it was installed: cannot fail.
            }
        }
    }

    /// A recording wrapper around a copy of `name`, paired with `reference` when given.
    std::shared_ptr<RecordingLinear> record(const std::string& name, bool gram,
                                            std::shared_ptr<const InputKeepingLinear> reference = nullptr)
    {
        auto recorder = std::make_shared<RecordingLinear>(copyLinear(m_model.linear(name)), gram, std::move(reference));
        install(name, recorder, recorder->inner());
        return recorder;
    }

    /// An input-keeping wrapper around a copy of `name`.
    std::shared_ptr<InputKeepingLinear> keepInputs(const std::string& name)
    {
        auto keeper = std::make_shared<InputKeepingLinear>(copyLinear(m_model.linear(name)));
        install(name, keeper, keeper->inner());
        return keeper;
    }

private:
    void install(const std::string& name, std::shared_ptr<const model::Linear> wrapper,
                 std::shared_ptr<const model::Linear> original)
    {
        m_model.replaceLinear(name, std::move(wrapper));
        m_originals.emplace_back(name, std::move(original));
    }

    model::Transformer& m_model;
    std::vector<std::pair<std::string, std::shared_ptr<const model::Linear>>> m_originals;
};

std::string tooShort(std::size_t tokens, int ctx)
{
    return "the calibration text has " + std::to_string(tokens) + " tokens, fewer than one window of ctx = " +
           std::to_string(ctx);
}

std::vector<std::string> requestedLayers(const model::Transformer& model, const CalibrationOptions& options)
{
    if (options.ctx < 1) throw InvalidArgument("calibration ctx must be at least 1 (got " + std::to_string(options.ctx) + ")");
    std::vector<std::string> names;
    if (options.layers.empty()) {
        names = model.linearNames();
    } else {
        for (const std::string& layer : options.layers) names.push_back(stripWeight(layer));
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
    }
    return names;
}

// The one collection loop: windows through `model`, each first through `reference` when given (then
// every recorder also accumulates the cross moments against the reference's inputs and H).
CalibrationStats collect(model::Transformer& model, model::Transformer* reference, std::span<const std::int32_t> ids,
                         const CalibrationOptions& options, const RunContext& ctx)
{
    const auto start = Clock::now();
    const std::vector<std::string> names = requestedLayers(model, options);
    if (ids.size() < static_cast<std::size_t>(options.ctx)) throw InvalidArgument(tooShort(ids.size(), options.ctx));
    const bool gram = options.gram || reference != nullptr;
    std::optional<WrapperInstallation> referenceWrappers;
    if (reference) referenceWrappers.emplace(*reference);
    WrapperInstallation wrappers(model);
    std::vector<std::pair<std::string, std::shared_ptr<RecordingLinear>>> recorders;
    for (const std::string& name : names) {
        std::shared_ptr<const InputKeepingLinear> keeper;
        if (reference) {
            if (reference->linear(name).inFeatures() != model.linear(name).inFeatures())
                throw InvalidArgument("paired calibration: layer '" + name +
                                      "' has different input sizes in the two models");
            keeper = referenceWrappers->keepInputs(name);
        }
        recorders.emplace_back(name, wrappers.record(name, gram, std::move(keeper)));
    }

    CalibrationStats stats;
    stats.ctx = options.ctx;
    stats.hasGram = gram;
    const auto total = static_cast<std::int64_t>(ids.size()) / options.ctx;
    ctx.report("calibration", 0, total);
    for (std::int64_t w = 0; w < total; ++w) {
        ctx.throwIfStopped();
        const auto window = ids.subspan(static_cast<std::size_t>(w * options.ctx), static_cast<std::size_t>(options.ctx));
        if (reference) reference->forward(window, ctx.threadCount());
        model.forward(window, ctx.threadCount());
        stats.windows = w + 1;
        ctx.report("calibration", w + 1, total);
    }
    stats.tokens = stats.windows * options.ctx;
    for (const auto& [name, recorder] : recorders) stats.layers.emplace(name, recorder->statistics());
    stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return stats;
}

}  // namespace

const LayerCalibration& CalibrationStats::layer(std::string_view name) const
{
    const auto it = layers.find(stripWeight(name));
    if (it == layers.end())
        throw InvalidArgument("no calibration statistics were collected for layer '" + std::string(name) + "'");
    return it->second;
}

CalibrationStats collectCalibration(model::Transformer& model, std::span<const std::int32_t> ids,
                                    const CalibrationOptions& options, const RunContext& ctx)
{
    return collect(model, nullptr, ids, options, ctx);
}

CalibrationStats collectPairedCalibration(model::Transformer& reference, model::Transformer& model,
                                          std::span<const std::int32_t> ids, const CalibrationOptions& options,
                                          const RunContext& ctx)
{
    return collect(model, &reference, ids, options, ctx);
}

CalibrationStats calibrateModel(const std::filesystem::path& modelDir, const std::filesystem::path& textFile,
                                const CalibrationOptions& options, const CalibrationCache* cache, const RunContext& ctx)
{
    const auto start = Clock::now();
    const std::string text = readUtf8File(textFile);
    if (text.empty()) throw InvalidArgument("'" + textFile.string() + "': the calibration text is empty");
    if (options.ctx < 1) throw InvalidArgument("calibration ctx must be at least 1 (got " + std::to_string(options.ctx) + ")");

    std::string key;
    std::string note;
    if (cache) {
        key = CalibrationCache::key(modelDir, text, options);
        if (std::optional<CalibrationStats> hit = cache->load(key, &note)) {
            hit->seconds = std::chrono::duration<double>(Clock::now() - start).count();
            return std::move(*hit);
        }
    }

    ctx.throwIfStopped();
    model::Transformer model = model::Transformer::load(modelDir, ctx);
    const Tokenizer tokenizer = Tokenizer::fromModelDir(modelDir);
    const std::vector<std::int32_t> ids = tokenizer.encode(text);
    if (ids.size() < static_cast<std::size_t>(options.ctx))
        throw InvalidArgument("'" + textFile.string() + "': " + tooShort(ids.size(), options.ctx));
    requireIdsInVocabulary(ids, model.config().vocabSize, (modelDir / "tokenizer.json").string(), modelDir.string());

    CalibrationStats stats = collectCalibration(model, ids, options, ctx);
    stats.cacheNote = note;
    if (cache) {
        try {
            cache->store(key, stats);
            stats.cacheFile = cache->fileFor(key);
        } catch (const Error& e) {
            stats.cacheNote = (note.empty() ? "" : note + "; ") + e.what();
        }
    }
    stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return stats;
}

}  // namespace mdbf::eval
