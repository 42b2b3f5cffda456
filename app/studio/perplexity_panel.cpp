#include "perplexity_panel.h"

#include <filesystem>

#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include "job_runner.h"
#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "mdbf/eval/calibration.h"
#include "mdbf/eval/calibration_cache.h"
#include "mdbf/eval/perplexity.h"
#include "mdbf/widgets/perplexity_plot.h"
#include "model_session.h"
#include "studio_document.h"
#include "study_points.h"

namespace mdbf::studio {

PerplexityPanel::PerplexityPanel(JobRunner* runner, StudioDocument* document, QWidget* parent)
    : QWidget(parent), m_runner(runner), m_document(document)
{
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(6, 4, 6, 4);
    auto* controls = new QGridLayout();
    controls->setVerticalSpacing(4);
    controls->addWidget(new QLabel(tr("Text"), this), 0, 0);
    m_text = new QLineEdit(this);
    m_text->setPlaceholderText(tr("UTF-8 text file to evaluate on"));
    m_text->setToolTip(tr("Text file the perplexity is measured on (read as raw UTF-8)"));
    m_text->setText(QSettings().value(QStringLiteral("perplexity/text")).toString());
    auto* browse = new QToolButton(this);
    browse->setText(QStringLiteral("…"));
    browse->setToolTip(tr("Choose the text file"));
    auto* textRow = new QHBoxLayout();
    textRow->addWidget(m_text, 1);
    textRow->addWidget(browse);
    controls->addLayout(textRow, 0, 1);
    controls->addWidget(new QLabel(tr("ctx"), this), 1, 0);
    m_ctx = new QSpinBox(this);
    m_ctx->setRange(2, 8192);
    m_ctx->setValue(QSettings().value(QStringLiteral("perplexity/ctx"), 128).toInt());
    m_ctx->setToolTip(tr("Window length in tokens: non-overlapping windows, the last partial one dropped"));
    controls->addWidget(m_ctx, 1, 1, Qt::AlignLeft);
    m_runOriginal = new QPushButton(tr("Original"), this);
    m_runOriginal->setToolTip(tr("Perplexity of the model as stored (dense float32 inference)"));
    m_runConfigured = new QPushButton(tr("This configuration"), this);
    m_runConfigured->setToolTip(tr("Perplexity with every factorized layer of the Layers panel swapped in"));
    auto* buttons = new QHBoxLayout();
    buttons->addWidget(m_runOriginal);
    buttons->addWidget(m_runConfigured);
    controls->addLayout(buttons, 2, 0, 1, 2);
    m_originalLabel = new QLabel(this);
    m_originalLabel->setWordWrap(true);  // a failure's message is shown whole
    m_originalLabel->setToolTip(tr("Perplexity of the original model on the named text and ctx"));
    m_configuredLabel = new QLabel(this);
    m_configuredLabel->setToolTip(tr("Perplexity with the configured layers, and the model's bpw under that configuration"));
    m_configuredLabel->setWordWrap(true);
    controls->addWidget(m_originalLabel, 3, 0, 1, 2);
    controls->addWidget(m_configuredLabel, 4, 0, 1, 2);
    m_calibrate = new QPushButton(tr("Calibrate"), this);
    m_calibrate->setToolTip(
        tr("Run the text above through the model in windows of ctx tokens and record every layer's input "
           "statistics (per-channel second moments and Gram matrices), which the activation-aware objectives "
           "diag and gram weight the error with. It uses the evaluation text so that one file is enough; "
           "choose another text before calibrating to keep calibration and evaluation apart. "
           "Results are cached on disk, so calibrating again on the same text is instant"));
    m_loadStudy = new QPushButton(tr("Load Study…"), this);
    m_loadStudy->setToolTip(tr("Show the points of a study.json written by mdbf study for this model "
                               "(triangles, labelled) beside your own"));
    auto* more = new QHBoxLayout();
    more->addWidget(m_calibrate);
    more->addWidget(m_loadStudy);
    controls->addLayout(more, 5, 0, 1, 2);
    m_calibrationLabel = new QLabel(this);
    m_calibrationLabel->setWordWrap(true);
    m_calibrationLabel->setToolTip(tr("The calibration statistics the activation-aware objectives use"));
    m_studyLabel = new QLabel(this);
    m_studyLabel->setWordWrap(true);
    m_studyLabel->setToolTip(tr("The study file whose points the plot shows as triangles"));
    controls->addWidget(m_calibrationLabel, 6, 0, 1, 2);
    controls->addWidget(m_studyLabel, 7, 0, 1, 2);
    controls->setRowStretch(8, 1);
    auto* left = new QWidget(this);
    left->setLayout(controls);
    left->setMaximumWidth(380);
    layout->addWidget(left);
    m_plot = new widgets::PerplexityPlot(this);
    m_plot->setMinimumHeight(140);
    m_plot->setToolTip(tr("Perplexity against model bpw; points accumulate. Right-click to export"));
    layout->addWidget(m_plot, 1);

    connect(browse, &QToolButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Text to evaluate on"), m_text->text(),
                                                          tr("Text files (*.txt);;All files (*)"));
        if (!path.isEmpty()) setTextFile(path);
    });
    connect(m_runOriginal, &QPushButton::clicked, this, &PerplexityPanel::evaluateOriginal);
    connect(m_runConfigured, &QPushButton::clicked, this, &PerplexityPanel::evaluateConfiguration);
    connect(m_calibrate, &QPushButton::clicked, this, [this] {
        if (m_calibrationJob) cancelCalibration();
        else calibrate();
    });
    connect(m_loadStudy, &QPushButton::clicked, this, &PerplexityPanel::loadStudyDialog);
    connect(m_text, &QLineEdit::textChanged, this, [this] { updateLabels(); });
    connect(m_ctx, &QSpinBox::valueChanged, this, [this] { updateLabels(); });
    connect(m_document, &StudioDocument::calibrationChanged, this, [this] { updateLabels(); });
    connect(m_document, &StudioDocument::sessionChanged, this, &PerplexityPanel::setSession);
    connect(m_document, &StudioDocument::configurationChanged, this, [this] {
        if (!m_document->session()) return;
        setConfiguration(m_document->configuration(), m_document->modelBpw());
    });
    updateLabels();
}

