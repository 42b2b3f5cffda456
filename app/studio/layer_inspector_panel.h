#pragma once
// The layer inspector: control bar plus tabs (sign bases, envelope spectra, error, DBF vs MDBF) for
// the selected layer. "Instant, then better": a control change shows the closed form from the
// layer's cached SVD, then the ADMM refinement runs in the background and every view follows its
// iterations; results are cached per (layer, settings) so a setting seen before reappears at once.
// With an activation-aware objective every factorization uses the layer's calibration statistics.

#include <memory>

#include <QTimer>
#include <QWidget>

#include "calibration_state.h"
#include "factor_cache.h"
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
class FactorizationService;
class ModelSession;
class StudioDocument;

class LayerInspectorPanel : public QWidget {
    Q_OBJECT
public:
    /// `document` holds the model, the calibration and the configuration: the panel previews any
    /// settings on the selected layer through `service` and changes the document only through its
    /// Apply to Layer action; the service also runs the method comparison. All must outlive the panel.
    LayerInspectorPanel(FactorizationService* service, StudioDocument* document, QWidget* parent = nullptr);

    /// Selects the layer to inspect (null or non-factorizable entries show an explanation).
    void setLayer(const widgets::LayerEntry* entry);

    /// The layer shown (empty key when none).
    const widgets::LayerEntry& layer() const { return m_layer; }

    /// The factorization currently displayed (null when none).
    std::shared_ptr<const LayerFactorization> current() const { return m_current; }

    /// True while the factorization job of the current settings runs.
    bool isBusy() const;

    /// The settings of the controls (what Apply Settings applies to other layers).
    FactorSettings settings() const;
    /// Puts `settings` in the controls; the preview of the layer follows as for a change by hand.
    void setSettings(const FactorSettings& settings);

    /// Starts the comparison of the DBF vs MDBF tab with its current fields (FactorizationService::compareMethods).
    void runComparison();

    /// Cancels the running factorization (its partial result stays on screen).
    void cancelRefinement();

    /// Apply to Layer (Enter): makes the previewed result the layer's factorization in the document
    /// (one undoable step); while its refinement runs, it is applied when the refinement ends.
    QAction* applyAction() const { return m_applyAction; }

    /// The Layer menu's actions on the controls and the views: Method DBF / MDBF, More / Fewer Bits,
    /// Larger / Smaller l, Cancel Refinement, Run Comparison (null entries stand for separators).
    const QList<QAction*>& layerActions() const { return m_layerActions; }
    /// The View menu's actions that show each tab (Alt+1…).
    const QList<QAction*>& tabActions() const { return m_tabActions; }

    /// True when the result on screen is the layer's applied factorization.
    bool isShowingApplied() const;

    /// The preview marker's text ("✔ applied", "preview · not applied", "previous setting shown …").
    QString stateText() const;

    /// The control bar (method, budget, l, paths, iterations, objective).
    FactorControlBar* controls() const { return m_controls; }
    /// The sign-basis view of S_a.
    widgets::SignImageView* signA() const { return m_signA; }
    /// The sign-basis view of S_b.
    widgets::SignImageView* signB() const { return m_signB; }
    /// The envelope spectra plot.
    widgets::SpectrumPlot* spectrumPlot() const { return m_spectrum; }
    /// The refinement curve of the Error tab.
    widgets::ErrorCurvePlot* errorCurve() const { return m_curve; }
    /// The weight heatmap.
    widgets::HeatmapPlot* weightHeatmap() const { return m_weightMap; }
    /// The residual heatmap.
    widgets::HeatmapPlot* residualHeatmap() const { return m_residualMap; }
    /// The residual histogram.
    widgets::HistogramPlot* histogram() const { return m_histogram; }
    /// The DBF vs MDBF tab.
    ComparisonTab* comparisonTab() const { return m_comparison; }
    /// The DBF vs MDBF tab's plot.
    widgets::MethodComparisonPlot* comparisonPlot() const;
    /// The result line above the tabs.
    QString statusText() const;

signals:
    /// A factorization of `layer` is on screen (closed form, partial or refined).
    void factorizationShown(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The refinement of `layer` finished (not emitted for cancelled runs).
    void refinementFinished(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// A comparison run ended (finished, failed or cancelled).
    void comparisonFinished();

private:
    void createActions();
    void onSessionChanged();
    void onFactorized(const QString& layer, const std::shared_ptr<const LayerFactorization>& f);
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
    void onComparisonResult(const QString& layer, const std::shared_ptr<const LayerFactorization>& f);
    void onComparisonEnded(const QString& layer, int done, int runs, const QStringList& skipped, const QString& error);
    void setStatus(const QString& text, bool error = false);
    void clearViews(const QString& message);

    FactorizationService* m_service;
    StudioDocument* m_document;
    widgets::LayerEntry m_layer;
    std::shared_ptr<const LayerFactorization> m_current;
    std::shared_ptr<const RowMatrixF> m_shownWeights;
    quint64 m_generation = 0;
    quint64 m_comparisonGeneration = 0;  ///< m_generation when the comparison on screen started
    QString m_comparisonObjective;  ///< the objective of the comparison plot's points
    QTimer m_debounce;
    bool m_applyPending = false;  ///< Apply to Layer was asked for while the refinement ran

    FactorControlBar* m_controls;
    QLabel* m_status;
    QProgressBar* m_progress;
    QToolButton* m_cancel;
    QLabel* m_state;
    QAction* m_applyAction;
    QList<QAction*> m_layerActions;
    QList<QAction*> m_tabActions;
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
