#pragma once
// Choice of the code path used by the binary-product kernels (docs/ALGORITHM.md §2.4): a portable scalar
// reference and AVX2/FMA and AVX-512 paths selected at run time, so one binary runs on any x86-64
// CPU (and elsewhere on the scalar path).

namespace mdbf::kernels {

/// Which implementation a kernel call uses.
enum class KernelPath {
    Auto,    ///< the best available: Avx512, else Avx2, else Scalar
    Scalar,  ///< portable reference loops (no intrinsics)
    Avx2,    ///< hand-written AVX2/FMA kernels; requesting it on a CPU without them throws
    Avx512,  ///< hand-written AVX-512 (F, BW, VL) kernels; requesting it on a CPU without them throws
};

/// True when the running CPU supports AVX2 and FMA (checked once, thread-safe).
bool avx2Available();

/// True when the running CPU and OS support AVX-512 F, BW and VL plus FMA (checked once,
/// thread-safe).
bool avx512Available();

/// Maps Auto to the best available path and returns Scalar, Avx2 or Avx512.
/// Throws InvalidArgument when Avx2 or Avx512 is requested but the CPU lacks it.
KernelPath resolveKernelPath(KernelPath path);

/// "auto", "scalar", "avx2" or "avx512" (for tables and logs).
const char* kernelPathName(KernelPath path);

}  // namespace mdbf::kernels
