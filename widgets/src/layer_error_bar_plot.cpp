#include "mdbf/widgets/layer_error_bar_plot.h"

#include <algorithm>
#include <cmath>

#include <QHelpEvent>
#include <QMouseEvent>
#include <QToolTip>

#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

namespace {

constexpr double kBarWidth = 0.72;

/// The house colour cycle, extended with three more distinguishable colours so that the eight kinds
/// of projection of a LLaMA model (q, k, v, o, gate, up, down, head) all differ.
QColor categoryColor(int i)
{
    static const QColor kExtra[] = {QColor(140, 86, 75), QColor(148, 103, 189), QColor(188, 189, 34)};
    if (i < 7) return plotStyle::seriesColor(i);
    return kExtra[(i - 7) % 3];
}
// Half-width of the column that counts as "on" an entry for hovering and clicking: most of the
// slot, so short bars are as easy to hit as tall ones.
constexpr double kHitHalfWidth = 0.45;

}  // namespace

LayerErrorBarPlot::LayerErrorBarPlot(QWidget* parent) : PlotWidget(parent)
{
    setExportName(QStringLiteral("layer-errors"));
    setToolTip(tr("Relative error of every factorized layer in model order. Hover a bar for its layer, click to "
                  "inspect it, right-click to export"));
    // No x label: the tick labels ("3·up") and the legend say what the bars are, and the height is
    // better spent on the bars in a short dock.
    xAxis->setTickLabelRotation(-90);
    QFont tickFont = xAxis->tickLabelFont();
    tickFont.setPointSizeF(8.0);
    xAxis->setTickLabelFont(tickFont);
    xAxis->grid()->setVisible(false);
    xAxis->setSubTicks(false);
    xAxis->setTicker(QSharedPointer<QCPAxisTickerText>::create());
    setObjectiveLabel(tr("plain"));
    // The legend gets a row of its own above the bars, one line wide, so it never hides a bar.
    axisRect()->insetLayout()->take(legend);
    plotLayout()->insertRow(0);
    plotLayout()->addElement(0, 0, legend);
    plotLayout()->setRowStretchFactor(0, 0.001);
    plotLayout()->setRowSpacing(0);
    legend->setFillOrder(QCPLegend::foColumnsFirst);
    legend->setBorderPen(Qt::NoPen);
    legend->setBrush(Qt::NoBrush);
    legend->setMargins(QMargins(4, 3, 4, 3));
    // A legend row is as tall as its icon; the text is drawn top-aligned and its descenders need a few
    // pixels of room below one line height, or they are clipped.
    legend->setIconSize(QSize(11, QFontMetrics(legend->font()).height() + 4));
    legend->setVisible(true);
    // The label's length does not change the layout (it is drawn along the axis), so fitting it to
    // the laid-out axis causes no second layout.
    connect(this, &QCustomPlot::afterLayout, this, &LayerErrorBarPlot::fitYLabel);
    rebuild();
}

void LayerErrorBarPlot::setObjectiveLabel(const QString& objective)
{
    m_objective = objective;
    fitYLabel();
}

QString LayerErrorBarPlot::yAxisLabelText() const { return tr("rel. error (%1)").arg(m_objective); }

void LayerErrorBarPlot::fitYLabel()
{
    // A short dock leaves the axis shorter than the full label: drawn anyway, it would run into the
    // legend row above. The longest form that fits is drawn instead.
    const int room = axisRect()->height() > 10 ? axisRect()->height() - 4 : std::max(40, height() - 110);
    const QFontMetrics metrics(yAxis->labelFont());
    const QStringList forms = {yAxisLabelText(), tr("rel. error"), tr("error")};
    QString label = forms.back();
    for (const QString& form : forms) {
        if (metrics.horizontalAdvance(form) <= room) {
            label = form;
            break;
        }
    }
    if (label != yAxis->label()) yAxis->setLabel(label);
}

void LayerErrorBarPlot::setEntries(std::vector<LayerErrorBar> entries)
{
    m_entries = std::move(entries);
    rebuild();
}