void PerplexityPanel::setSession(std::shared_ptr<const ModelSession> session)
{
    if (m_job) m_job->cancel();
    cancelCalibration();
    ++m_generation;
    m_calibrationJob = nullptr;
    m_calibrationStatus.clear();
    m_studyLabel->clear();
    m_session = std::move(session);
    m_config.clear();
    m_configBpw = m_session ? m_session->storedBpw() : 16.0;
    m_original.reset();
    m_configured.reset();
    m_plot->clear();
    updateLabels();
}

std::shared_ptr<const StudioCalibration> PerplexityPanel::calibration() const { return m_document->calibration(); }

void PerplexityPanel::setConfiguration(ModelConfiguration config, double modelBpw)
{
    m_config = std::move(config);
    m_configBpw = modelBpw;
    m_configured.reset();
    updateLabels();
}

void PerplexityPanel::setTextFile(const QString& path) { m_text->setText(path); }
QString PerplexityPanel::textFile() const { return m_text->text(); }
void PerplexityPanel::setContextLength(int ctx) { m_ctx->setValue(ctx); }
int PerplexityPanel::contextLength() const { return m_ctx->value(); }

QString PerplexityPanel::measureLabel() const
{
    return tr("%1 · ctx %2").arg(QFileInfo(m_text->text()).fileName()).arg(m_ctx->value());
}

void PerplexityPanel::updateLabels()
{
    updateCalibrationControls();
    const bool valid = m_measuredOn == measureLabel();
    const bool ready = m_session && m_session->tokenizer() && !m_text->text().isEmpty() && !m_job;
    m_runOriginal->setEnabled(ready);
    m_runConfigured->setEnabled(ready && !m_config.empty());
    if (m_session && !m_session->tokenizer()) {
        m_originalLabel->setText(tr("No tokenizer: %1").arg(m_session->tokenizerError()));
        m_configuredLabel->clear();
        return;
    }
    if (!m_error.isEmpty()) {
        m_originalLabel->setText(tr("<span style='color:#b2182b'>Perplexity failed: %1</span>").arg(m_error.toHtmlEscaped()));
        m_originalLabel->setToolTip(m_error);
        m_configuredLabel->clear();
        return;
    }
    m_originalLabel->setText(m_original && valid ? tr("original <b>%1</b> (%2)").arg(*m_original, 0, 'f', 3).arg(measureLabel())
                                                 : tr("original: not evaluated"));
    QString config = m_config.empty() ? tr("no layer factorized yet")
                                      : tr("%1 factorized · model %2 bpw").arg(m_config.size() == 1 ? tr("1 layer") : tr("%1 layers").arg(m_config.size())).arg(m_configBpw, 0, 'f', 3);
    m_configuredLabel->setText(m_configured && valid ? tr("this configuration <b>%1</b> · %2").arg(*m_configured, 0, 'f', 3).arg(config)
                                                     : tr("this configuration: %1").arg(config));
    m_plot->setMeasureLabel(m_text->text().isEmpty() ? QString() : measureLabel());
}

