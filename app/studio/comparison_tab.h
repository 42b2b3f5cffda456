#pragma once
// The "DBF vs MDBF" tab: error against exact bpw for DBF and MDBF at several envelope ranks, at
// matched budgets, and the two error maps W − Ŵ side by side on one colour scale: DBF and the best
// MDBF at a chosen budget. The factorization service runs the factorizations; this tab collects the request,
// the points and the maps of the current comparison only.

#include <map>
#include <memory>
#include <vector>

#include <QWidget>

#include "factor_settings.h"
#include "mdbf/factor/bit_budget.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace mdbf::widgets {
class HeatmapPlot;
class MethodComparisonPlot;
}  // namespace mdbf::widgets

namespace mdbf::studio {

struct LayerFactorization;

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

    /// Forgets the points and maps of the previous comparison (a new one starts, or another layer is shown).
    void clearResults();
    /// A result of the running comparison at the requested budget `budget`: a point of its method and
    /// l at its exact bpw when complete (a result under another objective than the points before
    /// starts the plot afresh: errors of different objectives do not compare), and kept for the maps if
    /// it is DBF, or the best MDBF so far, at that budget.
    void addResult(const factor::Bpw& budget, std::shared_ptr<const LayerFactorization> f);

    /// The budgets with maps to show, in the order of the budget choice.
    std::vector<factor::Bpw> mapBudgets() const;
    /// Shows the maps at `budget` (one of mapBudgets()).
    void showMaps(const factor::Bpw& budget);
    /// The two map views (DBF left, MDBF right).
    widgets::HeatmapPlot* dbfMap() const { return m_dbfMap; }
    widgets::HeatmapPlot* mdbfMap() const { return m_mdbfMap; }

signals:
    void runRequested();

private:
    widgets::MethodComparisonPlot* m_plot;
    QLineEdit* m_budgets;
    QLineEdit* m_ranks;
    QCheckBox* m_refine;
    QPushButton* m_run;
    QLabel* m_status;
    QComboBox* m_mapBudget;
    widgets::HeatmapPlot* m_dbfMap;
    widgets::HeatmapPlot* m_mdbfMap;
    struct Pair {
        std::shared_ptr<const LayerFactorization> dbf;
        std::shared_ptr<const LayerFactorization> mdbf;  ///< the lowest error among the ranks
    };
    std::map<double, Pair> m_pairs;  ///< by requested budget
    QString m_objective;             ///< of the plot's points
};

}  // namespace mdbf::studio
