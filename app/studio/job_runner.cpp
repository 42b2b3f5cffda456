#include "job_runner.h"

#include <algorithm>
#include <thread>

#include <QMetaObject>
#include <QtConcurrent/QtConcurrentRun>

#include <omp.h>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "mdbf/base/error.h"

namespace mdbf::studio {

namespace {

constexpr auto kProgressInterval = std::chrono::milliseconds(100);

}  // namespace

Job::Job(QString title, QObject* parent) : QObject(parent), m_title(std::move(title)) {}

RunContext Job::makeContext(int threads)
{
    RunContext ctx;
    ctx.stop = m_stop.get_token();
    ctx.threads = threads;
    ctx.progress = [this](const Progress& p) {
        // Called on the worker thread: forward at most every 100 ms, plus the first and last report.
        const auto now = std::chrono::steady_clock::now();
        const bool edge = p.done == 0 || p.done >= p.total;
        if (!edge && now - m_lastReport < kProgressInterval) return;
        m_lastReport = now;
        QMetaObject::invokeMethod(
            this,
            [this, stage = QString::fromUtf8(p.stage.data(), static_cast<qsizetype>(p.stage.size())), done = p.done,
             total = p.total] { deliverProgress(stage, done, total); },
            Qt::QueuedConnection);
    };
    return ctx;
}

void Job::deliverProgress(const QString& stage, qint64 done, qint64 total)
{
    m_stage = stage;
    m_done = done;
    m_total = total;
    emit progressChanged(stage, done, total);
}

void Job::post(std::function<void()> fn)
{
    // A queued call to a deleted receiver is dropped by Qt, so a late post after the job's end is safe.
    QMetaObject::invokeMethod(this, std::move(fn), Qt::QueuedConnection);
}

JobRunner::JobRunner(QObject* parent) : QObject(parent)
{
    m_pool.setMaxThreadCount(std::max(2, QThread::idealThreadCount()));
    m_pool.setExpiryTimeout(30000);
}

JobRunner::~JobRunner() { shutdown(); }

int JobRunner::workerThreads()
{
    const unsigned hw = std::thread::hardware_concurrency();
    return std::max(1, static_cast<int>(hw) - 1);
}

void JobRunner::prepareWorkerThread(int threads)
{
    // Eigen and the core's parallel loops read the calling thread's OpenMP thread count.
    omp_set_num_threads(std::max(1, threads));
#ifdef __linux__
    // A slightly lower priority keeps the event loop ahead of the job on a busy machine; threads the
    // job starts inherit it.
    const auto tid = static_cast<id_t>(syscall(SYS_gettid));
    const int current = getpriority(PRIO_PROCESS, tid);
    if (current < 5) setpriority(PRIO_PROCESS, tid, 5);
#endif
}

void JobRunner::describe(std::exception_ptr e, bool& cancelled, QString& error)
{
    try {
        std::rethrow_exception(e);
    } catch (const Cancelled&) {
        cancelled = true;
    } catch (const std::exception& ex) {
        error = QString::fromUtf8(ex.what());
    } catch (...) {
        error = QStringLiteral("unknown error");
    }
}

Job* JobRunner::createJob(const QString& title)
{
    auto* job = new Job(title, this);
    m_jobs.push_back(job);
    return job;
}

QFuture<void> JobRunner::runOnPool(std::function<void()> fn) { return QtConcurrent::run(&m_pool, std::move(fn)); }

void JobRunner::watch(Job* job, QFuture<void> future, std::function<void()> deliver)
{
    auto* watcher = new QFutureWatcher<void>(job);
    connect(watcher, &QFutureWatcher<void>::finished, this, [this, job, deliver = std::move(deliver)] {
        job->m_running = false;
        m_jobs.removeOne(job);
        if (!m_shuttingDown) deliver();
        emit job->ended();
        emit jobEnded(job);
        emit runningCountChanged(runningCount());
        job->deleteLater();
    });
    watcher->setFuture(future);
    emit jobStarted(job);
    emit runningCountChanged(runningCount());
}

Job* JobRunner::startVoid(const QString& title, std::function<void(const RunContext&)> work)
{
    return start<bool>(
        title,
        [work = std::move(work)](const RunContext& ctx, Job*) {
            work(ctx);
            return true;
        },
        {});
}

void JobRunner::cancelAll()
{
    for (Job* job : m_jobs) job->cancel();
}

bool JobRunner::shutdown(int timeoutMs)
{
    m_shuttingDown = true;
    cancelAll();
    const bool done = m_pool.waitForDone(timeoutMs);
    // The watchers' finished signals would arrive after this returns; results are dropped.
    const QList<Job*> jobs = m_jobs;
    m_jobs.clear();
    for (Job* job : jobs) {
        job->m_running = false;
        if (done) delete job;
    }
    return done;
}

}  // namespace mdbf::studio
