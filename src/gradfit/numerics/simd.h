/* What gradfit's compiled kernels share: a 4-lane float64 vector type and the load-time choice of
 * AVX2 + FMA where the CPU has them (GCC 11+ on x86-64 Linux: twice as fast as SSE2 there); elsewhere
 * the vector type compiles to the target's baseline SIMD. Included by numerics/_kernels.c,
 * solvers/ipm/_fnb_kernels.h and solvers/ipm/_passes.c (each includes <string.h> for memcpy first). */
#ifndef GRADFIT_SIMD_H
#define GRADFIT_SIMD_H

typedef double v4d __attribute__((vector_size(32)));
#define LOAD4(v, p) memcpy(&(v), (p), sizeof(v4d))

#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DISPATCH __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DISPATCH
#endif

#endif
