#pragma once
// "Apply to model": factorizes a set of layers (with one FactorSettings, or settings per layer) as a background job, and
// charts the error of every factorized layer of the configuration. Layers already computed with
// those settings (in the shared result cache) are applied at once; the rest run one after another
// with progress, an ETA and Cancel, each handed to the configuration as soon as it is done, so a
// cancelled run keeps the layers it finished. Layers whose budget leaves k < max(1, l) stay dense
// and are listed as such. Activation-aware objectives use the calibration statistics of each layer.

#include <memory>
#include <utility>
#include <vector>

#include <QElapsedTimer>
#include <QPointer>
#include <QStringList>
#include <QWidget>

#include "calibration_state.h"
#include "factor_settings.h"
#include "job_runner.h"
#include "model_configuration.h"

class QLabel;
class QProgressBar;
class QToolButton;

namespace mdbf::widgets {
class LayerErrorBarPlot;
class LayerTreeModel;
}  // namespace mdbf::widgets

namespace mdbf::studio {

class FactorCache;
class ModelSession;

/// The "Model" dock's content. GUI-thread only; the cache and the layer model must outlive it.
class ModelApplyPanel : public QWidget {
    Q_OBJECT
public:
    ModelApplyPanel(JobRunner* runner, FactorCache* cache, const widgets::LayerTreeModel* layers,
                    QWidget* parent = nullptr);

    /// A new model (or none): cancels a running apply and forgets its report.
    void setSession(std::shared_ptr<const ModelSession> session);

    /// The calibration statistics diag and gram settings are applied with (null: none).
    void setCalibration(std::shared_ptr<const StudioCalibration> calibration) { m_calibration = std::move(calibration); }

    /// Applies `settings` to the factorizable layers among `layers` (keys; others are ignored).
    /// `current` is the configuration in use: a layer already holding a complete result of these
    /// settings is not recomputed. Cached layers and infeasible budgets are reported at once
    /// (layerApplied / layerKeptDense); the rest run as one job, diag and gram with the layer's
    /// calibration statistics (a layer the calibration did not record stays dense). Returns false,
    /// with the reason in statusText(), when no model is open, an apply is already running, no layer
    /// qualifies, or the objective needs statistics other than the current calibration's.
    bool apply(const QStringList& layers, const FactorSettings& settings, const ModelConfiguration& current);

    /// One layer and the settings to apply to it.
    struct LayerRequest {
        QString layer;
        FactorSettings settings;
    };
    /// The same with settings per layer (a loaded configuration); `description` names them in the
    /// report and the job list.
    bool apply(const std::vector<LayerRequest>& requests, const QString& description, const ModelConfiguration& current);

    /// Requests a stop of the running apply; layers already done stay applied.
    void cancel();

    /// True while the apply job runs.
    bool isBusy() const { return m_job != nullptr; }

    /// Redraws the chart for `config` (one bar per factorized layer, in model order, plus markers
    /// for the layers the last apply kept dense).
    void setConfiguration(const ModelConfiguration& config);

    /// Outlines the bar of the layer shown in the inspector.
    void setCurrentLayer(const QString& key);

    widgets::LayerErrorBarPlot* plot() const { return m_plot; }

    /// The one-line report of the last (or running) apply.
    QString statusText() const;

    /// The estimated time left of the running apply ("ETA 0:12"; empty when idle).
    QString etaText() const;

    /// Fraction of the running apply's work done, in [0, 1].
    double progressFraction() const { return m_fraction; }

    /// Layers the last apply kept dense, with the reason (in model order).
    const std::vector<std::pair<QString, QString>>& keptDense() const { return m_keptDense; }

signals:
    /// `layer` now holds `result` (from the cache or computed by the job).
    void layerApplied(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The budget leaves `layer` with k < max(1, l): it stays dense; `reason` says why.
    void layerKeptDense(const QString& layer, const QString& reason);
    /// A bar of the chart was clicked.
    void layerClicked(const QString& layer);
    /// An apply started with `jobLayers` layers to compute in the background (0: all were cached).
    void applyStarted(int jobLayers);
    /// The apply ended; `cancelled` when stopped by the user. Emitted after the last layerApplied.
    void applyEnded(bool cancelled);
    /// The job failed (e.g. a tensor could not be read); layers done before stay applied.
    void applyFailed(const QString& message);

private:
    struct Run;
    void onProgress(double fraction, int layerIndex);
    void onLayerDone(const QString& layer, std::shared_ptr<const LayerFactorization> f);
    void finishRun(const QString& outcome, bool cancelled);
    void updateStatus();

    JobRunner* m_runner;
    FactorCache* m_cache;
    const widgets::LayerTreeModel* m_layers;
    std::shared_ptr<const ModelSession> m_session;
    std::shared_ptr<const StudioCalibration> m_calibration;
    QPointer<Job> m_job;
    quint64 m_generation = 0;
    QElapsedTimer m_clock;
    double m_fraction = 0.0;
    std::shared_ptr<Run> m_run;  ///< the running or last apply
    std::vector<std::pair<QString, QString>> m_keptDense;
    ModelConfiguration m_config;

    QLabel* m_status;
    QProgressBar* m_progress;
    QLabel* m_eta;
    QToolButton* m_cancel;
    widgets::LayerErrorBarPlot* m_plot;
    QLabel* m_denseLabel;
};

}  // namespace mdbf::studio
