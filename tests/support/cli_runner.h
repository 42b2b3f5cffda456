#pragma once
// Runs the `mdbf` executable and captures its exit status, stdout and stderr.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_fixtures.h"

namespace mdbf::test {

struct CliResult {
    int exitCode = -1;       ///< exit status when the process exited normally
    bool signaled = false;   ///< true when it died of a signal (a crash)
    std::string out;
    std::string err;
};

/// Runs `program args...` with stdin closed; output files live in a private temp dir.
inline CliResult runProgram(const std::string& program, const std::vector<std::string>& args)
{
    TempDir dir;
    std::string cmd = shellQuote(program);
    // Appended piecewise: GCC 12 misreads `literal + std::string&&` as an oversized copy (-Wstringop-overflow).
    for (const auto& a : args) {
        cmd += ' ';
        cmd += shellQuote(a);
    }
    cmd += " </dev/null >";
    cmd += shellQuote((dir / "out").string());
    cmd += " 2>";
    cmd += shellQuote((dir / "err").string());
    const int status = std::system(cmd.c_str());
    CliResult r;
    if (WIFEXITED(status)) {
        r.exitCode = WEXITSTATUS(status);
        // The shell reports a child killed by a signal as 128 + signal number.
        r.signaled = r.exitCode > 128 && r.exitCode != 130;
    } else {
        r.signaled = true;
    }
    r.out = slurp(dir / "out");
    r.err = slurp(dir / "err");
    return r;
}

/// Runs `mdbf args...` with stdin closed; output files live in a private temp dir.
inline CliResult runCli(const std::vector<std::string>& args) { return runProgram(cliPath().string(), args); }

/// The single JSON object a `--json` run printed on stdout; records a failure (and returns an empty
/// value) when the run failed or stdout holds anything else.
inline nlohmann::json onlyJson(const CliResult& r)
{
    EXPECT_EQ(r.exitCode, 0) << r.err;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(r.out);  // throws on anything but a single JSON value
    } catch (const std::exception& e) {
        ADD_FAILURE() << "stdout is not a single JSON value: " << e.what() << "\n" << r.out;
    }
    EXPECT_TRUE(j.is_object());
    return j;
}

/// Starts `mdbf args...` with stdin from /dev/null and stdout and stderr sent to files; returns
/// its pid (for tests that signal a running command).
inline pid_t spawnCli(const std::vector<std::string>& args, const std::filesystem::path& out,
                      const std::filesystem::path& err)
{
    const pid_t pid = fork();
    if (pid == 0) {
        const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int in = open("/dev/null", O_RDONLY);
        dup2(o, 1);
        dup2(e, 2);
        dup2(in, 0);
        std::vector<std::string> all{cliPath().string()};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

}  // namespace mdbf::test
