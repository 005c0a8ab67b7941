/* uint8 x int8 GEMM micro-kernel, AVX512-VNNI: 6 rows x 64 columns (4 packed panels),
 * 24 zmm accumulators, one vpdpbusd (four u8*s8 products summed in int32, exact) per
 * row and panel and group of 4 depths.  The tile is requantized straight from the
 * registers (qgemm_vnni_out).  Accumulators are named variables instantiated per tile
 * shape by macros: GCC keeps them in registers (an array of vectors made it spill to
 * the stack every iteration); the `if (MR > r)` / `if (NP > p)` tests are resolved at
 * compile time in each qgemm_u8s8_6x64_vnni_r<MR>_p<NP>. */
#ifndef QLEARN_QGEMM_U8S8_6X64_VNNI_H
#define QLEARN_QGEMM_U8S8_6X64_VNNI_H

#include "common.h"
#include "epilogue_avx512.h"

#if QLEARN_HAVE_X86_SIMD
/* ---- AVX512-VNNI micro-kernel: MR rows x NP panels of 16 columns, vpdpbusd ---------- */
#define QGEMM_VNNI_ROW_FMA(r)                                                            \
    if (MR > r) {                                                                        \
        __m512i av = _mm512_set1_epi32(qgemm_load4(a + r * lda + 4 * g));                \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, av, b0);                                  \
        if (NP > 1) c##r##1 = _mm512_dpbusd_epi32(c##r##1, av, b1);                      \
        if (NP > 2) c##r##2 = _mm512_dpbusd_epi32(c##r##2, av, b2);                      \
        if (NP > 3) c##r##3 = _mm512_dpbusd_epi32(c##r##3, av, b3);                      \
    }

/* QGEMM_VNNI_PF_NOTE.  When a tile's weight block (NP panels x Kg groups x 64 bytes)
 * does not fit in L1, each group's 4 cache lines (one per panel) come from L2 for every
 * row tile, in 4 streams that the L1 prefetcher does not keep ahead of 2 vpdpbusd per
 * cycle (Intel Xeon, model 207: the full-tile GEMM ran at 0.65 of the peak vs 0.75 with
 * the block in L1, same process).  The _pf tiles prefetch each panel's line
 * QGEMM_VNNI_PF_DIST groups ahead (16 x 12 cycles, several L2 latencies); prefetches
 * past the end of the weight are harmless (prefetcht0 does not fault).  They are used
 * only when the block exceeds QGEMM_VNNI_PF_MIN_KG groups: with the block in L1 the 4
 * extra load-port uops per 24 vpdpbusd cost 4-5 %.  On Zen 4 (one 512-bit vpdpbusd per
 * cycle, 3 load ports, 32 KB L1) the same 4 uops are spread over twice the cycles, so
 * the trade is no worse there. */
enum { QGEMM_VNNI_PF_DIST = 16, QGEMM_VNNI_PF_MIN_KG = 160 };
#define QGEMM_VNNI_PREFETCH(bg)                                                          \
    if (PF) {                                                                            \
        const char *q_ = (const char *)(bg) + QGEMM_VNNI_PF_DIST * 64;                   \
        _mm_prefetch(q_, _MM_HINT_T0);                                                   \
        if (NP > 1) _mm_prefetch(q_ + panel_stride, _MM_HINT_T0);                        \
        if (NP > 2) _mm_prefetch(q_ + 2 * panel_stride, _MM_HINT_T0);                    \
        if (NP > 3) _mm_prefetch(q_ + 3 * panel_stride, _MM_HINT_T0);                    \
    }

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_u8s8_6x64_vnni_body(const uint8_t *a, long lda,
                                                     const int8_t *bp, long Kg,
                                                     long panel_stride,
                                                     const qgemm_outctx *oc,
                                                     const int MR, const int NP,
                                                     const int PF) {
    QGEMM_VNNI_INIT_ALL
    for (long g = 0; g < Kg; g++) {
        const int8_t *bg = bp + g * 64;
        QGEMM_VNNI_PREFETCH(bg)
        __m512i b0 = _mm512_loadu_si512((const void *)bg), b1 = b0, b2 = b0, b3 = b0;
        if (NP > 1) b1 = _mm512_loadu_si512((const void *)(bg + panel_stride));
        if (NP > 2) b2 = _mm512_loadu_si512((const void *)(bg + 2 * panel_stride));
        if (NP > 3) b3 = _mm512_loadu_si512((const void *)(bg + 3 * panel_stride));
        QGEMM_VNNI_ROW_FMA(0) QGEMM_VNNI_ROW_FMA(1) QGEMM_VNNI_ROW_FMA(2)
        QGEMM_VNNI_ROW_FMA(3) QGEMM_VNNI_ROW_FMA(4) QGEMM_VNNI_ROW_FMA(5)
    }
    QGEMM_VNNI_OUT_ALL
}

#define QGEMM_VNNI_INST(MR, NP) \
QGEMM_VNNI_FN static void qgemm_u8s8_6x64_vnni_r##MR##_p##NP(const uint8_t *a, long lda, \
        const int8_t *bp, long Kg, long ps, const qgemm_outctx *oc) { \
    qgemm_u8s8_6x64_vnni_body(a, lda, bp, Kg, ps, oc, MR, NP, 0); }
#define QGEMM_VNNI_ROW(MR) QGEMM_VNNI_INST(MR, 1) QGEMM_VNNI_INST(MR, 2) \
    QGEMM_VNNI_INST(MR, 3) QGEMM_VNNI_INST(MR, 4)
QGEMM_VNNI_ROW(1) QGEMM_VNNI_ROW(2) QGEMM_VNNI_ROW(3) QGEMM_VNNI_ROW(4) QGEMM_VNNI_ROW(5)
QGEMM_VNNI_ROW(6)

typedef void (*qgemm_vnni_fn)(const uint8_t *, long, const int8_t *, long, long,
                              const qgemm_outctx *);
#define QGEMM_VNNI_TROW(MR) {qgemm_u8s8_6x64_vnni_r##MR##_p1, qgemm_u8s8_6x64_vnni_r##MR##_p2, \
    qgemm_u8s8_6x64_vnni_r##MR##_p3, qgemm_u8s8_6x64_vnni_r##MR##_p4}
/* [MR - 1][NP - 1] */
static const qgemm_vnni_fn QGEMM_U8S8_6X64_VNNI[6][4] = {
    QGEMM_VNNI_TROW(1), QGEMM_VNNI_TROW(2), QGEMM_VNNI_TROW(3), QGEMM_VNNI_TROW(4),
    QGEMM_VNNI_TROW(5), QGEMM_VNNI_TROW(6)};

/* The full tile with the weight prefetched (QGEMM_VNNI_PF_NOTE): the tiles that stream
 * a block larger than L1 are nearly all full ones. */
QGEMM_VNNI_FN static void qgemm_u8s8_6x64_vnni_pf(const uint8_t *a, long lda,
        const int8_t *bp, long Kg, long ps, const qgemm_outctx *oc) {
    qgemm_u8s8_6x64_vnni_body(a, lda, bp, Kg, ps, oc, 6, 4, 1); }
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
