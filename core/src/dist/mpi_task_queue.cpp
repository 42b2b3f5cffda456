// The task queue over MPI (compiled only with MDBF_MPI). Only the thread that created the queue
// calls MPI (MPI_THREAD_FUNNELED); rank 0's own tasks run on a second thread that never does.
// Every wait polls with a short sleep instead of a blocking call, because Open MPI's blocking calls
// spin a core that the ranks' computation needs.

// The C API only: Open MPI's and MPICH's deprecated C++ bindings would need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "dist/mpi_task_queue.h"

namespace mdbf::dist {

namespace {

// Message tags. A worker's kResult or kReady asks for its next task; rank 0 answers kTask or kStop.
constexpr int kReady = 1;
constexpr int kResult = 2;
constexpr int kError = 3;
constexpr int kTask = 4;
constexpr int kStop = 5;

constexpr auto kPollInterval = std::chrono::microseconds(500);

std::string withId(int id, const std::string& bytes)
{
    std::string message(sizeof id, '\0');
    std::memcpy(message.data(), &id, sizeof id);
    return message + bytes;
}

int idOf(const std::string& message)
{
    int id = 0;
    std::memcpy(&id, message.data(), sizeof id);
    return id;
}

void send(const std::string& bytes, int to, int tag)
{
    MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD);
}

// The next message from `from` (MPI_ANY_SOURCE for any), or nothing when none is waiting.
std::optional<std::string> receiveWaiting(int from, MPI_Status& status)
{
    int waiting = 0;
    MPI_Iprobe(from, MPI_ANY_TAG, MPI_COMM_WORLD, &waiting, &status);
    if (waiting == 0) return std::nullopt;
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    std::string bytes(static_cast<std::size_t>(count), '\0');
    MPI_Recv(bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return bytes;
}

std::string messageOf(std::exception_ptr error)
{
    try {
        std::rethrow_exception(error);
    } catch (const std::bad_alloc&) {
        return "out of memory";
    } catch (const std::exception& e) {
        return e.what();
    }
}

class MpiTaskQueue final : public TaskQueue {
public:
    MpiTaskQueue()
    {
        int provided = 0;
        if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            throw IoError("MPI: cannot initialize");
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &m_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &m_size);
    }

    ~MpiTaskQueue() override
    {
        if (m_local.joinable()) m_local.join();
        MPI_Finalize();
    }

    int rank() const override { return m_rank; }
    int size() const override { return m_size; }

    int broadcast(int value) override
    {
        MPI_Request request;
        MPI_Ibcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD, &request);
        for (int done = 0;;) {
            MPI_Test(&request, &done, MPI_STATUS_IGNORE);
            if (done != 0) return value;
            std::this_thread::sleep_for(kPollInterval);
        }
    }

    void run(std::vector<Task> tasks, const ComputeTask& compute, const DeliverResult& deliver,
             const RunContext& ctx) override
    {
        if (m_rank == 0) {
            runRoot(std::move(tasks), compute, deliver, ctx);
        } else {
            runWorker(compute);
        }
    }

    void abort(int status) override
    {
        std::fflush(stdout);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }

private:
    void runWorker(const ComputeTask& compute)
    {
        send({}, 0, kReady);
        for (;;) {
            MPI_Status status;
            std::optional<std::string> message = receiveWaiting(0, status);
            if (!message) {
                std::this_thread::sleep_for(kPollInterval);
                continue;
            }
            if (status.MPI_TAG == kStop) return;
            Task task{idOf(*message), message->substr(sizeof(int))};
            std::string reply;
            int tag = kResult;
            try {
                reply = withId(task.id, compute(task));
            } catch (...) {
                reply = messageOf(std::current_exception());
                tag = kError;
            }
            send(reply, 0, tag);
            // After an error rank 0 ends the job; keep answering nothing until then.
        }
    }

    // What rank 0's calling thread and its computing thread share; owned jointly, so that a thread
    // left computing after an error (the job is about to be aborted) never touches freed memory.
    struct Shared {
        std::mutex mutex;
        std::deque<Task> queue;
        std::deque<std::pair<int, std::string>> results;
        std::exception_ptr error;
        bool quit = false;

        std::optional<Task> next()
        {
            const std::lock_guard<std::mutex> lock(mutex);
            if (queue.empty() || quit) return std::nullopt;
            Task task = std::move(queue.front());
            queue.pop_front();
            return task;
        }
    };

    void runRoot(std::vector<Task> tasks, const ComputeTask& compute, const DeliverResult& deliver,
                 const RunContext& ctx)
    {
        auto shared = std::make_shared<Shared>();
        shared->queue.assign(std::make_move_iterator(tasks.begin()), std::make_move_iterator(tasks.end()));
        const std::size_t total = shared->queue.size();
        std::size_t delivered = 0;
        int stopped = 0;  // workers told that nothing is left

        // Rank 0's own share runs on a second thread that takes tasks from the same queue.
        m_local = std::thread([shared, compute] {
            while (std::optional<Task> task = shared->next()) {
                try {
                    std::string result = compute(*task);
                    const std::lock_guard<std::mutex> lock(shared->mutex);
                    shared->results.emplace_back(task->id, std::move(result));
                } catch (...) {
                    const std::lock_guard<std::mutex> lock(shared->mutex);
                    shared->error = std::current_exception();
                    return;
                }
            }
        });
        // On an error the computing thread is left to its task: the caller ends the job with abort().
        auto fail = [&] {
            {
                const std::lock_guard<std::mutex> lock(shared->mutex);
                shared->quit = true;
            }
            m_local.detach();
        };

        while (delivered < total || stopped < m_size - 1) {
            if (ctx.stopRequested()) {
                fail();
                throw Cancelled();
            }
            bool idle = true;
            std::optional<std::pair<int, std::string>> local;
            std::exception_ptr error;
            {
                const std::lock_guard<std::mutex> lock(shared->mutex);
                error = shared->error;
                if (!error && !shared->results.empty()) {
                    local = std::move(shared->results.front());
                    shared->results.pop_front();
                }
            }
            if (error) {
                fail();
                std::rethrow_exception(error);
            }
            try {
                if (local) {
                    idle = false;
                    deliver(local->first, std::move(local->second), 0);
                    ++delivered;
                }
                MPI_Status status;
                if (std::optional<std::string> message = receiveWaiting(MPI_ANY_SOURCE, status)) {
                    idle = false;
                    const int from = status.MPI_SOURCE;
                    if (status.MPI_TAG == kError) throw RemoteError("rank " + std::to_string(from) + ": " + *message);
                    if (status.MPI_TAG == kResult) {
                        deliver(idOf(*message), message->substr(sizeof(int)), from);
                        ++delivered;
                    }
                    if (std::optional<Task> task = shared->next()) {
                        send(withId(task->id, task->payload), from, kTask);
                    } else {
                        send({}, from, kStop);
                        ++stopped;
                    }
                }
            } catch (...) {
                fail();
                throw;
            }
            if (idle) std::this_thread::sleep_for(kPollInterval);
        }
        m_local.join();
    }

    int m_rank = 0;
    int m_size = 1;
    std::thread m_local;
};

}  // namespace

std::unique_ptr<TaskQueue> makeMpiTaskQueue() { return std::make_unique<MpiTaskQueue>(); }

}  // namespace mdbf::dist
