#pragma once
// Base of every plot in the studio: a QCustomPlot with the house look, a coalescing replot timer
// for live data, and a context menu to export the figure (PNG, PDF, SVG) or copy its data as CSV.

#include <QString>
#include <QTimer>

#include <qcustomplot.h>

class QMenu;

namespace mdbf::widgets {

/// A QCustomPlot with export and CSV copy. Subclasses describe their data through csv().
/// GUI-thread only, like every widget.
class PlotWidget : public QCustomPlot {
    Q_OBJECT
public:
    /// Creates an empty plot with the house look (plotStyle::apply).
    explicit PlotWidget(QWidget* parent = nullptr);

    /// The plotted data as CSV: one header line, then one line per point (subclasses override; the
    /// default lists every graph as `series,x,y`).
    virtual QString csv() const;

    /// Base of the file name proposed by the export dialogs ("spectrum", "error-curve", ...).
    void setExportName(const QString& name) { m_exportName = name; }
    const QString& exportName() const { return m_exportName; }

    /// Writes a PNG at `scale` × the widget size (or width × height when both are positive).
    /// Returns false if the file could not be written.
    bool exportPng(const QString& path, int width = 0, int height = 0, double scale = 2.0);

    /// Writes a vector PDF of the plot at the widget size. Returns false on failure.
    bool exportPdf(const QString& path);

    /// Writes an SVG through QSvgGenerator at the widget size (colour maps are embedded as images).
    /// Returns false on failure.
    bool exportSvg(const QString& path);

    /// Puts csv() on the clipboard as text.
    void copyCsvToClipboard() const;

    /// The read-out of the plotted point nearest to `pixel` (widget coordinates) within `radius`
    /// pixels: "series: x = …, y = …" (empty when no point is that close). Shown as the tooltip on hover.
    QString pointReadout(const QPointF& pixel, double radius = 10.0) const;

    /// Builds the context menu (export and copy entries plus subclass entries); the caller owns it.
    QMenu* createContextMenu(QWidget* parent);

public slots:
    /// Schedules one queued replot within ~100 ms; many calls in that window coalesce into one, so
    /// live data can be appended at any rate.
    void scheduleReplot();

protected:
    void contextMenuEvent(QContextMenuEvent* event) override;
    bool event(QEvent* event) override;

    /// Lets subclasses add entries (e.g. "Reset zoom") to the context menu.
    virtual void extendContextMenu(QMenu* menu) { (void)menu; }

    /// Called by the replot timer before replotting; subclasses rescale axes here.
    virtual void beforeScheduledReplot() {}

private:
    void exportWithDialog(const QString& filter, const QString& suffix);
    bool writeSvg(const QString& path);

    QString m_exportName = QStringLiteral("plot");
    QTimer m_replotTimer;
};

/// Formats a double for CSV with enough digits to round-trip.
QString csvNumber(double v);

}  // namespace mdbf::widgets
