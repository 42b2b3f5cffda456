#pragma once
// The calibration options shared by `mdbf factorize` and `mdbf quantize` (docs/ALGORITHM.md §6, docs/CLI.md §1.6).

#include <string>

#include "cli_common.h"
#include "mdbf/eval/calibration.h"

namespace mdbf::cli {

/// --calib-text, --calib-ctx, --calib-cache and --no-calib-cache.
struct CalibrationCliOptions {
    std::string text;      ///< calibration text file (empty when not given)
    int ctx = 256;         ///< window length
    std::string cacheDir;  ///< cache directory (empty = the default one)
    bool noCache = false;  ///< neither read nor write the cache
};

/// Registers the calibration options on a subcommand; returns the --calib-text option.
CLI::Option* addCalibrationOptions(CLI::App& app, CalibrationCliOptions& options);

/// Collects (or reads from the cache) the statistics `request` asks for, for the model in
/// `modelDir`, with a progress bar and a one-line summary (and any cache warning) on stderr.
/// Throws what eval::calibrateModel throws; Cancelled on Ctrl-C.
eval::CalibrationStats runCalibration(const std::string& modelDir, const CalibrationCliOptions& options,
                                      const eval::CalibrationOptions& request, const CommandEnv& env);

/// What statistics calibrated with `options` on the model in `modelDir` depend on (model files,
/// text bytes, window), as a key for the caches built on them; empty without a calibration text.
/// Throws IoError when the text or the model's files cannot be read.
std::string calibrationIdentity(const std::string& modelDir, const CalibrationCliOptions& options);

}  // namespace mdbf::cli
