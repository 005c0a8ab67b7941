/* The 6 x 64 AVX512-VNNI micro-kernel in indirect form, for convolution without a patch
 * matrix: row r of the tile reads tap t of its patch through a pointer.  Same
 * accumulators and register epilogue as qgemm_u8s8_6x64_vnni.h. */
#ifndef QLEARN_QGEMM_U8S8_6X64_VNNI_INDIRECT_H
#define QLEARN_QGEMM_U8S8_6X64_VNNI_INDIRECT_H

#include "common.h"
#include "qgemm_u8s8_6x64_vnni.h"

#if QLEARN_HAVE_X86_SIMD
/* ---- AVX512-VNNI indirect micro-kernel (convolution without a patch matrix) ---------
 * Row r of the tile reads tap t of its patch from ptrs[r * T + t]: a run of gpt * 4
 * bytes (a channel run of the channels-last input, or a run of Za for padding).  The
 * packed weight's depth order is (tap, channel), so tap t's groups are consecutive. */
#define QGEMM_IND_ROW_FMA(r)                                                              \
    if (MR > r) {                                                                        \
        __m512i av = _mm512_set1_epi32(qgemm_load4(                                      \
            (const uint8_t *)((uintptr_t)a0g + (uintptr_t)off##r)));                     \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, av, b0);                                  \
        if (NP > 1) c##r##1 = _mm512_dpbusd_epi32(c##r##1, av, b1);                      \
        if (NP > 2) c##r##2 = _mm512_dpbusd_epi32(c##r##2, av, b2);                      \
        if (NP > 3) c##r##3 = _mm512_dpbusd_epi32(c##r##3, av, b3);                      \
    }
/* rs > 0 (the strided form, 6 rows): row r reads tap t at ptrs[t] + r rs, i.e. the
 * tile's pixels are rs bytes apart in the input (consecutive pixels of one output row,
 * none in the padding), and ptrs holds only the first pixel's T pointers. */
#define QGEMM_IND_PTR(r) long off##r = rs ? r * rs                                        \
    : MR > r ? (long)((uintptr_t)ptrs[r * T + t] - (uintptr_t)ptrs[t]) : 0;

QGEMM_INLINE QGEMM_VNNI_FN void qgemm_u8s8_6x64_vnni_indirect_body(
        const uint8_t *const *ptrs, long T, long gpt, long rs, const int8_t *bp,
        long panel_stride, const qgemm_outctx *oc, const int MR, const int NP,
        const int PF) {
    QGEMM_VNNI_INIT_ALL
    for (long t = 0; t < T; t++) {
        QGEMM_IND_PTR(0) QGEMM_IND_PTR(1) QGEMM_IND_PTR(2)
        QGEMM_IND_PTR(3) QGEMM_IND_PTR(4) QGEMM_IND_PTR(5)
        const int8_t *bt = bp + t * gpt * 64;
        const uint8_t *a0 = ptrs[t];
        for (long g = 0; g < gpt; g++) {
            const int8_t *bg = bt + g * 64;
            const uint8_t *a0g = a0 + 4 * g;
            /* the taps' groups are consecutive: the prefetch runs on across taps */
            QGEMM_VNNI_PREFETCH(bg)
            /* Row r reads at a0g + off_r (one moving pointer, the offsets in registers):
             * the asm hides the offsets' values, so GCC does not turn each row into a
             * pointer of its own, incremented every step (6 more integer uops per
             * step, which the scheduler also issues on the vpdpbusd ports 0 and 5) */
            __asm__("" : "+r"(off1), "+r"(off2), "+r"(off3), "+r"(off4), "+r"(off5));
            __m512i b0 = _mm512_loadu_si512((const void *)bg), b1 = b0, b2 = b0, b3 = b0;
            if (NP > 1) b1 = _mm512_loadu_si512((const void *)(bg + panel_stride));
            if (NP > 2) b2 = _mm512_loadu_si512((const void *)(bg + 2 * panel_stride));
            if (NP > 3) b3 = _mm512_loadu_si512((const void *)(bg + 3 * panel_stride));
            QGEMM_IND_ROW_FMA(0) QGEMM_IND_ROW_FMA(1) QGEMM_IND_ROW_FMA(2)
            QGEMM_IND_ROW_FMA(3) QGEMM_IND_ROW_FMA(4) QGEMM_IND_ROW_FMA(5)
        }
    }
    QGEMM_VNNI_OUT_ALL
}

#define QGEMM_IND_INST(MR, NP) \
QGEMM_VNNI_FN static void qgemm_u8s8_6x64_vnni_indirect_r##MR##_p##NP(const uint8_t *const *ptrs, \
        long T, long gpt, const int8_t *bp, long ps, const qgemm_outctx *oc) { \
    qgemm_u8s8_6x64_vnni_indirect_body(ptrs, T, gpt, 0, bp, ps, oc, MR, NP, 0); }
#define QGEMM_IND_ROW(MR) QGEMM_IND_INST(MR, 1) QGEMM_IND_INST(MR, 2) \
    QGEMM_IND_INST(MR, 3) QGEMM_IND_INST(MR, 4)
QGEMM_IND_ROW(1) QGEMM_IND_ROW(2) QGEMM_IND_ROW(3) QGEMM_IND_ROW(4) QGEMM_IND_ROW(5)
QGEMM_IND_ROW(6)

typedef void (*qgemm_ind_fn)(const uint8_t *const *, long, long, const int8_t *, long,
                             const qgemm_outctx *);
#define QGEMM_IND_TROW(MR) {qgemm_u8s8_6x64_vnni_indirect_r##MR##_p1, qgemm_u8s8_6x64_vnni_indirect_r##MR##_p2, \
    qgemm_u8s8_6x64_vnni_indirect_r##MR##_p3, qgemm_u8s8_6x64_vnni_indirect_r##MR##_p4}
static const qgemm_ind_fn QGEMM_U8S8_6X64_VNNI_INDIRECT[6][4] = {
    QGEMM_IND_TROW(1), QGEMM_IND_TROW(2), QGEMM_IND_TROW(3), QGEMM_IND_TROW(4),
    QGEMM_IND_TROW(5), QGEMM_IND_TROW(6)};

/* The strided form (6 rows, rs > 0): qgemm_u8s8_6x64_vnni_indirect_strided_p<NP>. */
#define QGEMM_IND_STRIDED_INST(NP) \
QGEMM_VNNI_FN static void qgemm_u8s8_6x64_vnni_indirect_strided_p##NP( \
        const uint8_t *const *ptrs, long T, long gpt, long rs, const int8_t *bp, long ps, \
        const qgemm_outctx *oc) { \
    qgemm_u8s8_6x64_vnni_indirect_body(ptrs, T, gpt, rs, bp, ps, oc, 6, NP, 0); }
QGEMM_IND_STRIDED_INST(1) QGEMM_IND_STRIDED_INST(2) QGEMM_IND_STRIDED_INST(3)
QGEMM_IND_STRIDED_INST(4)

typedef void (*qgemm_ind_strided_fn)(const uint8_t *const *, long, long, long,
                                     const int8_t *, long, const qgemm_outctx *);
/* [NP - 1] */
static const qgemm_ind_strided_fn QGEMM_U8S8_6X64_VNNI_INDIRECT_STRIDED[4] = {
    qgemm_u8s8_6x64_vnni_indirect_strided_p1, qgemm_u8s8_6x64_vnni_indirect_strided_p2,
    qgemm_u8s8_6x64_vnni_indirect_strided_p3, qgemm_u8s8_6x64_vnni_indirect_strided_p4};

/* The full tiles with the weight prefetched (QGEMM_VNNI_PF_NOTE in
 * qgemm_u8s8_6x64_vnni.h), for weight blocks larger than L1: the strided form and the
 * one pointer per tap form. */
QGEMM_VNNI_FN static void qgemm_u8s8_6x64_vnni_indirect_strided_pf(
        const uint8_t *const *ptrs, long T, long gpt, long rs, const int8_t *bp, long ps,
        const qgemm_outctx *oc) {
    qgemm_u8s8_6x64_vnni_indirect_body(ptrs, T, gpt, rs, bp, ps, oc, 6, 4, 1); }
QGEMM_VNNI_FN static void qgemm_u8s8_6x64_vnni_indirect_pf(const uint8_t *const *ptrs,
        long T, long gpt, const int8_t *bp, long ps, const qgemm_outctx *oc) {
    qgemm_u8s8_6x64_vnni_indirect_body(ptrs, T, gpt, 0, bp, ps, oc, 6, 4, 1); }
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
