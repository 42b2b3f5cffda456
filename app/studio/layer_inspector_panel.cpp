#include "layer_inspector_panel.h"

#include <QAction>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QToolButton>
#include <QVBoxLayout>

#include "calibration_state.h"
#include "comparison_tab.h"
#include "duration_text.h"
#include "factor_control_bar.h"
#include "factorization_service.h"
#include "layer_result_tabs.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/bit_budget.h"
#include "mdbf/widgets/elided_label.h"
#include "mdbf/widgets/error_curve_plot.h"
#include "mdbf/widgets/heatmap_plot.h"
#include "mdbf/widgets/histogram_plot.h"
#include "mdbf/widgets/method_comparison_plot.h"
#include "mdbf/widgets/sign_image_view.h"
#include "mdbf/widgets/spectrum_plot.h"
#include "model_session.h"
#include "studio_document.h"

namespace mdbf::studio {

namespace {

QString terminationText(factor::Termination t)
{
    switch (t) {
    case factor::Termination::Converged: return QObject::tr("converged");
    case factor::Termination::IterationLimit: return QObject::tr("iteration limit");
    case factor::Termination::Cancelled: return QObject::tr("cancelled");
    case factor::Termination::Failed: return QObject::tr("failed");
    }
    return {};
}

}  // namespace

LayerInspectorPanel::LayerInspectorPanel(FactorizationService* service, StudioDocument* document, QWidget* parent)
    : QWidget(parent), m_service(service), m_document(document)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);

    m_controls = new FactorControlBar(this);
    layout->addWidget(m_controls);

    auto* statusRow = new QHBoxLayout();
    statusRow->setContentsMargins(8, 0, 8, 0);
    m_status = new widgets::ElidedLabel(this);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_status->setDescription(tr("The result on screen: method, k, exact bpw, error and its objective, how it ended"));
    // A long result line is elided rather than widening the centre, which would squeeze the docks.
    m_status->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_progress = new QProgressBar(this);
    // Wide and tall enough for the longest text it draws inside itself; narrower, Qt clips it mid-word.
    m_progress->setFixedWidth(fontMetrics().horizontalAdvance(tr("refining 100% · ETA 0:00:00")) + 3 * fontMetrics().averageCharWidth());
    m_progress->setMaximumHeight(fontMetrics().height() + 6);
    m_progress->setToolTip(tr("Refinement progress in outer iterations"));
    m_progress->hide();
    m_cancel = new QToolButton(this);
    m_cancel->setText(tr("Cancel"));
    m_cancel->setToolTip(tr("Stop the refinement; the best iterate so far stays on screen"));
    m_cancel->hide();
    m_state = new QLabel(this);
    m_state->setObjectName(QStringLiteral("previewState"));
    m_state->setToolTip(tr("Whether the result on screen is the layer's applied factorization or a preview of the "
                           "controls' settings; browsing never changes the configuration"));
    m_applyAction = new QAction(tr("&Apply to Layer"), this);
    m_applyAction->setShortcuts({QKeySequence(Qt::Key_Return), QKeySequence(Qt::Key_Enter)});
    m_applyAction->setToolTip(tr("Make the previewed settings this layer's factorization in the configuration (Enter; "
                                 "undo with Ctrl+Z)"));
    m_applyAction->setStatusTip(m_applyAction->toolTip());
    m_applyAction->setEnabled(false);
    connect(m_applyAction, &QAction::triggered, this, &LayerInspectorPanel::applyPreview);
    m_applyButton = new QToolButton(this);
    m_applyButton->setDefaultAction(m_applyAction);
    m_applyButton->setText(tr("Apply to Layer"));
    statusRow->addWidget(m_status, 1);
    statusRow->addWidget(m_progress);
    statusRow->addWidget(m_cancel);
    statusRow->addSpacing(12);
    statusRow->addWidget(m_state);
    statusRow->addWidget(m_applyButton);
    layout->addLayout(statusRow);

    m_tabs = new LayerResultTabs(this);
    layout->addWidget(m_tabs, 1);
    m_comparison = m_tabs->comparison();

    m_debounce.setSingleShot(true);
    m_debounce.setInterval(120);
    connect(&m_debounce, &QTimer::timeout, this, &LayerInspectorPanel::startFactorization);
    connect(m_controls, &FactorControlBar::settingsChanged, this, [this] {
        scheduleFactorization();
        updateState();
    });
    connect(m_document, &StudioDocument::layerChanged, this,
            [this](const QString& layer, std::shared_ptr<const LayerFactorization> result) {
                if (layer != m_layer.key) return;
                // Undo or redo of this layer: show what is applied now, with its settings in the controls.
                if (result && result != m_current) showApplied(result);
                updateState();
            });
    connect(m_cancel, &QToolButton::clicked, this, &LayerInspectorPanel::cancelRefinement);
    connect(m_comparison, &ComparisonTab::runRequested, this, [this] { runComparison(); });
    connect(m_service, &FactorizationService::comparisonStarted, this,
            [this](const QString& layer, int runs, const QStringList&) {
                if (layer == m_layer.key) m_comparison->setStatus(tr("Comparing %1 configurations…").arg(runs));
            });
    connect(m_service, &FactorizationService::comparisonResult, this, &LayerInspectorPanel::onComparisonResult);
    connect(m_service, &FactorizationService::comparisonEnded, this, &LayerInspectorPanel::onComparisonEnded);
    connect(m_document, &StudioDocument::sessionChanged, this, &LayerInspectorPanel::onSessionChanged);
    connect(m_document, &StudioDocument::currentLayerChanged, this,
            [this](const QString& key) { setLayer(key.isEmpty() ? nullptr : m_document->layers()->layer(key)); });
    connect(m_document, &StudioDocument::calibrationChanged, m_controls, &FactorControlBar::setCalibration);

    // The preview job's reports; each names its layer, and only the layer on screen is shown.
    connect(m_service, &FactorizationService::layerWeightsLoaded, this,
            [this](const QString& layer, std::shared_ptr<const RowMatrixF> w) {
                if (layer == m_layer.key) m_tabs->showWeights(w);
            });
    connect(m_service, &FactorizationService::layerPreviewReady, this,
            [this](const QString& layer, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) {
                if (layer == m_layer.key) show(f);
            });
    connect(m_service, &FactorizationService::layerIteration, this, [this](const QString& layer, int it, double e) {
        if (layer == m_layer.key) m_tabs->appendIteration(it, e);
    });
    connect(m_service, &FactorizationService::layerFactorized, this,
            [this](const QString& layer, const FactorSettings&, std::shared_ptr<const LayerFactorization> f) {
                onFactorized(layer, f);
            });
    connect(m_service, &FactorizationService::layerProgress, this,
            [this](const QString&, const QString& stage, qint64 done, qint64 total) {
                if (stage == QLatin1String("refine") && total > 0) {
                    m_progress->setRange(0, static_cast<int>(total));
                    m_progress->setValue(static_cast<int>(done));
                    if (!m_refineClock.isValid()) {
                        m_refineClock.start();
                        m_refineFirst = done;
                    }
                    QString format = tr("refining %p%");
                    // The rate of the iterations seen so far (their cost is even across a refinement).
                    if (const qint64 steps = done - m_refineFirst; steps > 0 && done < total)
                        format += tr(" · ETA %1").arg(durationText(static_cast<double>(m_refineClock.elapsed()) / 1000.0 *
                                                                   static_cast<double>(total - done) /
                                                                   static_cast<double>(steps)));
                    m_progress->setFormat(format);
                } else {
                    m_progress->setRange(0, 0);
                    m_progress->setFormat(stage);
                }
            });
    connect(m_service, &FactorizationService::layerFailed, this, [this](const QString& layer, const QString& message) {
        if (layer != m_layer.key) return;
        // A failure clears what was on screen: nothing stale stays behind the message.
        m_current.reset();
        m_applyPending = false;
        clearViews(tr("Factorization failed"));
        setStatus(tr("Factorization failed: %1").arg(message), true);
        updateState();
    });
    connect(m_service, &FactorizationService::layerJobEnded, this, [this] {
        m_progress->hide();
        m_cancel->hide();
        m_applyPending = false;
        updateState();
    });
    createActions();
    clearViews(tr("Open a model and select a layer"));
}

