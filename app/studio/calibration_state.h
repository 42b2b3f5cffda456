#pragma once
// The calibration statistics of the open model (docs/ALGORITHM.md §6.4), as the studio holds them: the core's
// per-layer second moments (and Gram matrices when collected), what they were measured on, and a tag
// that identifies the statistics in cache keys, so results computed under one calibration are never
// shown for another.

#include <memory>
#include <string>

#include <QString>

#include "mdbf/eval/calibration.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/io/model_config.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/pipeline/layer_job.h"

namespace mdbf::studio {

/// One finished calibration run. Immutable once made; shared with workers through shared_ptr<const>.
struct StudioCalibration {
    std::shared_ptr<const eval::CalibrationStats> stats;  ///< never null
    QString textFile;                                      ///< the calibration text's path
    QString tag;  ///< identifies the statistics (a hash of the second moments and of H's presence)

    /// Makes the record of `stats` measured on `textFile`, computing the tag.
    static std::shared_ptr<const StudioCalibration> make(eval::CalibrationStats stats, const QString& textFile);

    /// True when every layer carries its Gram matrix H (the gram objective is available).
    bool hasGram() const { return stats->hasGram; }

    /// "calibrated on eval-small.txt · ctx 128 · 2048 tokens" (plus "· diag only" without H).
    QString description() const;
};

/// The statistics `objective` needs for projection `layer` (with or without ".weight"): nothing for
/// plain, the channel weights for diag, the Gram matrix for gram. Throws InvalidArgument when the
/// objective needs statistics and `calibration` is null, lacks H for gram, or did not record `layer`.
pipeline::LayerStatistics statisticsFor(factor::Objective objective, const StudioCalibration* calibration,
                                        const std::string& layer);

/// Bytes the Gram matrices of every projection of a model would take (Σ m² doubles over the projections,
/// m = in_features from the checkpoint shapes; a tied head reads the embedding's). Never throws for a
/// consistent model; a projection without a 2-D tensor counts 0.
double gramBytes(const io::ModelConfig& config, const io::Checkpoint& checkpoint);

}  // namespace mdbf::studio
