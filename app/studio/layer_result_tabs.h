#pragma once
// The layer inspector's views of one factorization, as tabs: the sign bases S_a and S_b (per path)
// over the refinement curve, the envelope spectra, the error (W and W − Ŵ on one colour scale, the
// residual histogram, the refinement curve) and the DBF vs MDBF comparison. They draw what they are
// given; the inspector decides what that is and says in its result line what it is.

#include <memory>

#include <QTabWidget>

#include "mdbf/base/matrix.h"

class QComboBox;

namespace mdbf::widgets {
class ErrorCurvePlot;
class HeatmapPlot;
class HistogramPlot;
class SignImageView;
class SpectrumPlot;
}  // namespace mdbf::widgets

namespace mdbf::studio {

class ComparisonTab;
struct LayerFactorization;

class LayerResultTabs : public QTabWidget {
    Q_OBJECT
public:
    explicit LayerResultTabs(QWidget* parent = nullptr);

    /// Draws `f` in every view but the comparison; `weights` (null: not read yet) are the layer's W.
    /// The refinement curves take f's error history when it is refined.
    void showResult(std::shared_ptr<const LayerFactorization> f, std::shared_ptr<const RowMatrixF> weights);
    /// Draws the layer's weights W (once per matrix), on the residual's colour scale when one is shown.
    void showWeights(std::shared_ptr<const RowMatrixF> weights);
    /// Adds a refinement iteration's error to both curves.
    void appendIteration(int iteration, double error);
    /// Empties both refinement curves (a new job starts).
    void clearCurves();
    /// Empties every view but the comparison, with `message` where a view has room for one.
    void clearViews(const QString& message);
    /// Dims the views: they show a result of other settings than the controls'.
    void setStale(bool stale);

    widgets::SignImageView* signA() const { return m_signA; }
    widgets::SignImageView* signB() const { return m_signB; }
    widgets::SpectrumPlot* spectrumPlot() const { return m_spectrum; }
    widgets::ErrorCurvePlot* errorCurve() const { return m_curve; }
    widgets::HeatmapPlot* weightHeatmap() const { return m_weightMap; }
    widgets::HeatmapPlot* residualHeatmap() const { return m_residualMap; }
    widgets::HistogramPlot* histogram() const { return m_histogram; }
    ComparisonTab* comparison() const { return m_comparison; }

private:
    void showPath(int path);

    std::shared_ptr<const LayerFactorization> m_result;
    std::shared_ptr<const RowMatrixF> m_weights;
    QComboBox* m_pathChoice;
    widgets::SignImageView* m_signA;
    widgets::SignImageView* m_signB;
    widgets::ErrorCurvePlot* m_signCurve;
    widgets::SpectrumPlot* m_spectrum;
    widgets::HeatmapPlot* m_weightMap;
    widgets::HeatmapPlot* m_residualMap;
    widgets::HistogramPlot* m_histogram;
    widgets::ErrorCurvePlot* m_curve;
    ComparisonTab* m_comparison;
};

}  // namespace mdbf::studio
