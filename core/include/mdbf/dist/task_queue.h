#pragma once
// Spreading independent tasks over processes (docs/ARCHITECTURE.md §7). A task and its result are
// opaque bytes: the caller decides what they mean (for `mdbf quantize`, a layer's statistics and
// its layer-store record), so the transport knows nothing of the algorithms. Rank 0 owns the queue
// and hands the next task to whichever process asks first (a dynamic queue: a faster process takes
// more), works through tasks itself on a second thread, and receives every result on its calling
// thread. Under mpirun (a build with MDBF_MPI) the processes are MPI's world communicator;
// otherwise one process runs every task itself, in order.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mdbf/base/error.h"
#include "mdbf/base/run_context.h"

namespace mdbf::dist {

/// One unit of work: an id the caller gives meaning to and the bytes the process running it needs.
struct Task {
    int id = 0;
    std::string payload;
};

/// Runs a task wherever it is scheduled and returns its result's bytes. May throw; called on any
/// rank, on a thread other than the caller's on rank 0 of a job of several processes.
using ComputeTask = std::function<std::string(const Task& task)>;

/// Receives a finished task's result on rank 0, on the thread that called run(), with the rank that
/// computed it. May throw (the run then ends with that error).
using DeliverResult = std::function<void(int id, std::string result, int rank)>;

/// An error raised by a task on another rank, re-thrown on rank 0 with that rank's message.
class RemoteError : public Error {
public:
    using Error::Error;
};

/// The processes of a job and the queue that feeds them.
class TaskQueue {
public:
    virtual ~TaskQueue() = default;

    /// This process's index, 0 to size() − 1.
    virtual int rank() const = 0;

    /// The number of processes.
    virtual int size() const = 0;

    /// Whether this process owns the queue and receives the results.
    bool isRoot() const { return rank() == 0; }

    /// Rank 0's `value`, returned on every rank; every rank must call it (e.g. rank 0 telling the
    /// others whether its preparation succeeded). Waits without spinning.
    virtual int broadcast(int value) = 0;

    /// Runs `tasks` (read on rank 0 only; each rank takes the next one, in the given order) with
    /// `compute` on every rank and hands each result to `deliver` on rank 0. Returns on rank 0
    /// once every result was delivered, on the others once rank 0 has no task left for them. On
    /// rank 0 throws the first error of any rank (a RemoteError naming the rank for another rank's)
    /// or Cancelled when ctx.stop is requested; a job of several processes must then be ended with
    /// abort(), since the other ranks may still be computing. On other ranks an error is sent to
    /// rank 0 and the rank waits to be ended.
    virtual void run(std::vector<Task> tasks, const ComputeTask& compute, const DeliverResult& deliver,
                     const RunContext& ctx) = 0;

    /// Ends every process of the job at once with exit status `status` after rank 0 reported an
    /// error; returns without effect for a single process.
    virtual void abort(int status) = 0;
};

/// The queue of this process: MPI's world communicator when the program was started by an MPI
/// launcher and the build has MPI (initializing MPI, finalized when the queue is destroyed), else
/// a single process. Throws IoError when MPI cannot be initialized.
std::unique_ptr<TaskQueue> openTaskQueue();

/// The single-process queue: rank 0 of 1, every task run in order on the calling thread.
std::unique_ptr<TaskQueue> makeLocalTaskQueue();

/// Whether this build can spread work over MPI processes.
bool mpiAvailable();

}  // namespace mdbf::dist
