#include "mdbf/kernels/kernel_path.h"

#include "mdbf/base/error.h"

namespace mdbf::kernels {

bool avx2Available()
{
#if defined(__x86_64__) || defined(__i386__)
    static const bool available = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return available;
#else
    return false;
#endif
}

bool avx512Available()
{
#if defined(__x86_64__) || defined(__i386__)
    // libgcc also checks that the OS saves the opmask and ZMM state (XCR0) before reporting these.
    static const bool available = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
    }();
    return available;
#else
    return false;
#endif
}

KernelPath resolveKernelPath(KernelPath path)
{
    switch (path) {
    case KernelPath::Scalar:
        return KernelPath::Scalar;
    case KernelPath::Avx2:
        if (!avx2Available()) throw InvalidArgument("kernel path avx2 requested but this CPU lacks AVX2/FMA");
        return KernelPath::Avx2;
    case KernelPath::Avx512:
        if (!avx512Available())
            throw InvalidArgument("kernel path avx512 requested but this CPU lacks AVX-512 F/BW/VL");
        return KernelPath::Avx512;
    case KernelPath::Auto:
        break;
    }
    if (avx512Available()) return KernelPath::Avx512;
    return avx2Available() ? KernelPath::Avx2 : KernelPath::Scalar;
}

const char* kernelPathName(KernelPath path)
{
    switch (path) {
    case KernelPath::Scalar:
        return "scalar";
    case KernelPath::Avx2:
        return "avx2";
    case KernelPath::Avx512:
        return "avx512";
    case KernelPath::Auto:
        break;
    }
    return "auto";
}

}  // namespace mdbf::kernels
