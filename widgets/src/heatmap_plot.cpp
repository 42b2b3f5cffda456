#include "mdbf/widgets/heatmap_plot.h"

#include <algorithm>
#include <cmath>

#include <QMenu>
#include <QToolTip>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

HeatmapPlot::HeatmapPlot(QWidget* parent) : PlotWidget(parent)
{
    setExportName(QStringLiteral("heatmap"));
    setMouseTracking(true);
    setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

    plotLayout()->insertRow(0);
    m_title = new QCPTextElement(this, QString(), QFont(font().family(), 9, QFont::DemiBold));
    plotLayout()->addElement(0, 0, m_title);

    xAxis->setLabel(tr("column"));
    yAxis->setLabel(tr("row"));
    yAxis->setRangeReversed(true);  // row 0 at the top, as matrices are written
    xAxis->grid()->setVisible(false);
    yAxis->grid()->setVisible(false);

    m_map = new QCPColorMap(xAxis, yAxis);
    m_map->setInterpolate(false);
    m_map->setTightBoundary(true);
    m_map->setGradient(plotStyle::divergingGradient());

    m_scale = new QCPColorScale(this);
    m_scale->setType(QCPAxis::atRight);
    m_scale->setBarWidth(12);
    m_scale->axis()->setTickLabelColor(QColor(90, 90, 90));
    plotLayout()->addElement(1, 1, m_scale);
    m_map->setColorScale(m_scale);
    // The scale owns the gradient once connected (it pushes its own to the map).
    m_scale->setGradient(plotStyle::divergingGradient());

    // Keeps the colour bar exactly as tall as the map.
    auto* margins = new QCPMarginGroup(this);
    axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    clear();
}

void HeatmapPlot::clear(const QString& message)
{
    m_rows = m_cols = 0;
    m_pool = 1;
    m_maxAbs = 0.0;
    m_map->data()->clear();
    m_map->setVisible(false);
    m_title->setText(message.isEmpty() ? tr("no data") : message);
    xAxis->setRange(0, 1);
    yAxis->setRange(0, 1);
    applyRange();
    replot();
}

void HeatmapPlot::setMatrix(const RowMatrixF& matrix, const QString& title, const QString& valueLabel)
{
    showMatrix(matrix, title, valueLabel);
}

void HeatmapPlot::setMatrix(const RowMatrixH& matrix, const QString& title, const QString& valueLabel)
{
    showMatrix(matrix, title, valueLabel);
}

template <class Matrix>
void HeatmapPlot::showMatrix(const Matrix& matrix, const QString& title, const QString& valueLabel)
{
    m_rows = matrix.rows();
    m_cols = matrix.cols();
    if (m_rows == 0 || m_cols == 0) {
        clear(title);
        return;
    }
    const Eigen::Index side = std::max(m_rows, m_cols);
    m_pool = static_cast<int>((side + kMaxDisplaySide - 1) / kMaxDisplaySide);
    const Eigen::Index f = m_pool;
    const int cellsX = static_cast<int>((m_cols + f - 1) / f);
    const int cellsY = static_cast<int>((m_rows + f - 1) / f);

    QCPColorMapData* data = m_map->data();
    data->setSize(cellsX, cellsY);
    // Cell centres sit on the matrix index of each block's first entry (plus half a block), so the
    // axes keep reading in original matrix coordinates.
    const double half = (static_cast<double>(f) - 1.0) / 2.0;
    data->setRange(QCPRange(half, half + static_cast<double>(f) * (cellsX - 1)),
                   QCPRange(half, half + static_cast<double>(f) * (cellsY - 1)));
    m_maxAbs = 0.0;
    for (int cy = 0; cy < cellsY; ++cy) {
        const Eigen::Index r0 = cy * f;
        const Eigen::Index r1 = std::min(m_rows, r0 + f);
        for (int cx = 0; cx < cellsX; ++cx) {
            const Eigen::Index c0 = cx * f;
            const Eigen::Index c1 = std::min(m_cols, c0 + f);
            float best = static_cast<float>(matrix(r0, c0));
            for (Eigen::Index r = r0; r < r1; ++r)
                for (Eigen::Index c = c0; c < c1; ++c) {
                    const float x = static_cast<float>(matrix(r, c));
                    if (std::abs(x) > std::abs(best)) best = x;
                }
            data->setCell(cx, cy, best);
            m_maxAbs = std::max(m_maxAbs, static_cast<double>(std::abs(best)));
        }
    }
    m_map->setVisible(true);
    QString heading = title;
    heading += (heading.isEmpty() ? QString() : QStringLiteral("  ·  ")) +
               QStringLiteral("%1 × %2").arg(m_rows).arg(m_cols);
    if (m_pool > 1) heading += tr("  ·  shown max-|x| pooled %1×%1").arg(m_pool);
    m_title->setText(heading);
    m_scale->axis()->setLabel(valueLabel);
    xAxis->setRange(-0.5, static_cast<double>(m_cols) - 0.5);
    yAxis->setRange(-0.5, static_cast<double>(m_rows) - 0.5);
    applyRange();
    replot();
}

