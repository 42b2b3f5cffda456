#pragma once
// Histogram of the entries of a matrix (e.g. the reconstruction error W − Ŵ), symmetric bins
// around zero so that bias is visible at a glance.

#include <cstdint>
#include <vector>

#include "mdbf/base/matrix.h"
#include "mdbf/widgets/plot_widget.h"

namespace mdbf::widgets {

/// Bar histogram with a symmetric range [−r, r] (r = max |x| unless set) and a fixed bin count.
class HistogramPlot : public PlotWidget {
    Q_OBJECT
public:
    explicit HistogramPlot(QWidget* parent = nullptr);

    /// Bins every entry of `values` into `bins` (≥ 1) equal bins over [−r, r]; r = max |x|, or the
    /// shared range when set. `valueLabel` names the quantity on the x axis.
    void setValues(const RowMatrixF& values, const QString& valueLabel, int bins = 101);
    /// The same for values kept in FP16.
    void setValues(const RowMatrixH& values, const QString& valueLabel, int bins = 101);

    /// Fixes the half-width of the binning range; r ≤ 0 returns to max |x|.
    void setSharedRange(double r) { m_sharedRange = r > 0.0 ? r : 0.0; }

    /// Removes the bars.
    void clear();

    /// Counts per bin and the bin edges (bins + 1 of them) last computed.
    const std::vector<std::int64_t>& counts() const { return m_counts; }
    const std::vector<double>& edges() const { return m_edges; }

    /// bin_low,bin_high,count
    QString csv() const override;

private:
    template <class Matrix>
    void binValues(const Matrix& values, const QString& valueLabel, int bins);

    QCPBars* m_bars = nullptr;
    QCPItemText* m_stats = nullptr;
    std::vector<std::int64_t> m_counts;
    std::vector<double> m_edges;
    double m_sharedRange = 0.0;
};

}  // namespace mdbf::widgets
