#pragma once
// A signed matrix drawn as a colour map with a symmetric diverging scale and a colour bar
// (docs/STUDIO.md §2.3: "one colour scale per comparison"). Large matrices are max-abs pooled for display.

#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// Colour map of an n×m matrix: column index to the right, row index downwards (row 0 at the top),
/// axes in original matrix coordinates even when pooled. The colour range is always symmetric
/// around zero, either the data's own max |x| or a range shared with other heatmaps.
class HeatmapPlot : public PlotWidget {
    Q_OBJECT
public:
    /// Matrices with more than this many rows or columns are pooled by a uniform integer factor.
    static constexpr int kMaxDisplaySide = 768;

    explicit HeatmapPlot(QWidget* parent = nullptr);

    /// Shows `matrix`. Blocks of f×f entries (f = poolFactor()) are replaced by the entry of
    /// largest magnitude (sign kept), so isolated large errors stay visible. `valueLabel` names the
    /// quantity on the colour bar (e.g. "W − Ŵ").
    void setMatrix(const RowMatrixF& matrix, const QString& title = {}, const QString& valueLabel = {});
    /// The same for a matrix kept in FP16.
    void setMatrix(const RowMatrixH& matrix, const QString& title = {}, const QString& valueLabel = {});

    /// Removes the data and shows `message` in the title instead.
    void clear(const QString& message = {});

    /// Rows and columns of the matrix last given (not of the pooled display).
    Eigen::Index matrixRows() const { return m_rows; }
    Eigen::Index matrixCols() const { return m_cols; }

    /// 1 when every matrix entry has its own cell, else the pooling factor used.
    int poolFactor() const { return m_pool; }

    /// Largest |x| of the shown data (0 when empty).
    double dataMaxAbs() const { return m_maxAbs; }

    /// Fixes the colour range to [−r, r] (for side-by-side comparison); r ≤ 0 returns to the
    /// automatic range [−dataMaxAbs(), dataMaxAbs()].
    void setSharedRange(double r);

    /// The half-width r of the colour range in use.
    double colorRangeHalfWidth() const;

    /// Gives every plot in `plots` the same symmetric range: the largest dataMaxAbs() among them.
    static void shareRange(const std::vector<HeatmapPlot*>& plots);

    /// The value shown in the cell covering matrix entry (row, col).
    double displayedValue(Eigen::Index row, Eigen::Index col) const;

    /// The colour map item (for tests and extensions).
    QCPColorMap* colorMap() const { return m_map; }
    QCPColorScale* colorScale() const { return m_scale; }

    /// The title line shown above the map.
    QString title() const;

    /// One line per displayed row, comma-separated cell values (the pooled grid when pooled).
    QString csv() const override;

signals:
    /// Emitted while the mouse moves over the map: "row r, col c: value" (empty when outside).
    void hoverTextChanged(const QString& text);

protected:
    void mouseMoveEvent(QMouseEvent* event) override;
    void extendContextMenu(QMenu* menu) override;

private:
    void applyRange();
    template <class Matrix>
    void showMatrix(const Matrix& matrix, const QString& title, const QString& valueLabel);

    QCPTextElement* m_title = nullptr;
    QCPColorMap* m_map = nullptr;
    QCPColorScale* m_scale = nullptr;
    Eigen::Index m_rows = 0;
    Eigen::Index m_cols = 0;
    int m_pool = 1;
    double m_maxAbs = 0.0;
    double m_sharedRange = 0.0;
};

}  // namespace mdbf::widgets
