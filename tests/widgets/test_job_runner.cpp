#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <QSignalSpy>

#include "duration_text.h"
#include "job_runner.h"
#include "mdbf/base/error.h"
#include "widget_test_support.h"

namespace mdbf::studio {
namespace {

TEST(DurationText, MinutesAndSecondsThenHours)
{
    EXPECT_EQ(durationText(0.0), QStringLiteral("0:00"));
    EXPECT_EQ(durationText(-3.0), QStringLiteral("0:00"));
    EXPECT_EQ(durationText(59.4), QStringLiteral("0:59"));
    EXPECT_EQ(durationText(59.6), QStringLiteral("1:00"));
    EXPECT_EQ(durationText(754.0), QStringLiteral("12:34"));
    EXPECT_EQ(durationText(3600.0 + 62.0), QStringLiteral("1:01:02"));
}

TEST(JobRunner, DeliversTheResultOnTheGuiThread)
{
    JobRunner runner;
    std::thread::id resultThread;
    int value = 0;
    Job* job = runner.start<int>(
        QStringLiteral("answer"), [](const RunContext&, Job*) { return 42; },
        [&](int&& v) {
            value = v;
            resultThread = std::this_thread::get_id();
        });
    QSignalSpy finished(job, &Job::finished);
    QSignalSpy ended(&runner, &JobRunner::jobEnded);
    ASSERT_TRUE(mdbf::test::waitUntil([&] { return ended.count() == 1; }, 10000));
    EXPECT_EQ(finished.count(), 1);
    EXPECT_EQ(value, 42);
    EXPECT_EQ(resultThread, std::this_thread::get_id());
    EXPECT_EQ(runner.runningCount(), 0);
}

TEST(JobRunner, TurnsExceptionsIntoFailedAndCancelledIntoCancelled)
{
    JobRunner runner;
    bool called = false;
    Job* bad = runner.start<int>(
        QStringLiteral("bad"),
        [](const RunContext&, Job*) -> int { throw FormatError("model.safetensors: header is not JSON"); },
        [&](int&&) { called = true; });
    QSignalSpy failed(bad, &Job::failed);
    Job* stopped = runner.start<int>(
        QStringLiteral("stopped"),
        [](const RunContext& ctx, Job*) -> int {
            while (!ctx.stopRequested()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
            ctx.throwIfStopped();
            return 0;
        },
        {});
    QSignalSpy cancelled(stopped, &Job::cancelled);
    QTest::qWait(50);
    stopped->cancel();
    ASSERT_TRUE(mdbf::test::waitUntil([&] { return runner.runningCount() == 0; }, 10000));
    ASSERT_EQ(failed.count(), 1);
    EXPECT_EQ(failed.at(0).at(0).toString(), QStringLiteral("model.safetensors: header is not JSON"));
    EXPECT_EQ(cancelled.count(), 1);
    EXPECT_FALSE(called);
}

TEST(JobRunner, ThrottlesProgressAndForwardsPosts)
{
    JobRunner runner;
    std::atomic<int> reports{0};
    Job* job = runner.start<int>(
        QStringLiteral("busy"),
        [&](const RunContext& ctx, Job* self) {
            // 600 ms of work reporting every millisecond: at most ~10 reports a second get through.
            const auto start = std::chrono::steady_clock::now();
            int i = 0;
            const int total = 600;
            for (; i <= total; ++i) {
                ctx.report("steps", i, total);
                ++reports;
                std::this_thread::sleep_until(start + std::chrono::milliseconds(i));
            }
            self->post([self] { self->setProperty("posted", true); });
            return i;
        },
        {});
    QSignalSpy progress(job, &Job::progressChanged);
    bool posted = false;
    QObject::connect(job, &Job::finished, job, [&] { posted = job->property("posted").toBool(); });
    ASSERT_TRUE(mdbf::test::waitUntil([&] { return runner.runningCount() == 0; }, 20000));
    EXPECT_EQ(reports.load(), 601);
    EXPECT_GE(progress.count(), 3);
    EXPECT_LE(progress.count(), 12);
    // The last report always arrives.
    EXPECT_EQ(progress.last().at(1).toLongLong(), 600);
    EXPECT_TRUE(posted);
}

TEST(JobRunner, ShutdownCancelsAndWaits)
{
    auto runner = std::make_unique<JobRunner>();
    std::atomic<bool> sawStop{false};
    bool delivered = false;
    runner->start<int>(
        QStringLiteral("forever"),
        [&](const RunContext& ctx, Job*) {
            while (!ctx.stopRequested()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
            sawStop = true;
            return 1;
        },
        [&](int&&) { delivered = true; });
    QTest::qWait(30);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(runner->shutdown(10000));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    EXPECT_TRUE(sawStop.load());
    runner.reset();
    QTest::qWait(20);
    EXPECT_FALSE(delivered);  // results of a shutdown are dropped
}

TEST(JobRunner, LeavesTheGuiACore)
{
    EXPECT_GE(JobRunner::workerThreads(), 1);
    const int hw = static_cast<int>(std::thread::hardware_concurrency());
    if (hw > 1) {
        EXPECT_EQ(JobRunner::workerThreads(), hw - 1);
    }
}

}  // namespace
}  // namespace mdbf::studio
