#pragma once
// The studio's factorization jobs, apart from any widget: the preview of one layer (closed form at
// once, then the refinement with its iterations), the comparison of the methods on one layer, and
// Apply to Model (many layers, each with its own settings, applied to the document as one undoable
// step). All run on the core pipeline through the
// job runner (QtConcurrent, throttled progress, cancel through the stop token) and report typed
// results as signals carrying the layer, the settings and the result; views only show them. The
// per-(layer, settings) result cache lives here, so a result computed by one job reappears in the
// others. The open model and the calibration are the document's. GUI-thread only.

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QStringList>

#include "factor_cache.h"
#include "mdbf/pipeline/plan.h"
#include "factor_settings.h"
#include "job_runner.h"
#include "model_configuration.h"

namespace mdbf::widgets {
class LayerTreeModel;
}

namespace mdbf::studio {

class ModelSession;
class StudioDocument;

/// Runs and reports the factorization jobs of the document's model.
class FactorizationService : public QObject {
    Q_OBJECT
public:
    /// One layer and the settings to apply to it.
    struct LayerRequest {
        QString layer;
        FactorSettings settings;
    };

    /// What the running (or last) Apply to Model did, for the views' report.
    struct ApplyReport {
        QString description;  ///< what is applied ("MDBF l=2 · 1 bpw · …", "configuration x.json")
        int requested = 0;    ///< factorizable layers asked for
        int cached = 0;       ///< applied at once from the cache or the configuration
        int dense = 0;        ///< kept dense (infeasible budget or no statistics)
        int jobLayers = 0;    ///< computed by the job
        int computed = 0;     ///< of those, done so far
        QStringList jobKeys;  ///< the layers the job computes, in order
        QString outcome;      ///< "" while running or when done, "cancelled", "failed: …"
        double seconds = 0.0; ///< wall time of the finished apply
        std::vector<std::pair<QString, QString>> keptDense;  ///< layer and reason, in model order
    };

    /// `document` supplies the model, its layers (shapes, which are factorizable) and the calibration,
    /// and receives applied layers and opened models. Both must outlive the service; make the service
    /// right after the document, so it drops a previous model's jobs before the views see a new one.
    FactorizationService(JobRunner* runner, StudioDocument* document, QObject* parent = nullptr);

    /// The result cache shared by the preview and the whole-model jobs (cleared with each new model).
    FactorCache& cache() { return m_cache; }

    /// Factorizes `layer` with `settings` for preview; the previous preview job is abandoned. Results
    /// already cached are emitted at once as layerPreviewReady (a refined one ends the request: returns
    /// null); otherwise starts a job titled `title`: layerWeightsLoaded, layerPreviewReady (the closed
    /// form), layerIteration…, then layerFactorized (or layerFailed), then layerJobEnded. When the
    /// cache keeps a refinement of the layer under other settings of the same objective, calibration
    /// and paths (FactorCache::nearestRefinement), the refinement starts from it instead of the closed
    /// form (warm start: no closed form is reported, the result's warmFrom names its origin). Returns
    /// the job, or null when nothing runs (cached, no model, or the budget leaves k < max(1, l)).
    Job* factorizeLayer(const QString& layer, const FactorSettings& settings, const QString& title);
    /// Stops the preview's refinement; its best iterate still arrives as layerFactorized (incomplete).
    void cancelLayer();
    /// Stops the preview job and drops whatever it would still report.
    void abandonLayer();
    /// True while the preview job runs.
    bool isLayerBusy() const { return m_layerJob != nullptr; }

    /// Applies `settings` to the factorizable layers among `layers` (keys; others are ignored); see
    /// the overload taking requests.
    bool applyToModel(const QStringList& layers, const FactorSettings& settings);
    /// Applies per-layer settings to the document as one undoable step (inside a batch the caller
    /// began, as part of that batch). A layer already holding a complete result of its settings is not
    /// recomputed; cached layers and infeasible budgets are applied at once; the rest run as one job,
    /// each layer applied as soon as it is done, so a cancelled apply keeps the layers it finished.
    /// diag and gram use the document's calibration. Returns false, with the reason in
    /// refusalText(), when no model is open, an apply runs, no layer qualifies, or an objective needs
    /// statistics other than the document's calibration. `description` names the settings in reports;
    /// `undoText` names the undoable step (default "Apply <description> to N layers").
    bool applyToModel(const std::vector<LayerRequest>& requests, const QString& description,
                      const QString& undoText = {});
    /// Requests a stop of the running apply; layers already done stay applied.
    void cancelApply();
    /// True while the apply job runs.
    bool isApplying() const { return m_applyJob != nullptr; }
    /// The running or last apply (empty before the first of this model).
    const std::optional<ApplyReport>& applyReport() const { return m_report; }
    /// Why the last applyToModel() returned false.
    const QString& refusalText() const { return m_refusal; }

