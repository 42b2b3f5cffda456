#pragma once
// Transparent huge pages for the engine's large matrices (docs/ARCHITECTURE.md, "Memory"). A 7B-sized
// layer's working matrices are hundreds of megabytes each and are allocated afresh by every
// decomposition, closed form and refinement step; backed by 4 KiB pages, each first touch is a page
// fault, which on virtual machines costs up to 3.5 ms per MB (a 130 MB matrix: 0.46 s before any
// arithmetic). glibc backs its large allocations with 2 MB pages when its `glibc.malloc.hugetlb`
// tunable is 1, but reads tunables only when a program starts.

namespace mdbf {

/// Call first in main(): unless the environment already names `glibc.malloc.hugetlb`, adds
/// `glibc.malloc.hugetlb=1` to GLIBC_TUNABLES and re-executes the program (same pid and arguments),
/// so every later allocation may use transparent huge pages. Does nothing when MDBF_HUGE_PAGES=0,
/// on systems other than Linux, or when re-executing fails (the program then runs as it is).
/// `argv` is main's, null-terminated. Never throws.
void enableHugePages(char** argv) noexcept;

}  // namespace mdbf
