#pragma once
// The perplexity panel: a text file and a window length, the original model's perplexity, and the
// perplexity of the model with the configured (factorized) layers swapped in, both run as jobs.
// Every figure names the text and ctx it was measured on; points accumulate in a ppl-vs-bpw plot.

#include <map>
#include <memory>
#include <optional>

#include <QPointer>
#include <QWidget>

#include "job_runner.h"
#include "model_configuration.h"

class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace mdbf::widgets {
class PerplexityPlot;
}

namespace mdbf::studio {

class JobRunner;
class ModelSession;

class PerplexityPanel : public QWidget {
    Q_OBJECT
public:
    PerplexityPanel(JobRunner* runner, QWidget* parent = nullptr);

    /// A new model (or none): forgets results and the plot.
    void setSession(std::shared_ptr<const ModelSession> session);

    /// The layers the "configured" evaluation replaces, with the model's bpw under that configuration.
    void setConfiguration(ModelConfiguration config, double modelBpw);

    void setTextFile(const QString& path);
    QString textFile() const;
    void setContextLength(int ctx);
    int contextLength() const;

    /// Starts the evaluation of the original model (dense, as stored).
    void evaluateOriginal();
    /// Starts the evaluation with the configured layers replaced.
    void evaluateConfiguration();

    /// Results of the last completed evaluations (for the current text and ctx), if any.
    std::optional<double> originalPpl() const { return m_original; }
    std::optional<double> configuredPpl() const { return m_configured; }

    widgets::PerplexityPlot* plot() const { return m_plot; }
    bool isBusy() const { return m_job != nullptr; }

signals:
    /// An evaluation finished: `configured` false for the original model.
    void evaluated(bool configured, double ppl);
    /// An evaluation failed with `message` (also shown in the panel).
    void evaluationFailed(const QString& message);

private:
    void start(bool configured);
    void updateLabels();
    QString measureLabel() const;

    JobRunner* m_runner;
    std::shared_ptr<const ModelSession> m_session;
    ModelConfiguration m_config;
    double m_configBpw = 16.0;
    std::optional<double> m_original;
    std::optional<double> m_configured;
    QString m_measuredOn;  ///< measureLabel() of the stored results
    QString m_error;       ///< the last failure, shown until the next run
    QPointer<Job> m_job;

    QLineEdit* m_text;
    QSpinBox* m_ctx;
    QPushButton* m_runOriginal;
    QPushButton* m_runConfigured;
    QLabel* m_originalLabel;
    QLabel* m_configuredLabel;
    widgets::PerplexityPlot* m_plot;
};

}  // namespace mdbf::studio
