#pragma once
// A ±1 sign matrix (kernels::PackedSigns) drawn black (−1) and white (+1), never interpolated.
// Large matrices are shown through a pooled overview (mean of f×f blocks, grey = mixed), rendered
// once per matrix; zooming in far enough that a cell covers a screen pixel switches to the exact
// signs of the visible region.

#include <algorithm>
#include <memory>

#include <QImage>
#include <QPointF>
#include <QSizeF>
#include <QWidget>

#include "mdbf/kernels/packed_signs.h"

namespace mdbf::widgets {

/// Zoomable (wheel), pannable (drag) view of a sign matrix; double-click or "0" fits it again.
/// Hovering shows "row r, col c: ±1" in the footer and a tooltip.
class SignImageView : public QWidget {
    Q_OBJECT
public:
    /// Overview images are at most this many pixels on a side.
    static constexpr int kMaxOverviewSide = 1024;

    explicit SignImageView(QWidget* parent = nullptr);

    /// Shows `signs` (shared, not copied) under `title` (e.g. "S_a"), fitted to the widget.
    void setSigns(std::shared_ptr<const kernels::PackedSigns> signs, const QString& title = {});

    /// Removes the matrix and shows `message` instead.
    void clear(const QString& message = {});

    /// The matrix shown (null when empty).
    const kernels::PackedSigns* signs() const { return m_signs.get(); }

    /// The pooled overview: pixel (x, y) is the mean over the block of columns x·f.. and rows y·f..
    /// mapped to grey (0 = all −1, 255 = all +1). With f = 1 it is the exact black/white image.
    const QImage& overviewImage() const { return m_overview; }

    /// The pooling factor f of the overview (1 = exact).
    int downsampleFactor() const { return m_factor; }

    /// Screen pixels per matrix cell at the current zoom (the smaller of the two directions: cells
    /// of thin matrices are stretched up to 6:1 to fill the view).
    double zoom() const { return std::min(m_sx, m_sy); }

    /// Screen pixels per cell horizontally (columns) and vertically (rows).
    QSizeF cellSize() const { return {m_sx, m_sy}; }

    /// True when every cell covers at least one screen pixel, so the exact signs are drawn.
    bool exactOnScreen() const { return m_sx >= 1.0 && m_sy >= 1.0; }

    /// Zooms by `factor` keeping the matrix point under `anchor` (widget coordinates) fixed.
    void zoomBy(double factor, QPointF anchor);

    /// Fits the whole matrix into the widget.
    void resetView();

    /// Centre of cell (row, col) in widget coordinates at the current zoom and pan.
    QPointF cellCenter(std::int64_t row, std::int64_t col) const;

    /// The cell under a widget position; false when outside the matrix.
    bool cellAt(QPointF pos, std::int64_t& row, std::int64_t& col) const;

    /// The footer text: the hovered cell, or how the matrix is being shown.
    QString hoverText() const { return m_hover; }

    /// A one-line description: title, shape, and the display mode (exact / pooled f×f).
    QString description() const;

    /// The rectangle in which the matrix is drawn (widget minus header and footer).
    QRect imageArea() const;

    QSize sizeHint() const override { return {360, 300}; }
    QSize minimumSizeHint() const override { return {120, 100}; }

signals:
    /// Emitted when the hovered cell changes: "row r, col c: −1" (empty when outside).
    void hoverTextChanged(const QString& text);

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void leaveEvent(QEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;

private:
    void buildOverview();
    void clampView();
    QSizeF fitScales() const;
    void updateHover(QPointF pos);
    QImage renderExactRegion(std::int64_t r0, std::int64_t c0, std::int64_t r1, std::int64_t c1) const;

    std::shared_ptr<const kernels::PackedSigns> m_signs;
    QString m_title;
    QString m_message;
    QImage m_overview;
    int m_factor = 1;
    double m_sx = 1.0;       ///< screen pixels per cell, horizontally
    double m_sy = 1.0;       ///< screen pixels per cell, vertically
    QPointF m_origin;        ///< matrix coordinate (col, row) at the image area's top-left corner
    bool m_fitted = true;    ///< keep fitting on resize until the user zooms or pans
    bool m_dragging = false;
    QPointF m_dragStart;
    QPointF m_dragOrigin;
    QString m_hover;
};

}  // namespace mdbf::widgets
