/* Run-time CPU feature checks.
 *
 * Every module is compiled for the baseline x86-64 instruction set; functions that
 * use AVX2 are compiled with __attribute__((target("avx2,fma"))) and are only called
 * when qlearn_cpu_has_avx2() says the CPU (and the OS) support them.  Setting the
 * environment variable QLEARN_SIMD=generic forces the portable loops.
 */
#ifndef QLEARN_CPU_H
#define QLEARN_CPU_H

#include <stdlib.h>
#include <string.h>

static int qlearn_cpu_has_avx2(void) {
#if QLEARN_HAVE_X86_SIMD
    const char *force = getenv("QLEARN_SIMD");
    if (force != NULL && strcmp(force, "generic") == 0) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#endif

/* OpenMP facts, usable whether or not the build has OpenMP. */
#ifndef QLEARN_OPENMP_FACTS
#define QLEARN_OPENMP_FACTS
#ifdef _OPENMP
#include <omp.h>
static int qlearn_openmp_enabled(void) { return 1; }
static int qlearn_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static int qlearn_openmp_enabled(void) { return 0; }
static int qlearn_omp_max_threads(void) { return 1; }
#endif
#endif
