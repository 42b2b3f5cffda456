#include "cli_common.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <thread>

#include <unistd.h>

#include "mdbf/factor/quant_config.h"

namespace mdbf::cli {

void LayerFormatOptions::applyTo(factor::LayerQuantSettings& s) const
{
    s.method = factor::parseMethod(method);
    s.bpw = factor::Bpw::parse(bpw);
    s.l = l;
    s.paths = paths;
}

int maxThreads()
{
    const unsigned cores = std::thread::hardware_concurrency();
    return kThreadsPerCore * static_cast<int>(cores == 0 ? 1 : cores);
}

CLI::Validator intRange(int minimum, int maximum)
{
    return CLI::Validator(
        [minimum, maximum](std::string& text) -> std::string {
            long long value = 0;
            std::size_t used = 0;
            try {
                value = std::stoll(text, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != text.size()) return "'" + text.substr(0, 40) + "' is not an integer";
            if (value < minimum || value > maximum) {
                return "value " + text.substr(0, 40) + " not in range " + std::to_string(minimum) + " to " +
                       std::to_string(maximum);
            }
            return {};
        },
        "INT in [" + std::to_string(minimum) + " - " + std::to_string(maximum) + "]");
}

CLI::Validator notNegative()
{
    return CLI::Validator(
        [](std::string& text) -> std::string {
            const auto first = text.find_first_not_of(" \t");
            if (first != std::string::npos && text[first] == '-') return "must not be negative";
            return {};
        },
        "UINT");
}

CLI::Validator bpwText()
{
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            try {
                factor::Bpw::parse(text);
                return {};
            } catch (const Error& e) {
                return e.what();
            }
        },
        "BPW");
}

void SvdCacheOptions::addTo(CLI::App& app)
{
    app.add_flag("--svd-cache", enabled,
                 "Reuse layer decompositions from the cache folder, or store them there "
                 "($MDBF_CACHE_DIR, else $XDG_CACHE_HOME/mdbf/decompositions, else ~/.cache/mdbf/decompositions)");
    app.add_option("--svd-cache-dir", dir, "Same with this cache folder")->check(nonEmptyPath());
}

std::shared_ptr<const factor::DecompositionCache> SvdCacheOptions::cache() const
{
    if (!enabled && dir.empty()) return nullptr;
    return std::make_shared<const factor::DecompositionCache>(
        dir.empty() ? factor::DecompositionCache::defaultFolder() : std::filesystem::path(dir));
}

CLI::Validator nonEmptyPath()
{
    return CLI::Validator([](std::string& text) -> std::string { return text.empty() ? "empty path" : ""; }, "PATH");
}

CLI::Option* addThreadsOption(CLI::App& app, int& threads)
{
    return app
        .add_option("--threads", threads,
                    "Worker threads (0 = all cores; at most " + std::to_string(kThreadsPerCore) + " per core)")
        ->check(intRange(0, maxThreads()));
}

CLI::Option* addIterationsOption(CLI::App& app, const std::string& name, int& value, const std::string& help,
                                 int minimum)
{
    return app.add_option(name, value, help)->check(intRange(minimum, factor::kMaxIterations));
}

CLI::Option* addSeedOption(CLI::App& app, std::uint64_t& seed, const std::string& help)
{
    return app.add_option("--seed", seed, help)->check(notNegative());
}

void printJson(const nlohmann::json& object)
{
    std::cout << object.dump(1) << '\n';
    std::cout.flush();
}

ProgressBar::ProgressBar(std::string label)
    : m_label(std::move(label)), m_enabled(isatty(STDERR_FILENO) == 1), m_start(std::chrono::steady_clock::now())
{
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::string_view stage, std::int64_t done, std::int64_t total)
{
    if (!m_enabled || total <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (m_drawn && done < total && now - m_lastDraw < std::chrono::milliseconds(100)) return;
    m_lastDraw = now;
    const double fraction = static_cast<double>(done) / static_cast<double>(total);
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const double elapsed = std::chrono::duration<double>(now - m_start).count();
    char eta[32] = "";
    if (fraction > 0.02 && done < total) std::snprintf(eta, sizeof eta, " ETA %.0fs", elapsed / fraction - elapsed);
    std::fprintf(stderr, "\r\033[K%s %.*s [%s] %3.0f%% %lld/%lld%s", m_label.c_str(), static_cast<int>(stage.size()),
                 stage.data(), bar.c_str(), fraction * 100.0, static_cast<long long>(done),
                 static_cast<long long>(total), eta);
    std::fflush(stderr);
    m_drawn = true;
}

void ProgressBar::finish()
{
    if (m_drawn) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
        m_drawn = false;
    }
}

RunContext ProgressBar::context(const CommandEnv& env)
{
    RunContext ctx = env.runContext();
    ctx.progress = [this](const Progress& p) { update(p.stage, p.done, p.total); };
    return ctx;
}

void addModelDirOption(CLI::App& app, std::string& dir, const std::string& description)
{
    app.add_option("--model", dir, description)->required()->check(CLI::ExistingDirectory);
}

void addTextFileOption(CLI::App& app, std::string& path)
{
    app.add_option("--text-file", path, "UTF-8 text file, read as raw bytes")->required();
}

void addJsonFlag(CLI::App& app, bool& json)
{
    app.add_flag("--json", json, "Print exactly one JSON object on stdout (progress and tables go to stderr)");
}

int usageError(const std::string& message)
{
    std::cerr << "mdbf: usage error: " << message << '\n';
    return kExitUsage;
}

void requireWritableDirectory(const std::filesystem::path& file)
{
    namespace fs = std::filesystem;
    const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    if (!fs::is_directory(dir)) throw IoError("'" + file.string() + "': directory '" + dir.string() + "' does not exist");
    if (fs::is_directory(file)) throw IoError("'" + file.string() + "' is a directory");
}

std::string layerBaseName(const std::string& name)
{
    constexpr std::string_view suffix = ".weight";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return name.substr(0, name.size() - suffix.size());
    }
    return name;
}

}  // namespace mdbf::cli
