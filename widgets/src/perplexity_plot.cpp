#include "mdbf/widgets/perplexity_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

PerplexityPlot::PerplexityPlot(QWidget* parent)
    : PlotWidget(parent), m_originalPpl(std::numeric_limits<double>::quiet_NaN()), m_originalBpw(0.0)
{
    setExportName(QStringLiteral("perplexity-vs-bpw"));
    plotLayout()->insertRow(0);
    m_title = new QCPTextElement(this, QString(), QFont(font().family(), 9));
    plotLayout()->addElement(0, 0, m_title);
    xAxis->setLabel(tr("model bits per weight"));
    yAxis->setLabel(tr("perplexity"));
    legend->setVisible(true);
    axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

    m_scatter = addGraph();
    m_scatter->setName(tr("configurations"));
    m_scatter->setLineStyle(QCPGraph::lsNone);
    m_scatter->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, plotStyle::seriesColor(1), 8));
    m_original = addGraph();
    m_original->setName(tr("original"));
    m_original->setLineStyle(QCPGraph::lsNone);
    m_original->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, QPen(QColor(30, 30, 30), 1.5),
                                                 QBrush(Qt::white), 9));
    m_study = addGraph();
    m_study->setName(tr("study"));
    m_study->setLineStyle(QCPGraph::lsNone);
    m_study->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssTriangle, QPen(plotStyle::seriesColor(3), 1.5),
                                             QBrush(Qt::NoBrush), 8));
    m_study->removeFromLegend();
    m_refLine = new QCPItemStraightLine(this);
    m_refLine->setPen(QPen(plotStyle::referenceColor(), 1, Qt::DashLine));
    setMeasureLabel(QString());
    clear();
}

void PerplexityPlot::setMeasureLabel(const QString& label)
{
    m_title->setText(label.isEmpty() ? tr("perplexity vs model bpw") : tr("perplexity vs model bpw  ·  %1").arg(label));
    scheduleReplot();
}

void PerplexityPlot::clear()
{
    m_points.clear();
    m_scatter->data()->clear();
    setStudyPoints({}, QString());
    setOriginal(std::numeric_limits<double>::quiet_NaN(), 0.0);
}

void PerplexityPlot::setOriginal(double ppl, double modelBpw)
{
    m_originalPpl = ppl;
    m_originalBpw = modelBpw;
    m_original->data()->clear();
    const bool show = std::isfinite(ppl);
    m_refLine->setVisible(show);
    if (show) {
        m_original->addData(modelBpw, ppl);
        m_refLine->point1->setCoords(0.0, ppl);
        m_refLine->point2->setCoords(1.0, ppl);
    }
    rescale();
    scheduleReplot();
}

void PerplexityPlot::addPoint(const PerplexityPoint& p)
{
    m_points.push_back(p);
    m_scatter->addData(p.modelBpw, p.ppl);
    rescale();
    scheduleReplot();
}

void PerplexityPlot::clearStudyLabels()
{
    for (QCPItemText* label : m_studyLabels) removeItem(label);
    m_studyLabels.clear();
}

void PerplexityPlot::setStudyPoints(std::vector<PerplexityPoint> points, const QString& name)
{
    clearStudyLabels();
    m_studyPoints = std::move(points);
    m_study->data()->clear();
    m_study->setName(name.isEmpty() ? tr("study") : name);
    if (m_studyPoints.empty()) {
        m_study->removeFromLegend();
    } else {
        m_study->addToLegend();
    }
    const QColor color = plotStyle::seriesColor(3);
    for (const PerplexityPoint& p : m_studyPoints) {
        m_study->addData(p.modelBpw, p.ppl);
        auto* label = new QCPItemText(this);
        label->position->setCoords(p.modelBpw, p.ppl);
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        label->setPadding(QMargins(5, 0, 0, 2));
        label->setText(p.label);
        label->setColor(color);
        label->setFont(QFont(font().family(), 7));
        label->setClipToAxisRect(true);
        m_studyLabels.push_back(label);
    }
    rescale();
    scheduleReplot();
}

void PerplexityPlot::rescale()
{
    double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
    auto take = [&](double x, double y) {
        xlo = std::min(xlo, x);
        xhi = std::max(xhi, x);
        ylo = std::min(ylo, y);
        yhi = std::max(yhi, y);
    };
    for (const auto& p : m_points) take(p.modelBpw, p.ppl);
    for (const auto& p : m_studyPoints) take(p.modelBpw, p.ppl);
    if (std::isfinite(m_originalPpl)) take(m_originalBpw, m_originalPpl);
    if (xlo > xhi) {
        xAxis->setRange(0.0, 16.0);
        yAxis->setRange(0.0, 100.0);
        return;
    }
    const double xpad = std::max((xhi - xlo) * 0.08, 0.25);
    const double ypad = std::max((yhi - ylo) * 0.1, std::abs(yhi) * 0.05);
    xAxis->setRange(std::max(0.0, xlo - xpad), xhi + xpad);
    yAxis->setRange(std::max(0.0, ylo - ypad), yhi + ypad);
}

QString PerplexityPlot::csv() const
{
    QString out = QStringLiteral("label,model_bpw,ppl\n");
    if (std::isfinite(m_originalPpl))
        out += QStringLiteral("original,%1,%2\n").arg(csvNumber(m_originalBpw), csvNumber(m_originalPpl));
    for (const auto& p : m_points) {
        QString label = p.label;
        label.replace(QLatin1Char('"'), QLatin1String("\"\""));
        out += QStringLiteral("\"%1\",%2,%3\n").arg(label, csvNumber(p.modelBpw), csvNumber(p.ppl));
    }
    for (const auto& p : m_studyPoints) {
        QString label = QStringLiteral("study: ") + p.label;
        label.replace(QLatin1Char('"'), QLatin1String("\"\""));
        out += QStringLiteral("\"%1\",%2,%3\n").arg(label, csvNumber(p.modelBpw), csvNumber(p.ppl));
    }
    return out;
}

}  // namespace mdbf::widgets
