#include "factorization_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <QFileInfo>

#include "calibration_state.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/factor/decomposition_cache.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "studio_document.h"

namespace mdbf::studio {

namespace {

using Clock = std::chrono::steady_clock;

/// The SVD and closed form of a layer, in units of one outer iteration, for the progress estimate.
constexpr double kSetupUnits = 4.0;
constexpr auto kProgressInterval = std::chrono::milliseconds(100);

/// One layer the apply job computes; the inputs already in the cache are handed over.
struct ApplyTask {
    QString key;
    FactorSettings settings;
    std::int64_t n = 0;
    std::int64_t m = 0;
    std::shared_ptr<const RowMatrixF> weights;
    std::shared_ptr<const factor::LayerSvd> svd;
};

double taskWork(const ApplyTask& t)
{
    return static_cast<double>(t.n) * static_cast<double>(t.m) * (kSetupUnits + t.settings.iterations * t.settings.paths);
}

QString resultKey(const FactorSettings& s) { return s.iterations > 0 ? s.refinedKey() : s.closedFormKey(); }

/// Appended to the result key of a refinement cancelled part way.
const QString kIncomplete = QStringLiteral("|cancelled");

}  // namespace

FactorizationService::FactorizationService(JobRunner* runner, StudioDocument* document, QObject* parent)
    : QObject(parent), m_runner(runner), m_document(document), m_layers(document->layers())
{
    connect(m_document, &StudioDocument::sessionChanged, this, &FactorizationService::onSessionChanged);
}

QString FactorizationService::settingsText(const FactorSettings& s)
{
    QString text = s.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF l=%1").arg(s.l);
    text += tr(" · %1 bpw").arg(QString::fromStdString(s.bpw.text()));
    if (s.paths > 1) text += tr(" · %1 paths").arg(s.paths);
    text += s.iterations > 0 ? tr(" · %1 iterations").arg(s.iterations) : tr(" · closed form");
    if (s.objective != factor::Objective::Plain) text += tr(" · objective %1").arg(s.objectiveLabel());
    return text;
}

QString FactorizationService::startText(const LayerFactorization& f)
{
    if (!f.warmFrom) return tr("closed form");
    const FactorSettings& from = *f.warmFrom;
    return tr("warm start from %1 bpw, l = %2").arg(from.bpw.value(), 0, 'f', 2).arg(from.effectiveL());
}

bool FactorizationService::satisfies(const LayerFactorization& f, const FactorSettings& s)
{
    return f.complete && f.refined == (s.iterations > 0) && f.settings == s;
}

void FactorizationService::onSessionChanged()
{
    abandonLayer();
    if (m_normJob) m_normJob->cancel();
    cancelComparison();
    ++m_comparisonGeneration;
    m_comparisonJob = nullptr;
    cancelPlan();
    m_planJob = nullptr;
    cancelApply();
    ++m_applyGeneration;  // the cancelled apply reports nothing into the new model's document
    m_applyJob = nullptr;
    m_ownsBatch = false;
    m_report.reset();
    m_cache.clear();
}

// ---- One layer ------------------------------------------------------------------------------------

void FactorizationService::cancelLayer()
{
    if (m_layerJob) m_layerJob->cancel();
}

void FactorizationService::abandonLayer()
{
    cancelLayer();
    ++m_layerGeneration;
    m_layerJob = nullptr;  // no longer the preview's job: it ends unheard
}

Job* FactorizationService::factorizeLayer(const QString& layer, const FactorSettings& settings, const QString& title)
{
    abandonLayer();
    const auto session = m_document->session();
    const widgets::LayerEntry* entry = m_layers->layer(layer);
    if (!session || !entry || !entry->factorizable) return nullptr;
    const std::optional<factor::BitBudget> budget =
        factor::checkBitBudget(entry->rows, entry->cols, settings.bpw, settings.method, settings.effectiveL(),
                               settings.paths)
            .budget;
    if (!budget) return nullptr;
    const quint64 generation = m_layerGeneration;

    // A result kept without its views (an applied layer) is shown at once; the job below only adds
    // its spectra and residual.
    std::shared_ptr<const LayerFactorization> lacksViews;
    if (auto cached = m_cache.result(layer, settings.refinedKey())) {
        emit layerPreviewReady(layer, settings, cached);
        if (cached->residual) return nullptr;
        lacksViews = cached;
    }
    bool haveClosedForm = false;
    if (auto closed = m_cache.result(layer, settings.closedFormKey()); closed && !lacksViews) {
        emit layerPreviewReady(layer, settings, closed);
        haveClosedForm = closed->residual != nullptr;
        if (settings.iterations == 0 && haveClosedForm) return nullptr;
        if (!haveClosedForm) lacksViews = closed;
    }

    const LayerInputs inputs = m_cache.inputs(layer, settings.svdKey());
    auto calibration = m_document->calibration();
    QPointer<FactorizationService> self(this);
    const int iterations = settings.iterations;
    // A refinement of this layer kept from other settings starts nearer the answer than the closed form.
    const std::shared_ptr<const LayerFactorization> warmFrom =
        iterations > 0 ? m_cache.nearestRefinement(layer, settings, budget->k) : nullptr;

    // Runs on the worker: only shared_ptr copies and Job::post cross back to the GUI thread.
    auto work = [=](const RunContext& ctx, Job* job) -> std::shared_ptr<const LayerFactorization> {
        auto W = inputs.weights;
        if (!W) {
            W = std::make_shared<const RowMatrixF>(pipeline::loadLayerWeights(session->checkpoint(), layer.toStdString()));
            job->post([self, layer, W] {
                if (!self) return;
                self->m_cache.setWeights(layer, W);
                emit self->layerWeightsLoaded(layer, W);
            });
        }
        ctx.throwIfStopped();
        pipeline::LayerJob layerJob =
            settings.job(statisticsFor(settings.objective, calibration.get(), layer.toStdString()));
        layerJob.prepareGram();  // once for the preview, the views and the refinement
        auto svd = inputs.svd;
        bool svdFromDisk = false;
        if (!svd) {
            ctx.report("svd", 0, 1);
            pipeline::LayerDecomposition d = decomposeWithDiskCache(*W, layerJob, session->checkpoint(), layer,
                                                                    calibration ? calibration->tag : QString(), ctx);
            svd = d.svd;
            svdFromDisk = d.cached;
            // Kept even if this job is cancelled now: the SVD serves every later setting of this objective.
            job->post([self, layer, svd, key = settings.svdKey()] {
                if (self) self->m_cache.setSvd(layer, key, svd);
            });
        }
        ctx.throwIfStopped();
        if (lacksViews && (lacksViews->refined || iterations == 0)) {
            ctx.report("views", 0, 1);
            return withViews(*W, *svd, *lacksViews, layerJob, ctx);
        }
        auto feed = [job, self, generation, layer](const factor::IterationReport& r) {
            job->post([self, generation, layer, it = r.iteration, e = r.relError] {
                if (self && self->m_layerGeneration == generation) emit self->layerIteration(layer, it, e);
            });
        };
        if (warmFrom) {
            auto f = std::make_shared<LayerFactorization>(*describeFactorization(
                *W, *svd, pipeline::refineLayer(*W, *svd, layerJob, *warmFrom->result, iterations, ctx, feed), settings,
                true, layerJob, true, svdFromDisk));
            f->warmFrom = warmFrom->settings;
            return f;
        }
        std::shared_ptr<const LayerFactorization> closed;
        if (!haveClosedForm) {
            auto showClosedForm = [&](std::shared_ptr<const LayerFactorization> f) {
                job->post([self, layer, f, settings, generation] {
                    if (!self) return;
                    if (!f->estimated()) self->m_cache.setResult(layer, settings.closedFormKey(), f);
                    if (self->m_layerGeneration == generation) emit self->layerPreviewReady(layer, settings, f);
                });
            };
            // First the closed form with errors estimated from a sample of rows (about a second at 7B
            // shapes), then the exact errors, the residual (one reconstruction) and the spectra.
            std::shared_ptr<const LayerFactorization> quick = lacksViews;
            if (!quick) {
                quick = describeFactorization(*W, *svd,
                                              pipeline::previewLayer(*W, *svd, layerJob, pipeline::kPreviewSampleRows, ctx),
                                              settings, false, layerJob, false, svdFromDisk);
                if (quick->estimated()) showClosedForm(quick);
            }
            ctx.throwIfStopped();
            ctx.report("views", 0, 1);
            closed = withViews(*W, *svd, *quick, layerJob, ctx);
            if (iterations == 0) return closed;
            showClosedForm(closed);
        }
        return describeFactorization(*W, *svd, pipeline::factorizeLayer(*W, *svd, layerJob, iterations, ctx, feed),
                                     settings, true, layerJob, true, svdFromDisk);
    };

    Job* job = m_runner->start<std::shared_ptr<const LayerFactorization>>(
        title, work, [self, layer, settings, generation](std::shared_ptr<const LayerFactorization>&& f) {
            if (!self || !f) return;
            // A cancelled refinement is not what the settings ask for, but its best iterate can still
            // start the next one: kept under a key no lookup of settings finds.
            self->m_cache.setResult(layer, f->complete ? resultKey(settings) : resultKey(settings) + kIncomplete, f);
            if (self->m_layerGeneration != generation) return;
            self->m_layerJob = nullptr;  // over: a view reacting to the result may start the next request
            emit self->layerFactorized(layer, settings, f);
        });
    m_layerJob = job;
    connect(job, &Job::progressChanged, this, [this, job, layer](const QString& stage, qint64 done, qint64 total) {
        if (m_layerJob == job) emit layerProgress(layer, stage, done, total);
    });
    connect(job, &Job::failed, this, [this, layer, generation](const QString& message) {
        if (m_layerGeneration == generation) emit layerFailed(layer, message);
    });
    connect(job, &Job::ended, this, [this, job, layer] {
        if (m_layerJob != job && m_layerJob) return;  // a newer request runs: it reports its own end
        m_layerJob = nullptr;
        emit layerJobEnded(layer);
    });
    return job;
}

// ---- Apply to Model -------------------------------------------------------------------------------

bool FactorizationService::refuse(const QString& reason)
{
    m_refusal = reason;
    return false;
}

bool FactorizationService::applyToModel(const QStringList& layers, const FactorSettings& settings)
{
    std::vector<LayerRequest> requests;
    requests.reserve(static_cast<std::size_t>(layers.size()));
    for (const QString& key : layers) requests.push_back({key, settings});
    return applyToModel(requests, settingsText(settings),
                        tr("Apply settings to %n layer(s)", nullptr, static_cast<int>(layers.size())));
}

bool FactorizationService::applyToModel(const std::vector<LayerRequest>& requests, const QString& description,
                                        const QString& undoText)
{
    const auto session = m_document->session();
    if (!session) return refuse(tr("Open a model first."));
    if (m_applyJob) return refuse(tr("An apply is already running; cancel it or wait for it to finish."));
    const auto calibration = m_document->calibration();
    bool needsStatistics = false;
    for (const auto& [key, settings] : requests) {
        if (settings.objective == factor::Objective::Plain) continue;
        needsStatistics = true;
        if (!calibration || calibration->tag != settings.calibration)
            return refuse(tr("Objective %1 needs the calibration statistics it was chosen with: calibrate first.")
                              .arg(settings.objectiveLabel()));
    }
    ApplyReport report;
    report.description = description;
    std::vector<ApplyTask> tasks;
    std::vector<std::pair<LayerRequest, std::shared_ptr<const LayerFactorization>>> ready;
    for (const auto& request : requests) {
        const auto& [key, settings] = request;
        const widgets::LayerEntry* e = m_layers->layer(key);
        if (!e || !e->factorizable) continue;
        ++report.requested;
        const factor::BudgetCheck check =
            factor::checkBitBudget(e->rows, e->cols, settings.bpw, settings.method, settings.effectiveL(), settings.paths);
        if (!check.budget) {
            report.keptDense.emplace_back(key, QString::fromStdString(check.message));
            continue;
        }
        if (settings.objective != factor::Objective::Plain && calibration->stats->layers.count(key.toStdString()) == 0) {
            report.keptDense.emplace_back(
                key, tr("objective %1: the calibration did not record this layer").arg(settings.objectiveLabel()));
            continue;
        }
        if (auto current = m_document->applied(key); current && satisfies(*current, settings)) {
            ready.emplace_back(request, current);
            continue;
        }
        if (auto cached = m_cache.result(key, resultKey(settings)); cached && satisfies(*cached, settings)) {
            ready.emplace_back(request, cached);
            continue;
        }
        const LayerInputs inputs = m_cache.inputs(key, settings.svdKey());
        tasks.push_back(ApplyTask{key, settings, e->rows, e->cols, inputs.weights, inputs.svd});
        report.jobKeys << key;
    }
    if (report.requested == 0) return refuse(tr("No factorizable layer to apply the settings to."));
    m_refusal.clear();
    report.cached = static_cast<int>(ready.size());
    report.dense = static_cast<int>(report.keptDense.size());
    report.jobLayers = static_cast<int>(tasks.size());
    m_report = report;
    m_applyClock.start();
    const quint64 generation = ++m_applyGeneration;
    m_ownsBatch = !m_document->inBatch();
    if (m_ownsBatch)
        m_document->beginBatch(undoText.isEmpty() ? tr("Apply %1 to %n layer(s)", nullptr, report.requested).arg(description)
                                                  : undoText);
    emit applyStarted(report.jobLayers);
    for (const auto& [key, reason] : report.keptDense) {
        m_document->applyLayer(key, nullptr);
        emit applyLayerKeptDense(key, reason);
    }
    for (const auto& [request, f] : ready) {
        m_document->applyLayer(request.layer, f);
        emit applyLayerDone(request.layer, request.settings, f);
    }
    if (tasks.empty()) {
        finishApply(QString(), false);
        return true;
    }

    auto statistics = needsStatistics ? calibration : nullptr;
    QPointer<FactorizationService> self(this);
    auto live = [self, generation] { return self && self->m_applyGeneration == generation; };
    // Runs on the worker: only shared_ptr copies and Job::post cross back to the GUI thread.
    auto work = [tasks = std::move(tasks), session, statistics, self, live](const RunContext& ctx, Job* job) -> int {
        const auto count = static_cast<std::int64_t>(tasks.size());
        double total = 0.0;
        for (const ApplyTask& t : tasks) total += taskWork(t);
        double done = 0.0;
        Clock::time_point last{};
        auto postProgress = [&](double work, int index, bool force) {
            const Clock::time_point now = Clock::now();
            if (!force && now - last < kProgressInterval) return;
            last = now;
            const double fraction = total > 0.0 ? std::clamp(work / total, 0.0, 1.0) : 1.0;
            const QString key = index < count ? tasks[static_cast<std::size_t>(index)].key : QString();
            job->post([self, live, fraction, key] {
                if (live()) emit self->applyProgress(fraction, key);
            });
        };
        int finished = 0;
        ctx.report("layers", 0, count);
        for (int i = 0; i < static_cast<int>(tasks.size()); ++i) {
            if (ctx.stopRequested()) break;
            const ApplyTask& t = tasks[static_cast<std::size_t>(i)];
            const FactorSettings& settings = t.settings;
            const double w = taskWork(t);
            const double setupShare = kSetupUnits / (kSetupUnits + settings.iterations * settings.paths);
            postProgress(done, i, true);
            auto W = t.weights ? t.weights
                               : std::make_shared<const RowMatrixF>(
                                     pipeline::loadLayerWeights(session->checkpoint(), t.key.toStdString()));
            RunContext inner;
            inner.stop = ctx.stop;
            inner.threads = ctx.threads;
            pipeline::LayerJob layerJob =
                settings.job(statisticsFor(settings.objective, statistics.get(), t.key.toStdString()));
            layerJob.prepareGram();  // once for the decomposition and the refinement
            auto svd = t.svd;
            if (!svd) {
                svd = decomposeWithDiskCache(*W, layerJob, session->checkpoint(), t.key,
                                             statistics ? statistics->tag : QString(), inner)
                          .svd;
                job->post([self, live, key = t.key, svdKey = settings.svdKey(), svd] {
                    if (live()) self->m_cache.setSvd(key, svdKey, svd);
                });
            }
            if (ctx.stopRequested()) break;
            postProgress(done + w * setupShare, i, false);
            inner.progress = [&](const Progress& p) {
                if (p.total > 0)
                    postProgress(done + w * (setupShare + (1.0 - setupShare) * static_cast<double>(p.done) /
                                                              static_cast<double>(p.total)),
                                 i, false);
            };
            factor::FactorResult r = pipeline::factorizeLayer(*W, *svd, layerJob, -1, inner);
            // A refinement stopped part way is not what the settings ask for: the layer is left as it was.
            if (r.termination == factor::Termination::Cancelled) break;
            // No residual: an applied layer gets one when it is looked at.
            auto f = describeFactorization(*W, *svd, std::move(r), settings, settings.iterations > 0, layerJob, false);
            job->post([self, live, key = t.key, f] {
                if (live()) self->onApplyLayerDone(key, f);
            });
            done += w;
            ++finished;
            ctx.report("layers", finished, count);
        }
        postProgress(done, finished, true);
        if (finished < count && ctx.stopRequested()) throw Cancelled();
        return finished;
    };

    Job* job = m_runner->start<int>(tr("Applying %1 to %2 layers").arg(description).arg(report.jobLayers), work,
                                    [self, live](int&&) {
                                        if (live()) self->finishApply(QString(), false);
                                    });
    m_applyJob = job;
    connect(job, &Job::cancelled, this, [this, generation] {
        if (m_applyGeneration == generation) finishApply(tr("cancelled"), true);
    });
    connect(job, &Job::failed, this, [this, generation](const QString& message) {
        if (m_applyGeneration != generation) return;
        finishApply(tr("failed: %1").arg(message), false);
        emit applyFailed(message);
    });
    connect(job, &Job::ended, this, [this, job] {
        if (m_applyJob == job) m_applyJob = nullptr;
    });
    return true;
}

Job* FactorizationService::compareMethods(const QString& layer, const FactorSettings& base,
                                          const ComparisonRequest& request, const QString& title)
{
    cancelComparison();
    const quint64 generation = ++m_comparisonGeneration;
    m_comparisonJob = nullptr;
    const auto session = m_document->session();
    const widgets::LayerEntry* entry = m_layers->layer(layer);
    if (!session || !entry || !entry->factorizable) return nullptr;
    // Every budget × (DBF, MDBF at each l); infeasible combinations are skipped and listed.
    std::vector<FactorSettings> runs;
    QStringList skipped;
    for (const factor::Bpw& bpw : request.budgets) {
        std::vector<std::pair<factor::Method, int>> methods{{factor::Method::Dbf, 1}};
        for (int l : request.ranks) methods.emplace_back(factor::Method::Mdbf, l);
        for (const auto& [method, l] : methods) {
            FactorSettings s = base;
            s.method = method;
            s.l = l;
            s.bpw = bpw;
            s.iterations = request.refine ? base.iterations : 0;
            if (!factor::checkBitBudget(entry->rows, entry->cols, bpw, method, l, s.paths).budget) {
                skipped << QStringLiteral("%1 l=%2 @ %3").arg(s.methodLabel()).arg(l).arg(QString::fromStdString(bpw.text()));
                continue;
            }
            runs.push_back(s);
        }
    }
    const LayerInputs inputs = m_cache.inputs(layer, base.svdKey());
    auto calibration = m_document->calibration();
    QPointer<FactorizationService> self(this);
    auto live = [self, generation] { return self && self->m_comparisonGeneration == generation; };
    auto done = std::make_shared<int>(0);  // GUI thread only: counted as results arrive

    // Runs on the worker; every run shares the objective of `base`, hence its statistics and its SVD.
    auto work = [=](const RunContext& ctx, Job* job) -> int {
        auto W = inputs.weights ? inputs.weights
                                : std::make_shared<const RowMatrixF>(pipeline::loadLayerWeights(session->checkpoint(), layer.toStdString()));
        // Prepared once (gram), for the decomposition and every run.
        pipeline::LayerJob baseJob = base.job(statisticsFor(base.objective, calibration.get(), layer.toStdString()));
        baseJob.prepareGram();
        const pipeline::LayerStatistics& statistics = baseJob.statistics;
        auto svd = inputs.svd;
        if (!svd) {
            svd = decomposeWithDiskCache(*W, baseJob, session->checkpoint(), layer,
                                         calibration ? calibration->tag : QString(), ctx)
                      .svd;
            job->post([self, layer, svd, key = base.svdKey()] {
                if (self) self->m_cache.setSvd(layer, key, svd);
            });
        }
        int count = 0;
        for (const FactorSettings& s : runs) {
            if (ctx.stopRequested()) break;
            RunContext inner = ctx;
            inner.progress = nullptr;  // progress is counted in runs, not iterations
            const pipeline::LayerJob runJob = s.job(statistics);
            // A closed form's exact error comes with its views (one reconstruction, not two).
            factor::FactorResult r = s.iterations > 0 ? pipeline::factorizeLayer(*W, *svd, runJob, -1, inner)
                                                      : pipeline::previewLayer(*W, *svd, runJob, pipeline::kPreviewSampleRows, inner);
            auto f = describeFactorization(*W, *svd, std::move(r), s, s.iterations > 0, runJob, true);
            ctx.report("compare", ++count, static_cast<std::int64_t>(runs.size()));
            job->post([self, live, done, layer, f] {
                if (!self) return;
                if (f->complete) self->m_cache.setResult(layer, resultKey(f->settings), f);
                if (!live()) return;
                ++*done;
                emit self->comparisonResult(layer, f);
            });
        }
        return count;
    };
    const int total = static_cast<int>(runs.size());
    emit comparisonStarted(layer, total, skipped);
    Job* job = m_runner->start<int>(title, work, [](int&&) {});
    m_comparisonJob = job;
    auto error = std::make_shared<QString>();
    connect(job, &Job::failed, this, [error](const QString& message) { *error = message; });
    connect(job, &Job::ended, this, [this, live, layer, done, total, skipped, error] {
        if (!live()) return;
        m_comparisonJob = nullptr;
        emit comparisonEnded(layer, *done, total, skipped, *error);
    });
    return job;
}

void FactorizationService::cancelComparison()
{
    if (m_comparisonJob) m_comparisonJob->cancel();
}

Job* FactorizationService::openModel(const QString& path)
{
    if (m_openJob) m_openJob->cancel();
    QPointer<FactorizationService> self(this);
    Job* job = m_runner->start<std::shared_ptr<const ModelSession>>(
        tr("Opening %1").arg(QFileInfo(path).fileName()),
        [path](const RunContext& ctx, Job*) -> std::shared_ptr<const ModelSession> {
            return ModelSession::load(path.toStdString(), ctx);
        },
        [self, path](std::shared_ptr<const ModelSession>&& session) {
            if (!self) return;
            self->m_document->setSession(session);
            self->computeNorms(self->m_layers->tensorsWithoutNorm());
            emit self->modelOpened(path, std::move(session));
        });
    m_openJob = job;
    connect(job, &Job::failed, this, [this, path](const QString& message) { emit modelOpenFailed(path, message); });
    connect(job, &Job::cancelled, this, [this, path] { emit modelOpenCancelled(path); });
    return job;
}

Job* FactorizationService::computeNorms(const QStringList& tensors)
{
    if (m_normJob) m_normJob->cancel();
    m_normJob = nullptr;
    auto session = m_document->session();
    if (!session || tensors.isEmpty()) return nullptr;
    QPointer<FactorizationService> self(this);
    m_normJob = m_runner->start<int>(
        tr("Computing layer norms"),
        [session, tensors, self](const RunContext& ctx, Job* job) -> int {
            int done = 0;
            for (const QString& name : tensors) {
                if (ctx.stopRequested()) break;
                // One pass over every tensor: matrix() would leave the whole file in RSS.
                const RowMatrixF w = session->checkpoint().matrixOnce(name.toStdString());
                const double norm = std::sqrt(w.cast<double>().squaredNorm());
                job->post([self, session, name, norm] {
                    if (!self || self->m_document->session() != session) return;
                    self->m_document->layers()->setNorm(name, norm);
                    emit self->layerNormReady(name, norm);
                });
                ctx.report("norms", ++done, tensors.size());
            }
            return done;
        },
        {});
    return m_normJob;
}

bool FactorizationService::plansOnOutputs() const
{
    const auto& calibration = m_document->calibration();
    return calibration && calibration->hasGram();
}

bool FactorizationService::planAtBudget(const pipeline::PlanOptions& options)
{
    const auto session = m_document->session();
    if (!session) return refuse(tr("Open a model first."));
    if (m_planJob || m_applyJob) return refuse(tr("A plan or an apply is running; cancel it or wait for it to finish."));
    // Output errors need H for every planned layer; a diag-only calibration cannot give them.
    const auto calibration = plansOnOutputs() ? m_document->calibration() : nullptr;
    if (options.objective != factor::Objective::Plain && !calibration)
        return refuse(tr("Planning with objective %1 needs a calibration with Gram matrices: calibrate first.")
                          .arg(QString::fromStdString(std::string(factor::objectiveName(options.objective)))));
    try {
        options.validate();
    } catch (const std::exception& e) {
        return refuse(QString::fromUtf8(e.what()));
    }
    m_refusal.clear();
    QPointer<FactorizationService> self(this);
    m_planJob = m_runner->start<std::shared_ptr<const pipeline::ModelPlan>>(
        tr("Planning at %1 bpw").arg(QString::fromStdString(options.budget.text())),
        [session, options, calibration](const RunContext& ctx, Job*) -> std::shared_ptr<const pipeline::ModelPlan> {
            pipeline::PlanOptions planned = options;
            // The trials start from the decompositions the previews and applies stored, and store theirs.
            planned.engine.decompositions.cache =
                std::make_shared<const factor::DecompositionCache>(factor::DecompositionCache::defaultFolder());
            if (calibration) {
                for (const std::string& name : pipeline::plannedLayerNames(session->config()))
                    planned.inputGrams.emplace(name, calibration->stats->layer(name).gram);
                planned.engine.decompositions.calibration = calibration->tag.toStdString();
            }
            return std::make_shared<const pipeline::ModelPlan>(
                pipeline::planModel(session->config(), session->checkpoint(), planned, ctx));
        },
        [self, session, options, tag = calibration ? calibration->tag : QString()](
            std::shared_ptr<const pipeline::ModelPlan>&& plan) {
            if (!self || self->m_document->session() != session) return;
            self->m_planJob = nullptr;
            emit self->planFinished(plan);
            self->applyPlan(*plan, options, tag);
        });
    connect(m_planJob, &Job::cancelled, this, [this] { emit planStopped(true, QString()); });
    connect(m_planJob, &Job::failed, this, [this](const QString& message) { emit planStopped(false, message); });
    connect(m_planJob, &Job::ended, this, [this, job = m_planJob.data()] {
        if (m_planJob == job) m_planJob = nullptr;
    });
    emit planStarted();
    return true;
}

void FactorizationService::cancelPlan()
{
    if (m_planJob) m_planJob->cancel();
}

void FactorizationService::applyPlan(const pipeline::ModelPlan& plan, const pipeline::PlanOptions& options,
                                     const QString& calibration)
{
    std::vector<LayerRequest> requests;
    QStringList planned;
    for (const pipeline::PlannedLayer& layer : plan.layers) {
        FactorSettings s;
        s.method = layer.choice.format.method;
        s.l = layer.choice.format.l;
        s.bpw = layer.bpw;
        s.iterations = options.iterations;
        s.objective = options.objective;
        if (s.objective != factor::Objective::Plain) s.calibration = calibration;
        const QString key = QString::fromStdString(layer.name);
        planned << key;
        requests.push_back({key, s});
    }
    QStringList others;
    for (const auto& [key, f] : m_document->configuration())
        if (!planned.contains(key)) others << key;
    const QString budget = QString::fromStdString(options.budget.text());
    // One step: the layers the plan leaves dense revert, the planned ones arrive as the apply runs.
    m_document->beginBatch(tr("Plan at %1 bpw").arg(budget));
    if (!others.isEmpty()) m_document->revertLayers(others);
    if (!applyToModel(requests, tr("plan at %1 bpw").arg(budget))) {
        m_document->endBatch();
        emit planStopped(false, m_refusal);
        return;
    }
    if (isApplying()) m_ownsBatch = true;  // the apply closes the step when it ends
    else m_document->endBatch();
}

void FactorizationService::cancelApply()
{
    if (m_applyJob) m_applyJob->cancel();
}

void FactorizationService::onApplyLayerDone(const QString& layer, std::shared_ptr<const LayerFactorization> f)
{
    if (!m_report) return;
    ++m_report->computed;
    m_cache.setResult(layer, resultKey(f->settings), f);
    m_document->applyLayer(layer, f);
    emit applyLayerDone(layer, f->settings, f);
}

void FactorizationService::finishApply(const QString& outcome, bool cancelled)
{
    if (m_report) {
        m_report->outcome = outcome;
        m_report->seconds = static_cast<double>(m_applyClock.elapsed()) / 1000.0;
    }
    m_applyJob = nullptr;
    if (m_ownsBatch) m_document->endBatch();
    m_ownsBatch = false;
    emit applyEnded(cancelled);
}

}  // namespace mdbf::studio