void LayerErrorBarPlot::clear()
{
    m_entries.clear();
    rebuild();
}

int LayerErrorBarPlot::barCount() const
{
    return static_cast<int>(std::count_if(m_entries.begin(), m_entries.end(), [](const LayerErrorBar& e) { return !e.dense; }));
}

void LayerErrorBarPlot::rebuild()
{
    for (QCPBars* bars : m_bars) removePlottable(bars);
    m_bars.clear();
    for (QCPItemText* mark : m_denseMarks) removeItem(mark);
    m_denseMarks.clear();
    if (m_highlight) removePlottable(m_highlight);
    m_highlight = nullptr;

    // The legend's wrap must be set before the bars add themselves to it: it only applies to new items.
    std::vector<QString> categories;
    for (const LayerErrorBar& e : m_entries)
        if (!e.dense && std::find(categories.begin(), categories.end(), e.category) == categories.end())
            categories.push_back(e.category);
    legend->setWrap(std::max<int>(1, static_cast<int>(categories.size())));
    legend->setFillOrder(QCPLegend::foColumnsFirst, true);
    double top = 0.0;
    for (std::size_t i = 0; i < m_entries.size(); ++i) {
        const LayerErrorBar& e = m_entries[i];
        const double x = static_cast<double>(i);
        if (e.dense) {
            auto* mark = new QCPItemText(this);
            mark->setClipToAxisRect(true);
            mark->position->setType(QCPItemPosition::ptPlotCoords);
            mark->position->setCoords(x, 0.0);
            mark->setPositionAlignment(Qt::AlignLeft | Qt::AlignVCenter);
            mark->setRotation(-90);
            mark->setPadding(QMargins(4, 0, 0, 0));
            mark->setText(tr("dense"));
            QFont f = font();
            f.setPointSizeF(8.0);
            f.setItalic(true);
            mark->setFont(f);
            mark->setColor(plotStyle::referenceColor());
            m_denseMarks.push_back(mark);
            continue;
        }
        const auto slot = static_cast<std::size_t>(std::find(categories.begin(), categories.end(), e.category) -
                                                   categories.begin());
        while (m_bars.size() <= slot) m_bars.push_back(nullptr);
        if (!m_bars[slot]) {
            auto* bars = new QCPBars(xAxis, yAxis);
            const QColor color = categoryColor(e.colorIndex >= 0 ? e.colorIndex : static_cast<int>(slot));
            bars->setPen(QPen(color.darker(125), 1));
            bars->setBrush(color);
            bars->setWidth(kBarWidth);
            bars->setName(e.category.isEmpty() ? tr("layers") : e.category);
            m_bars[slot] = bars;
        }
        m_bars[slot]->addData(x, e.error);
        if (std::isfinite(e.error)) top = std::max(top, e.error);
    }

    if (const auto hit = std::find_if(m_entries.begin(), m_entries.end(),
                                      [this](const LayerErrorBar& e) { return !e.dense && e.name == m_highlighted; });
        hit != m_entries.end()) {
        m_highlight = new QCPBars(xAxis, yAxis);
        m_highlight->setPen(QPen(QColor(20, 20, 20), 2));
        m_highlight->setBrush(Qt::NoBrush);
        m_highlight->setWidth(kBarWidth);
        m_highlight->setName(tr("selected"));
        m_highlight->removeFromLegend();
        m_highlight->addData(static_cast<double>(hit - m_entries.begin()), hit->error);
    }

    // A few bars keep a sensible width instead of filling the whole plot.
    constexpr int kMinSlots = 12;
    const int n = static_cast<int>(m_entries.size());
    xAxis->setRange(-0.7, std::max(n, kMinSlots) - 0.3);
    yAxis->setRange(0.0, top > 0.0 ? top * 1.08 : 1.0);
    updateTicks();
    scheduleReplot();
}

