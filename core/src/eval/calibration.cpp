#include "mdbf/eval/calibration.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "eval/recording_linear.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/calibration_cache.h"
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

// Installs recording wrappers and puts the wrapped copies back when it goes out of scope, so the
// model is whole again however the run ends.
class RecorderInstallation {
public:
    explicit RecorderInstallation(model::Transformer& model) : m_model(model) {}
    RecorderInstallation(const RecorderInstallation&) = delete;
    RecorderInstallation& operator=(const RecorderInstallation&) = delete;

    ~RecorderInstallation()
    {
        for (auto& [name, recorder] : m_recorders) {
            try {
                m_model.replaceLinear(name, recorder->inner());
            } catch (...) {
                // Same name and shape as when it was installed: cannot fail.
            }
        }
    }

    void install(const std::string& name, bool gram)
    {
        auto recorder = std::make_shared<RecordingLinear>(copyLinear(m_model.linear(name)), gram);
        m_model.replaceLinear(name, recorder);
        m_recorders.emplace_back(name, std::move(recorder));
    }

    const std::vector<std::pair<std::string, std::shared_ptr<RecordingLinear>>>& recorders() const
    {
        return m_recorders;
    }

private:
    model::Transformer& m_model;
    std::vector<std::pair<std::string, std::shared_ptr<RecordingLinear>>> m_recorders;
};

std::string tooShort(std::size_t tokens, int ctx)
{
    return "the calibration text has " + std::to_string(tokens) + " tokens, fewer than one window of ctx = " +
           std::to_string(ctx);
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
    const auto start = Clock::now();
    if (options.ctx < 1) throw InvalidArgument("calibration ctx must be at least 1 (got " + std::to_string(options.ctx) + ")");
    if (ids.size() < static_cast<std::size_t>(options.ctx)) throw InvalidArgument(tooShort(ids.size(), options.ctx));

    std::vector<std::string> names;
    if (options.layers.empty()) {
        names = model.linearNames();
    } else {
        for (const std::string& layer : options.layers) names.push_back(stripWeight(layer));
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
    }

    RecorderInstallation recorders(model);
    for (const std::string& name : names) recorders.install(name, options.gram);

    CalibrationStats stats;
    stats.ctx = options.ctx;
    stats.hasGram = options.gram;
    const auto total = static_cast<std::int64_t>(ids.size()) / options.ctx;
    ctx.report("calibration", 0, total);
    for (std::int64_t w = 0; w < total; ++w) {
        ctx.throwIfStopped();
        const auto window = ids.subspan(static_cast<std::size_t>(w * options.ctx), static_cast<std::size_t>(options.ctx));
        model.forward(window, ctx.threadCount());
        stats.windows = w + 1;
        ctx.report("calibration", w + 1, total);
    }
    stats.tokens = stats.windows * options.ctx;
    for (const auto& [name, recorder] : recorders.recorders()) stats.layers.emplace(name, recorder->statistics());
    stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return stats;
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
    const Tokenizer tokenizer = Tokenizer::fromFile(modelDir / "tokenizer.json");
    const std::vector<std::int32_t> ids = tokenizer.encode(text);
    if (ids.size() < static_cast<std::size_t>(options.ctx))
        throw InvalidArgument("'" + textFile.string() + "': " + tooShort(ids.size(), options.ctx));

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