widgets::SignImageView* LayerInspectorPanel::signA() const { return m_tabs->signA(); }
widgets::SignImageView* LayerInspectorPanel::signB() const { return m_tabs->signB(); }
widgets::SpectrumPlot* LayerInspectorPanel::spectrumPlot() const { return m_tabs->spectrumPlot(); }
widgets::ErrorCurvePlot* LayerInspectorPanel::errorCurve() const { return m_tabs->errorCurve(); }
widgets::HeatmapPlot* LayerInspectorPanel::weightHeatmap() const { return m_tabs->weightHeatmap(); }
widgets::HeatmapPlot* LayerInspectorPanel::residualHeatmap() const { return m_tabs->residualHeatmap(); }
widgets::HistogramPlot* LayerInspectorPanel::histogram() const { return m_tabs->histogram(); }
widgets::MethodComparisonPlot* LayerInspectorPanel::comparisonPlot() const { return m_comparison->plot(); }

QString LayerInspectorPanel::statusText() const { return m_status->fullText(); }

QString LayerInspectorPanel::stateText() const { return m_state->text(); }

void LayerInspectorPanel::setStatus(const QString& text, bool error)
{
    m_status->setFullText(text);
    m_status->setStyleSheet(error ? QStringLiteral("color: #b2182b;") : QString());
}

