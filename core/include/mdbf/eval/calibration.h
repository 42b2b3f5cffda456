#pragma once
// Calibration statistics for the activation-aware objectives (docs/ALGORITHM.md §6.4): calibration text is
// run through the model in windows cut as for perplexity (§7: consecutive, non-overlapping windows
// of ctx tokens from the start, the final partial window dropped), and for every projection the
// inputs X (N×m, one row per token of every window) are summarised as
//     d_j = mean over tokens of x_j²      (the diagonal objective's channel weights)
//     H   = XᵀX / N                       (the Gram objective's matrix; only on request)
// Sums are accumulated in double. The projections are recorded by wrapping them in a recording
// model::Linear for the duration of the run; the model code is not involved.

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "mdbf/base/matrix.h"
#include "mdbf/base/run_context.h"
#include "mdbf/model/transformer.h"

namespace mdbf::eval {

class CalibrationCache;

/// What to collect.
struct CalibrationOptions {
    int ctx = 256;                    ///< window length in tokens (≥ 1)
    bool gram = false;                ///< also collect H = XᵀX / N (m×m per layer: m² doubles)
    std::vector<std::string> layers;  ///< projections to record, with or without ".weight"; empty = all
};

/// The statistics of one projection's inputs.
struct LayerCalibration {
    Eigen::VectorXd secondMoments;  ///< d_j = mean(x_j²), m entries
    Eigen::MatrixXd gram;           ///< H = XᵀX / N, m×m; empty unless CalibrationOptions::gram
    Eigen::MatrixXd cross;          ///< C = XᵀX_ref / N, m×m, X_ref the same tokens' inputs in the
                                    ///< reference model; collectPairedCalibration only

    /// d as float, ready for factor::FactorizerOptions::channelWeights.
    VectorF channelWeights() const { return secondMoments.cast<float>(); }
};

/// The statistics of one calibration run (or one cache file).
struct CalibrationStats {
    std::map<std::string, LayerCalibration, std::less<>> layers;  ///< by projection name (no ".weight")
    std::int64_t tokens = 0;      ///< N: tokens run through the model (windows · ctx), seen by every layer
    std::int64_t windows = 0;     ///< windows of ctx tokens
    int ctx = 0;                  ///< window length
    bool hasGram = false;         ///< every layer carries H
    double seconds = 0.0;         ///< wall time of the run (of the cache read when fromCache)
    bool fromCache = false;       ///< read from a cache file instead of computed
    std::filesystem::path cacheFile;  ///< the cache file read or written (empty without a cache)
    std::string cacheNote;        ///< non-empty when the cache could not be used: a corrupt file that
                                  ///< was ignored, or a write that failed (the statistics are still valid)

    /// The statistics of a projection (with or without ".weight"). Throws InvalidArgument naming it
    /// when it was not recorded.
    const LayerCalibration& layer(std::string_view name) const;
};

/// Runs `ids` through `model` in windows of options.ctx tokens and records the requested
/// projections. While it runs, each recorded projection is replaced by a recording wrapper around
/// an equal copy of itself (dense, 16-bit dense or factorized layers); before it returns or throws
/// the copies are put back, so the model computes what it computed before. Do not run forward()
/// on the model concurrently with this call. Reports ("calibration", windows done, windows) and
/// polls ctx.stop between windows: a stop request throws Cancelled. Throws InvalidArgument for
/// ctx < 1, fewer ids than one window, an unknown projection name, or a layer type it cannot copy.
CalibrationStats collectCalibration(model::Transformer& model, std::span<const std::int32_t> ids,
                                    const CalibrationOptions& options, const RunContext& ctx = {});

/// collectCalibration on `model` (the partly quantized one) paired with `reference` (the original):
/// each window goes through `reference` and then `model`, so that besides d and H (always collected
/// here, whatever options.gram says) every recorded projection gets the cross moments C = XᵀX_ref / N
/// of its inputs X in `model` with the same tokens' inputs X_ref in `reference`. Both models are
/// restored before it returns or throws. Throws as collectCalibration, and InvalidArgument when a
/// projection's input size differs between the models.
CalibrationStats collectPairedCalibration(model::Transformer& reference, model::Transformer& model,
                                          std::span<const std::int32_t> ids, const CalibrationOptions& options,
                                          const RunContext& ctx = {});

/// The statistics of a text file for the Hugging Face model in `modelDir`: looks the request up in
/// `cache` first (when given), otherwise loads the model (progress "loading"), tokenizes the text
/// with the model's tokenizer (no special tokens), runs collectCalibration and stores the result
/// in the cache (a failed write only sets cacheNote). Throws IoError / FormatError naming the file
/// for an unreadable or invalid text or model, InvalidArgument naming the text file when it is
/// empty or shorter than one window, Cancelled on a stop request (nothing is cached then).
CalibrationStats calibrateModel(const std::filesystem::path& modelDir, const std::filesystem::path& textFile,
                                const CalibrationOptions& options, const CalibrationCache* cache = nullptr,
                                const RunContext& ctx = {});

}  // namespace mdbf::eval
