/* The 4 x 16 AVX2 micro-kernel in indirect form, for convolution without a patch matrix:
 * row r of the tile reads tap t of its patch from ptrs[r * T + t], a run of gpt * 4
 * bytes (a channel run of the channels-last input, or a run of Za for padding).  The
 * packed weight's depth order is (tap, channel), so tap t's groups are consecutive.
 * Same arithmetic, EXACT variant (eq. (7)) and epilogue as qgemm_u8s8_4x16_avx2.h. */
#ifndef QLEARN_QGEMM_U8S8_4X16_AVX2_INDIRECT_H
#define QLEARN_QGEMM_U8S8_4X16_AVX2_INDIRECT_H

#include "common.h"
#include "qgemm_u8s8_4x16_avx2.h"

#if QLEARN_HAVE_X86_SIMD
#define QGEMM_AVX2_IND_PTR(r) const uint8_t *ar##r = MR > r ? ptrs[r * T + t] : ptrs[t];

/* np panels (panel_stride bytes apart in bp) one after the other, each finished by its
 * epilogue: the tile's pointers and the call are shared by every panel of its rows. */
QGEMM_INLINE QGEMM_AVX2_FN void qgemm_u8s8_4x16_avx2_indirect_body(
        const uint8_t *const *ptrs, long T, long gpt, const int8_t *bp, long panel_stride,
        long np, const qgemm_avx2_outctx *o, const int MR, const int EXACT) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i w128 = _mm256_set1_epi16(128);
    const __m256i m7f = _mm256_set1_epi8(0x7f);
    const __m256i m01 = _mm256_set1_epi8(1);
    for (long p = 0; p < np; p++, bp += panel_stride) {
        qgemm_avx2_outctx op = *o;
        op.j0 = o->j0 + p * QGEMM_NR;
        op.nc = o->nc - p * QGEMM_NR < QGEMM_NR ? o->nc - p * QGEMM_NR : QGEMM_NR;
        const __m256i z0 = qgemm_avx2_zinit(&op, 0), z1 = qgemm_avx2_zinit(&op, 1);
        __m256i c00 = z0, c01 = z1, c10 = z0, c11 = z1, c20 = z0, c21 = z1, c30 = z0, c31 = z1;
        for (long t = 0; t < T; t++) {
            QGEMM_AVX2_IND_PTR(0) QGEMM_AVX2_IND_PTR(1) QGEMM_AVX2_IND_PTR(2)
            QGEMM_AVX2_IND_PTR(3)
            const int8_t *bt = bp + t * gpt * 64;
            if (MR == 4 && !EXACT) {      /* QGEMM_AVX2_ASM_NOTE */
                QGEMM_AVX2_4X16_GROUPS(ar0, ar1, ar2, ar3, bt, gpt);
                continue;
            }
            for (long g = 0; g < gpt; g++) {
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bt + g * 64));
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bt + g * 64 + 32));
                QGEMM_AVX2_ROW_AT(0, ar0 + 4 * g) QGEMM_AVX2_ROW_AT(1, ar1 + 4 * g)
                QGEMM_AVX2_ROW_AT(2, ar2 + 4 * g) QGEMM_AVX2_ROW_AT(3, ar3 + 4 * g)
            }
        }
        qgemm_avx2_finish(c00, c01, c10, c11, c20, c21, c30, c31, MR, &op);
    }
}

/* qgemm_u8s8_4x16_avx2_indirect_r<MR> and its _exact_r<MR> */
#define QGEMM_AVX2_IND_INST(MR) \
QGEMM_AVX2_FN static void qgemm_u8s8_4x16_avx2_indirect_r##MR(const uint8_t *const *ptrs, \
        long T, long gpt, const int8_t *bp, long panel_stride, long np, \
        const qgemm_avx2_outctx *o) { \
    qgemm_u8s8_4x16_avx2_indirect_body(ptrs, T, gpt, bp, panel_stride, np, o, MR, 0); } \
QGEMM_AVX2_FN static void qgemm_u8s8_4x16_avx2_indirect_exact_r##MR( \
        const uint8_t *const *ptrs, long T, long gpt, const int8_t *bp, \
        long panel_stride, long np, const qgemm_avx2_outctx *o) { \
    qgemm_u8s8_4x16_avx2_indirect_body(ptrs, T, gpt, bp, panel_stride, np, o, MR, 1); }
QGEMM_AVX2_IND_INST(1) QGEMM_AVX2_IND_INST(2) QGEMM_AVX2_IND_INST(3) QGEMM_AVX2_IND_INST(4)

typedef void (*qgemm_avx2_ind_fn)(const uint8_t *const *, long, long, const int8_t *,
                                  long, long, const qgemm_avx2_outctx *);
/* [exact][MR - 1] */
static const qgemm_avx2_ind_fn QGEMM_U8S8_4X16_AVX2_INDIRECT[2][4] = {
    {qgemm_u8s8_4x16_avx2_indirect_r1, qgemm_u8s8_4x16_avx2_indirect_r2,
     qgemm_u8s8_4x16_avx2_indirect_r3, qgemm_u8s8_4x16_avx2_indirect_r4},
    {qgemm_u8s8_4x16_avx2_indirect_exact_r1, qgemm_u8s8_4x16_avx2_indirect_exact_r2,
     qgemm_u8s8_4x16_avx2_indirect_exact_r3, qgemm_u8s8_4x16_avx2_indirect_exact_r4}};
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
