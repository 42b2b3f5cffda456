#pragma once
// The Generate panel: one prompt through the original model and through the model with the
// configured (factorized) layers, streamed side by side with their speed, so the user sees what the
// compression does to the text and not only to a number (docs/GENERATION.md).

#include <memory>
#include <mutex>

#include <QPointer>
#include <QWidget>

#include "job_runner.h"
#include "model_configuration.h"

class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTimer;

namespace mdbf::studio {

class ModelSession;
class StudioDocument;

class GeneratePanel : public QWidget {
    Q_OBJECT
public:
    /// Generates with `document`'s model and configuration (followed through its signals: a new model
    /// stops a running generation and clears both outputs); `runner` runs the generation. Both must
    /// outlive the panel.
    GeneratePanel(JobRunner* runner, StudioDocument* document, QWidget* parent = nullptr);

    void setPrompt(const QString& prompt);
    void setMaxTokens(int tokens);
    void setTemperature(double temperature);

    /// Generates from the prompt with the original model, then with the configured one (skipped,
    /// with a note, when no layer is factorized). Does nothing while a generation runs.
    void generate();
    /// Requests a stop; what was generated stays.
    void stop();
    bool isBusy() const { return m_job != nullptr; }

    /// The text generated so far on each side (the prompt not included).
    QString originalText() const;
    QString configuredText() const;
    /// The line under each side ("24 tokens · 310 tok/s · stopped: max_tokens", or the failure).
    QString originalStatus() const;
    QString configuredStatus() const;

signals:
    /// Both sides are done (or the run was stopped or failed).
    void generationFinished();
    /// A side failed with `message` (also shown under that side).
    void generationFailed(const QString& message);

private:
    void setSession(std::shared_ptr<const ModelSession> session);
    void setConfiguration(ModelConfiguration config, double modelBpw);
    void startSide(bool configured);
    void flushStreams();
    void updateControls();

    JobRunner* m_runner;
    StudioDocument* m_document;
    std::shared_ptr<const ModelSession> m_session;
    ModelConfiguration m_config;
    double m_configBpw = 16.0;
    QPointer<Job> m_job;
    QString m_promptShown;     ///< the prompt each side starts with (in grey) in this run
    quint64 m_generation = 0;  ///< bumped per run and per session, so late pieces of an old run are dropped

    /// Text produced by the worker and not yet shown; the timer moves it into the views ~20 times a
    /// second so a fast model never floods the event loop.
    struct Pending {
        std::mutex mutex;
        QString text[2];
    };
    std::shared_ptr<Pending> m_pending;

    QPlainTextEdit* m_prompt;
    QSpinBox* m_maxTokens;
    QDoubleSpinBox* m_temperature;
    QSpinBox* m_seed;
    QPushButton* m_run;
    QPlainTextEdit* m_output[2];
    QLabel* m_title[2];
    QLabel* m_status[2];
    QTimer* m_flush;
};

}  // namespace mdbf::studio
