#include "calibration_options.h"

#include <cstdio>
#include <optional>

#include "mdbf/base/text_file.h"
#include "mdbf/eval/calibration_cache.h"

namespace mdbf::cli {

CLI::Option* addCalibrationOptions(CLI::App& app, CalibrationCliOptions& options)
{
    CLI::Option* text = app.add_option("--calib-text", options.text,
                                       "Calibration text (UTF-8) for the activation-aware objectives diag and gram")
                            ->check(CLI::ExistingFile);
    app.add_option("--calib-ctx", options.ctx, "Calibration window length in tokens")
        ->check(intRange(2, kMaxContext))
        ->capture_default_str();
    app.add_option("--calib-cache", options.cacheDir,
                   "Directory of cached calibration statistics (default $XDG_CACHE_HOME/mdbf or ~/.cache/mdbf)");
    app.add_flag("--no-calib-cache", options.noCache, "Neither read nor write cached calibration statistics");
    return text;
}

eval::CalibrationStats runCalibration(const std::string& modelDir, const CalibrationCliOptions& options,
                                      const eval::CalibrationOptions& request, const CommandEnv& env)
{
    std::optional<eval::CalibrationCache> cache;
    if (!options.noCache) {
        const std::filesystem::path dir =
            options.cacheDir.empty() ? eval::CalibrationCache::defaultDirectory() : std::filesystem::path(options.cacheDir);
        if (!dir.empty()) cache.emplace(dir);
    }
    ProgressBar bar("calibrate");
    const eval::CalibrationStats stats =
        eval::calibrateModel(modelDir, options.text, request, cache ? &*cache : nullptr, bar.context(env));
    bar.finish();
    std::fprintf(stderr, "calibration: %lld tokens in %lld windows of %d from %s%s, %.2f s%s\n",
                 static_cast<long long>(stats.tokens), static_cast<long long>(stats.windows), stats.ctx,
                 options.text.c_str(), stats.hasGram ? " (with input Gram matrices)" : "", stats.seconds,
                 stats.fromCache ? " (cached)" : "");
    if (!stats.cacheNote.empty()) std::fprintf(stderr, "warning: %s\n", stats.cacheNote.c_str());
    return stats;
}

std::string calibrationIdentity(const std::string& modelDir, const CalibrationCliOptions& options)
{
    if (options.text.empty()) return {};
    eval::CalibrationOptions request;
    request.ctx = options.ctx;
    return eval::CalibrationCache::key(modelDir, readBinaryFile(options.text), request);
}

}  // namespace mdbf::cli