    /// Compares the methods on `layer` (the DBF vs MDBF tab): every budget of `request` × (DBF, and
    /// MDBF at each of its l), with the paths and objective of `base` and, when request.refine, its
    /// iterations (else the closed form). Infeasible combinations are skipped. A running comparison
    /// is cancelled first. Emits comparisonStarted, comparisonResult per configuration (also stored
    /// in the result cache), then comparisonEnded. Returns the job titled `title`, or null without a
    /// model or for a layer that is not factorizable.
    Job* compareMethods(const QString& layer, const FactorSettings& base, const ComparisonRequest& request,
                        const QString& title);
    /// Stops the running comparison; the configurations already reported stay.
    void cancelComparison();
    /// True while the comparison job runs.
    bool isComparing() const { return m_comparisonJob != nullptr; }

    /// Opens the model folder `path` as a job (ModelSession::load, with progress and cancel); a running
    /// open is cancelled first. On success the document switches to the model (its configuration and
    /// undo history start empty), the norms of its layers start computing, then modelOpened is
    /// emitted; otherwise modelOpenFailed or modelOpenCancelled, and the document keeps the model it
    /// had. Asking about unsaved changes first is the caller's business. Returns the job.
    Job* openModel(const QString& path);
    /// Computes the Frobenius norm of each of `tensors` (names in the document's model) in the
    /// background, setting each in the document's layer list and reporting it as layerNormReady; a new
    /// call or a new model stops the previous computation. Returns the job, or null without a model or
    /// tensors.
    Job* computeNorms(const QStringList& tensors);

    /// Plans the model at `options.budget` (pipeline::planModel on the document's model) as a job with
    /// progress and cancel, then applies the planned layers with their format, l and budget as ONE
    /// undoable step "Plan at … bpw" that also reverts every layer the plan leaves dense, so the
    /// configuration is the plan's. With a calibration that holds Gram matrices the plan weighs the
    /// layers' output errors under it (as `mdbf plan --calib-text`; options.inputGrams is filled here)
    /// and options.objective may be diag or gram; otherwise it plans on the weight error with the plain
    /// objective. Returns false, with the reason in refusalText(), without a model, while a plan or an
    /// apply runs, for an objective the calibration cannot serve, or for options that do not validate.
    bool planAtBudget(const pipeline::PlanOptions& options);
    /// True when planAtBudget() would weigh output errors: the document's calibration has Gram matrices.
    bool plansOnOutputs() const;
    /// Requests a stop of the running plan; the document is left as it was.
    void cancelPlan();
    /// True while the plan job runs (its apply then reports as any apply).
    bool isPlanning() const { return m_planJob != nullptr; }

