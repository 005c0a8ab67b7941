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

/* QGEMM_AVX2_ASM_NOTE.  The full 4-row tile (not EXACT) runs its groups in assembly,
 * QGEMM_AVX2_4X16_GROUPS.  Per group of 4 depths the tile's arithmetic is 24
 * instructions (8 x vpmaddubsw, vpmaddwd, vpaddd, as the peak chains); GCC adds 2 loads
 * of B, 4 broadcasts of A and 3 of loop control, 33 in all.  A core that another
 * hardware thread shares (the SMT sibling of a VM's vCPU) cannot issue that many at
 * the peak rate: on an AMD Zen 4 2-vCPU VM the C loop ran at 0.97 of the peak chains
 * while the sibling was idle and at 0.61-0.81 while it was busy (the chains themselves
 * lost 4 %).  Here vpmaddubsw reads B straight from memory (a load folded into the
 * instruction issues as one), the loop does two groups and one index serves every row:
 * 4 + 24 + 1 per group, which ran at 0.87-0.91 busy and 0.955-0.96 idle (same
 * processes, interleaved).  GCC does not fold those loads itself: each B vector feeds
 * four rows, and it keeps a value loaded once in a register.  Registers: ymm10-11 A,
 * ymm12-13 products; the 8 accumulators and the body's int16 ones where GCC puts them. */
/* one row of one group: A broadcast in ymm<ar>, B at d(%[b]) */
#define QGEMM_AVX2_ASM_ROW(c0, c1, ar, d)                                                \
    "vpmaddubsw " #d "(%[b]), %%ymm" #ar ", %%ymm12\n\t"                                  \
    "vpmaddubsw " #d "+32(%[b]), %%ymm" #ar ", %%ymm13\n\t"                               \
    "vpmaddwd %[ones], %%ymm12, %%ymm12\n\t"                                             \
    "vpmaddwd %[ones], %%ymm13, %%ymm13\n\t"                                             \
    "vpaddd %%ymm12, %[" #c0 "], %[" #c0 "]\n\t"                                         \
    "vpaddd %%ymm13, %[" #c1 "], %[" #c1 "]\n\t"
/* one group: A at da(row pointer, %[k]) for each row, B at db(%[b]) */
#define QGEMM_AVX2_ASM_GROUP(da, db)                                                     \
    "vpbroadcastd " #da "(%[r0], %[k]), %%ymm10\n\t"                                      \
    "vpbroadcastd " #da "(%[r1], %[k]), %%ymm11\n\t"                                      \
    QGEMM_AVX2_ASM_ROW(c00, c01, 10, db)                                                 \
    "vpbroadcastd " #da "(%[r2], %[k]), %%ymm10\n\t"                                      \
    QGEMM_AVX2_ASM_ROW(c10, c11, 11, db)                                                 \
    "vpbroadcastd " #da "(%[r3], %[k]), %%ymm11\n\t"                                      \
    QGEMM_AVX2_ASM_ROW(c20, c21, 10, db)                                                 \
    QGEMM_AVX2_ASM_ROW(c30, c31, 11, db)
#define QGEMM_AVX2_ASM_OPERANDS                                                          \
    [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),                  \
    [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),                  \
    [b] "+&r"(b_), [k] "+&r"(k_)
#define QGEMM_AVX2_ASM_INPUTS                                                            \
    [r0] "r"(e0_), [r1] "r"(e1_), [r2] "r"(e2_), [r3] "r"(e3_), [ones] "x"(ones)
#define QGEMM_AVX2_ASM_CLOBBERS "cc", "memory", "xmm10", "xmm11", "xmm12", "xmm13"

/* Groups [0, n) of rows r0..r3 (4 bytes per group each) against B at bg (64 bytes per
 * group), added to c00..c31 (`ones`: the int16 ones of the enclosing body).  The row pointers are taken at the end of the pair loop
 * and indexed from -8 pairs up to 0 (k); an odd last group follows at offset 0. */
#define QGEMM_AVX2_4X16_GROUPS(r0, r1, r2, r3, bg, n)                                    \
    do {                                                                                 \
        long pairs_ = (n) >> 1;                                                          \
        const int8_t *b_ = (bg);                                                         \
        const uint8_t *e0_ = (r0) + 8 * pairs_, *e1_ = (r1) + 8 * pairs_;                \
        const uint8_t *e2_ = (r2) + 8 * pairs_, *e3_ = (r3) + 8 * pairs_;                \
        long k_ = -8 * pairs_;                                                           \
        if (pairs_ > 0)                                                                  \
            __asm__("1:\n\t"                                                             \
                    QGEMM_AVX2_ASM_GROUP(0, 0) QGEMM_AVX2_ASM_GROUP(4, 64)               \
                    "sub $-128, %[b]\n\t"                                                \
                    "add $8, %[k]\n\t"                                                   \
                    "jnz 1b\n\t"                                                         \
                    : QGEMM_AVX2_ASM_OPERANDS : QGEMM_AVX2_ASM_INPUTS                    \
                    : QGEMM_AVX2_ASM_CLOBBERS);                                          \
        if ((n) & 1)                                                                     \
            __asm__(QGEMM_AVX2_ASM_GROUP(0, 0)                                           \
                    : QGEMM_AVX2_ASM_OPERANDS : QGEMM_AVX2_ASM_INPUTS                    \
                    : QGEMM_AVX2_ASM_CLOBBERS);                                          \
    } while (0)

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
    if (MR == 4 && !EXACT) {      /* QGEMM_AVX2_ASM_NOTE */
        QGEMM_AVX2_4X16_GROUPS(a, a + lda, a + 2 * lda, a + 3 * lda, bp, Kg);
    } else {
        for (long g = 0; g < Kg; g++) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + g * 64));
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + g * 64 + 32));
            QGEMM_AVX2_ROW(0) QGEMM_AVX2_ROW(1) QGEMM_AVX2_ROW(2) QGEMM_AVX2_ROW(3)
        }
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
