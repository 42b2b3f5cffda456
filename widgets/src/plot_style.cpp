#include "mdbf/widgets/plot_style.h"

#include <array>

#include <qcustomplot.h>

namespace mdbf::widgets::plotStyle {

QColor seriesColor(int i)
{
    // Okabe–Ito palette without its yellow, which vanishes on white.
    static const std::array<QColor, 7> kColors = {QColor(0, 114, 178),  QColor(213, 94, 0),  QColor(0, 158, 115),
                                                  QColor(204, 121, 167), QColor(86, 180, 233), QColor(230, 159, 0),
                                                  QColor(60, 60, 60)};
    const int n = static_cast<int>(kColors.size());
    return kColors[static_cast<std::size_t>(((i % n) + n) % n)];
}

QColor referenceColor() { return QColor(120, 120, 120); }

void applyAxisRect(QCPAxisRect* rect)
{
    const QColor axisColor(90, 90, 90);
    const QColor gridColor(225, 225, 225);
    for (QCPAxis* axis : rect->axes()) {
        axis->setBasePen(QPen(axisColor, 1));
        axis->setTickPen(QPen(axisColor, 1));
        axis->setSubTickPen(QPen(axisColor, 1));
        axis->setTickLabelColor(axisColor);
        axis->setLabelColor(QColor(40, 40, 40));
        axis->grid()->setPen(QPen(gridColor, 1, Qt::SolidLine));
        axis->grid()->setSubGridPen(QPen(QColor(240, 240, 240), 1, Qt::DotLine));
        axis->grid()->setZeroLinePen(QPen(gridColor, 1));
    }
}

void apply(QCustomPlot* plot)
{
    plot->setBackground(QBrush(Qt::white));
    plot->setAntialiasedElements(QCP::aeAll);
    plot->setNotAntialiasedElements(QCP::aeGrid | QCP::aeAxes);
    QFont font = plot->font();
    font.setPointSizeF(9.0);
    plot->xAxis->setTickLabelFont(font);
    plot->yAxis->setTickLabelFont(font);
    plot->xAxis->setLabelFont(font);
    plot->yAxis->setLabelFont(font);
    plot->legend->setFont(font);
    plot->legend->setBorderPen(QPen(QColor(200, 200, 200)));
    plot->legend->setBrush(QBrush(QColor(255, 255, 255, 220)));
    applyAxisRect(plot->axisRect());
}

QCPColorGradient divergingGradient()
{
    // ColorBrewer RdBu, negative blue, zero white, positive red.
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.0, QColor(5, 48, 97));
    g.setColorStopAt(0.15, QColor(33, 102, 172));
    g.setColorStopAt(0.3, QColor(103, 169, 207));
    g.setColorStopAt(0.42, QColor(209, 229, 240));
    g.setColorStopAt(0.5, QColor(247, 247, 247));
    g.setColorStopAt(0.58, QColor(253, 219, 199));
    g.setColorStopAt(0.7, QColor(239, 138, 98));
    g.setColorStopAt(0.85, QColor(178, 24, 43));
    g.setColorStopAt(1.0, QColor(103, 0, 31));
    g.setColorInterpolation(QCPColorGradient::ciRGB);
    g.setLevelCount(256);
    return g;
}

}  // namespace mdbf::widgets::plotStyle
