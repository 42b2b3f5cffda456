#pragma once
// The user's choice of factorization for one layer, as set in the inspector's control bar.

#include <vector>

#include <QString>

#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/factor_result.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/pipeline/layer_job.h"

namespace mdbf::studio {

/// Method, budget and refinement settings. `bpw` keeps the decimal the user chose.
struct FactorSettings {
    factor::Method method = factor::Method::Mdbf;
    int l = 2;
    factor::Bpw bpw = factor::Bpw::parse("1");
    int paths = 1;
    int iterations = 260;
    factor::Objective objective = factor::Objective::Plain;
    /// StudioCalibration::tag of the statistics a diag or gram objective uses (empty for plain), so
    /// that keys and comparisons tell results of different calibrations apart.
    QString calibration;

    /// The settings of one layer of a quantization configuration (`s.dense` is not looked at);
    /// `calibration` tags the statistics a diag or gram objective is to use (ignored for plain).
    static FactorSettings fromQuant(const factor::LayerQuantSettings& s, const QString& calibration);

    /// The envelope rank actually used (1 for DBF, whatever the l control says).
    int effectiveL() const { return method == factor::Method::Dbf ? 1 : l; }

    /// The per-layer job of these settings with `statistics` for the objective (pipeline::LayerJob;
    /// the engine's default seed and inner iterations, as `mdbf quantize` uses them).
    pipeline::LayerJob job(pipeline::LayerStatistics statistics = {}) const;

    /// Cache key of the closed form ("mdbf|l4|1.5|p1|plain", "…|diag@<tag>") and of a refinement
    /// (adds "|t260").
    QString closedFormKey() const;
    QString refinedKey() const;

    /// Cache key of the layer SVD these settings start from: the SVD is of Factorizer::target(W),
    /// which depends on the objective and its statistics ("plain", "diag@<tag>", "gram@<tag>").
    QString svdKey() const;

    /// "MDBF" / "DBF".
    QString methodLabel() const;

    /// "plain" / "diag" / "gram".
    QString objectiveLabel() const;

    bool operator==(const FactorSettings&) const = default;
};

/// The budget a spin box with `decimals` decimals shows for `value`: stepping adds binary fractions
/// (1.0 + 3 × 0.05 is 1.1500000000000001), so the value is rounded to the decimals shown first.
/// Throws InvalidArgument for a value that is not positive.
factor::Bpw budgetOfSpinValue(double value, int decimals);

/// A comparison of the methods on one layer: every budget × (DBF, and MDBF at every l).
struct ComparisonRequest {
    std::vector<factor::Bpw> budgets;
    std::vector<int> ranks;
    bool refine = false;  ///< false: closed form only (instant); true: the base settings' iteration count
};

}  // namespace mdbf::studio
