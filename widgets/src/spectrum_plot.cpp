#include "mdbf/widgets/spectrum_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

SpectrumPlot::SpectrumPlot(QWidget* parent) : PlotWidget(parent)
{
    setExportName(QStringLiteral("envelope-spectra"));
    yAxis->setScaleType(QCPAxis::stLogarithmic);
    QSharedPointer<QCPAxisTickerLog> logTicker(new QCPAxisTickerLog);
    yAxis->setTicker(logTicker);
    yAxis->setNumberFormat(QStringLiteral("eb"));
    yAxis->setNumberPrecision(0);
    yAxis->grid()->setSubGridVisible(true);
    xAxis->setLabel(tr("singular value index"));
    yAxis->setLabel(tr("σ (log scale)"));
    legend->setVisible(true);
    axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

    m_cut = new QCPItemStraightLine(this);
    m_cut->setPen(QPen(plotStyle::referenceColor(), 1, Qt::DashLine));
    m_caption = new QCPItemText(this);
    m_caption->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    m_caption->position->setType(QCPItemPosition::ptAxisRectRatio);
    m_caption->position->setCoords(0.02, 0.98);
    m_caption->setTextAlignment(Qt::AlignLeft);
    m_caption->setColor(QColor(40, 40, 40));
    m_caption->setBrush(QBrush(QColor(255, 255, 255, 220)));
    m_caption->setPadding(QMargins(4, 2, 4, 2));
    clear();
}

void SpectrumPlot::clear()
{
    setSpectra({}, 0);
}

void SpectrumPlot::setEnvelopeSpectra(const VectorF& sigmaF, double energyF, const VectorF& sigmaG, double energyG,
                                      std::int64_t k, int l)
{
    SpectrumSeries f{tr("|F|"), std::vector<double>(sigmaF.data(), sigmaF.data() + sigmaF.size()), energyF, k};
    SpectrumSeries g{tr("|G|"), std::vector<double>(sigmaG.data(), sigmaG.data() + sigmaG.size()), energyG, k};
    setSpectra({f, g}, l);
}

double SpectrumPlot::energyShare(int series) const
{
    if (series < 0 || series >= static_cast<int>(m_spectra.size())) return 0.0;
    const auto& s = m_spectra[static_cast<std::size_t>(series)];
    double total = 0.0;
    double head = 0.0;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
        total += s.values[i] * s.values[i];
        if (static_cast<int>(i) < m_l) head += s.values[i] * s.values[i];
    }
    if (s.totalEnergy > 0.0) total = s.totalEnergy;
    return total > 0.0 ? std::min(1.0, head / total) : 0.0;
}

QString SpectrumPlot::caption() const { return m_caption->text(); }

void SpectrumPlot::setSpectra(const std::vector<SpectrumSeries>& spectra, int l)
{
    m_spectra = spectra;
    m_l = std::max(0, l);
    clearGraphs();
    double lo = std::numeric_limits<double>::max();
    double hi = 0.0;
    std::size_t longest = 0;
    QStringList lines;
    for (std::size_t s = 0; s < m_spectra.size(); ++s) {
        const auto& series = m_spectra[s];
        const QColor color = plotStyle::seriesColor(static_cast<int>(s));
        QCPGraph* all = addGraph();
        all->setName(series.name);
        all->setPen(QPen(color, 1.5));
        all->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(color, 1), QBrush(Qt::white), 4));
        QCPGraph* marked = addGraph();
        marked->removeFromLegend();
        marked->setLineStyle(QCPGraph::lsNone);
        marked->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(color, 1), QBrush(color), 7));
        QVector<double> keys;
        QVector<double> values;
        for (std::size_t i = 0; i < series.values.size(); ++i) {
            const double v = series.values[i];
            if (!(v > 0.0)) continue;  // log axis: zeros cannot be drawn
            keys.push_back(static_cast<double>(i + 1));
            values.push_back(v);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
            if (static_cast<int>(i) < m_l) marked->addData(static_cast<double>(i + 1), v);
        }
        all->setData(keys, values, true);
        longest = std::max(longest, series.values.size());
        if (!series.values.empty()) {
            const std::int64_t all = series.fullCount > 0 ? series.fullCount
                                                          : static_cast<std::int64_t>(series.values.size());
            lines << tr("%1: first %2 of %3 singular values hold %4% of Σσ²")
                         .arg(series.name)
                         .arg(std::min<std::int64_t>(m_l, all))
                         .arg(all)
                         .arg(100.0 * energyShare(static_cast<int>(s)), 0, 'f', 1);
        }
    }
    m_caption->setText(lines.join(QLatin1Char('\n')));
    m_caption->setVisible(!lines.isEmpty());
    if (m_l > 0 && longest > 0) {
        const double x = m_l + 0.5;
        m_cut->point1->setCoords(x, 1.0);
        m_cut->point2->setCoords(x, 2.0);
        m_cut->setVisible(true);
    } else {
        m_cut->setVisible(false);
    }
    if (hi > 0.0) {
        xAxis->setRange(0.5, static_cast<double>(longest) + 0.5);
        yAxis->setRange(lo / 2.0, hi * 2.0);
    } else {
        xAxis->setRange(0.5, 10.5);
        yAxis->setRange(0.1, 10.0);
    }
    replot();
}

QString SpectrumPlot::csv() const
{
    QString out = QStringLiteral("series,index,sigma,within_l\n");
    for (const auto& s : m_spectra) {
        for (std::size_t i = 0; i < s.values.size(); ++i) {
            out += QStringLiteral("\"%1\",%2,%3,%4\n")
                       .arg(s.name)
                       .arg(i + 1)
                       .arg(csvNumber(s.values[i]))
                       .arg(static_cast<int>(i) < m_l ? 1 : 0);
        }
    }
    return out;
}

}  // namespace mdbf::widgets
