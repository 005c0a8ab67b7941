/* uint8 x int8 GEMM micro-kernel, AVX2: 4 rows x 16 columns (one packed panel), 8 ymm
 * accumulators, vpmaddubsw + vpmaddwd + vpaddd.  vpmaddubsw adds two u8*s8 products in
 * int16 with saturation: exact only if max(A) <= 127 (7-bit activations, "reduce_range");
 * the _exact variant splits A = lo + 128 hi (eq. (7)) so that neither product pair can
 * saturate.  The accumulators are finished by qgemm_avx2_finish (epilogue_avx2.h): a
 * full panel with uint8 output in registers, any other tile through memory. */
#ifndef QLEARN_QGEMM_U8S8_4X16_AVX2_H
#define QLEARN_QGEMM_U8S8_4X16_AVX2_H

#include "common.h"
#include "epilogue_avx2.h"

#if QLEARN_HAVE_X86_SIMD
/* ---- AVX2 micro-kernel: MR rows x 16 columns, vpmaddubsw + vpmaddwd ------------------ */
/* EXACT selects eq. (7): A = lo + 128 hi so that no int16 pair sum saturates.
 * Accumulators are named variables (not an array) so that GCC keeps them in registers;
 * the `if (MR > r)` tests are resolved at compile time in each instantiation. */
/* row r of the tile, its 4 activation bytes of this group at p */
#define QGEMM_AVX2_ROW_AT(r, p)                                                          \
    if (MR > r) {                                                                        \
        __m256i av = _mm256_set1_epi32(qgemm_load4(p));                                  \
        if (!EXACT) {                                                                    \
            c##r##0 = _mm256_add_epi32(c##r##0,                                          \
                _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));                  \
            c##r##1 = _mm256_add_epi32(c##r##1,                                          \
                _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));                  \
        } else {                                                                         \
            __m256i lo = _mm256_and_si256(av, m7f);                                      \
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(av, 7), m01);                \
            c##r##0 = _mm256_add_epi32(c##r##0, _mm256_add_epi32(                       \
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b0), ones),                   \
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b0), w128)));                 \
            c##r##1 = _mm256_add_epi32(c##r##1, _mm256_add_epi32(                       \
                _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b1), ones),                   \
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b1), w128)));                 \
        }                                                                                \
    }
#define QGEMM_AVX2_ROW(r) QGEMM_AVX2_ROW_AT(r, a + r * lda + 4 * g)

QGEMM_INLINE QGEMM_AVX2_FN void qgemm_u8s8_4x16_avx2_body(const uint8_t *a, long lda,
                                                     const int8_t *bp, long Kg,
                                                     const qgemm_avx2_outctx *o,
                                                     const int MR, const int EXACT) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i w128 = _mm256_set1_epi16(128);
    const __m256i m7f = _mm256_set1_epi8(0x7f);
    const __m256i m01 = _mm256_set1_epi8(1);
    const __m256i z0 = qgemm_avx2_zinit(o, 0), z1 = qgemm_avx2_zinit(o, 1);
    __m256i c00 = z0, c01 = z1, c10 = z0, c11 = z1, c20 = z0, c21 = z1, c30 = z0, c31 = z1;
    for (long g = 0; g < Kg; g++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + g * 64));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + g * 64 + 32));
        QGEMM_AVX2_ROW(0) QGEMM_AVX2_ROW(1) QGEMM_AVX2_ROW(2) QGEMM_AVX2_ROW(3)
    }
    QGEMM_AVX2_FINISH_CALL(MR, o);
}

/* qgemm_u8s8_4x16_avx2_r<MR> (max(A) <= 127) and qgemm_u8s8_4x16_avx2_exact_r<MR>
 * (eq. (7)): the full 4-row tile and the row tails. */
#define QGEMM_AVX2_INST(MR) \
QGEMM_AVX2_FN static void qgemm_u8s8_4x16_avx2_r##MR(const uint8_t *a, long lda, \
        const int8_t *bp, long Kg, const qgemm_avx2_outctx *o) { \
    qgemm_u8s8_4x16_avx2_body(a, lda, bp, Kg, o, MR, 0); } \
QGEMM_AVX2_FN static void qgemm_u8s8_4x16_avx2_exact_r##MR(const uint8_t *a, long lda, \
        const int8_t *bp, long Kg, const qgemm_avx2_outctx *o) { \
    qgemm_u8s8_4x16_avx2_body(a, lda, bp, Kg, o, MR, 1); }
QGEMM_AVX2_INST(1) QGEMM_AVX2_INST(2) QGEMM_AVX2_INST(3) QGEMM_AVX2_INST(4)

typedef void (*qgemm_avx2_fn)(const uint8_t *, long, const int8_t *, long,
                              const qgemm_avx2_outctx *);
/* [exact][MR - 1] */
static const qgemm_avx2_fn QGEMM_U8S8_4X16_AVX2[2][4] = {
    {qgemm_u8s8_4x16_avx2_r1, qgemm_u8s8_4x16_avx2_r2, qgemm_u8s8_4x16_avx2_r3,
     qgemm_u8s8_4x16_avx2_r4},
    {qgemm_u8s8_4x16_avx2_exact_r1, qgemm_u8s8_4x16_avx2_exact_r2,
     qgemm_u8s8_4x16_avx2_exact_r3, qgemm_u8s8_4x16_avx2_exact_r4}};
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
