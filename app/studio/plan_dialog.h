#pragma once
// Model ▸ Plan at Budget…: the budget in bits per weight and the plan's main options (formats tried,
// trial and final iterations, how layer errors add up, the objective), as `mdbf plan` takes them, and
// which error the plan weighs: the layers' outputs under the calibration, or their weights.

#include <QDialog>

#include "mdbf/pipeline/plan.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QSpinBox;

namespace mdbf::studio {

/// Asks for the plan's budget and options; window-modal when opened with open().
class PlanDialog : public QDialog {
    Q_OBJECT
public:
    /// A dialog over `parent` proposing `budget` bpw. `calibration` describes the calibration the plan
    /// weighs output errors with (StudioCalibration::description()); empty: it plans on the weight
    /// error and only the plain objective is offered.
    PlanDialog(double budget, const QString& calibration, QWidget* parent = nullptr);

    /// The options chosen (without the calibration statistics, which the service adds).
    pipeline::PlanOptions options() const;

private:
    QDoubleSpinBox* m_budget;
    QCheckBox* m_mdbf;
    QSpinBox* m_trialIterations;
    QSpinBox* m_iterations;
    QComboBox* m_weighting;
    QComboBox* m_objective;
};

}  // namespace mdbf::studio
