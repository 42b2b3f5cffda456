#include "mdbf/widgets/series_plot.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

SeriesPlot::SeriesPlot(QWidget* parent) : PlotWidget(parent)
{
    setExportName(QStringLiteral("series"));
    legend->setVisible(true);
    axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    m_reference = new QCPItemStraightLine(this);
    m_reference->setPen(QPen(plotStyle::referenceColor(), 1, Qt::DashLine));
    m_reference->setVisible(false);
    m_referenceLabel = new QCPItemText(this);
    m_referenceLabel->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    m_referenceLabel->position->setTypeX(QCPItemPosition::ptAxisRectRatio);
    m_referenceLabel->setColor(plotStyle::referenceColor());
    m_referenceLabel->setVisible(false);
    rescale();
}

SeriesPlot::Series& SeriesPlot::seriesNamed(const QString& name)
{
    Series& s = m_series[name];
    if (!s.graph) {
        m_order.push_back(name);
        s.graph = addGraph();
        const bool baseline = name.startsWith(QLatin1String("DBF"), Qt::CaseInsensitive);
        const QColor color = baseline ? QColor(30, 30, 30) : plotStyle::seriesColor(static_cast<int>(m_order.size()) - 1);
        s.graph->setPen(QPen(color, 1.8, baseline ? Qt::DashLine : Qt::SolidLine));
        s.graph->setScatterStyle(QCPScatterStyle(baseline ? QCPScatterStyle::ssSquare : QCPScatterStyle::ssDisc,
                                                 QPen(color, 1.2), QBrush(baseline ? Qt::white : color), 6));
        s.graph->setName(name);
    }
    return s;
}

void SeriesPlot::setSeriesStyle(const QString& name, const QString& family, int variant)
{
    QColor color(30, 30, 30);
    if (!family.startsWith(QLatin1String("DBF"), Qt::CaseInsensitive)) {
        auto it = std::find(m_families.begin(), m_families.end(), family);
        if (it == m_families.end()) it = m_families.insert(m_families.end(), family);
        color = plotStyle::seriesColor(static_cast<int>(it - m_families.begin()));
    }
    static constexpr Qt::PenStyle kLines[] = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine,
                                              Qt::DashDotDotLine};
    static constexpr QCPScatterStyle::ScatterShape kMarkers[] = {
        QCPScatterStyle::ssDisc, QCPScatterStyle::ssTriangle, QCPScatterStyle::ssDiamond, QCPScatterStyle::ssSquare,
        QCPScatterStyle::ssStar, QCPScatterStyle::ssCross, QCPScatterStyle::ssTriangleInverted};
    const int v = std::max(0, variant);
    const Qt::PenStyle line = kLines[static_cast<std::size_t>(v) % std::size(kLines)];
    const QCPScatterStyle::ScatterShape marker = kMarkers[static_cast<std::size_t>(v) % std::size(kMarkers)];
    QCPGraph* graph = seriesNamed(name).graph;
    graph->setPen(QPen(color, 1.8, line));
    graph->setScatterStyle(QCPScatterStyle(marker, QPen(color, 1.2), QBrush(v == 0 ? color : QColor(Qt::white)), 7));
    scheduleReplot();
}

void SeriesPlot::addPoint(const QString& name, double x, double y)
{
    if (!std::isfinite(x) || !std::isfinite(y) || (m_logY && y <= 0.0)) return;
    Series& s = seriesNamed(name);
    s.points.emplace_back(x, y);
    std::sort(s.points.begin(), s.points.end(), [](const QPointF& a, const QPointF& b) { return a.x() < b.x(); });
    QVector<double> xs, ys;
    for (const QPointF& p : s.points) {
        xs.push_back(p.x());
        ys.push_back(p.y());
    }
    s.graph->setData(xs, ys, true);
    rescale();
    scheduleReplot();
}

std::vector<QPointF> SeriesPlot::points(const QString& name) const
{
    const auto it = m_series.find(name);
    return it == m_series.end() ? std::vector<QPointF>{} : it->second.points;
}

void SeriesPlot::setAxisLabels(const QString& x, const QString& y)
{
    xAxis->setLabel(x);
    yAxis->setLabel(y);
}

void SeriesPlot::setLogY(bool log)
{
    m_logY = log;
    yAxis->setScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (log) {
        QSharedPointer<QCPAxisTickerLog> ticker(new QCPAxisTickerLog);
        yAxis->setTicker(ticker);
    } else {
        yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    rescale();
}

void SeriesPlot::setReference(double y, const QString& caption)
{
    const bool visible = std::isfinite(y) && (!m_logY || y > 0.0);
    m_reference->setVisible(visible);
    m_referenceLabel->setVisible(visible);
    if (visible) {
        m_reference->point1->setCoords(0.0, y);
        m_reference->point2->setCoords(1.0, y);
        m_referenceLabel->position->setCoords(0.02, y);
        m_referenceLabel->setText(caption);
    }
    rescale();
    scheduleReplot();
}

void SeriesPlot::setTitle(const QString& title)
{
    if (!m_title) {
        plotLayout()->insertRow(0);
        m_title = new QCPTextElement(this, title, QFont(font().family(), font().pointSize() + 1, QFont::Bold));
        plotLayout()->addElement(0, 0, m_title);
    }
    m_title->setText(title);
}

void SeriesPlot::rescale()
{
    double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
    for (const auto& [name, s] : m_series) {
        for (const QPointF& p : s.points) {
            xlo = std::min(xlo, p.x());
            xhi = std::max(xhi, p.x());
            ylo = std::min(ylo, p.y());
            yhi = std::max(yhi, p.y());
        }
    }
    if (m_reference && m_reference->visible()) {
        ylo = std::min(ylo, m_reference->point1->coords().y());
        yhi = std::max(yhi, m_reference->point1->coords().y());
    }
    if (xlo > xhi) {
        xAxis->setRange(0.0, 1.0);
        yAxis->setRange(m_logY ? 1.0 : 0.0, m_logY ? 10.0 : 1.0);
        return;
    }
    const double xpad = std::max((xhi - xlo) * 0.08, 0.05);
    xAxis->setRange(xlo - xpad, xhi + xpad);
    if (m_logY) {
        yAxis->setRange(ylo / 1.25, yhi * 1.25);
    } else {
        const double ypad = std::max((yhi - ylo) * 0.1, 1e-3);
        yAxis->setRange(ylo - ypad, yhi + ypad);
    }
}

QString SeriesPlot::csv() const
{
    QString out = QStringLiteral("series,x,y\n");
    for (const QString& name : m_order) {
        for (const QPointF& p : m_series.at(name).points) {
            out += QStringLiteral("%1,%2,%3\n").arg(name, csvNumber(p.x()), csvNumber(p.y()));
        }
    }
    return out;
}

}  // namespace mdbf::widgets