QString PerplexityPanel::calibrationText() const
{
    if (!m_calibrationStatus.isEmpty()) return m_calibrationStatus;
    const auto& c = m_document->calibration();
    return c ? c->description() : tr("not calibrated: diag and gram need calibration");
}

void PerplexityPanel::updateCalibrationControls()
{
    const bool running = m_calibrationJob != nullptr;
    m_calibrate->setText(running ? tr("Cancel Calibration") : tr("Calibrate"));
    m_calibrate->setEnabled(running || (m_session && m_session->tokenizer() && !m_text->text().isEmpty()));
    m_loadStudy->setEnabled(m_session != nullptr);
    m_calibrationLabel->setText(calibrationText());
}

void PerplexityPanel::cancelCalibration()
{
    if (m_calibrationJob) m_calibrationJob->cancel();
}

void PerplexityPanel::calibrate()
{
    if (!m_session || m_calibrationJob || m_text->text().isEmpty()) return;
    const QString path = m_text->text();
    QSettings().setValue(QStringLiteral("perplexity/text"), path);
    QSettings().setValue(QStringLiteral("perplexity/ctx"), m_ctx->value());
    eval::CalibrationOptions options;
    options.ctx = m_ctx->value();
    // H is m×m doubles per layer: collected for every layer only while that stays modest, otherwise
    // the calibration is diag only (and gram stays disabled).
    const double gramSize = gramBytes(m_session->config(), m_session->checkpoint());
    options.gram = gramSize <= kGramBudgetBytes;
    const std::filesystem::path modelDir = m_session->directory();
    const quint64 generation = m_generation;
    auto work = [modelDir, path, options](const RunContext& ctx, Job*) -> std::shared_ptr<const StudioCalibration> {
        const std::filesystem::path cacheDir = eval::CalibrationCache::defaultDirectory();
        std::optional<eval::CalibrationCache> cache;
        if (!cacheDir.empty()) cache.emplace(cacheDir);
        eval::CalibrationStats stats =
            eval::calibrateModel(modelDir, path.toStdString(), options, cache ? &*cache : nullptr, ctx);
        return StudioCalibration::make(std::move(stats), path);
    };
    QPointer<PerplexityPanel> self(this);
    m_calibrationStatus = tr("calibrating on %1 · ctx %2…").arg(QFileInfo(path).fileName()).arg(options.ctx);
    m_calibrationJob = m_runner->start<std::shared_ptr<const StudioCalibration>>(
        tr("Calibrating on %1").arg(QFileInfo(path).fileName()), work,
        [self, generation](std::shared_ptr<const StudioCalibration>&& c) {
            if (!self || self->m_generation != generation) return;
            self->m_calibrationStatus.clear();
            QString tip = tr("The calibration statistics the activation-aware objectives use: %1 windows, %2 s%3")
                              .arg(c->stats->windows)
                              .arg(c->stats->seconds, 0, 'f', 2)
                              .arg(c->stats->fromCache ? tr(", read from the cache") : QString());
            if (!c->stats->cacheNote.empty()) tip += QStringLiteral("\n") + QString::fromStdString(c->stats->cacheNote);
            self->m_calibrationLabel->setToolTip(tip);
            self->m_document->setCalibration(c);
        });
    const QString sizeNote = options.gram ? QString()
                                          : tr(" (diag only: the Gram matrices would take %1 GiB)")
                                                .arg(gramSize / (1024.0 * 1024.0 * 1024.0), 0, 'f', 1);
    m_calibrationStatus += sizeNote;
    connect(m_calibrationJob, &Job::progressChanged, this, [this, generation, sizeNote](const QString& stage, qint64 done, qint64 total) {
        if (m_generation != generation) return;
        m_calibrationStatus = total > 0 ? tr("%1… %2 of %3%4").arg(stage).arg(done).arg(total).arg(sizeNote)
                                        : tr("%1…%2").arg(stage, sizeNote);
        updateCalibrationControls();
    });
    connect(m_calibrationJob, &Job::failed, this, [this, generation](const QString& message) {
        if (m_generation != generation) return;
        m_calibrationStatus = tr("calibration failed: %1").arg(message);
        emit calibrationFailed(message);
    });
    connect(m_calibrationJob, &Job::cancelled, this, [this, generation] {
        if (m_generation == generation) m_calibrationStatus = tr("calibration cancelled");
    });
    connect(m_calibrationJob, &Job::ended, this, [this, job = m_calibrationJob.data()] {
        if (m_calibrationJob == job) m_calibrationJob = nullptr;
        updateCalibrationControls();
    });
    updateCalibrationControls();
}

QString PerplexityPanel::studyText() const { return m_studyLabel->text(); }

