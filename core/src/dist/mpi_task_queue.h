#pragma once
// The MPI form of the task queue (private to core/dist; compiled only with MDBF_MPI).

#include <memory>

#include "mdbf/dist/task_queue.h"

namespace mdbf::dist {

/// Initializes MPI (MPI_THREAD_FUNNELED) and returns the queue over its world communicator,
/// which finalizes MPI when destroyed. Throws IoError when MPI cannot be initialized.
std::unique_ptr<TaskQueue> makeMpiTaskQueue();

}  // namespace mdbf::dist
