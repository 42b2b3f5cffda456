#include "job_status_widget.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QToolButton>

#include "job_runner.h"

namespace mdbf::studio {

JobStatusWidget::JobStatusWidget(JobRunner* runner, QWidget* parent) : QWidget(parent), m_runner(runner)
{
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(6);
    m_title = new QLabel(this);
    m_title->setToolTip(tr("The most recent running job"));
    m_bar = new QProgressBar(this);
    m_bar->setFixedWidth(140);
    m_bar->setMaximumHeight(16);
    m_bar->setTextVisible(true);
    m_bar->setToolTip(tr("Progress of the job in its own units (tensors, windows, iterations)"));
    m_cancel = new QToolButton(this);
    m_cancel->setText(tr("Cancel"));
    m_cancel->setToolTip(tr("Stop the job shown here (Esc); partial results are kept where meaningful"));
    m_count = new QLabel(this);
    m_count->setToolTip(tr("Jobs running in the background"));
    layout->addWidget(m_title);
    layout->addWidget(m_bar);
    layout->addWidget(m_cancel);
    layout->addWidget(m_count);

    connect(m_cancel, &QToolButton::clicked, this, [this] {
        if (m_job) m_job->cancel();
        refresh();
    });
    connect(runner, &JobRunner::jobStarted, this, &JobStatusWidget::follow);
    connect(runner, &JobRunner::runningCountChanged, this, [this] {
        if (!m_job || !m_job->isRunning()) {
            const auto jobs = m_runner->jobs();
            follow(jobs.isEmpty() ? nullptr : jobs.back());
        }
        refresh();
    });
    refresh();
}

void JobStatusWidget::follow(Job* job)
{
    if (m_job) disconnect(m_job, nullptr, this, nullptr);
    m_job = job;
    if (job) {
        connect(job, &Job::progressChanged, this, &JobStatusWidget::refresh);
        connect(job, &Job::ended, this, [this] {
            const auto jobs = m_runner->jobs();
            follow(jobs.isEmpty() ? nullptr : jobs.back());
        });
    }
    refresh();
}

void JobStatusWidget::refresh()
{
    const int running = m_runner->runningCount();
    setVisible(running > 0);
    m_count->setText(running > 1 ? tr("· %1 jobs running").arg(running) : QString());
    if (!m_job) return;
    QString title = m_job->title();
    if (m_job->cancelRequested()) title += tr(" (cancelling…)");
    m_title->setText(title);
    if (m_job->total() > 0) {
        // Progress bars hold ints: scale large totals (bytes) down to per-mille.
        m_bar->setRange(0, 1000);
        m_bar->setValue(static_cast<int>(1000.0 * static_cast<double>(m_job->done()) / static_cast<double>(m_job->total())));
        m_bar->setFormat(QStringLiteral("%1 %2/%3").arg(m_job->stage()).arg(m_job->done()).arg(m_job->total()));
    } else {
        m_bar->setRange(0, 0);  // busy indicator until the first report
        m_bar->setFormat(QString());
    }
    m_cancel->setEnabled(!m_job->cancelRequested());
}

}  // namespace mdbf::studio
