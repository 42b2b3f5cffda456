#include "mdbf/widgets/plot_widget.h"

#include <filesystem>
#include <system_error>

#include <QApplication>
#include <QClipboard>
#include <QContextMenuEvent>
#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>
#include <QStandardPaths>
#include <QFile>
#include <QSvgGenerator>

#include <QToolTip>
#include <QHelpEvent>
#include <cmath>
#include "mdbf/widgets/plot_style.h"

namespace mdbf::widgets {

QString csvNumber(double v) { return QString::number(v, 'g', 17); }

PlotWidget::PlotWidget(QWidget* parent) : QCustomPlot(parent)
{
    plotStyle::apply(this);
    setToolTip(tr("Right-click to export the figure (PNG, PDF, SVG) or copy its data as CSV"));
    m_replotTimer.setSingleShot(true);
    m_replotTimer.setInterval(100);
    connect(&m_replotTimer, &QTimer::timeout, this, [this] {
        beforeScheduledReplot();
        replot(QCustomPlot::rpQueuedReplot);
    });
}

void PlotWidget::scheduleReplot()
{
    if (!m_replotTimer.isActive()) m_replotTimer.start();
}

QString PlotWidget::csv() const
{
    QString out = QStringLiteral("series,x,y\n");
    for (int g = 0; g < graphCount(); ++g) {
        const QCPGraph* graph = this->graph(g);
        const QString name = graph->name().isEmpty() ? QStringLiteral("graph%1").arg(g) : graph->name();
        for (auto it = graph->data()->constBegin(); it != graph->data()->constEnd(); ++it) {
            out += QStringLiteral("\"%1\",%2,%3\n").arg(name, csvNumber(it->key), csvNumber(it->value));
        }
    }
    return out;
}

QString PlotWidget::pointReadout(const QPointF& pixel, double radius) const
{
    double best = radius * radius;
    QString out;
    for (int g = 0; g < graphCount(); ++g) {
        const QCPGraph* graph = this->graph(g);
        if (!graph->visible()) continue;
        for (auto it = graph->data()->constBegin(); it != graph->data()->constEnd(); ++it) {
            if (!std::isfinite(it->key) || !std::isfinite(it->value)) continue;
            const QPointF at = graph->coordsToPixels(it->key, it->value);
            const double d = (at.x() - pixel.x()) * (at.x() - pixel.x()) + (at.y() - pixel.y()) * (at.y() - pixel.y());
            if (d > best) continue;
            best = d;
            const QString name = graph->name().isEmpty() ? tr("series %1").arg(g + 1) : graph->name();
            out = tr("%1: %2 = %3, %4 = %5")
                      .arg(name, graph->keyAxis()->label().isEmpty() ? QStringLiteral("x") : graph->keyAxis()->label())
                      .arg(it->key, 0, 'g', 6)
                      .arg(graph->valueAxis()->label().isEmpty() ? QStringLiteral("y") : graph->valueAxis()->label())
                      .arg(it->value, 0, 'g', 6);
        }
    }
    return out;
}

bool PlotWidget::event(QEvent* event)
{
    if (event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        const QString readout = pointReadout(help->pos());
        // Over a point: its values; elsewhere the widget's own tooltip (how to export).
        QToolTip::showText(help->globalPos(), readout.isEmpty() ? toolTip() : readout, this);
        return true;
    }
    return QCustomPlot::event(event);
}

namespace {

// Writes through a sibling temporary file renamed into place, so a failed export never leaves a
// truncated figure under the requested name.
template <typename Write>
bool writeAtomically(const QString& path, Write&& write)
{
    const QString partial = path + QStringLiteral(".partial");
    QFile::remove(partial);
    if (!write(partial)) {
        QFile::remove(partial);
        return false;
    }
    std::error_code ec;
    std::filesystem::rename(partial.toStdString(), path.toStdString(), ec);
    if (ec) {
        QFile::remove(partial);
        return false;
    }
    return true;
}

}  // namespace

bool PlotWidget::exportPng(const QString& path, int width, int height, double scale)
{
    return writeAtomically(path, [&](const QString& file) { return savePng(file, width, height, scale); });
}

bool PlotWidget::exportPdf(const QString& path)
{
    return writeAtomically(path, [&](const QString& file) {
        return savePdf(file, 0, 0, QCP::epNoCosmetic, QStringLiteral("mdbf-studio"), m_exportName);
    });
}

bool PlotWidget::exportSvg(const QString& path)
{
    return writeAtomically(path, [&](const QString& file) { return writeSvg(file); });
}

bool PlotWidget::writeSvg(const QString& path)
{
    const int w = std::max(1, width());
    const int h = std::max(1, height());
    QSvgGenerator generator;
    generator.setFileName(path);
    generator.setSize(QSize(w, h));
    generator.setViewBox(QRect(0, 0, w, h));
    generator.setTitle(m_exportName);
    generator.setDescription(QStringLiteral("exported by mdbf-studio"));
    QCPPainter painter;
    if (!painter.begin(&generator)) return false;
    toPainter(&painter, w, h);
    return painter.end();
}

void PlotWidget::copyCsvToClipboard() const
{
    if (QClipboard* clipboard = QApplication::clipboard()) clipboard->setText(csv());
}

QMenu* PlotWidget::createContextMenu(QWidget* parent)
{
    auto* menu = new QMenu(parent);
    QAction* png = menu->addAction(tr("Export as PNG…"), this,
                                   [this] { exportWithDialog(tr("PNG image (*.png)"), QStringLiteral("png")); });
    png->setToolTip(tr("Save the figure as a PNG at twice the on-screen resolution"));
    QAction* pdf = menu->addAction(tr("Export as PDF…"), this,
                                   [this] { exportWithDialog(tr("PDF document (*.pdf)"), QStringLiteral("pdf")); });
    pdf->setToolTip(tr("Save the figure as a vector PDF"));
    QAction* svg = menu->addAction(tr("Export as SVG…"), this,
                                   [this] { exportWithDialog(tr("SVG image (*.svg)"), QStringLiteral("svg")); });
    svg->setToolTip(tr("Save the figure as an SVG drawing"));
    menu->addSeparator();
    QAction* copy = menu->addAction(tr("Copy data as CSV"), this, [this] { copyCsvToClipboard(); });
    copy->setToolTip(tr("Put the plotted numbers on the clipboard as comma-separated values"));
    menu->setToolTipsVisible(true);
    extendContextMenu(menu);
    return menu;
}

void PlotWidget::contextMenuEvent(QContextMenuEvent* event)
{
    QMenu* menu = createContextMenu(this);
    menu->setAttribute(Qt::WA_DeleteOnClose);
    menu->popup(event->globalPos());
}

void PlotWidget::exportWithDialog(const QString& filter, const QString& suffix)
{
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::PicturesLocation);
    const QString proposed = dir + QLatin1Char('/') + m_exportName + QLatin1Char('.') + suffix;
    QString path = QFileDialog::getSaveFileName(this, tr("Export figure"), proposed, filter);
    if (path.isEmpty()) return;
    if (!path.endsWith(QLatin1Char('.') + suffix, Qt::CaseInsensitive)) path += QLatin1Char('.') + suffix;
    bool ok = false;
    if (suffix == QLatin1String("png")) ok = exportPng(path);
    else if (suffix == QLatin1String("pdf")) ok = exportPdf(path);
    else ok = exportSvg(path);
    if (!ok) QMessageBox::warning(this, tr("Export failed"), tr("Could not write '%1'.").arg(path));
}

}  // namespace mdbf::widgets
