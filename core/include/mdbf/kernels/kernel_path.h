#pragma once
// Choice of the code path used by every SIMD kernel (binary products, docs/ALGORITHM.md §2.4, and
// the 16-bit dense products): a portable scalar reference and AVX2 and AVX-512 paths selected at run
// time, so one binary, even one built without -march=native, runs every fast path its CPU has
// (and elsewhere the scalar path).

#include <string>

namespace mdbf::kernels {

/// Which implementation a kernel call uses.
enum class KernelPath {
    Auto,    ///< the best available: Avx512, else Avx2, else Scalar
    Scalar,  ///< portable reference loops (no intrinsics)
    Avx2,    ///< hand-written AVX2/FMA/F16C kernels; requesting it on a CPU without them throws
    Avx512,  ///< hand-written AVX-512 (F, BW, VL) kernels; requesting it on a CPU without them throws
};

/// True when the running CPU supports AVX2, FMA and F16C (checked once, thread-safe).
bool avx2Available();

/// True when the running CPU and OS support AVX-512 F, BW and VL plus AVX2, FMA and F16C (checked
/// once, thread-safe).
bool avx512Available();

/// Maps Auto to the path set by setAutoKernelPath (by default the best available) and returns
/// Scalar, Avx2 or Avx512. Throws InvalidArgument when Avx2 or Avx512 is requested but the CPU
/// lacks it.
KernelPath resolveKernelPath(KernelPath path);

/// Makes Auto resolve to `path` in this process from now on (Auto restores the best available):
/// how benchmarks and tools run whole models, whose layers call the kernels with Auto, on the path
/// of another CPU. Thread-safe; calls already running keep their path. Throws InvalidArgument when
/// the CPU lacks the path.
void setAutoKernelPath(KernelPath path);

/// Parses "auto", "scalar", "avx2" or "avx512"; throws InvalidArgument naming any other text.
KernelPath parseKernelPath(const std::string& name);

/// "auto", "scalar", "avx2" or "avx512" (for tables and logs).
const char* kernelPathName(KernelPath path);

}  // namespace mdbf::kernels
