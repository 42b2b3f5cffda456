#include "mdbf/dist/task_queue.h"

#include <cstdlib>

#ifdef MDBF_HAVE_MPI
#include "dist/mpi_task_queue.h"
#endif

namespace mdbf::dist {

namespace {

class LocalTaskQueue final : public TaskQueue {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int broadcast(int value) override { return value; }

    void run(std::vector<Task> tasks, const ComputeTask& compute, const DeliverResult& deliver,
             const RunContext& ctx) override
    {
        for (const Task& task : tasks) {
            ctx.throwIfStopped();
            deliver(task.id, compute(task), 0);
        }
        ctx.throwIfStopped();
    }

    void abort(int) override {}
};

// Set by the launchers of OpenMPI, MPICH/Hydra and Slurm/PMIx in every process they start.
[[maybe_unused]] bool launchedByMpi()
{
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
        if (std::getenv(name) != nullptr) return true;
    }
    return false;
}

}  // namespace

std::unique_ptr<TaskQueue> makeLocalTaskQueue() { return std::make_unique<LocalTaskQueue>(); }

std::unique_ptr<TaskQueue> openTaskQueue()
{
#ifdef MDBF_HAVE_MPI
    if (launchedByMpi()) return makeMpiTaskQueue();
#endif
    return makeLocalTaskQueue();
}

bool mpiAvailable()
{
#ifdef MDBF_HAVE_MPI
    return true;
#else
    return false;
#endif
}

}  // namespace mdbf::dist
