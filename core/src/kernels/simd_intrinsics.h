#pragma once
// <immintrin.h> for the ISA-specific kernel sources, which alone are compiled with ISA flags.
// GCC 12 reports its own AVX-512 intrinsics' deliberately undefined pass-through operands
// (__Y = __Y in _mm512_undefined_*) as used uninitialized when they are inlined.

#if defined(__x86_64__) || defined(__i386__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