    /// "MDBF l=2 · 1 bpw · 260 iterations" (plus paths and objective when not the defaults).
    static QString settingsText(const FactorSettings& s);
    /// Where the refinement of `f` started: "closed form", or "warm start from 1.50 bpw, l = 2" when
    /// it was refined from a kept result of other settings (LayerFactorization::warmFrom).
    static QString startText(const LayerFactorization& f);
    /// True when `f` is exactly what applying `s` would produce (complete, refined as asked, same settings).
    static bool satisfies(const LayerFactorization& f, const FactorSettings& s);

signals:
    /// The float32 weights of `layer` were read (for the views' weight map).
    void layerWeightsLoaded(const QString& layer, std::shared_ptr<const mdbf::RowMatrixF> weights);
    /// A result of the preview request (cached, or the closed form on the way to the refinement).
    void layerPreviewReady(const QString& layer, const mdbf::studio::FactorSettings& settings,
                           std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// One refinement iteration of the preview: relative error under the objective.
    void layerIteration(const QString& layer, int iteration, double error);
    /// Throttled progress of the preview job (stages "svd", "refine", … in their natural units).
    void layerProgress(const QString& layer, const QString& stage, qint64 done, qint64 total);
    /// The preview job's final result (refined, closed form, or cancelled part way: incomplete).
    void layerFactorized(const QString& layer, const mdbf::studio::FactorSettings& settings,
                         std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The preview job failed with `message`.
    void layerFailed(const QString& layer, const QString& message);
    /// The preview job ended, whatever the outcome (emitted last).
    void layerJobEnded(const QString& layer);

    /// An apply started with `jobLayers` layers to compute in the background (0: all were at hand).
    void applyStarted(int jobLayers);
    /// `layer` now holds `result` of `settings` in the document (reused or computed).
    void applyLayerDone(const QString& layer, const mdbf::studio::FactorSettings& settings,
                        std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The budget (or the calibration) leaves `layer` dense; `reason` says why.
    void applyLayerKeptDense(const QString& layer, const QString& reason);
    /// Fraction of the apply's work done, in [0, 1], and the layer being computed.
    void applyProgress(double fraction, const QString& layer);
    /// The apply ended (the document's batch is closed); `cancelled` when stopped by the user.
    void applyEnded(bool cancelled);
    /// The apply job failed (e.g. a tensor could not be read); layers done before stay applied.
    void applyFailed(const QString& message);

    /// A comparison of `layer` started with `runs` feasible configurations; `skipped` names the
    /// infeasible ones ("MDBF l=4 @ 1").
    void comparisonStarted(const QString& layer, int runs, const QStringList& skipped);
    /// One configuration of the comparison of `layer` is done (result->settings.bpw is its budget).
    void comparisonResult(const QString& layer, std::shared_ptr<const mdbf::studio::LayerFactorization> result);
    /// The comparison of `layer` ended: `done` of `runs` configurations computed, `skipped` as at the
    /// start, `error` the failure's message (empty when it finished or was cancelled).
    void comparisonEnded(const QString& layer, int done, int runs, const QStringList& skipped, const QString& error);

    /// The model folder `path` was read and is the document's model now; `session` is never null.
    void modelOpened(const QString& path, std::shared_ptr<const mdbf::studio::ModelSession> session);
    /// The model folder `path` could not be opened: `message` says why.
    void modelOpenFailed(const QString& path, const QString& message);
    /// Opening `path` was cancelled.
    void modelOpenCancelled(const QString& path);
    /// The Frobenius norm of `tensor` of the document's model (already in the document's layer list).
    void layerNormReady(const QString& tensor, double norm);

    /// A plan job started (planFinished or planStopped follows).
    void planStarted();
    /// The plan finished; its layers are being applied (the apply's signals follow).
    void planFinished(std::shared_ptr<const mdbf::pipeline::ModelPlan> plan);
    /// The plan was cancelled (`cancelled`) or failed with `message`; the document is unchanged.
    void planStopped(bool cancelled, const QString& message);

private:
    void onSessionChanged();
    void applyPlan(const pipeline::ModelPlan& plan, const pipeline::PlanOptions& options, const QString& calibration);
    void onApplyLayerDone(const QString& layer, std::shared_ptr<const LayerFactorization> f);
    void finishApply(const QString& outcome, bool cancelled);
    bool refuse(const QString& reason);

    JobRunner* m_runner;
    StudioDocument* m_document;
    const widgets::LayerTreeModel* m_layers;  ///< the document's
    FactorCache m_cache;

    QPointer<Job> m_layerJob;
    quint64 m_layerGeneration = 0;

    QPointer<Job> m_comparisonJob;
    QPointer<Job> m_openJob;
    QPointer<Job> m_normJob;
    quint64 m_comparisonGeneration = 0;

    QPointer<Job> m_planJob;
    QPointer<Job> m_applyJob;
    quint64 m_applyGeneration = 0;
    bool m_ownsBatch = false;
    QElapsedTimer m_applyClock;
    std::optional<ApplyReport> m_report;
    QString m_refusal;
};

}  // namespace mdbf::studio