void LayerInspectorPanel::createActions()
{
    auto add = [this](QList<QAction*>& list, const QString& text, const QKeySequence& key, const QString& tip,
                      auto&& slot) {
        auto* a = new QAction(text, this);
        if (!key.isEmpty()) a->setShortcut(key);
        a->setToolTip(tip);
        a->setStatusTip(tip);
        connect(a, &QAction::triggered, this, std::forward<decltype(slot)>(slot));
        list << a;
    };
    m_layerActions = m_controls->editActions();
    m_layerActions << nullptr;
    add(m_layerActions, tr("&Cancel Refinement"), QKeySequence(Qt::Key_Escape),
        tr("Stop the running refinement, keeping its best iterate"), [this] { cancelRefinement(); });
    add(m_layerActions, tr("Run &Comparison"), QKeySequence(tr("Ctrl+R")), tr("Run the DBF vs MDBF comparison on this layer"),
        [this] {
            m_tabs->setCurrentWidget(m_comparison);
            runComparison();
        });
    for (int i = 0; i < m_tabs->count(); ++i) {
        const QString name = m_tabs->tabText(i);
        add(m_tabActions, name, QKeySequence(QStringLiteral("Alt+%1").arg(i + 1)), tr("Show the %1 tab").arg(name),
            [this, i] { m_tabs->setCurrentIndex(i); });
    }
}

bool LayerInspectorPanel::isBusy() const { return m_service->isLayerBusy(); }

FactorSettings LayerInspectorPanel::settings() const { return m_controls->settings(); }

void LayerInspectorPanel::setSettings(const FactorSettings& settings)
{
    m_controls->setSettings(settings);
    updateState();
}

void LayerInspectorPanel::previewSettings(const FactorSettings& settings)
{
    m_controls->setSettings(settings);
    scheduleFactorization();
    updateState();
}

void LayerInspectorPanel::onSessionChanged()
{
    m_service->cancelComparison();  // the service drops its reports: nothing more arrives for it
    m_comparison->setRunEnabled(true);
    ++m_generation;
    m_layer = {};
    m_current.reset();
    m_controls->setLayerShape(0, 0);
    m_comparison->clearResults();
    clearViews(m_document->session() ? tr("Select a layer in the Layers panel") : tr("Open a model and select a layer"));
}

void LayerInspectorPanel::clearViews(const QString& message)
{
    m_tabs->clearViews(message);
    setStatus(message);
    updateState();
}

void LayerInspectorPanel::setLayer(const widgets::LayerEntry* entry)
{
    if (entry && entry->key == m_layer.key) return;
    m_service->abandonLayer();
    m_service->cancelComparison();
    ++m_generation;
    m_layer = entry ? *entry : widgets::LayerEntry{};
    m_current.reset();
    m_comparison->clearResults();
    m_comparison->setStatus(QString());
    if (!entry) {
        m_controls->setLayerShape(0, 0);
        clearViews(tr("Select a layer in the Layers panel"));
        return;
    }
    m_controls->setLayerShape(entry->rows, entry->cols);
    if (!entry->factorizable) {
        clearViews(tr("%1 is a lookup table, not a linear layer: it stays at stored precision").arg(entry->label));
        return;
    }
    clearViews(tr("Loading %1…").arg(entry->key));
    if (auto applied = m_document->applied(entry->key)) showApplied(applied);
    else startFactorization();
    updateState();
}

