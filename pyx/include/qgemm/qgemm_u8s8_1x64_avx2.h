/* uint8 x int8 GEMM micro-kernel, AVX2: 1 row x up to 64 columns (NP = 2..4 packed
 * panels), 2 NP ymm accumulators, the arithmetic of qgemm_u8s8_4x16_avx2.h (and its
 * EXACT variant, eq. (7)).  It is the tile of a one-row GEMM (a batch-1 nn.Linear),
 * which is bound by reading the packed weight.  On the 2-core Zen 4 VM it was written
 * on, reading one panel at a time streamed a 1 MB weight at 61-87 GB/s, four panels at
 * a time (four sequential streams, 16 KB apart at K = 1024, as the VNNI tile reads its
 * 64 columns) at 80-91 GB/s, the more so the busier the other core: the 1x1024x1024
 * GEMM took 3 % less time on a quiet machine, up to 15-20 % less on a busy one (thread
 * CPU time, interleaved).  Each panel is finished by the 4x16 tile's epilogue
 * (qgemm_avx2_finish_r1). */
#ifndef QLEARN_QGEMM_U8S8_1X64_AVX2_H
#define QLEARN_QGEMM_U8S8_1X64_AVX2_H

#include "common.h"
#include "epilogue_avx2.h"

#if QLEARN_HAVE_X86_SIMD
/* panel p's 16 columns of the 4 depths of group g, against the row's broadcast av
 * (EXACT: its split lo, hi) */
#define QGEMM_AVX2_1X64_PANEL(p)                                                         \
    if (NP > p) {                                                                        \
        const int8_t *bg = bp + p * panel_stride + g * 64;                               \
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)bg);                      \
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bg + 32));               \
        if (!EXACT) {                                                                    \
            c##p##0 = _mm256_add_epi32(c##p##0,                                          \
                _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));                  \
            c##p##1 = _mm256_add_epi32(c##p##1,                                          \
                _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));                  \
        } else {                                                                         \
            c##p##0 = _mm256_add_epi32(c##p##0, _mm256_add_epi32(                       \
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b0), ones),                   \
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b0), w128)));                 \
            c##p##1 = _mm256_add_epi32(c##p##1, _mm256_add_epi32(                       \
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b1), ones),                   \
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b1), w128)));                 \
        }                                                                                \
    }
/* panel p's outputs: columns [j0 + 16 p, ...) of the row, through the 4x16 epilogue */
#define QGEMM_AVX2_1X64_FINISH(p)                                                        \
    if (NP > p) {                                                                        \
        qgemm_avx2_outctx op = *o;                                                       \
        op.j0 = o->j0 + p * QGEMM_NR;                                                    \
        op.nc = o->nc - p * QGEMM_NR < QGEMM_NR ? o->nc - p * QGEMM_NR : QGEMM_NR;       \
        qgemm_avx2_finish_r1(c##p##0, c##p##1, c##p##0, c##p##1, c##p##0, c##p##1,       \
                             c##p##0, c##p##1, &op);                                     \
    }
/* panel p's accumulators, from -Za colsum'[j] when its epilogue runs in registers */
#define QGEMM_AVX2_1X64_INIT(p)                                                          \
    __m256i c##p##0 = _mm256_setzero_si256(), c##p##1 = c##p##0;                         \
    if (NP > p) {                                                                        \
        qgemm_avx2_outctx op = *o;                                                       \
        op.j0 = o->j0 + p * QGEMM_NR;                                                    \
        op.nc = o->nc - p * QGEMM_NR < QGEMM_NR ? o->nc - p * QGEMM_NR : QGEMM_NR;       \
        c##p##0 = qgemm_avx2_zinit(&op, 0);                                              \
        c##p##1 = qgemm_avx2_zinit(&op, 1);                                              \
    }

/* o: the row's output, columns [j0, j0 + nc), nc > 16 (NP - 1) */
QGEMM_INLINE QGEMM_AVX2_FN void qgemm_u8s8_1x64_avx2_body(const uint8_t *a, const int8_t *bp,
                                                     long Kg, long panel_stride,
                                                     const qgemm_avx2_outctx *o,
                                                     const int NP, const int EXACT) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i w128 = _mm256_set1_epi16(128);
    const __m256i m7f = _mm256_set1_epi8(0x7f);
    const __m256i m01 = _mm256_set1_epi8(1);
    QGEMM_AVX2_1X64_INIT(0) QGEMM_AVX2_1X64_INIT(1) QGEMM_AVX2_1X64_INIT(2)
    QGEMM_AVX2_1X64_INIT(3)
    for (long g = 0; g < Kg; g++) {
        const __m256i av = _mm256_set1_epi32(qgemm_load4(a + 4 * g));
        const __m256i lo = _mm256_and_si256(av, m7f);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(av, 7), m01);
        QGEMM_AVX2_1X64_PANEL(0) QGEMM_AVX2_1X64_PANEL(1) QGEMM_AVX2_1X64_PANEL(2)
        QGEMM_AVX2_1X64_PANEL(3)
    }
    QGEMM_AVX2_1X64_FINISH(0) QGEMM_AVX2_1X64_FINISH(1) QGEMM_AVX2_1X64_FINISH(2)
    QGEMM_AVX2_1X64_FINISH(3)
}

/* qgemm_u8s8_1x64_avx2_p<NP> (max(A) <= 127) and qgemm_u8s8_1x64_avx2_exact_p<NP>
 * (eq. (7)), NP = 2, 3, 4 panels (one panel is qgemm_u8s8_4x16_avx2_r1). */
#define QGEMM_AVX2_1X64_INST(NP) \
QGEMM_AVX2_FN static void qgemm_u8s8_1x64_avx2_p##NP(const uint8_t *a, const int8_t *bp, \
        long Kg, long ps, const qgemm_avx2_outctx *o) { \
    qgemm_u8s8_1x64_avx2_body(a, bp, Kg, ps, o, NP, 0); } \
QGEMM_AVX2_FN static void qgemm_u8s8_1x64_avx2_exact_p##NP(const uint8_t *a, \
        const int8_t *bp, long Kg, long ps, const qgemm_avx2_outctx *o) { \
    qgemm_u8s8_1x64_avx2_body(a, bp, Kg, ps, o, NP, 1); }
QGEMM_AVX2_1X64_INST(2) QGEMM_AVX2_1X64_INST(3) QGEMM_AVX2_1X64_INST(4)

typedef void (*qgemm_avx2_1x64_fn)(const uint8_t *, const int8_t *, long, long,
                                   const qgemm_avx2_outctx *);
/* [exact][NP - 2] */
static const qgemm_avx2_1x64_fn QGEMM_U8S8_1X64_AVX2[2][3] = {
    {qgemm_u8s8_1x64_avx2_p2, qgemm_u8s8_1x64_avx2_p3, qgemm_u8s8_1x64_avx2_p4},
    {qgemm_u8s8_1x64_avx2_exact_p2, qgemm_u8s8_1x64_avx2_exact_p3,
     qgemm_u8s8_1x64_avx2_exact_p4}};
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
