#include "mdbf/base/run_context.h"

#include <thread>

#include "mdbf/base/error.h"

namespace mdbf {

void RunContext::throwIfStopped() const
{
    if (stopRequested()) throw Cancelled();
}

int RunContext::threadCount() const
{
    if (threads > 0) return threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace mdbf
