#pragma once
// The layer inspector: control bar, result line (what is on screen, whether it is applied or a
// preview, Apply to Layer) and the result views (LayerResultTabs) for the document's current layer. "Instant, then better": a control change shows the closed form from the
// layer's cached SVD, then the ADMM refinement runs in the background and every view follows its
// iterations; results are cached per (layer, settings) so a setting seen before reappears at once.
// With an activation-aware objective every factorization uses the layer's calibration statistics.

#include <memory>

#include <QElapsedTimer>
#include <QTimer>
#include <QWidget>

#include "calibration_state.h"
#include "factor_cache.h"
#include "factor_settings.h"
#include "mdbf/widgets/layer_tree_model.h"

class QAction;
class QLabel;
class QProgressBar;
class QToolButton;

namespace mdbf::widgets {
class ElidedLabel;
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
class LayerResultTabs;
class FactorizationService;
class ModelSession;
class StudioDocument;

class LayerInspectorPanel : public QWidget {
    Q_OBJECT
public:
    /// `document` holds the model, the calibration and the configuration: the panel previews any
    /// settings on the document's current layer through `service` and changes the document only through its
    /// Apply to Layer action; the service also runs the method comparison. All must outlive the panel.
    LayerInspectorPanel(FactorizationService* service, StudioDocument* document, QWidget* parent = nullptr);

    /// The layer shown (empty key when none).
    const widgets::LayerEntry& layer() const { return m_layer; }

    /// The factorization currently displayed (null when none).
    std::shared_ptr<const LayerFactorization> current() const { return m_current; }

    /// True while the factorization job of the current settings runs.
    bool isBusy() const;

    /// The settings of the controls (what Apply Settings applies to other layers).
    FactorSettings settings() const;
    /// Puts `settings` in the controls without starting a preview: the next layer selected is
    /// previewed with them.
    void setSettings(const FactorSettings& settings);
    /// Puts `settings` in the controls and previews them on the layer, as an edit by hand does.
    void previewSettings(const FactorSettings& settings);

    /// Starts the comparison of the DBF vs MDBF tab with its current fields (FactorizationService::compareMethods);
    /// invalid fields are reported in the tab.
    void runComparison();
    /// Starts the comparison of `request` on the layer with the controls' paths, iterations and objective.
    void runComparison(const ComparisonRequest& request);

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
    /// The views of the result on screen (sign bases, spectra, error, DBF vs MDBF).
    LayerResultTabs* views() const { return m_tabs; }
    /// The sign-basis view of S_a.
    widgets::SignImageView* signA() const;
    /// The sign-basis view of S_b.
    widgets::SignImageView* signB() const;
    /// The envelope spectra plot.
    widgets::SpectrumPlot* spectrumPlot() const;
    /// The refinement curve of the Error tab.
    widgets::ErrorCurvePlot* errorCurve() const;
    /// The weight heatmap.
    widgets::HeatmapPlot* weightHeatmap() const;
    /// The residual heatmap.
    widgets::HeatmapPlot* residualHeatmap() const;
    /// The residual histogram.
    widgets::HistogramPlot* histogram() const;
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
    /// Shows the document's current layer (null or non-factorizable entries show an explanation).
    void setLayer(const widgets::LayerEntry* entry);
    void onSessionChanged();
    void onFactorized(const QString& layer, const std::shared_ptr<const LayerFactorization>& f);
    void applyPreview();
    void showApplied(const std::shared_ptr<const LayerFactorization>& applied);
    void updateState();
    void scheduleFactorization();
    void startFactorization();
    void show(const std::shared_ptr<const LayerFactorization>& f);
    void onComparisonResult(const QString& layer, const std::shared_ptr<const LayerFactorization>& f);
    void onComparisonEnded(const QString& layer, int done, int runs, const QStringList& skipped, const QString& error);
    void setStatus(const QString& text, bool error = false);
    void clearViews(const QString& message);

    FactorizationService* m_service;
    StudioDocument* m_document;
    widgets::LayerEntry m_layer;
    std::shared_ptr<const LayerFactorization> m_current;
    quint64 m_generation = 0;
    quint64 m_comparisonGeneration = 0;  ///< m_generation when the comparison on screen started
    QTimer m_debounce;
    bool m_applyPending = false;  ///< Apply to Layer was asked for while the refinement ran
    QElapsedTimer m_refineClock;  ///< since the preview job's first refinement report (for the ETA)
    qint64 m_refineFirst = 0;     ///< iterations done at that report

    FactorControlBar* m_controls;
    widgets::ElidedLabel* m_status;
    QProgressBar* m_progress;
    QToolButton* m_cancel;
    QLabel* m_state;
    QAction* m_applyAction;
    QList<QAction*> m_layerActions;
    QList<QAction*> m_tabActions;
    QToolButton* m_applyButton;
    LayerResultTabs* m_tabs;
    ComparisonTab* m_comparison;
};

}  // namespace mdbf::studio
