#include "mdbf/kernels/kernel_path.h"

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "kernels/binary_product_impl.h"
#include "kernels/half_product_impl.h"
#include "kernels/kernel_table.h"
#include "mdbf/base/error.h"

namespace mdbf::kernels {

bool avx2Available()
{
#if defined(__x86_64__) || defined(__i386__)
    static const bool available = [] {
        __builtin_cpu_init();
        // F16C straight from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know it.
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
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
               __builtin_cpu_supports("avx512vl") && avx2Available();
    }();
    return available;
#else
    return false;
#endif
}

namespace {

// What Auto stands for; Auto itself means the best available path.
std::atomic<KernelPath> g_autoPath{KernelPath::Auto};

}  // namespace

void setAutoKernelPath(KernelPath path)
{
    resolveKernelPath(path);  // throws when the CPU lacks it
    g_autoPath.store(path);
}

KernelPath parseKernelPath(const std::string& name)
{
    for (KernelPath p : {KernelPath::Auto, KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512})
        if (name == kernelPathName(p)) return p;
    throw InvalidArgument("unknown kernel path '" + name + "' (expected auto, scalar, avx2 or avx512)");
}

KernelPath resolveKernelPath(KernelPath path)
{
    if (path == KernelPath::Auto) path = g_autoPath.load();
    switch (path) {
    case KernelPath::Scalar:
        return KernelPath::Scalar;
    case KernelPath::Avx2:
        if (!avx2Available()) throw InvalidArgument("kernel path avx2 requested but this CPU lacks AVX2/FMA/F16C");
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

namespace detail {

const KernelTable kScalarKernels{gemmScalar, gemvTablesScalar, halfGemvScalar, convertHalfScalar};
// MDBF_X86_KERNELS: the ISA-specific sources were compiled with their flags (core/CMakeLists.txt);
// elsewhere they are empty and the SIMD paths, never chosen there, fall back to the scalar kernels.
#if defined(MDBF_X86_KERNELS)
const KernelTable kAvx2Kernels{gemmAvx2, gemvTablesAvx2, halfGemvAvx2, convertHalfAvx2};
const KernelTable kAvx512Kernels{gemmAvx512, gemvTablesAvx512, halfGemvAvx512, convertHalfAvx512};
#else
const KernelTable kAvx2Kernels = kScalarKernels;
const KernelTable kAvx512Kernels = kScalarKernels;
#endif

const KernelTable& kernelTable(KernelPath resolved)
{
    switch (resolved) {
    case KernelPath::Avx512:
        return kAvx512Kernels;
    case KernelPath::Avx2:
        return kAvx2Kernels;
    default:
        return kScalarKernels;
    }
}

}  // namespace detail

}  // namespace mdbf::kernels
