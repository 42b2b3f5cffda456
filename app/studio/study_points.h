#pragma once
// Reading the points of a study file (`mdbf study` → study.json, format "mdbf-study") for the
// perplexity panel: for the model open in the studio, every point's perplexity against the model's
// bits per weight, labelled as the study labels it.

#include <optional>
#include <vector>

#include <QString>
#include <QStringList>

#include "mdbf/widgets/perplexity_plot.h"

namespace mdbf::studio {

/// The part of a study file that belongs to one model.
struct StudyModelPoints {
    QString model;                               ///< the model's directory name, as the study names it
    QString evalText;                            ///< the text the study measured perplexity on
    int ctx = 0;                                 ///< its window length
    std::vector<widgets::PerplexityPoint> points;  ///< (model_bpw, ppl, label) in file order
    int skipped = 0;                             ///< points without a finite ppl or model_bpw
};

/// What a study file holds for the requested model.
struct StudyFileContents {
    QStringList models;                     ///< every model the file covers, in file order
    std::optional<StudyModelPoints> match;  ///< the requested model's entry (none when not covered)
};

/// Reads the study file `path` and picks the entry whose "model" equals `modelName`. Points whose
/// ppl or model_bpw is null or not finite are skipped and counted. Throws IoError when the file
/// cannot be read, FormatError naming the file and the problem (invalid JSON, not an mdbf-study
/// file, a missing or mistyped field with its place in the file).
StudyFileContents readStudyFile(const QString& path, const QString& modelName);

}  // namespace mdbf::studio