void LayerErrorBarPlot::updateTicks()
{
    auto ticker = qSharedPointerDynamicCast<QCPAxisTickerText>(xAxis->ticker());
    if (!ticker) return;
    ticker->clear();
    const int n = static_cast<int>(m_entries.size());
    if (n == 0) return;
    // Rotated labels stand one text line apart; label every stride-th entry so they never overlap.
    const int width = axisRect()->width() > 10 ? axisRect()->width() : std::max(100, this->width() - 80);
    const int pitch = QFontMetrics(xAxis->tickLabelFont()).height() + 2;
    const int stride = std::max(1, static_cast<int>(std::ceil(static_cast<double>(n) * pitch / width)));
    for (int i = 0; i < n; i += stride) ticker->addTick(i, m_entries[static_cast<std::size_t>(i)].label);
}

std::optional<double> LayerErrorBarPlot::plottedError(const QString& name) const
{
    const auto it = std::find_if(m_entries.begin(), m_entries.end(), [&](const LayerErrorBar& e) { return e.name == name; });
    if (it == m_entries.end() || it->dense) return std::nullopt;
    const double x = static_cast<double>(it - m_entries.begin());
    for (const QCPBars* bars : m_bars) {
        for (auto d = bars->data()->constBegin(); d != bars->data()->constEnd(); ++d)
            if (d->key == x) return d->value;
    }
    return std::nullopt;
}

void LayerErrorBarPlot::setHighlighted(const QString& name)
{
    if (name == m_highlighted) return;
    m_highlighted = name;
    rebuild();
}

int LayerErrorBarPlot::entryAt(const QPoint& pos) const
{
    if (m_entries.empty() || !axisRect()->rect().contains(pos)) return -1;
    const double x = xAxis->pixelToCoord(pos.x());
    const double nearest = std::round(x);
    if (std::abs(x - nearest) > kHitHalfWidth) return -1;
    const int index = static_cast<int>(nearest);
    return index >= 0 && index < static_cast<int>(m_entries.size()) ? index : -1;
}

QString LayerErrorBarPlot::entryToolTip(int index) const
{
    if (index < 0 || index >= static_cast<int>(m_entries.size())) return {};
    const LayerErrorBar& e = m_entries[static_cast<std::size_t>(index)];
    QString text = QStringLiteral("<b>%1</b>").arg(e.name.toHtmlEscaped());
    if (!e.detail.isEmpty()) text += QStringLiteral("<br>") + e.detail.toHtmlEscaped();
    if (!e.dense) text += QStringLiteral("<br>") + tr("relative error %1").arg(e.error, 0, 'f', 4);
    return text;
}

bool LayerErrorBarPlot::event(QEvent* event)
{
    if (event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        const int index = entryAt(help->pos());
        if (index >= 0) {
            QToolTip::showText(help->globalPos(), entryToolTip(index), this);
            return true;
        }
    }
    return PlotWidget::event(event);
}

void LayerErrorBarPlot::mousePressEvent(QMouseEvent* event)
{
    m_pressPos = event->pos();
    PlotWidget::mousePressEvent(event);
}

void LayerErrorBarPlot::mouseReleaseEvent(QMouseEvent* event)
{
    PlotWidget::mouseReleaseEvent(event);
    if (event->button() != Qt::LeftButton || (event->pos() - m_pressPos).manhattanLength() > 4) return;
    const int index = entryAt(event->pos());
    if (index >= 0) emit barClicked(m_entries[static_cast<std::size_t>(index)].name);
}

void LayerErrorBarPlot::resizeEvent(QResizeEvent* event)
{
    PlotWidget::resizeEvent(event);
    updateTicks();
    scheduleReplot();
}

QString LayerErrorBarPlot::csv() const
{
    QString out = QStringLiteral("layer,category,rel_error,dense\n");
    for (const LayerErrorBar& e : m_entries) {
        out += QStringLiteral("\"%1\",\"%2\",%3,%4\n")
                   .arg(e.name, e.category, e.dense ? QString() : csvNumber(e.error))
                   .arg(e.dense ? 1 : 0);
    }
    return out;
}

}  // namespace mdbf::widgets