void LayerInspectorPanel::showApplied(const std::shared_ptr<const LayerFactorization>& applied)
{
    m_controls->setSettings(applied->settings);
    if (applied->complete && (applied->refined || applied->settings.iterations == 0)) {
        // Through the cache, so the views get the layer's weights as for any other result.
        m_service->cache().setResult(m_layer.key, applied->refined ? applied->settings.refinedKey() : applied->settings.closedFormKey(),
                          applied);
        startFactorization();
    } else {
        m_service->abandonLayer();
        show(applied);
    }
}

bool LayerInspectorPanel::isShowingApplied() const
{
    const auto applied = m_document->applied(m_layer.key);
    // Applying may re-label a closed form's iteration count, never its result.
    return applied && m_current && applied->result == m_current->result;
}

void LayerInspectorPanel::applyPreview()
{
    if (!m_layer.factorizable || !m_document->session()) return;
    if (isBusy()) {
        // The refinement of the previewed settings is still running: apply its result when it ends.
        m_applyPending = true;
        updateState();
        return;
    }
    const FactorSettings settings = m_controls->settings();
    if (!m_current || !resultOf(*m_current, settings)) return;
    m_applyPending = false;
    auto applied = m_current;
    if (!applied->refined && applied->settings.iterations != 0) {
        // A closed form computed on the way to a refinement, applied as the closed form it is.
        auto copy = std::make_shared<LayerFactorization>(*applied);
        copy->settings.iterations = 0;
        applied = copy;
    }
    m_document->applyLayer(m_layer.key, applied,
                           tr("Apply %1 %2 bpw to %3")
                               .arg(m_current->settings.methodLabel(), QString::fromStdString(m_current->settings.bpw.text()),
                                    m_layer.key));
}

void LayerInspectorPanel::updateState()
{
    const bool current = m_current && resultOf(*m_current, m_controls->settings());
    // A result of other settings stays on screen while the current one computes (or cannot be): dim it.
    const bool stale = m_current && !current;
    m_tabs->setStale(stale);
    const bool showingApplied = isShowingApplied();
    m_applyAction->setEnabled(m_layer.factorizable && m_document->session() && (current || isBusy()) && !showingApplied);
    QString text;
    QString style;
    if (!m_layer.factorizable || !m_current) {
        text.clear();
    } else if (stale) {
        text = m_controls->budgetFeasible() ? tr("previous setting shown · computing…")
                                            : tr("previous setting shown · too few bits for this one");
        style = QStringLiteral("color: #8a6d00;");
    } else if (showingApplied) {
        text = tr("✔ applied");
        style = QStringLiteral("color: #00734f; font-weight: bold;");
    } else if (m_applyPending) {
        text = tr("preview · applies when the refinement ends");
    } else {
        const auto applied = m_document->applied(m_layer.key);
        text = applied ? tr("preview · applied: %1 %2 bpw")
                             .arg(applied->settings.methodLabel(), QString::fromStdString(applied->settings.bpw.text()))
                       : tr("preview · not applied");
    }
    m_state->setText(text);
    m_state->setStyleSheet(style);
}

void LayerInspectorPanel::scheduleFactorization()
{
    if (m_layer.factorizable) m_debounce.start();
}

void LayerInspectorPanel::cancelRefinement() { m_service->cancelLayer(); }

void LayerInspectorPanel::startFactorization()
{
    m_debounce.stop();
    m_applyPending = false;
    if (!m_document->session() || !m_layer.factorizable) return;
    const FactorSettings settings = m_controls->settings();
    if (!m_controls->budgetFeasible()) {
        const auto check = factor::checkBitBudget(m_layer.rows, m_layer.cols, settings.bpw, settings.method,
                                                  settings.effectiveL(), settings.paths);
        setStatus(QString::fromStdString(check.message), true);
        return;
    }
    ++m_generation;  // a running comparison's points belong to the settings before
    m_tabs->clearCurves();
    m_refineClock.invalidate();
    if (!m_service->factorizeLayer(m_layer.key, settings, tr("Factorizing %1").arg(m_layer.label))) return;
    m_progress->setRange(0, std::max(1, settings.iterations * settings.paths));
    m_progress->setValue(0);
    m_progress->setVisible(true);
    m_cancel->setVisible(true);
    m_cancel->setEnabled(true);
}

