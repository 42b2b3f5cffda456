#pragma once
// The perplexity panel: a text file and a window length, the original model's perplexity, and the
// perplexity of the model with the configured (factorized) layers swapped in, both run as jobs.
// Every figure names the text and ctx it was measured on; points accumulate in a ppl-vs-bpw plot.
// The same text and ctx calibrate the model for the activation-aware objectives (Calibrate), and
// the points of a study file (`mdbf study`) can be shown beside the user's own (Load Study…).

#include <map>
#include <memory>
#include <optional>

#include <QPointer>
#include <QWidget>

#include "calibration_state.h"
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
class StudioDocument;

class PerplexityPanel : public QWidget {
    Q_OBJECT
public:
    /// A successful calibration becomes `document`'s calibration; both must outlive the panel.
    PerplexityPanel(JobRunner* runner, StudioDocument* document, QWidget* parent = nullptr);

    /// A new model (or none): forgets results and the plot, and cancels a running calibration (the
    /// document drops its calibration itself).
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

    /// Starts collecting calibration statistics on the text and ctx above as a job (eval::calibrateModel
    /// with the default calibration cache; Gram matrices too unless they would exceed
    /// kGramBudgetBytes for this model). On success the statistics become the document's calibration; a failure is
    /// shown in the panel and emitted as calibrationFailed(). Does nothing while one runs.
    void calibrate();
    /// Requests a stop of the running calibration.
    void cancelCalibration();
    bool isCalibrating() const { return m_calibrationJob != nullptr; }

    /// The statistics of the last successful calibration of the open model (null when none).
    std::shared_ptr<const StudioCalibration> calibration() const;
    /// The calibration line ("calibrated on eval.txt · ctx 128 · 2048 tokens", "not calibrated", …).
    QString calibrationText() const;

    /// Gram matrices are collected only when all of them together take at most this many bytes.
    static constexpr double kGramBudgetBytes = 512.0 * 1024 * 1024;

    /// Reads the study file `path` and shows its points for the open model (matched by directory
    /// name) as the plot's study series. Returns false when nothing was added: a bad file emits
    /// studyLoadFailed() naming the file and problem; a file without this model says so in
    /// studyText() and emits studyLoadFailed() too.
    bool loadStudy(const QString& path);
    /// Asks for a study file, then loadStudy().
    void loadStudyDialog();
    /// The study line ("study.json: 6 points (eval.txt · ctx 256)", or why nothing was loaded).
    QString studyText() const;

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
    /// A calibration failed with `message` (also shown in the panel).
    void calibrationFailed(const QString& message);
    /// A study file could not be shown: a dialog title and the reason naming the file.
    void studyLoadFailed(const QString& title, const QString& message);

private:
    void start(bool configured);
    void updateLabels();
    void updateCalibrationControls();
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
    QPointer<Job> m_calibrationJob;
    StudioDocument* m_document;
    QString m_calibrationStatus;  ///< progress or failure of the running / last calibration
    quint64 m_generation = 0;     ///< bumped per session, so late results of an old model are dropped

    QLineEdit* m_text;
    QSpinBox* m_ctx;
    QPushButton* m_runOriginal;
    QPushButton* m_runConfigured;
    QLabel* m_originalLabel;
    QLabel* m_configuredLabel;
    QPushButton* m_calibrate;
    QLabel* m_calibrationLabel;
    QPushButton* m_loadStudy;
    QLabel* m_studyLabel;
    widgets::PerplexityPlot* m_plot;
};

}  // namespace mdbf::studio
