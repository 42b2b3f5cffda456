#include "model_apply_panel.h"

#include <chrono>
#include <cmath>
#include <set>

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QToolButton>
#include <QVBoxLayout>

#include "factor_cache.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/model/architecture.h"
#include "mdbf/pipeline/layer_job.h"
#include "mdbf/widgets/layer_error_bar_plot.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"

namespace mdbf::studio {

namespace {

using Clock = std::chrono::steady_clock;

/// The SVD and closed form of a layer, in units of one outer iteration, for the progress estimate.
constexpr double kSetupUnits = 4.0;
constexpr auto kProgressInterval = std::chrono::milliseconds(100);

/// One layer the job computes; the inputs already in the cache are handed over.
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

/// True when `f` is exactly what applying `s` would produce.
bool satisfies(const LayerFactorization& f, const FactorSettings& s)
{
    return f.complete && f.refined == (s.iterations > 0) && f.settings == s;
}

QString settingsText(const FactorSettings& s)
{
    QString text = s.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF l=%1").arg(s.l);
    text += QObject::tr(" · %1 bpw").arg(QString::fromStdString(s.bpw.text()));
    if (s.paths > 1) text += QObject::tr(" · %1 paths").arg(s.paths);
    text += s.iterations > 0 ? QObject::tr(" · %1 iterations").arg(s.iterations) : QObject::tr(" · closed form");
    if (s.objective != factor::Objective::Plain) text += QObject::tr(" · objective %1").arg(s.objectiveLabel());
    return text;
}

QString durationText(double seconds)
{
    const auto total = static_cast<qint64>(std::llround(std::max(0.0, seconds)));
    const qint64 h = total / 3600, m = (total / 60) % 60, s = total % 60;
    if (h > 0) return QStringLiteral("%1:%2:%3").arg(h).arg(m, 2, 10, QLatin1Char('0')).arg(s, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1:%2").arg(m).arg(s, 2, 10, QLatin1Char('0'));
}

/// "3·q", "3·gate", "head": short enough to stand rotated under a bar.
QString tickLabel(const QString& key)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(key.toStdString());
    if (id && id->block >= 0 && id->projection < model::kBlockProjectionCount) {
        const std::string_view tick = model::blockProjections()[id->projection].tick;
        return QStringLiteral("%1·%2").arg(id->block).arg(QString::fromUtf8(tick.data(), static_cast<qsizetype>(tick.size())));
    }
    if (id && id->role == model::TensorRole::Head) return QStringLiteral("head");
    return key.section(QLatin1Char('.'), -1);
}

/// The colour group of a layer: its projection's short name ("up_proj") or "lm_head".
QString categoryOf(const QString& key)
{
    const std::optional<model::LayerIdentity> id = model::identifyLayer(key.toStdString());
    if (!id) return key.section(QLatin1Char('.'), -1);
    return QString::fromUtf8(id->label.data(), static_cast<qsizetype>(id->label.size()));
}

}  // namespace

/// What the panel knows about the running (or last) apply.
struct ModelApplyPanel::Run {
    QString settings;   ///< what is applied, as the report names it
    int requested = 0;  ///< factorizable layers asked for
    int cached = 0;     ///< applied at once from the cache or the configuration
    int dense = 0;      ///< kept dense (infeasible budget)
    int jobLayers = 0;  ///< computed by the job
    int computed = 0;   ///< of those, done so far
    QStringList jobKeys;
    QString outcome;    ///< "", "cancelled", "failed: …"
    double seconds = 0.0;
};

ModelApplyPanel::ModelApplyPanel(JobRunner* runner, FactorCache* cache, const widgets::LayerTreeModel* layers,
                                 QWidget* parent)
    : QWidget(parent), m_runner(runner), m_cache(cache), m_layers(layers)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 2, 4, 2);
    layout->setSpacing(2);

    auto* top = new QHBoxLayout();
    m_status = new QLabel(this);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_status->setWordWrap(true);  // a long report must not widen the dock area and squeeze the Layers panel
    m_status->setToolTip(tr("The last Apply to Model: settings, layers factorized (reused from the cache), layers "
                            "kept dense, and the model's bits per weight"));
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1000);
    m_progress->setFixedWidth(180);
    m_progress->setMaximumHeight(18);
    m_progress->setToolTip(tr("Layers done of those to compute, and the work done weighted by layer size and iterations"));
    m_progress->hide();
    m_eta = new QLabel(this);
    m_eta->setToolTip(tr("Estimated time left, from the work done so far"));
    m_eta->hide();
    m_cancel = new QToolButton(this);
    m_cancel->setText(tr("Cancel"));
    m_cancel->setToolTip(tr("Stop applying; the layers already done stay in the configuration"));
    m_cancel->hide();
    top->addWidget(m_status, 1);
    top->addWidget(m_progress);
    top->addWidget(m_eta);
    top->addWidget(m_cancel);
    layout->addLayout(top);

    m_plot = new widgets::LayerErrorBarPlot(this);
    m_plot->setMinimumHeight(140);
    layout->addWidget(m_plot, 1);

    m_denseLabel = new QLabel(this);
    m_denseLabel->setWordWrap(true);
    m_denseLabel->setStyleSheet(QStringLiteral("color: #8c510a;"));
    m_denseLabel->setToolTip(tr("Layers whose bit budget cannot pay for k ≥ max(1, l): they stay at stored precision"));
    m_denseLabel->hide();
    layout->addWidget(m_denseLabel);

    connect(m_cancel, &QToolButton::clicked, this, &ModelApplyPanel::cancel);
    connect(m_plot, &widgets::LayerErrorBarPlot::barClicked, this, &ModelApplyPanel::layerClicked);
    updateStatus();
}

