#include "mdbf/widgets/method_comparison_plot.h"

#include <algorithm>
#include <cmath>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

MethodComparisonPlot::MethodComparisonPlot(QWidget* parent) : PlotWidget(parent)
{
    setExportName(QStringLiteral("dbf-vs-mdbf"));
    xAxis->setLabel(tr("bits per weight (exact, after choosing k)"));
    setObjectiveLabel(tr("plain"));
    // The legend gets a column of its own right of the axes: inside them, some curve always ran
    // under it (the axes are fitted to the points, so no corner is reliably empty).
    axisRect()->insetLayout()->take(legend);
    plotLayout()->addElement(0, 1, legend);
    plotLayout()->setColumnStretchFactor(1, 0.001);
    legend->setBorderPen(Qt::NoPen);
    legend->setBrush(Qt::NoBrush);
    legend->setVisible(true);
    m_current = new QCPItemStraightLine(this);
    m_current->setPen(QPen(plotStyle::referenceColor(), 1, Qt::DotLine));
    m_current->setVisible(false);
    rescale();
}

void MethodComparisonPlot::setObjectiveLabel(const QString& objective)
{
    yAxis->setLabel(tr("relative error (%1)").arg(objective));
}

void MethodComparisonPlot::clear()
{
    for (auto& [key, series] : m_series) removeGraph(series.graph);
    m_series.clear();
    rescale();
    replot();
}

void MethodComparisonPlot::setPoint(const QString& method, int l, const ComparisonPoint& p)
{
    const Key key{method, l};
    Series& series = m_series[key];
    auto same = std::find_if(series.points.begin(), series.points.end(),
                             [&](const ComparisonPoint& q) { return std::abs(q.bpw - p.bpw) < 1e-9; });
    if (same != series.points.end()) *same = p;
    else series.points.push_back(p);
    std::sort(series.points.begin(), series.points.end(),
              [](const ComparisonPoint& a, const ComparisonPoint& b) { return a.bpw < b.bpw; });
    rebuildGraph(key, series);
    rescale();
    scheduleReplot();
}

std::vector<ComparisonPoint> MethodComparisonPlot::points(const QString& method, int l) const
{
    auto it = m_series.find(Key{method, l});
    return it == m_series.end() ? std::vector<ComparisonPoint>{} : it->second.points;
}

void MethodComparisonPlot::rebuildGraph(const Key& key, Series& series)
{
    if (!series.graph) {
        series.graph = addGraph();
        const bool dbf = key.first.startsWith(QLatin1String("DBF"), Qt::CaseInsensitive);
        const bool closedForm = key.first.contains(QLatin1String("closed"), Qt::CaseInsensitive);
        // DBF is the baseline: black with hollow squares; MDBF curves take the colour cycle by l.
        // Closed-form (unrefined) curves are drawn lighter and dotted.
        QColor color = dbf ? QColor(30, 30, 30) : plotStyle::seriesColor(key.second - 1);
        if (closedForm) color = color.lighter(dbf ? 300 : 135);
        const Qt::PenStyle style = closedForm ? Qt::DotLine : (dbf ? Qt::DashLine : Qt::SolidLine);
        series.graph->setPen(QPen(color, closedForm ? 1.4 : 1.8, style));
        series.graph->setScatterStyle(QCPScatterStyle(dbf ? QCPScatterStyle::ssSquare : QCPScatterStyle::ssDisc,
                                                      QPen(color, 1.2), QBrush(dbf ? Qt::white : color),
                                                      closedForm ? 5 : 6));
        series.graph->setName(dbf ? key.first : QStringLiteral("%1 l=%2").arg(key.first).arg(key.second));
    }
    QVector<double> x;
    QVector<double> y;
    for (const auto& p : series.points) {
        x.push_back(p.bpw);
        y.push_back(p.error);
    }
    series.graph->setData(x, y, true);
}

void MethodComparisonPlot::setCurrentBpw(double bpw)
{
    m_current->setVisible(std::isfinite(bpw));
    if (std::isfinite(bpw)) {
        m_current->point1->setCoords(bpw, 0.0);
        m_current->point2->setCoords(bpw, 1.0);
    }
    scheduleReplot();
}

void MethodComparisonPlot::rescale()
{
    double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
    for (const auto& [key, series] : m_series) {
        for (const auto& p : series.points) {
            xlo = std::min(xlo, p.bpw);
            xhi = std::max(xhi, p.bpw);
            ylo = std::min(ylo, p.error);
            yhi = std::max(yhi, p.error);
        }
    }
    if (xlo > xhi) {
        xAxis->setRange(0.5, 2.5);
        yAxis->setRange(0.0, 1.0);
        return;
    }
    const double xpad = std::max((xhi - xlo) * 0.08, 0.05);
    const double ypad = std::max((yhi - ylo) * 0.1, 0.01);
    xAxis->setRange(xlo - xpad, xhi + xpad);
    yAxis->setRange(std::max(0.0, ylo - ypad), yhi + ypad);
}

QString MethodComparisonPlot::csv() const
{
    QString out = QStringLiteral("method,l,bpw,k,rel_error,refined\n");
    for (const auto& [key, series] : m_series) {
        for (const auto& p : series.points) {
            out += QStringLiteral("%1,%2,%3,%4,%5,%6\n")
                       .arg(key.first)
                       .arg(key.second)
                       .arg(csvNumber(p.bpw))
                       .arg(p.k)
                       .arg(csvNumber(p.error))
                       .arg(p.refined ? 1 : 0);
        }
    }
    return out;
}

}  // namespace mdbf::widgets
