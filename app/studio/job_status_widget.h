#pragma once
// The status bar's job area: the newest running job's title, a progress bar in its natural units,
// a Cancel button, and how many jobs are running.

#include <QPointer>
#include <QWidget>

#include "job_runner.h"

class QLabel;
class QProgressBar;
class QToolButton;

namespace mdbf::studio {

class JobRunner;

/// Follows a JobRunner; hidden while nothing runs.
class JobStatusWidget : public QWidget {
    Q_OBJECT
public:
    JobStatusWidget(JobRunner* runner, QWidget* parent = nullptr);

    /// The job whose progress is shown (the newest running one), or null.
    Job* shownJob() const { return m_job; }

private:
    void follow(Job* job);
    void refresh();

    JobRunner* m_runner;
    QPointer<Job> m_job;
    QLabel* m_title;
    QProgressBar* m_bar;
    QToolButton* m_cancel;
    QLabel* m_count;
};

}  // namespace mdbf::studio
