/* Run-time CPU feature checks and the SIMD path codes.
 *
 * Every module is compiled for the baseline x86-64 instruction set; functions that
 * use AVX2 are compiled with __attribute__((target("avx2,fma"))) (AVX-512 VNNI ones
 * with their own target) and run only on the path the caller passes in.  The path is
 * chosen in one place, qlearn/kernels/simd.py, from these raw CPU checks and the
 * QLEARN_SIMD environment variable; nothing here reads the environment.
 */
#ifndef QLEARN_CPU_H
#define QLEARN_CPU_H

/* The SIMD paths, mirrored by qlearn.kernels.simd.Simd (same values). */
enum {
    QLEARN_SIMD_GENERIC = 0,   /* portable C loops                              */
    QLEARN_SIMD_AVX2 = 1,      /* AVX2 + FMA                                     */
    QLEARN_SIMD_VNNI = 2       /* AVX-512 F/BW/VL + VNNI (implies AVX2)          */
};

/* 1 if the CPU (and the OS) support AVX2 and FMA. */
static inline int qlearn_cpu_has_avx2(void) {
#if QLEARN_HAVE_X86_SIMD
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* 1 if the CPU supports the AVX-512 subsets the VNNI kernels use. */
static inline int qlearn_cpu_has_avx512vnni(void) {
#if QLEARN_HAVE_X86_SIMD
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

/* 1 if this CPU can run SIMD path `simd` (a QLEARN_SIMD_* value): the kernels' guard
 * against an illegal instruction, whatever path the caller asks for. */
static inline int qlearn_cpu_supports_simd(int simd) {
    switch (simd) {
    case QLEARN_SIMD_GENERIC: return 1;
    case QLEARN_SIMD_AVX2: return qlearn_cpu_has_avx2();
    case QLEARN_SIMD_VNNI: return qlearn_cpu_has_avx2() && qlearn_cpu_has_avx512vnni();
    default: return 0;
    }
}

#endif

/* OpenMP facts, usable whether or not the build has OpenMP. */
#ifndef QLEARN_OPENMP_FACTS
#define QLEARN_OPENMP_FACTS
#ifdef _OPENMP
#include <omp.h>
static inline int qlearn_openmp_enabled(void) { return 1; }
static inline int qlearn_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int qlearn_openmp_enabled(void) { return 0; }
static inline int qlearn_omp_max_threads(void) { return 1; }
#endif
#endif
