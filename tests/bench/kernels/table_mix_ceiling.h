#pragma once
// How fast this CPU can issue the instruction mix of the AVX2 one-token table kernel
// (core/src/kernels/binary_tables_avx2.cpp), with no memory traffic at all: the ceiling any
// implementation of that scheme meets, printed beside the kernel's measured rate and the rate the
// memory-bandwidth bound asks for.

namespace mdbf::bench {

/// Vector operations per nanosecond, on one thread, of a register-only loop that issues per 512
/// sign-additions what the kernel issues for them (docs/GENERATION.md, "The one-token kernels' ceiling"):
/// kTableMixOps 256-bit operations — 12 byte shuffles, 9 byte adds, 6 word adds, 5 word shifts and
/// 4 ands. Only call when kernels::avx2Available().
double tableMixOpsPerNs();

/// 256-bit operations of the table kernel per 512 sign-additions (4 lookups × 3 digit planes).
inline constexpr double kTableMixOps = 36.0;

}  // namespace mdbf::bench
