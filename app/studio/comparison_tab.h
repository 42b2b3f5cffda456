#pragma once
// The "DBF vs MDBF" tab: error against exact bpw for DBF and MDBF at several envelope ranks, at
// matched budgets. The inspector runs the factorizations; this tab collects the request and the points.

#include <vector>

#include <QWidget>

#include "mdbf/factor/bit_budget.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace mdbf::widgets {
class MethodComparisonPlot;
}

namespace mdbf::studio {

/// A comparison request: every budget × (DBF, and MDBF at every l).
struct ComparisonRequest {
    std::vector<factor::Bpw> budgets;
    std::vector<int> ranks;
    bool refine = false;  ///< false: closed form only (instant); true: the inspector's iteration count
};

class ComparisonTab : public QWidget {
    Q_OBJECT
public:
    explicit ComparisonTab(QWidget* parent = nullptr);

    widgets::MethodComparisonPlot* plot() const { return m_plot; }

    /// Parses the budget and rank fields. Returns false and sets `error` when a field is invalid.
    bool request(ComparisonRequest& out, QString& error) const;

    /// Sets the fields (for tests and restoring state).
    void setRequestText(const QString& budgets, const QString& ranks, bool refine);

    /// Shows a one-line status under the controls.
    void setStatus(const QString& text);

    /// Enables the Run button (disabled while a comparison runs or no layer is selected).
    void setRunEnabled(bool enabled);

signals:
    void runRequested();

private:
    widgets::MethodComparisonPlot* m_plot;
    QLineEdit* m_budgets;
    QLineEdit* m_ranks;
    QCheckBox* m_refine;
    QPushButton* m_run;
    QLabel* m_status;
};

}  // namespace mdbf::studio
