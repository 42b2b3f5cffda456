// `mdbf`: the command-line face of the core library (docs/CLI.md). Links core only.

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "commands.h"
#include "mdbf/base/huge_pages.h"
#include "mdbf/base/error.h"
#include "mdbf/base/run_context.h"
#include "mdbf/base/thread_scope.h"
#include "mdbf/kernels/kernel_path.h"

namespace {

volatile std::sig_atomic_t g_interrupts = 0;

void onInterrupt(int)
{
    g_interrupts = g_interrupts + 1;
    if (g_interrupts > 1) _exit(mdbf::cli::kExitCancelled);  // a second Ctrl-C does not wait
}

}  // namespace

int main(int argc, char** argv)
{
    mdbf::enableHugePages(argv);  // first: it may re-execute the program
    using namespace mdbf::cli;
    CLI::App app{"mdbf: compress LLM linear layers with DBF / MDBF binary factorizations"};
    app.set_version_flag("--version", std::string("mdbf ") + MDBF_VERSION);
    app.require_subcommand(1);
    int threads = 0;
    addThreadsOption(app, threads);
    std::string kernelPath = "auto";
    app.add_option("--kernel-path", kernelPath, "SIMD kernels: auto (the best this CPU has), avx512, avx2 or scalar")
        ->check(CLI::IsMember({"auto", "avx512", "avx2", "scalar"}));

    std::vector<Command> commands = {
        registerInspectCommand(app),
        registerTokenizeCommand(app),
        registerPplCommand(app),
        registerFactorizeCommand(app),
        registerQuantizeCommand(app),
        registerPlanCommand(app),
        registerStudyCommand(app),
        registerGenerateCommand(app),
        registerBenchCommand(app),
        registerSynthCommand(app),
    };

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }

    std::stop_source stopSource;
    std::signal(SIGINT, onInterrupt);
    std::signal(SIGTERM, onInterrupt);
    std::atomic<bool> finished{false};
    std::thread watcher([&] {
        while (!finished.load()) {
            if (g_interrupts > 0) stopSource.request_stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });

    int status = kExitError;
    try {
        mdbf::kernels::setAutoKernelPath(mdbf::kernels::parseKernelPath(kernelPath));
        CommandEnv env{stopSource.get_token(), threads};
        // Work on this thread (and the products inside it) follows --threads too, not the OpenMP
        // default, which a launcher such as mpirun changes by binding the process to cores.
        mdbf::RunContext requested;
        requested.threads = threads;
        const mdbf::ThreadScope threadScope(requested.threadCount());
        for (const Command& command : commands) {
            if (command.app->parsed()) status = command.run(env);
        }
    } catch (const mdbf::Cancelled&) {
        std::cerr << "mdbf: cancelled\n";
        status = kExitCancelled;
    } catch (const std::bad_alloc&) {
        std::cerr << "mdbf: error: out of memory\n";
        status = kExitError;
    } catch (const std::exception& e) {  // mdbf::Error included: its what() is the one-line message
        std::cerr << "mdbf: error: " << e.what() << '\n';
        status = kExitError;
    }
    if (status == kExitOk && stopSource.stop_requested()) status = kExitCancelled;
    finished = true;
    watcher.join();
    return status;
}
