// LOOM_CPU_CLONES marks a hot CPU loop to be compiled three times: for AVX-512 (x86-64-v4), for AVX2
// (x86-64-v3) and for the baseline x86-64 that the rest of loom is built for, with the copy for the
// running CPU picked once, when the program loads (GCC's target_clones: an ifunc). A Debian build
// cannot assume more than SSE2, which is 4 floats a vector; PyTorch dispatches its CPU kernels the
// same way. The loop must be in the marked function's own body, its OpenMP pragma included: a lambda
// it calls is compiled for the baseline unless it is inlined.
//
// The clones give the same bits as the baseline: loom_kernels is built with -ffp-contract=off, so no
// clone fuses a multiply and an add into an FMA, GCC does not reorder a floating-point reduction to
// vectorize it, and a vector lane does the same IEEE operation a scalar instruction does. Clang (the
// sanitizer build) does not clone function templates; there the macro is empty.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOOM_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LOOM_CPU_CLONES
#endif