void PerplexityPanel::loadStudyDialog()
{
    QSettings settings;
    const QString start = settings.value(QStringLiteral("perplexity/study")).toString();
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Load study"), start, tr("Study files (study.json *.json);;All files (*)"));
    if (path.isEmpty()) return;
    settings.setValue(QStringLiteral("perplexity/study"), path);
    loadStudy(path);
}

bool PerplexityPanel::loadStudy(const QString& path)
{
    const QString title = tr("Could not load the study");
    if (!m_session) {
        emit studyLoadFailed(title, tr("%1\n\nOpen a model first: the study's points are shown for the open model.").arg(path));
        return false;
    }
    StudyFileContents contents;
    try {
        contents = readStudyFile(path, m_session->name());
    } catch (const std::exception& e) {
        m_studyLabel->setText(tr("%1 could not be read").arg(QFileInfo(path).fileName()));
        emit studyLoadFailed(title, QString::fromUtf8(e.what()));
        return false;
    }
    const QString file = QFileInfo(path).fileName();
    if (!contents.match || contents.match->points.empty()) {
        const QString reason =
            !contents.match ? tr("%1 has no points for %2 (it covers: %3)")
                                  .arg(file, m_session->name(),
                                       contents.models.isEmpty() ? tr("no model") : contents.models.join(QStringLiteral(", ")))
                            : tr("%1 has no plottable points for %2").arg(file, m_session->name());
        m_studyLabel->setText(reason);
        emit studyLoadFailed(tr("No study points for this model"), tr("%1\n\n%2").arg(path, reason));
        return false;
    }
    const StudyModelPoints& m = *contents.match;
    const QString measured = tr("%1 · ctx %2").arg(m.evalText).arg(m.ctx);
    QString text = tr("%1: %2 points (%3)").arg(file).arg(m.points.size()).arg(measured);
    if (m.skipped > 0) text += tr(", %1 skipped: no perplexity").arg(m.skipped);
    m_studyLabel->setText(text);
    m_plot->setStudyPoints(m.points, tr("study · %1").arg(measured));
    return true;
}

void PerplexityPanel::evaluateOriginal() { start(false); }
void PerplexityPanel::evaluateConfiguration() { start(true); }

void PerplexityPanel::start(bool configured)
{
    if (!m_session || m_job) return;
    const QString path = m_text->text();
    const int ctxLength = m_ctx->value();
    QSettings().setValue(QStringLiteral("perplexity/text"), path);
    QSettings().setValue(QStringLiteral("perplexity/ctx"), ctxLength);
    const QString label = measureLabel();
    m_error.clear();
    if (m_measuredOn != label) {
        m_original.reset();
        m_configured.reset();
        m_measuredOn = label;
    }
    auto session = m_session;
    const ModelConfiguration config = configured ? m_config : ModelConfiguration{};
    const double bpw = configured ? m_configBpw : m_session->storedBpw();

    auto work = [session, config, configured, path, ctxLength](const RunContext& ctx, Job*) -> eval::PerplexityResult {
        const std::string text = readUtf8File(path.toStdString());
        const std::vector<std::int32_t> ids = session->tokenizer()->encode(text);
        ctx.throwIfStopped();
        if (!configured) return eval::perplexity(*session->transformer(ctx), ids, ctxLength, ctx);
        // A private copy of the model: replaceLinear must not run while other jobs read the shared one.
        const model::Transformer model = configuredTransformer(session->config(), session->checkpoint(), config, ctx);
        ctx.throwIfStopped();
        return eval::perplexity(model, ids, ctxLength, ctx);
    };
    QPointer<PerplexityPanel> self(this);
    const std::size_t layers = config.size();
    m_job = m_runner->start<eval::PerplexityResult>(
        configured ? tr("Perplexity (configured)") : tr("Perplexity (original)"), work,
        [self, configured, bpw, label, layers](eval::PerplexityResult&& r) {
            if (!self) return;
            self->m_job = nullptr;  // so that a slot reacting to evaluated() may start the next run
            if (r.cancelled || self->m_measuredOn != label) return;
            if (configured) {
                self->m_configured = r.ppl;
                self->m_plot->addPoint({bpw, r.ppl, tr("%1 layers factorized").arg(layers)});
            } else {
                self->m_original = r.ppl;
                self->m_plot->setOriginal(r.ppl, bpw);
            }
            emit self->evaluated(configured, r.ppl);
        });
    connect(m_job, &Job::failed, this, [this, configured](const QString& message) {
        m_error = message;
        // The failed side's earlier figure no longer describes what was asked for.
        (configured ? m_configured : m_original).reset();
        emit evaluationFailed(message);
    });
    connect(m_job, &Job::ended, this, [this] {
        m_job = nullptr;
        updateLabels();
    });
    updateLabels();
}

}  // namespace mdbf::studio
