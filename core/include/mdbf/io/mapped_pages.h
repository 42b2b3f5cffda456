#pragma once
// Resident memory of memory-mapped checkpoint bytes (io::Checkpoint::raw views).

#include <cstddef>
#include <span>

namespace mdbf::io {

/// Drops the pages holding `bytes` (a view into a read-only memory-mapped file, such as
/// Checkpoint::raw) from this process's resident memory; the kernel's page cache keeps them and a
/// later read maps them again, so views stay valid. Lets a pass over a large checkpoint run without
/// its RSS accumulating the file. Never throws.
void releaseMappedPages(std::span<const std::byte> bytes);

}  // namespace mdbf::io
