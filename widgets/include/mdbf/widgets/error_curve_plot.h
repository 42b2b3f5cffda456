#pragma once
// Relative reconstruction error per outer refinement iteration (docs/ALGORITHM.md §5.4), appendable while
// the refinement runs; replots are coalesced on a timer so iterations can land at any rate.

#include <vector>

#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// Error curve of one refinement, with the closed-form (initial) error as a dashed reference.
class ErrorCurvePlot : public PlotWidget {
    Q_OBJECT
public:
    explicit ErrorCurvePlot(QWidget* parent = nullptr);

    /// Removes every point and the reference line.
    void clear();

    /// Names the objective on the y axis ("relative error (plain)").
    void setObjectiveLabel(const QString& objective);

    /// Draws a dashed horizontal line at the closed-form error `error` (NaN hides it).
    void setReference(double error, const QString& label);

    /// Appends the error after outer iteration `iteration` (1-based) and schedules a replot.
    void appendPoint(int iteration, double error);

    /// Replaces the curve with `history` (history[i] is the error after iteration i + 1).
    void setHistory(const std::vector<double>& history);

    /// Number of points on the curve and the last error (NaN when empty).
    int pointCount() const;
    double lastError() const;

    /// The reference error (NaN when none).
    double reference() const { return m_reference; }

    /// iteration,rel_error
    QString csv() const override;

protected:
    void beforeScheduledReplot() override;

private:
    void rescale();

    QCPGraph* m_curve = nullptr;
    QCPItemStraightLine* m_refLine = nullptr;
    QCPItemText* m_refText = nullptr;
    QCPItemText* m_lastText = nullptr;
    double m_reference;
};

}  // namespace mdbf::widgets
