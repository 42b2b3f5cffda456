#include "mdbf/widgets/histogram_plot.h"

#include <algorithm>
#include <cmath>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

HistogramPlot::HistogramPlot(QWidget* parent) : PlotWidget(parent)
{
    setExportName(QStringLiteral("histogram"));
    yAxis->setLabel(tr("entries"));
    m_bars = new QCPBars(xAxis, yAxis);
    const QColor c = plotStyle::seriesColor(0);
    m_bars->setPen(QPen(c.darker(120), 0.5));
    m_bars->setBrush(QBrush(c.lighter(130)));
    m_bars->setWidthType(QCPBars::wtPlotCoords);
    m_stats = new QCPItemText(this);
    m_stats->position->setType(QCPItemPosition::ptAxisRectRatio);
    m_stats->position->setCoords(0.98, 0.04);
    m_stats->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
    m_stats->setTextAlignment(Qt::AlignRight);
    m_stats->setColor(QColor(40, 40, 40));
    clear();
}

void HistogramPlot::clear()
{
    m_counts.clear();
    m_edges.clear();
    m_bars->data()->clear();
    m_stats->setText(QString());
    xAxis->setRange(-1.0, 1.0);
    yAxis->setRange(0.0, 1.0);
    replot();
}

void HistogramPlot::setValues(const RowMatrixF& values, const QString& valueLabel, int bins)
{
    binValues(values, valueLabel, bins);
}

void HistogramPlot::setValues(const RowMatrixH& values, const QString& valueLabel, int bins)
{
    binValues(values, valueLabel, bins);
}

template <class Matrix>
void HistogramPlot::binValues(const Matrix& values, const QString& valueLabel, int bins)
{
    bins = std::max(1, bins);
    xAxis->setLabel(valueLabel);
    const Eigen::Index count = values.size();
    double maxAbs = 0.0;
    for (Eigen::Index i = 0; i < count; ++i) maxAbs = std::max(maxAbs, std::abs(static_cast<double>(values.data()[i])));
    double r = m_sharedRange;
    if (r <= 0.0) r = count > 0 ? maxAbs : 1.0;
    if (!(r > 0.0)) r = 1.0;
    m_edges.resize(static_cast<std::size_t>(bins) + 1);
    for (int b = 0; b <= bins; ++b) m_edges[static_cast<std::size_t>(b)] = -r + 2.0 * r * b / bins;
    m_counts.assign(static_cast<std::size_t>(bins), 0);
    const double scale = bins / (2.0 * r);
    double sum = 0.0;
    double sumSq = 0.0;
    for (Eigen::Index i = 0; i < count; ++i) {
        const double v = static_cast<double>(values.data()[i]);
        sum += v;
        sumSq += v * v;
        int b = static_cast<int>(std::floor((v + r) * scale));
        b = std::clamp(b, 0, bins - 1);  // ±r itself lands in the outermost bins
        ++m_counts[static_cast<std::size_t>(b)];
    }
    QVector<double> keys;
    QVector<double> heights;
    std::int64_t peak = 0;
    for (int b = 0; b < bins; ++b) {
        keys.push_back(0.5 * (m_edges[static_cast<std::size_t>(b)] + m_edges[static_cast<std::size_t>(b) + 1]));
        heights.push_back(static_cast<double>(m_counts[static_cast<std::size_t>(b)]));
        peak = std::max(peak, m_counts[static_cast<std::size_t>(b)]);
    }
    m_bars->setWidth(2.0 * r / bins);
    m_bars->setData(keys, heights, true);
    xAxis->setRange(-r, r);
    yAxis->setRange(0.0, static_cast<double>(std::max<std::int64_t>(peak, 1)) * 1.08);
    if (count > 0) {
        const double mean = sum / static_cast<double>(count);
        const double rms = std::sqrt(sumSq / static_cast<double>(count));
        m_stats->setText(tr("%1 entries\nmean %2\nrms %3\nmax |x| %4")
                             .arg(count)
                             .arg(mean, 0, 'g', 3)
                             .arg(rms, 0, 'g', 3)
                             .arg(maxAbs, 0, 'g', 3));
    } else {
        m_stats->setText(QString());
    }
    replot();
}

QString HistogramPlot::csv() const
{
    QString out = QStringLiteral("bin_low,bin_high,count\n");
    for (std::size_t b = 0; b < m_counts.size(); ++b)
        out += QStringLiteral("%1,%2,%3\n").arg(csvNumber(m_edges[b]), csvNumber(m_edges[b + 1])).arg(m_counts[b]);
    return out;
}

}  // namespace mdbf::widgets
