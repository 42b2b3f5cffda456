#include "mdbf/widgets/error_curve_plot.h"

#include <cmath>
#include <limits>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

ErrorCurvePlot::ErrorCurvePlot(QWidget* parent)
    : PlotWidget(parent), m_reference(std::numeric_limits<double>::quiet_NaN())
{
    setExportName(QStringLiteral("refinement-error"));
    xAxis->setLabel(tr("outer iteration"));
    setObjectiveLabel(tr("plain"));
    m_curve = addGraph();
    m_curve->setName(tr("refinement"));
    m_curve->setPen(QPen(plotStyle::seriesColor(0), 2));

    m_refLine = new QCPItemStraightLine(this);
    m_refLine->setPen(QPen(plotStyle::referenceColor(), 1, Qt::DashLine));
    m_refText = new QCPItemText(this);
    m_refText->setColor(plotStyle::referenceColor());
    m_refText->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);

    m_lastText = new QCPItemText(this);
    m_lastText->position->setType(QCPItemPosition::ptAxisRectRatio);
    m_lastText->position->setCoords(0.98, 0.5);
    m_lastText->setPositionAlignment(Qt::AlignRight | Qt::AlignVCenter);
    m_lastText->setColor(plotStyle::seriesColor(0));
    QFont bold = font();
    bold.setPointSizeF(9.5);
    bold.setBold(true);
    m_lastText->setFont(bold);
    clear();
}

void ErrorCurvePlot::setObjectiveLabel(const QString& objective)
{
    yAxis->setLabel(tr("rel. error (%1)").arg(objective));
}

void ErrorCurvePlot::clear()
{
    m_curve->data()->clear();
    setReference(std::numeric_limits<double>::quiet_NaN(), QString());
    m_lastText->setText(QString());
    rescale();
    replot();
}

void ErrorCurvePlot::setReference(double error, const QString& label)
{
    m_reference = error;
    const bool show = std::isfinite(error);
    m_refLine->setVisible(show);
    m_refText->setVisible(show);
    if (show) {
        m_refLine->point1->setCoords(0.0, error);
        m_refLine->point2->setCoords(1.0, error);
        m_refText->setText(QStringLiteral("%1 %2").arg(label).arg(error, 0, 'f', 4));
    }
    rescale();
    scheduleReplot();
}

void ErrorCurvePlot::appendPoint(int iteration, double error)
{
    m_curve->addData(iteration, error);
    scheduleReplot();
}

void ErrorCurvePlot::setHistory(const std::vector<double>& history)
{
    QVector<double> keys;
    QVector<double> values;
    keys.reserve(static_cast<int>(history.size()));
    values.reserve(static_cast<int>(history.size()));
    for (std::size_t i = 0; i < history.size(); ++i) {
        keys.push_back(static_cast<double>(i + 1));
        values.push_back(history[i]);
    }
    m_curve->setData(keys, values, true);
    rescale();
    replot();
}

int ErrorCurvePlot::pointCount() const { return m_curve->data()->size(); }

double ErrorCurvePlot::lastError() const
{
    if (m_curve->data()->isEmpty()) return std::numeric_limits<double>::quiet_NaN();
    return (m_curve->data()->constEnd() - 1)->value;
}

void ErrorCurvePlot::beforeScheduledReplot() { rescale(); }

void ErrorCurvePlot::rescale()
{
    bool found = false;
    QCPRange keys = m_curve->getKeyRange(found);
    const double maxKey = found ? std::max(keys.upper, 2.0) : 10.0;
    xAxis->setRange(0.0, maxKey * 1.02);
    QCPRange values = m_curve->getValueRange(found);
    double lo = found ? values.lower : 0.0;
    double hi = found ? values.upper : 1.0;
    if (std::isfinite(m_reference)) {
        lo = found ? std::min(lo, m_reference) : m_reference;
        hi = found ? std::max(hi, m_reference) : m_reference;
    }
    const double pad = std::max((hi - lo) * 0.08, std::max(std::abs(hi), 1e-6) * 0.005);
    yAxis->setRange(lo - pad, hi + pad);
    if (std::isfinite(m_reference)) m_refText->position->setCoords(xAxis->range().lower + 0.01 * xAxis->range().size(), m_reference);
    const double last = lastError();
    m_lastText->setText(std::isfinite(last) ? tr("iteration %1: %2").arg(pointCount()).arg(last, 0, 'f', 4)
                                            : QString());
}

QString ErrorCurvePlot::csv() const
{
    QString out = QStringLiteral("iteration,rel_error\n");
    for (auto it = m_curve->data()->constBegin(); it != m_curve->data()->constEnd(); ++it)
        out += QStringLiteral("%1,%2\n").arg(static_cast<int>(it->key)).arg(csvNumber(it->value));
    return out;
}

}  // namespace mdbf::widgets
