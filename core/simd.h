#pragma once
// Internal helper for loop kernels (not part of the public API).
//
// UNROLL_CLONES compiles a plain loop kernel for AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and
// baseline x86-64 with GCC's target_clones, and the loader picks the best for the CPU. The
// kernels use only IEEE add/mul/div/sqrt (the library is built with -fno-math-errno so sqrt
// vectorises). GCC contracts a * b + c into an FMA in ISO C++ mode too, so a file whose
// clones must give the same bits (results that do not depend on the machine's vector
// width) is compiled with -ffp-contract=off, as core/fast_math.cpp is (CMakeLists.txt;
// Note [fast float transcendentals]).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define UNROLL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define UNROLL_CLONES
#endif
