#include "perplexity_panel.h"

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
#include "mdbf/eval/perplexity.h"
#include "mdbf/model/dense_linear.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/widgets/perplexity_plot.h"
#include "model_session.h"

namespace mdbf::studio {

PerplexityPanel::PerplexityPanel(JobRunner* runner, QWidget* parent) : QWidget(parent), m_runner(runner)
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
    m_originalLabel->setToolTip(tr("Perplexity of the original model on the named text and ctx"));
    m_configuredLabel = new QLabel(this);
    m_configuredLabel->setToolTip(tr("Perplexity with the configured layers, and the model's bpw under that configuration"));
    m_configuredLabel->setWordWrap(true);
    controls->addWidget(m_originalLabel, 3, 0, 1, 2);
    controls->addWidget(m_configuredLabel, 4, 0, 1, 2);
    controls->setRowStretch(5, 1);
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
    connect(m_text, &QLineEdit::textChanged, this, [this] { updateLabels(); });
    connect(m_ctx, &QSpinBox::valueChanged, this, [this] { updateLabels(); });
    updateLabels();
}

void PerplexityPanel::setSession(std::shared_ptr<const ModelSession> session)
{
    if (m_job) m_job->cancel();
    m_session = std::move(session);
    m_config.clear();
    m_configBpw = m_session ? m_session->storedBpw() : 16.0;
    m_original.reset();
    m_configured.reset();
    m_plot->clear();
    updateLabels();
}

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
        model::Transformer model = model::Transformer::fromCheckpoint(session->config(), session->checkpoint(), ctx);
        for (const auto& [layer, f] : config) {
            const std::string name = layer.toStdString();
            VectorF bias;
            if (const auto* dense = dynamic_cast<const model::DenseLinear*>(&model.linear(name))) bias = dense->bias();
            const auto& r = *f->result;
            const std::string kind = std::string(factor::methodName(r.method)) + " k=" + std::to_string(r.k) +
                                     " l=" + std::to_string(r.l);
            model.replaceLinear(name, std::make_shared<model::FactorizedLinear>(r.paths, bias, kind));
        }
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
    connect(m_job, &Job::failed, this, [this](const QString& message) {
        m_error = message;
        emit evaluationFailed(message);
    });
    connect(m_job, &Job::ended, this, [this] {
        m_job = nullptr;
        updateLabels();
    });
    updateLabels();
}

}  // namespace mdbf::studio
