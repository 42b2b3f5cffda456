#pragma once
// The layer inspector: control bar plus tabs (sign bases, envelope spectra, error, DBF vs MDBF) for
// the selected layer. "Instant, then better": a control change shows the closed form from the
// layer's cached SVD, then the ADMM refinement runs in the background and every view follows its
// iterations; results are cached per (layer, settings) so a setting seen before reappears at once.
// With an activation-aware objective every factorization uses the layer's calibration statistics.

#include <memory>

#include <QPointer>
#include <QTimer>
#include <QWidget>

#include "calibration_state.h"
#include "factor_cache.h"
#include "job_runner.h"
#include "factor_settings.h"
#include "mdbf/widgets/layer_tree_model.h"

class QAction;
class QComboBox;
class QLabel;
class QProgressBar;
class QTabWidget;
class QToolButton;

namespace mdbf::widgets {
class ErrorCurvePlot;
class HeatmapPlot;
class HistogramPlot;
class MethodComparisonPlot;
class SignImageView;
class SpectrumPlot;
}  // namespace mdbf::widgets

namespace mdbf::studio {

class ComparisonTab;
class FactorControlBar;
class JobRunner;
class ModelSession;
class StudioDocument;

class LayerInspectorPanel : public QWidget {
    Q_OBJECT
public:
    /// `document` holds the configuration: the panel previews any settings on the selected layer and
    /// changes the document only through its Apply to Layer action. Both must outlive the panel.
    LayerInspectorPanel(JobRunner* runner, StudioDocument* document, QWidget* parent = nullptr);

    /// Switches to a newly opened model (clears every cache) or to none.
    void setSession(std::shared_ptr<const ModelSession> session);

    /// The calibration statistics of the open model (null: none); enables diag and gram in the
    /// control bar and refactorizes if the objective in use changes meaning.
    void setCalibration(std::shared_ptr<const StudioCalibration> calibration);

    /// Selects the layer to inspect (null or non-factorizable entries show an explanation).
    void setLayer(const widgets::LayerEntry* entry);

    /// The layer shown (empty key when none).
    const widgets::LayerEntry& layer() const { return m_layer; }

    /// The factorization currently displayed (null when none).
    std::shared_ptr<const LayerFactorization> current() const { return m_current; }

    /// True while the factorization job of the current settings runs.
    bool isBusy() const { return m_job != nullptr; }

    /// The per-(layer, settings) result cache, shared with whole-model jobs so that a result computed
    /// by either reappears in the other. Cleared when a new model is opened. GUI-thread only.
    FactorCache& cache() { return m_cache; }

    /// Starts the comparison of the DBF vs MDBF tab with its current fields.
    void runComparison();

    /// Cancels the running factorization (its partial result stays on screen).
    void cancelRefinement();

    /// Apply to Layer (Enter): makes the previewed result the layer's factorization in the document
    /// (one undoable step); while its refinement runs, it is applied when the refinement ends.
    QAction* applyAction() const { return m_applyAction; }

    /// True when the result on screen is the layer's applied factorization.
    bool isShowingApplied() const;

    /// The preview marker's text ("✔ applied", "preview · not applied", "previous setting shown …").
    QString stateText() const;

    FactorControlBar* controls() const { return m_controls; }
    QTabWidget* tabs() const { return m_tabs; }
    widgets::SignImageView* signA() const { return m_signA; }
    widgets::SignImageView* signB() const { return m_signB; }
    widgets::SpectrumPlot* spectrumPlot() const { return m_spectrum; }
    widgets::ErrorCurvePlot* errorCurve() const { return m_curve; }
    widgets::HeatmapPlot* weightHeatmap() const { return m_weightMap; }
    widgets::HeatmapPlot* residualHeatmap() const { return m_residualMap; }
    widgets::HistogramPlot* histogram() const { return m_histogram; }
    ComparisonTab* comparisonTab() const { return m_comparison; }
    widgets::MethodComparisonPlot* comparisonPlot() const;
    QString statusText() const;

signals:
    /// A factorization of `layer` is on screen (closed form, partial or refined).
    void factorizationShown(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The refinement of `layer` finished (not emitted for cancelled runs).
    void refinementFinished(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// A comparison run ended (finished, failed or cancelled).
    void comparisonFinished();

private:
    void applyPreview();
    void showApplied(const std::shared_ptr<const LayerFactorization>& applied);
    void updateState();
    void scheduleFactorization();
    void startFactorization();
    void show(const std::shared_ptr<const LayerFactorization>& f);
    void showPath(int path);
    void showWeights(const std::shared_ptr<const RowMatrixF>& w);
    void appendIteration(int iteration, double error);
    void addComparisonPoint(const LayerFactorization& f);
    void setStatus(const QString& text, bool error = false);
    void clearViews(const QString& message);

    JobRunner* m_runner;
    StudioDocument* m_document;
    std::shared_ptr<const ModelSession> m_session;
    std::shared_ptr<const StudioCalibration> m_calibration;
    widgets::LayerEntry m_layer;
    FactorCache m_cache;
    std::shared_ptr<const LayerFactorization> m_current;
    std::shared_ptr<const RowMatrixF> m_shownWeights;
    QPointer<Job> m_job;
    QPointer<Job> m_comparisonJob;
    quint64 m_generation = 0;
    QString m_comparisonObjective;  ///< the objective of the comparison plot's points
    QTimer m_debounce;
    bool m_applyPending = false;  ///< Apply to Layer was asked for while the refinement ran

    FactorControlBar* m_controls;
    QLabel* m_status;
    QProgressBar* m_progress;
    QToolButton* m_cancel;
    QLabel* m_state;
    QAction* m_applyAction;
    QToolButton* m_applyButton;
    QTabWidget* m_tabs;
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
