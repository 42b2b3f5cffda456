#pragma once
// The inspector's control bar: method, envelope rank, bit budget (slider + exact k and bpw shown
// live for the selected layer), paths, iterations and objective. The activation-aware objectives
// (diag, gram) can be chosen only once calibration statistics exist.

#include <cstdint>
#include <memory>

#include <QWidget>

#include "calibration_state.h"
#include "factor_settings.h"

class QAbstractButton;
class QAction;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QSlider;
class QSpinBox;

namespace mdbf::studio {

/// Emits settingsChanged() on every edit (the inspector debounces). GUI-thread only.
class FactorControlBar : public QWidget {
    Q_OBJECT
public:
    explicit FactorControlBar(QWidget* parent = nullptr);

    /// The settings currently shown.
    FactorSettings settings() const;

    /// Shows `s` without emitting settingsChanged(). An objective whose statistics are missing
    /// (no calibration, or no Gram matrices for gram) falls back to plain.
    void setSettings(const FactorSettings& s);

    /// The statistics the activation-aware objectives use (null: none, diag and gram disabled).
    /// Shows their description beside the objective. Emits settingsChanged() when the objective in
    /// use changes meaning (its statistics were replaced, or it fell back to plain).
    void setCalibration(std::shared_ptr<const StudioCalibration> calibration);

    /// The calibration line shown beside the objective ("not calibrated" when none).
    QString calibrationText() const;

    /// The layer the budget label refers to (0×0 hides the k/bpw readout).
    void setLayerShape(std::int64_t n, std::int64_t m);

    /// The budget readout text ("→ k 75 · 0.998 bpw").
    QString budgetText() const;

    /// True when the current budget is feasible for the layer (k ≥ max(1, l)).
    bool budgetFeasible() const { return m_feasible; }

    /// The edits as actions for the Layer menu, each with its shortcut: Method DBF (Ctrl+D) / MDBF
    /// (Ctrl+M), More / Fewer Bits (±0.05 bpw, Ctrl+] / Ctrl+[), Larger / Smaller l (Ctrl+. / Ctrl+,).
    const QList<QAction*>& editActions() const { return m_actions; }

    /// The objective choice; its items are enabled as the calibration allows and say why not.
    QComboBox* objectiveCombo() const { return m_objective; }

signals:
    void settingsChanged();

private:
    void createActions();
    void setMethod(factor::Method method);
    void updateBudget();
    void changed();
    void updateObjectiveItems();

    QAbstractButton* m_dbf;
    QAbstractButton* m_mdbf;
    QSlider* m_lSlider;
    QSpinBox* m_lSpin;
    QSlider* m_bpwSlider;
    QDoubleSpinBox* m_bpwSpin;
    QLabel* m_budget;
    QSpinBox* m_paths;
    QSpinBox* m_iters;
    QComboBox* m_objective;
    QLabel* m_calibrationLabel;
    QList<QAction*> m_actions;
    std::shared_ptr<const StudioCalibration> m_calibration;
    std::int64_t m_n = 0;
    std::int64_t m_m = 0;
    bool m_feasible = true;
    bool m_updating = false;
    int m_mdbfL = 2;  ///< the l MDBF had before DBF was chosen
};

}  // namespace mdbf::studio
