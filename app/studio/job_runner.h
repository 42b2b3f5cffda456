#pragma once
// Runs core jobs off the GUI thread (docs/CONVENTIONS.md §4.4): each job gets a RunContext
// whose stop token belongs to the runner, its progress reaches the GUI through queued signals at
// most ~10 times a second, and its outcome arrives as finished/failed/cancelled on the GUI thread.
// Exceptions never cross the thread boundary: the worker turns them into a failure message.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>

#include <QFuture>
#include <QFutureWatcher>
#include <QList>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QThreadPool>

#include "mdbf/base/run_context.h"

namespace mdbf::studio {

/// One running (or finished) job. Lives on the GUI thread; deleted by the runner after it ends.
class Job : public QObject {
    Q_OBJECT
public:
    Job(QString title, QObject* parent);

    /// What the job does, for the status bar ("Loading tiny-llama").
    const QString& title() const { return m_title; }

    /// Requests a stop through the job's stop token; the job ends as soon as the core polls it.
    void cancel() { m_stop.request_stop(); }

    bool cancelRequested() const { return m_stop.stop_requested(); }
    bool isRunning() const { return m_running; }

    /// Last progress seen on the GUI thread.
    const QString& stage() const { return m_stage; }
    qint64 done() const { return m_done; }
    qint64 total() const { return m_total; }

    /// Runs `fn` on the GUI thread later if this job still exists then. Safe from any thread;
    /// used by workers to hand over intermediate results (e.g. a refinement iteration).
    void post(std::function<void()> fn);

signals:
    /// Throttled progress (GUI thread): natural units of `stage`.
    void progressChanged(const QString& stage, qint64 done, qint64 total);
    /// The work function returned normally (after a stop request too, if it returned a partial result).
    void finished();
    /// The work function threw; `message` is the exception's what().
    void failed(const QString& message);
    /// The work function threw mdbf::Cancelled.
    void cancelled();
    /// Emitted last, whatever the outcome.
    void ended();

private:
    friend class JobRunner;

    RunContext makeContext(int threads);
    void deliverProgress(const QString& stage, qint64 done, qint64 total);

    QString m_title;
    std::stop_source m_stop;
    bool m_running = true;
    QString m_stage;
    qint64 m_done = 0;
    qint64 m_total = 0;
    // Throttling state, touched only by the worker's progress callback (one thread at a time).
    std::chrono::steady_clock::time_point m_lastReport{};
};

/// Owns the thread pool and the stop sources of every job. Destroying the runner (or calling
/// shutdown()) cancels every job and waits for the workers, so a window can close mid-job.
class JobRunner : public QObject {
    Q_OBJECT
public:
    explicit JobRunner(QObject* parent = nullptr);
    ~JobRunner() override;

    /// Threads one job may use inside the core: hardware threads − 1 (at least 1), so that the
    /// GUI thread always keeps a core to itself.
    static int workerThreads();

    /// Starts `work(ctx, job)` on the pool; `job` may be used from the worker only through
    /// Job::post(). When the work returns, `onResult` receives its value on the GUI thread (unless
    /// it threw or the runner is shutting down) and then finished() is emitted; an exception becomes
    /// failed(what()) and mdbf::Cancelled becomes cancelled(). Returns the job, owned by the runner
    /// and deleted after its ended() signal.
    template <typename T>
    Job* start(const QString& title, std::function<T(const RunContext&, Job*)> work,
               std::function<void(T&&)> onResult)
    {
        auto* job = createJob(title);
        RunContext ctx = job->makeContext(workerThreads());
        auto outcome = std::make_shared<Outcome<T>>();
        QFuture<void> future = runOnPool([ctx = std::move(ctx), work = std::move(work), outcome, job]() {
            prepareWorkerThread(ctx.threads);
            try {
                outcome->value.emplace(work(ctx, job));
            } catch (...) {
                outcome->capture(std::current_exception());
            }
        });
        watch(job, future, [job, outcome, onResult = std::move(onResult)]() {
            if (outcome->value) {
                if (onResult) onResult(std::move(*outcome->value));
                emit job->finished();
            } else if (outcome->cancelled) {
                emit job->cancelled();
            } else {
                emit job->failed(outcome->error);
            }
        });
        return job;
    }

    /// Same for work without a result.
    Job* startVoid(const QString& title, std::function<void(const RunContext&)> work);

    /// Jobs currently running.
    QList<Job*> jobs() const { return m_jobs; }
    int runningCount() const { return static_cast<int>(m_jobs.size()); }

    /// Requests a stop of every running job.
    void cancelAll();

    /// Cancels every job and blocks until all workers have returned; their results are dropped.
    /// Returns false if some worker was still running after `timeoutMs` (≤ 0 waits forever).
    bool shutdown(int timeoutMs = -1);

signals:
    void jobStarted(mdbf::studio::Job* job);
    void jobEnded(mdbf::studio::Job* job);
    /// Number of running jobs changed.
    void runningCountChanged(int count);

private:
    template <typename T>
    struct Outcome {
        std::optional<T> value;
        bool cancelled = false;
        QString error;
        void capture(std::exception_ptr e) { describe(e, cancelled, error); }
    };
    static void describe(std::exception_ptr e, bool& cancelled, QString& error);
    static void prepareWorkerThread(int threads);

    Job* createJob(const QString& title);
    QFuture<void> runOnPool(std::function<void()> fn);
    void watch(Job* job, QFuture<void> future, std::function<void()> deliver);

    QThreadPool m_pool;
    QList<Job*> m_jobs;
    bool m_shuttingDown = false;
};

}  // namespace mdbf::studio
