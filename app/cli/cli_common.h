#pragma once
// Shared plumbing of the `mdbf` subcommands: registration, stop handling, progress, JSON output.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mdbf/base/error.h"
#include "mdbf/base/run_context.h"
#include "mdbf/factor/decomposition_cache.h"
#include "mdbf/factor/quant_config.h"

namespace mdbf::cli {

/// The per-layer format flags --method, --bpw, --l and --paths (factorize, quantize).
struct LayerFormatOptions {
    std::string method;
    std::string bpw;
    int l = 1;
    int paths = 1;

    /// Writes method, bpw, l and paths into `s` (other fields untouched). Throws InvalidArgument for
    /// an unknown method and what factor::Bpw::parse throws for a malformed budget.
    void applyTo(factor::LayerQuantSettings& s) const;
};

/// --svd-cache and --svd-cache-dir: the layer decomposition cache of every command that decomposes
/// layers (factorize, quantize, study, plan).
struct SvdCacheOptions {
    bool enabled = false;  ///< --svd-cache: the default folder
    std::string dir;       ///< --svd-cache-dir: this folder

    /// Registers both flags on `app`.
    void addTo(CLI::App& app);

    /// The cache the flags ask for (--svd-cache-dir, else the default folder with --svd-cache),
    /// null when neither was given. Never throws except std::bad_alloc.
    std::shared_ptr<const factor::DecompositionCache> cache() const;
};

/// What a subcommand's run function receives.
struct CommandEnv {
    std::stop_token stop;  ///< requested on Ctrl-C
    int threads = 0;       ///< --threads (0 = all cores)

    /// A core context with this stop token and thread count and no progress report. Never throws.
    RunContext runContext() const
    {
        RunContext ctx;
        ctx.stop = stop;
        ctx.threads = threads;
        return ctx;
    }
};

/// Exit statuses of docs/CLI.md §1.2.
enum ExitCode : int { kExitOk = 0, kExitError = 1, kExitUsage = 2, kExitCancelled = 130 };

using CommandRunner = std::function<int(const CommandEnv&)>;

/// A registered subcommand and the function that runs it once parsing succeeded.
struct Command {
    CLI::App* app = nullptr;
    CommandRunner run;
};

/// Writes exactly one JSON object (and a newline) to stdout.
void printJson(const nlohmann::json& object);

/// A one-line progress bar on stderr, drawn only when stderr is a terminal, at most 10 times a
/// second, with an ETA once a few percent are done.
class ProgressBar {
public:
    explicit ProgressBar(std::string label);
    ~ProgressBar();

    /// Redraws for `done` of `total` units of `stage`.
    void update(std::string_view stage, std::int64_t done, std::int64_t total);

    /// Erases the bar so that following stderr output starts on a clean line.
    void finish();

    /// A RunContext whose progress callback drives this bar.
    RunContext context(const CommandEnv& env);

private:
    std::string m_label;
    bool m_enabled = false;
    bool m_drawn = false;
    std::chrono::steady_clock::time_point m_start;
    std::chrono::steady_clock::time_point m_lastDraw;
};

/// Adds the `--json` flag every subcommand has.
void addJsonFlag(CLI::App& app, bool& json);

/// Adds the required `--model` option, an existing Hugging Face model directory; `description`
/// may say what is read from it.
void addModelDirOption(CLI::App& app, std::string& dir, const std::string& description);

/// Adds the required `--text-file` option: a UTF-8 text file, read as raw bytes.
void addTextFileOption(CLI::App& app, std::string& path);

/// Prints "mdbf: usage error: <message>" on stderr and returns kExitUsage; for option values
/// that parse but that the core's validation refuses.
int usageError(const std::string& message);

/// Runs options.validate(), which throws InvalidArgument for values the core refuses: returns
/// usageError(its message) then, kExitOk when the options are valid.
template <typename Options>
int validateOptions(const Options& options)
{
    try {
        options.validate();
    } catch (const InvalidArgument& e) {
        return usageError(e.what());
    }
    return kExitOk;
}

// ---- option ranges ------------------------------------------------------------------------------
// Every numeric option has a documented range (README, Options), checked while parsing so that a
// bad value is a usage error (exit 2) with a short message, never a run that cannot finish.

/// The most worker threads --threads accepts: kThreadsPerCore times the hardware threads.
int maxThreads();
inline constexpr int kThreadsPerCore = 4;

/// The longest window (--ctx, --calib-ctx) in tokens.
inline constexpr int kMaxContext = 1 << 20;

/// An integer range check whose message states the bounds ("… not in range 1 to 100000").
CLI::Validator intRange(int minimum, int maximum);

/// For unsigned options (seeds): refuses a leading minus sign, which the conversion would wrap.
CLI::Validator notNegative();

/// Accepts a bit budget factor::Bpw::parse reads ("1.5", "0.75"), with its message otherwise.
CLI::Validator bpwText();

/// For path options: refuses an empty path.
CLI::Validator nonEmptyPath();

/// Adds the global --threads option (0 = all cores, up to maxThreads()).
CLI::Option* addThreadsOption(CLI::App& app, int& threads);

/// Adds an ADMM iteration count option bounded by factor::kMaxIterations.
CLI::Option* addIterationsOption(CLI::App& app, const std::string& name, int& value, const std::string& help,
                                 int minimum = 0);

/// Adds an unsigned 64-bit seed option that refuses negative values.
CLI::Option* addSeedOption(CLI::App& app, std::uint64_t& seed, const std::string& help);

/// Checks before a long run that `file` can be created: its directory exists and it is not itself a
/// directory. Throws IoError naming the path otherwise.
void requireWritableDirectory(const std::filesystem::path& file);

/// Strips a trailing ".weight" so layer names work with or without it.
std::string layerBaseName(const std::string& name);

}  // namespace mdbf::cli