void LayerInspectorPanel::onFactorized(const QString& layer, const std::shared_ptr<const LayerFactorization>& f)
{
    if (layer != m_layer.key) return;
    show(f);
    if (f->refined && f->complete) emit refinementFinished(layer, f);
    // The job is over (the service says so before reporting): applyPreview applies instead of waiting again.
    if (m_applyPending && f->complete) applyPreview();
}

void LayerInspectorPanel::show(const std::shared_ptr<const LayerFactorization>& f)
{
    m_current = f;
    m_tabs->showResult(f, m_service->cache().inputs(m_layer.key).weights);
    const factor::FactorResult& r = *f->result;
    const QString method = r.method == factor::Method::Dbf ? QStringLiteral("DBF") : QStringLiteral("MDBF");
    QString text = tr("%1 l=%2 · k %3 · %4 bpw%5 · %6 %7")
                       .arg(method)
                       .arg(r.l)
                       .arg(r.k)
                       .arg(r.bpw, 0, 'f', 3)
                       .arg(r.clamped ? tr(" (k clamped)") : QString())
                       .arg(QString::fromStdString(r.errorLabel()))
                       .arg((f->estimated() ? QStringLiteral("≈ ") : QString()) + QString::number(r.finalError, 'f', 4));
    if (r.objective != factor::Objective::Plain) text += tr(" (plain %1)").arg(r.finalPlainError, 0, 'f', 4);
    if (f->refined) {
        text += tr(" · %1 iterations, %2 s, %3 · %4 %5")
                    .arg(r.iterations)
                    .arg(r.seconds, 0, 'f', 2)
                    .arg(terminationText(r.termination), FactorizationService::startText(*f))
                    .arg(r.initialError, 0, 'f', 4);
    } else if (f->estimated()) {
        text += tr(" · closed form, error estimated from %1 of %2 rows (exact value follows)").arg(r.errorSampleRows).arg(r.n);
    } else {
        text += tr(" · closed form");
    }
    setStatus(text, r.termination == factor::Termination::Failed);
    updateState();
    emit factorizationShown(m_layer.key, f);
}

void LayerInspectorPanel::runComparison()
{
    ComparisonRequest request;
    QString error;
    if (!m_comparison->request(request, error)) {
        m_comparison->setStatus(error);
        return;
    }
    runComparison(request);
}

void LayerInspectorPanel::runComparison(const ComparisonRequest& request)
{
    if (!m_document->session() || !m_layer.factorizable) return;
    // The plot and the maps show this comparison only, not results met while browsing.
    m_comparison->clearResults();
    m_comparisonGeneration = m_generation;
    if (!m_service->compareMethods(m_layer.key, m_controls->settings(), request,
                                   tr("Comparing methods on %1").arg(m_layer.label)))
        return;
    m_comparison->setRunEnabled(false);
}

void LayerInspectorPanel::onComparisonResult(const QString& layer, const std::shared_ptr<const LayerFactorization>& f)
{
    if (layer != m_layer.key || m_generation != m_comparisonGeneration) return;
    m_comparison->addResult(f->settings.bpw, f);
}

void LayerInspectorPanel::onComparisonEnded(const QString& layer, int done, int runs, const QStringList& skipped,
                                            const QString& error)
{
    m_comparison->setRunEnabled(true);
    if (layer == m_layer.key) {
        QString text = error.isEmpty() ? tr("%1 of %2 configurations done.").arg(done).arg(runs)
                                       : tr("Comparison failed: %1").arg(error);
        if (error.isEmpty() && !skipped.isEmpty())
            text += tr(" Too few bits for: %1.").arg(skipped.join(QStringLiteral(", ")));
        m_comparison->setStatus(text);
    }
    emit comparisonFinished();
}

}  // namespace mdbf::studio
