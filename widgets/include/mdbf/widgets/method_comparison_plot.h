#pragma once
// DBF against MDBF at matched bits (docs/ALGORITHM.md §3): relative error against the exact bpw each
// budget achieved, one curve per method and envelope rank l.

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// One factorization result placed on the comparison plot.
struct ComparisonPoint {
    double bpw = 0.0;        ///< exact bits per weight of the chosen k (not the requested budget)
    double error = 0.0;      ///< relative error ‖W−Ŵ‖/‖W‖
    std::int64_t k = 0;      ///< middle dimension
    bool refined = false;    ///< false for a closed-form (initialisation) result
};

/// Error-vs-bpw curves keyed by (method, l); a point at an existing bpw replaces the old one.
class MethodComparisonPlot : public PlotWidget {
    Q_OBJECT
public:
    explicit MethodComparisonPlot(QWidget* parent = nullptr);

    /// Adds or replaces the point of (method, l) at p.bpw (equal within 1e-9).
    void setPoint(const QString& method, int l, const ComparisonPoint& p);

    /// The points of (method, l), sorted by bpw (empty if none).
    std::vector<ComparisonPoint> points(const QString& method, int l) const;

    /// Number of curves.
    int seriesCount() const { return static_cast<int>(m_series.size()); }

    /// Marks the budget currently selected with a vertical line (NaN hides it).
    void setCurrentBpw(double bpw);

    /// Sets the objective named on the y axis.
    void setObjectiveLabel(const QString& objective);

    /// Removes every curve.
    void clear();

    /// method,l,bpw,k,rel_error,refined
    QString csv() const override;

private:
    using Key = std::pair<QString, int>;
    struct Series {
        std::vector<ComparisonPoint> points;
        QCPGraph* graph = nullptr;
    };
    void rebuildGraph(const Key& key, Series& series);
    void rescale();

    std::map<Key, Series> m_series;
    QCPItemStraightLine* m_current = nullptr;
};

}  // namespace mdbf::widgets
