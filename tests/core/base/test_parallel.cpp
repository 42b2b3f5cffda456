#include <atomic>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/parallel.h"
#include "mdbf/base/run_context.h"
#include "mdbf/base/error.h"

namespace mdbf {
namespace {

TEST(ParallelChunks, CoversEveryIndexExactlyOnce)
{
    for (std::int64_t count : {0, 1, 2, 3, 7, 64, 1001}) {
        for (int threads : {1, 2, 3, 8}) {
            std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
            parallelChunks(count, threads, [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)]++;
            });
            for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << count;
        }
    }
}

TEST(RunContext, StopAndProgress)
{
    std::stop_source stop;
    RunContext ctx;
    ctx.stop = stop.get_token();
    std::int64_t last = -1;
    ctx.progress = [&](const Progress& p) { last = p.done; };
    ctx.report("x", 3, 10);
    EXPECT_EQ(last, 3);
    EXPECT_NO_THROW(ctx.throwIfStopped());
    stop.request_stop();
    EXPECT_TRUE(ctx.stopRequested());
    EXPECT_THROW(ctx.throwIfStopped(), Cancelled);
    ctx.threads = 3;
    EXPECT_EQ(ctx.threadCount(), 3);
    ctx.threads = 0;
    EXPECT_GE(ctx.threadCount(), 1);
}

}  // namespace
}  // namespace mdbf
