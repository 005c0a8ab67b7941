/* The int8 peak of this core, measured: independent chains of exactly the instructions
 * each micro-kernel's inner loop issues, with no loads, no stores and no epilogue.
 *
 *   AVX2  vpmaddubsw + vpmaddwd (with ones) + vpaddd on ymm: 32 u8 x s8 multiply-adds
 *         per chain step (qgemm_u8s8_4x16_avx2.h's inner loop)
 *   VNNI  vpdpbusd on zmm: 64 multiply-adds per chain step (qgemm_u8s8_6x64_vnni.h)
 *
 * Independent accumulators hide each instruction's latency, as the 8 (AVX2) and 24
 * (VNNI) accumulators of the tiles do.  Stores the multiply-adds done in *macs.
 */
#ifndef QLEARN_QGEMM_PEAK_H
#define QLEARN_QGEMM_PEAK_H

#include "common.h"

#if QLEARN_HAVE_X86_SIMD
/* Written in assembly: the compiler, given loop-invariant operands, would hoist or merge
 * the products (or spill the accumulators); this is the exact instruction stream.  The
 * registers' contents do not matter for integer throughput, so none is initialized. */
#define QGEMM_PEAK_AVX2_CHAIN(acc, tmp)                                                   \
    "vpmaddubsw %%ymm15, %%ymm14, %%ymm" #tmp "\n\t"                                      \
    "vpmaddwd %%ymm13, %%ymm" #tmp ", %%ymm" #tmp "\n\t"                                  \
    "vpaddd %%ymm" #tmp ", %%ymm" #acc ", %%ymm" #acc "\n\t"

/* 8 chains (ymm0-7), temporaries ymm8-12, ones ymm13, a ymm14, b ymm15: the 4x16 tile's
 * register budget.  The loop-carried dependency is the one-cycle vpaddd. */
QGEMM_AVX2_FN static int64_t qgemm_peak_avx2(long steps, int64_t *macs) {
    long n = steps;
    if (n < 1) { *macs = 0; return 0; }
    __asm__ volatile(
        "1:\n\t"
        QGEMM_PEAK_AVX2_CHAIN(0, 8) QGEMM_PEAK_AVX2_CHAIN(1, 9)
        QGEMM_PEAK_AVX2_CHAIN(2, 10) QGEMM_PEAK_AVX2_CHAIN(3, 11)
        QGEMM_PEAK_AVX2_CHAIN(4, 12) QGEMM_PEAK_AVX2_CHAIN(5, 8)
        QGEMM_PEAK_AVX2_CHAIN(6, 9) QGEMM_PEAK_AVX2_CHAIN(7, 10)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    *macs = steps * 8L * 32L;
    return n;
}

#define QGEMM_PEAK_VNNI_CHAIN(acc) "vpdpbusd %%zmm31, %%zmm30, %%zmm" #acc "\n\t"

/* 24 chains (zmm0-23), a zmm30, b zmm31: the 6x64 tile's register budget. */
QGEMM_VNNI_FN static int64_t qgemm_peak_vnni(long steps, int64_t *macs) {
    long n = steps;
    if (n < 1) { *macs = 0; return 0; }
    __asm__ volatile(
        "1:\n\t"
        QGEMM_PEAK_VNNI_CHAIN(0) QGEMM_PEAK_VNNI_CHAIN(1) QGEMM_PEAK_VNNI_CHAIN(2)
        QGEMM_PEAK_VNNI_CHAIN(3) QGEMM_PEAK_VNNI_CHAIN(4) QGEMM_PEAK_VNNI_CHAIN(5)
        QGEMM_PEAK_VNNI_CHAIN(6) QGEMM_PEAK_VNNI_CHAIN(7) QGEMM_PEAK_VNNI_CHAIN(8)
        QGEMM_PEAK_VNNI_CHAIN(9) QGEMM_PEAK_VNNI_CHAIN(10) QGEMM_PEAK_VNNI_CHAIN(11)
        QGEMM_PEAK_VNNI_CHAIN(12) QGEMM_PEAK_VNNI_CHAIN(13) QGEMM_PEAK_VNNI_CHAIN(14)
        QGEMM_PEAK_VNNI_CHAIN(15) QGEMM_PEAK_VNNI_CHAIN(16) QGEMM_PEAK_VNNI_CHAIN(17)
        QGEMM_PEAK_VNNI_CHAIN(18) QGEMM_PEAK_VNNI_CHAIN(19) QGEMM_PEAK_VNNI_CHAIN(20)
        QGEMM_PEAK_VNNI_CHAIN(21) QGEMM_PEAK_VNNI_CHAIN(22) QGEMM_PEAK_VNNI_CHAIN(23)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(n)
        :
        : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
          "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31");
    *macs = steps * 24L * 64L;
    return n;
}
#endif

/* Run `steps` steps of the path's chains; 0 multiply-adds for a path with none. */
static int64_t qlearn_qgemm_peak(int path, long steps, int64_t *macs) {
    *macs = 0;
#if QLEARN_HAVE_X86_SIMD
    if (path == QGEMM_VNNI) return qgemm_peak_vnni(steps, macs);
    if (path == QGEMM_AVX2) return qgemm_peak_avx2(steps, macs);
#endif
    (void)path; (void)steps;
    return 0;
}

#endif