void HeatmapPlot::setSharedRange(double r)
{
    m_sharedRange = r > 0.0 ? r : 0.0;
    applyRange();
    replot();
}

double HeatmapPlot::colorRangeHalfWidth() const
{
    if (m_sharedRange > 0.0) return m_sharedRange;
    return m_maxAbs > 0.0 ? m_maxAbs : 1.0;
}

void HeatmapPlot::applyRange()
{
    const double r = colorRangeHalfWidth();
    m_map->setDataRange(QCPRange(-r, r));
}

void HeatmapPlot::shareRange(const std::vector<HeatmapPlot*>& plots)
{
    double r = 0.0;
    for (const HeatmapPlot* p : plots) r = std::max(r, p->dataMaxAbs());
    for (HeatmapPlot* p : plots) p->setSharedRange(r);
}

double HeatmapPlot::displayedValue(Eigen::Index row, Eigen::Index col) const
{
    if (row < 0 || col < 0 || row >= m_rows || col >= m_cols) return 0.0;
    return m_map->data()->cell(static_cast<int>(col / m_pool), static_cast<int>(row / m_pool));
}

QString HeatmapPlot::title() const { return m_title->text(); }

QString HeatmapPlot::csv() const
{
    QCPColorMapData* data = m_map->data();
    QString out;
    if (m_rows == 0) return out;
    out.reserve(data->keySize() * data->valueSize() * 12);
    for (int cy = 0; cy < data->valueSize(); ++cy) {
        for (int cx = 0; cx < data->keySize(); ++cx) {
            if (cx > 0) out += QLatin1Char(',');
            out += csvNumber(data->cell(cx, cy));
        }
        out += QLatin1Char('\n');
    }
    return out;
}

void HeatmapPlot::mouseMoveEvent(QMouseEvent* event)
{
    PlotWidget::mouseMoveEvent(event);
    QString text;
    if (m_rows > 0 && axisRect()->rect().contains(event->pos())) {
        const double x = xAxis->pixelToCoord(event->position().x());
        const double y = yAxis->pixelToCoord(event->position().y());
        const auto col = static_cast<Eigen::Index>(std::floor(x + 0.5));
        const auto row = static_cast<Eigen::Index>(std::floor(y + 0.5));
        if (row >= 0 && col >= 0 && row < m_rows && col < m_cols) {
            text = tr("row %1, col %2: %3").arg(row).arg(col).arg(displayedValue(row, col), 0, 'g', 4);
            if (m_pool > 1) text += tr(" (max-|x| of %1×%1 block)").arg(m_pool);
        }
    }
    emit hoverTextChanged(text);
    if (!text.isEmpty()) QToolTip::showText(event->globalPosition().toPoint(), text, this);
}

void HeatmapPlot::extendContextMenu(QMenu* menu)
{
    menu->addSeparator();
    QAction* reset = menu->addAction(tr("Reset zoom"), this, [this] {
        xAxis->setRange(-0.5, static_cast<double>(std::max<Eigen::Index>(m_cols, 1)) - 0.5);
        yAxis->setRange(-0.5, static_cast<double>(std::max<Eigen::Index>(m_rows, 1)) - 0.5);
        replot();
    });
    reset->setToolTip(tr("Show the whole matrix again"));
}

}  // namespace mdbf::widgets
