#pragma once
// Model ▸ Plan at Budget…: the budget in bits per weight and the plan's main options (formats tried,
// trial and final iterations, how layer errors add up), as `mdbf plan` takes them.

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
    /// A dialog over `parent` proposing `budget` bpw.
    explicit PlanDialog(double budget, QWidget* parent = nullptr);

    /// The options chosen (plain objective, weight error: the studio plans without calibration).
    pipeline::PlanOptions options() const;

private:
    QDoubleSpinBox* m_budget;
    QCheckBox* m_mdbf;
    QSpinBox* m_trialIterations;
    QSpinBox* m_iterations;
    QComboBox* m_weighting;
};

}  // namespace mdbf::studio
