#include "mdbf/base/huge_pages.h"

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__linux__)
#include <unistd.h>
#endif

namespace mdbf {

void enableHugePages(char** argv) noexcept
{
#if defined(__linux__)
    constexpr const char* kTunable = "glibc.malloc.hugetlb";
    const char* off = std::getenv("MDBF_HUGE_PAGES");
    if (off && std::strcmp(off, "0") == 0) return;
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    // Present already (set by us before the re-exec, or chosen by the user): nothing to do. This
    // is also what keeps the re-exec from repeating.
    if (tunables && std::strstr(tunables, kTunable)) return;
    try {
        std::string value = tunables && *tunables ? std::string(tunables) + ":" : std::string();
        value += std::string(kTunable) + "=1";
        if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
    } catch (...) {
        return;
    }
    execv("/proc/self/exe", argv);
    // Only reached when the re-exec failed: run on with ordinary pages.
#else
    (void)argv;
#endif
}

}  // namespace mdbf
