#pragma once
// Choice of the code path used by the binary-product kernels (DESIGN.md §2.2): a portable scalar
// reference and an AVX2/FMA path selected at run time, so one binary runs on CPUs without AVX2.

namespace mdbf::kernels {

/// Which implementation a kernel call uses.
enum class KernelPath {
    Auto,    ///< AVX2 when the CPU has AVX2 and FMA, otherwise Scalar
    Scalar,  ///< portable reference loops (no intrinsics)
    Avx2,    ///< hand-written AVX2/FMA kernels; requesting it on a CPU without them throws
};

/// True when the running CPU supports AVX2 and FMA (checked once, thread-safe).
bool avx2Available();

/// Maps Auto to the best available path and returns Scalar or Avx2.
/// Throws InvalidArgument when Avx2 is requested but avx2Available() is false.
KernelPath resolveKernelPath(KernelPath path);

/// "auto", "scalar" or "avx2" (for tables and logs).
const char* kernelPathName(KernelPath path);

}  // namespace mdbf::kernels
