#pragma once
// Calibration for sequential quantization (docs/ALGORITHM.md §6.5): block by block, each block's projections
// are recorded on a working copy of the model into which the projections finished so far have been
// swapped, so every layer is fitted to the activations the quantized model will really feed it.
// For the Gram objective the same windows also go through the original model, and the cross moments
// of the two inputs make each layer's target the original model's output (outputMatchingTarget),
// not its own weights: a layer then also corrects what the blocks before it got wrong, instead of
// faithfully passing the error on. (The diagonal objective cannot express that correction; it is
// only refitted to the new inputs' second moments.)

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "mdbf/base/run_context.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/model/transformer.h"

namespace mdbf::pipeline {

/// A statistics provider for QuantizeOptions::statistics. Not thread-safe; use from the quantizing
/// thread only.
class SequentialCalibration {
public:
    /// Remembers the request; the model is loaded and the text tokenized at the first call.
    /// options.layers is ignored (each block's projections are recorded in turn).
    SequentialCalibration(std::filesystem::path modelDir, std::filesystem::path textFile, eval::CalibrationOptions options,
                          RunContext ctx = {});

    /// The statistics of projection `name` (d; with options.gram also H and the cross moments C
    /// from a run paired with the original model), recorded with every factorized layer of `done`
    /// swapped in. A block is recorded
    /// once, when its first projection asks. Throws what eval::collectCalibration
    /// and model loading throw (InvalidArgument for a text shorter than one window, Cancelled).
    LayerStatistics operator()(const std::string& name, std::span<const LayerQuantResult> done);

    /// Calibration runs so far (one per block that needed statistics).
    int runs() const { return m_runs; }

private:
    std::filesystem::path m_modelDir;
    std::filesystem::path m_textFile;
    eval::CalibrationOptions m_options;
    RunContext m_ctx;
    std::optional<model::Transformer> m_model;      // earlier blocks quantized
    std::optional<model::Transformer> m_reference;  // the original (gram only)
    std::vector<std::int32_t> m_ids;
    std::set<std::string> m_applied;
    std::optional<eval::CalibrationStats> m_block;
    int m_blockIndex = std::numeric_limits<int>::min();
    int m_runs = 0;
};

/// The block index of a projection named "model.layers.<b>.…", or -1 for other names.
int projectionBlock(const std::string& name);

/// The layers (indices into `plans`) in the rounds they can be computed in: all in one round, or,
/// with sequential calibration, one block after the other, since a block's statistics need the
/// earlier blocks' factorizations (layers outside the blocks form rounds of their own, in order).
/// A layer's statistics may depend only on the layers of earlier rounds. Never throws except
/// std::bad_alloc.
std::vector<std::vector<std::size_t>> quantizationRounds(std::span<const LayerPlan> plans, bool sequential);

/// A LayerStatistics from recorded statistics (d and, when recorded, H and C). Throws InvalidArgument
/// when `name` was not recorded.
LayerStatistics layerStatistics(const eval::CalibrationStats& stats, const std::string& name);

}  // namespace mdbf::pipeline