void ModelApplyPanel::setSession(std::shared_ptr<const ModelSession> session)
{
    cancel();
    ++m_generation;
    m_job = nullptr;
    m_session = std::move(session);
    m_run.reset();
    m_keptDense.clear();
    m_config.clear();
    m_plot->clear();
    m_progress->hide();
    m_eta->hide();
    m_cancel->hide();
    updateStatus();
}

void ModelApplyPanel::cancel()
{
    if (m_job) m_job->cancel();
    m_cancel->setEnabled(false);
}

bool ModelApplyPanel::apply(const QStringList& layers, const FactorSettings& settings, const ModelConfiguration& current)
{
    std::vector<LayerRequest> requests;
    requests.reserve(static_cast<std::size_t>(layers.size()));
    for (const QString& key : layers) requests.push_back({key, settings});
    return apply(requests, settingsText(settings), current);
}

bool ModelApplyPanel::apply(const std::vector<LayerRequest>& requests, const QString& description,
                            const ModelConfiguration& current)
{
    if (!m_session) {
        m_status->setText(tr("Open a model first."));
        return false;
    }
    if (m_job) {
        m_status->setText(tr("An apply is already running; cancel it or wait for it to finish."));
        return false;
    }
    bool needsStatistics = false;
    for (const auto& [key, settings] : requests) {
        if (settings.objective == factor::Objective::Plain) continue;
        needsStatistics = true;
        if (!m_calibration || m_calibration->tag != settings.calibration) {
            m_status->setText(tr("Objective %1 needs the calibration statistics it was chosen with: calibrate first.")
                                  .arg(settings.objectiveLabel()));
            return false;
        }
    }
    auto run = std::make_shared<Run>();
    run->settings = description;
    std::vector<ApplyTask> tasks;
    std::vector<std::pair<QString, std::shared_ptr<const LayerFactorization>>> ready;
    std::vector<std::pair<QString, QString>> dense;
    for (const auto& [key, settings] : requests) {
        const widgets::LayerEntry* e = m_layers->layer(key);
        if (!e || !e->factorizable) continue;
        ++run->requested;
        const factor::BudgetCheck check =
            factor::checkBitBudget(e->rows, e->cols, settings.bpw, settings.method, settings.effectiveL(), settings.paths);
        if (!check.budget) {
            dense.emplace_back(key, QString::fromStdString(check.message));
            continue;
        }
        if (settings.objective != factor::Objective::Plain && m_calibration->stats->layers.count(key.toStdString()) == 0) {
            dense.emplace_back(key, tr("objective %1: the calibration did not record this layer").arg(settings.objectiveLabel()));
            continue;
        }
        if (const auto it = current.find(key); it != current.end() && it->second && satisfies(*it->second, settings)) {
            ready.emplace_back(key, it->second);
            continue;
        }
        if (auto cached = m_cache->result(key, resultKey(settings)); cached && satisfies(*cached, settings)) {
            ready.emplace_back(key, cached);
            continue;
        }
        const LayerInputs inputs = m_cache->inputs(key, settings.svdKey());
        tasks.push_back(ApplyTask{key, settings, e->rows, e->cols, inputs.weights, inputs.svd});
        run->jobKeys << key;
    }
    if (run->requested == 0) {
        m_status->setText(tr("No factorizable layer to apply the settings to."));
        return false;
    }
    run->cached = static_cast<int>(ready.size());
    run->dense = static_cast<int>(dense.size());
    run->jobLayers = static_cast<int>(tasks.size());
    m_run = run;
    m_keptDense = dense;
    m_fraction = 0.0;
    m_clock.start();
    const quint64 generation = ++m_generation;
    emit applyStarted(run->jobLayers);
    for (const auto& [key, reason] : dense) emit layerKeptDense(key, reason);
    for (const auto& [key, f] : ready) emit layerApplied(key, f);

    if (tasks.empty()) {
        finishRun(QString(), false);
        return true;
    }

    auto session = m_session;
    auto calibration = needsStatistics ? m_calibration : nullptr;
    QPointer<ModelApplyPanel> self(this);
    // Runs on the worker: only shared_ptr copies and Job::post cross back to the GUI thread.
    auto work = [tasks = std::move(tasks), session, calibration, self, generation](const RunContext& ctx, Job* job) -> int {
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
            job->post([self, generation, fraction, index] {
                if (self && self->m_generation == generation) self->onProgress(fraction, index);
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
                              : std::make_shared<const RowMatrixF>(pipeline::loadLayerWeights(session->checkpoint(), t.key.toStdString()));
            RunContext inner;
            inner.stop = ctx.stop;
            inner.threads = ctx.threads;
            const pipeline::LayerJob layerJob =
                settings.job(statisticsFor(settings.objective, calibration.get(), t.key.toStdString()));
            auto svd = t.svd;
            if (!svd) {
                svd = pipeline::decomposeLayer(*W, layerJob, inner);
                job->post([self, generation, key = t.key, svdKey = settings.svdKey(), svd] {
                    if (self && self->m_generation == generation) self->m_cache->setSvd(key, svdKey, svd);
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
            auto f = describeFactorization(*W, *svd, std::move(r), settings, settings.iterations > 0);
            job->post([self, generation, key = t.key, f] {
                if (self && self->m_generation == generation) self->onLayerDone(key, f);
            });
            done += w;
            ++finished;
            ctx.report("layers", finished, count);
        }
        postProgress(done, finished, true);
        if (finished < count && ctx.stopRequested()) throw Cancelled();
        return finished;
    };

    Job* job = m_runner->start<int>(tr("Applying %1 to %2 layers").arg(description).arg(run->jobLayers), work,
                                    [self, generation](int&&) {
                                        if (self && self->m_generation == generation) self->finishRun(QString(), false);
                                    });
    m_job = job;
    connect(job, &Job::cancelled, this, [this, generation] {
        if (m_generation == generation) finishRun(tr("cancelled"), true);
    });
    connect(job, &Job::failed, this, [this, generation](const QString& message) {
        if (m_generation != generation) return;
        finishRun(tr("failed: %1").arg(message), false);
        emit applyFailed(message);
    });
    connect(job, &Job::ended, this, [this, job] {
        if (m_job == job) m_job = nullptr;
    });
    m_progress->setValue(0);
    m_progress->setFormat(tr("0/%1 · %p%").arg(run->jobLayers));
    m_progress->show();
    m_eta->setText(tr("ETA …"));
    m_eta->show();
    m_cancel->setEnabled(true);
    m_cancel->show();
    updateStatus();
    return true;
}

void ModelApplyPanel::onProgress(double fraction, int layerIndex)
{
    if (!m_run) return;
    m_fraction = fraction;
    m_progress->setValue(static_cast<int>(std::lround(fraction * 1000.0)));
    m_progress->setFormat(tr("%1/%2 · %p%").arg(m_run->computed).arg(m_run->jobLayers));
    if (layerIndex >= 0 && layerIndex < m_run->jobKeys.size())
        m_progress->setToolTip(tr("Layers done of those to compute, and the work done weighted by layer size and "
                                  "iterations. Now: %1")
                                   .arg(m_run->jobKeys[layerIndex]));
    m_eta->setText(etaText());
}

QString ModelApplyPanel::etaText() const
{
    if (!m_job) return {};
    const double elapsed = static_cast<double>(m_clock.elapsed()) / 1000.0;
    // Too little done for a stable rate: say so rather than show a wild number.
    if (m_fraction < 0.02 && elapsed < 2.0) return tr("ETA …");
    if (m_fraction <= 0.0) return tr("ETA …");
    return tr("ETA %1").arg(durationText(elapsed * (1.0 - m_fraction) / m_fraction));
}

void ModelApplyPanel::onLayerDone(const QString& layer, std::shared_ptr<const LayerFactorization> f)
{
    if (!m_run) return;
    ++m_run->computed;
    m_cache->setResult(layer, resultKey(f->settings), f);
    emit layerApplied(layer, f);
    m_progress->setFormat(tr("%1/%2 · %p%").arg(m_run->computed).arg(m_run->jobLayers));
    updateStatus();
}

void ModelApplyPanel::finishRun(const QString& outcome, bool cancelled)
{
    if (m_run) {
        m_run->outcome = outcome;
        m_run->seconds = static_cast<double>(m_clock.elapsed()) / 1000.0;
    }
    m_job = nullptr;
    m_progress->hide();
    m_eta->hide();
    m_cancel->hide();
    updateStatus();
    setConfiguration(m_config);
    emit applyEnded(cancelled);
}

QString ModelApplyPanel::statusText() const { return m_status->text(); }

void ModelApplyPanel::updateStatus()
{
    if (!m_run) {
        m_status->setText(m_session ? tr("Model ▸ Apply Settings applies the inspector's settings to all or the selected "
                                         "layers; their errors appear here.")
                                    : tr("Open a model to apply settings to its layers."));
        m_denseLabel->hide();
        return;
    }
    const Run& r = *m_run;
    QString text = tr("<b>%1</b> → %2 of %3 layers factorized")
                       .arg(r.settings)
                       .arg(r.cached + r.computed)
                       .arg(r.requested);
    if (r.cached > 0) text += tr(" (%1 reused)").arg(r.cached);
    if (r.dense > 0) text += tr(" · %1 kept dense").arg(r.dense);
    if (m_job) text += tr(" · running…");
    else if (!r.outcome.isEmpty()) text += QStringLiteral(" · <b>%1</b>").arg(r.outcome.toHtmlEscaped());
    else text += tr(" · done in %1 s").arg(r.seconds, 0, 'f', 1);
    if (m_session) {
        const pipeline::ModelBits bits = accountConfiguration(m_session->checkpoint(), m_config);
        text += tr(" · model %1 bpw").arg(bits.modelBpw(), 0, 'f', 3);
    }
    m_status->setText(text);

    QStringList names;
    for (const auto& [key, reason] : m_keptDense) names << key;
    m_denseLabel->setVisible(!m_keptDense.empty());
    if (!m_keptDense.empty()) {
        m_denseLabel->setText(tr("Kept dense, budget too small for k ≥ max(1, l): %1 (%2)")
                                  .arg(names.join(QStringLiteral(", ")), m_keptDense.front().second));
    }
}

void ModelApplyPanel::setConfiguration(const ModelConfiguration& config)
{
    m_config = config;
    std::set<QString> objectives;
    std::vector<widgets::LayerErrorBar> entries;
    for (const QString& key : m_layers->layerKeys()) {
        const auto it = config.find(key);
        const bool configured = it != config.end() && it->second && it->second->result;
        const auto dense = std::find_if(m_keptDense.begin(), m_keptDense.end(), [&](const auto& d) { return d.first == key; });
        if (!configured && dense == m_keptDense.end()) continue;
        widgets::LayerErrorBar bar;
        bar.name = key;
        bar.label = tickLabel(key);
        bar.category = categoryOf(key);
        if (configured) {
            const LayerFactorization& f = *it->second;
            const factor::FactorResult& r = *f.result;
            bar.error = r.finalError;
            const QString objective = QString::fromStdString(std::string(factor::objectiveName(r.objective)));
            objectives.insert(objective);
            bar.detail = tr("%1 l=%2 · k %3 · %4 bpw · %5")
                             .arg(r.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF"))
                             .arg(r.l)
                             .arg(r.k)
                             .arg(r.bpw, 0, 'f', 3)
                             .arg(!f.refined ? tr("closed form")
                                             : (f.complete ? tr("%1 iterations").arg(r.iterations)
                                                           : tr("refinement cancelled at %1").arg(r.iterations)));
            bar.detail += tr(" · error (%1)").arg(objective);
        } else {
            bar.dense = true;
            bar.detail = tr("kept dense: %1").arg(dense->second);
        }
        entries.push_back(std::move(bar));
    }
    m_plot->setObjectiveLabel(objectives.size() == 1 ? *objectives.begin()
                              : objectives.empty()   ? tr("plain")
                                                     : tr("objective of each layer"));
    m_plot->setEntries(std::move(entries));
    if (!m_job) updateStatus();
}

void ModelApplyPanel::setCurrentLayer(const QString& key) { m_plot->setHighlighted(key); }

}  // namespace mdbf::studio
