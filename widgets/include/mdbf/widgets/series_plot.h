#pragma once
// Named x–y curves on shared axes, for figures such as perplexity against model bpw (one curve per
// method) or relative error against the envelope rank l (one curve per layer shape).

#include <map>
#include <vector>

#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// Line-and-marker curves keyed by name, drawn in insertion order; axes rescale to the data.
class SeriesPlot : public PlotWidget {
    Q_OBJECT
public:
    explicit SeriesPlot(QWidget* parent = nullptr);

    /// Adds the point (x, y) to the curve `series` (created on first use, with the next colour;
    /// a name starting with "DBF" is drawn as the black dashed baseline). Non-finite points are skipped.
    void addPoint(const QString& series, double x, double y);

    /// Draws `series` (created if needed) in the colour of `family` and the line and marker of
    /// `variant`: every series of one family shares a colour (a family named "DBF…" is the black
    /// baseline, the others take the palette in order of first appearance), and variant 0 is a solid
    /// line with filled markers, 1, 2, 3… dashed, dotted, dash-dotted lines with other marker shapes.
    /// For figures that cross two factors, e.g. method × objective.
    void setSeriesStyle(const QString& series, const QString& family, int variant);

    /// The points of `series` sorted by x (empty if none).
    std::vector<QPointF> points(const QString& series) const;

    /// Number of curves.
    int seriesCount() const { return static_cast<int>(m_order.size()); }

    /// Axis titles.
    void setAxisLabels(const QString& x, const QString& y);

    /// A logarithmic value axis (for perplexities spanning decades).
    void setLogY(bool log);

    /// A dashed horizontal reference line at y with a caption (NaN hides it).
    void setReference(double y, const QString& caption);

    /// A title above the axes (empty: none).
    void setTitle(const QString& title);

    /// series,x,y
    QString csv() const override;

private:
    struct Series {
        std::vector<QPointF> points;
        QCPGraph* graph = nullptr;
    };

    void rescale();
    Series& seriesNamed(const QString& name);
    std::map<QString, Series> m_series;
    std::vector<QString> m_order;
    std::vector<QString> m_families;  ///< families with a palette colour, in order of first use
    bool m_logY = false;
    QCPItemStraightLine* m_reference = nullptr;
    QCPItemText* m_referenceLabel = nullptr;
    QCPTextElement* m_title = nullptr;
};

}  // namespace mdbf::widgets
