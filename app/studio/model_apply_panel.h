#pragma once
// The "Model" dock: the report, progress, ETA and Cancel of the factorization service's Apply to
// Model, and the chart of the error of every factorized layer of the document's configuration (plus
// markers for the layers the last apply kept dense). A view only: the service runs the apply and the
// document holds the configuration.

#include <QElapsedTimer>
#include <QWidget>

class QAction;
class QLabel;
class QProgressBar;
class QToolButton;

namespace mdbf::widgets {
class LayerErrorBarPlot;
class LayerTreeModel;
}  // namespace mdbf::widgets

namespace mdbf::studio {

class FactorizationService;
class StudioDocument;

/// The "Model" dock's content. GUI-thread only; the service and the document must outlive it.
class ModelApplyPanel : public QWidget {
    Q_OBJECT
public:
    /// Shows what `service` applies to `document`, in the order of the document's layers; the bar of
    /// the document's current layer is outlined, and clicking a bar makes its layer current.
    ModelApplyPanel(FactorizationService* service, StudioDocument* document, QWidget* parent = nullptr);

    /// Cancel Apply: stops the running apply (enabled only while one runs).
    QAction* cancelAction() const { return m_cancelAction; }

    /// The per-layer error chart.
    widgets::LayerErrorBarPlot* plot() const { return m_plot; }

    /// The one-line report of the last (or running) apply.
    QString statusText() const;

    /// The estimated time left of the running apply ("ETA 0:12"; empty when idle).
    QString etaText() const;

    /// Fraction of the running apply's work done, in [0, 1].
    double progressFraction() const { return m_fraction; }

private:
    void onStarted(int jobLayers);
    void onProgress(double fraction, const QString& layer);
    void onEnded();
    void showChart();
    void updateStatus();

    FactorizationService* m_service;
    StudioDocument* m_document;
    const widgets::LayerTreeModel* m_layers;
    QElapsedTimer m_clock;
    double m_fraction = 0.0;

    QAction* m_cancelAction;
    QLabel* m_status;
    QProgressBar* m_progress;
    QLabel* m_eta;
    QToolButton* m_cancel;
    widgets::LayerErrorBarPlot* m_plot;
    QLabel* m_denseLabel;
};

}  // namespace mdbf::studio
