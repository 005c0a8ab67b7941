/* Depthwise int8 convolution, AVX-512 (the VNNI path): 32 channels per step.
 *
 * The same sum as depthwise_generic.h (eq. (9)): taps paired (0,1) (2,3) ..., each
 * pair's int16 activations interleaved by vpunpck{l,h}wd and multiplied and added into
 * int32 by one vpdpwssd (AVX512-VNNI: exact, |x wz| <= 255 * 255 and a pair sum fits
 * int16 x int16 -> int32 without saturation).  The weights are packed by
 * qlearn_qconv_dw_pack in 32-channel blocks (one register per pair and half).  Channel
 * blocks are the outer loop, so a block's epilogue constants (and for a 3x3 window its
 * 10 weight vectors) stay in registers along the row; each pair of accumulators is put
 * back in channel order (vpermt2d) and requantized straight from the registers with
 * the operations of qgemm_vnni_out (eq. (6), bit-exact with the scalar epilogue).  The
 * channel tail (C % 32) runs the AVX2 sums of a 16-channel block and one lane at a
 * time, then qgemm_epilogue_avx512.
 */
#ifndef QLEARN_QCONV_DEPTHWISE_AVX512_H
#define QLEARN_QCONV_DEPTHWISE_AVX512_H

#include <stdint.h>
#include "../qgemm/common.h"
#include "../qgemm/epilogue_avx512.h"
#include "depthwise_avx2.h"

#if QLEARN_HAVE_X86_SIMD
/* 16 outputs requantized (eq. (6), the operations of qgemm_vnni_out): zcol = Za
 * colsum, bias and mult the channels' constants; returns their 16 bytes. */
QGEMM_INLINE QGEMM_VNNI_FN __m128i qconv_requant16(__m512i acc, __m512i zcol,
                                                   __m512 bias, __m512 mult,
                                                   const qgemm_epilogue *e) {
    __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, zcol));
    if (e->bias_q) x = _mm512_add_ps(x, bias);
    x = _mm512_mul_ps(x, mult);
    x = _mm512_min_ps(_mm512_set1_ps(1e9f), x);          /* see QGEMM_CLAMP_NOTE */
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), _mm512_set1_epi32(e->out_zp));
    q = _mm512_max_epi32(q, _mm512_set1_epi32(e->lo));
    if (e->hi < 255) q = _mm512_min_epi32(q, _mm512_set1_epi32(e->hi));
    return _mm512_cvtusepi32_epi8(q);
}

/* 16 requantized channels [j, j+16) of one output pixel. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_dw_out16(__m512i acc, __m512i zcol, __m512 bias,
                                               __m512 mult, const qgemm_epilogue *e,
                                               uint8_t *o) {
    _mm_storeu_si128((__m128i *)o, qconv_requant16(acc, zcol, bias, mult, e));
}

/* Weight pairs kept in registers along a row when there are at most this many (a 3x3
 * window has 5: 10 of the 32 zmm registers); a larger window reads them from L1. */
#define QCONV_DW_KEEP 5

/* One 32-channel block [c, c+32) of an output row (see qconv_dw_row_avx512); T is a
 * constant where this is inlined for the 3x3 window, so that its pairs stay in
 * registers. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_dw_block_avx512(const uint8_t *xrow, long C, long c,
                                                      const int16_t *wq, const long *off,
                                                      const int T, long Wo, int sw,
                                                      const qgemm_epilogue *e,
                                                      uint8_t *out, long ldc) {
    const int Q = (T + 1) / 2, keep = Q <= QCONV_DW_KEEP;
    /* unpacklo/hi leave channels 0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31 */
    const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7,
                                           20, 21, 22, 23);
    const __m512i idx1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15,
                                           28, 29, 30, 31);
    __m512i w[2 * QCONV_DW_KEEP];
    if (keep)
        for (int q = 0; q < 2 * Q; q++) w[q] = _mm512_loadu_si512(wq + q * 32);
    const __m512i za = _mm512_set1_epi32(e->a_zp);
    const __m512i z0 = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + c));
    const __m512i z1 = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + c + 16));
    const __m512 bq0 = e->bias_q ? _mm512_loadu_ps(e->bias_q + c) : _mm512_setzero_ps();
    const __m512 bq1 = e->bias_q ? _mm512_loadu_ps(e->bias_q + c + 16)
                                 : _mm512_setzero_ps();
    const __m512 m0 = _mm512_loadu_ps(e->mult + c), m1 = _mm512_loadu_ps(e->mult + c + 16);
    for (long ox = 0; ox < Wo; ox++) {
        const uint8_t *xb = xrow + ox * sw * C + c;
        __m512i lo = _mm512_setzero_si512(), hi = lo;
        for (int q = 0; q < Q; q++) {
            const __m512i x0 = _mm512_cvtepu8_epi16(
                _mm256_loadu_si256((const __m256i *)(xb + off[2 * q])));
            const __m512i x1 = 2 * q + 1 < T ? _mm512_cvtepu8_epi16(
                _mm256_loadu_si256((const __m256i *)(xb + off[2 * q + 1])))
                                             : _mm512_setzero_si512();
            const __m512i wl = keep ? w[2 * q] : _mm512_loadu_si512(wq + 2 * q * 32);
            const __m512i wh = keep ? w[2 * q + 1]
                                    : _mm512_loadu_si512(wq + (2 * q + 1) * 32);
            lo = _mm512_dpwssd_epi32(lo, _mm512_unpacklo_epi16(x0, x1), wl);
            hi = _mm512_dpwssd_epi32(hi, _mm512_unpackhi_epi16(x0, x1), wh);
        }
        uint8_t *o = out + ox * ldc + c;
        qconv_dw_out16(_mm512_permutex2var_epi32(lo, idx0, hi), z0, bq0, m0, e, o);
        qconv_dw_out16(_mm512_permutex2var_epi32(lo, idx1, hi), z1, bq1, m1, e, o + 16);
    }
}

/* One output row oy of the band, requantized into out (Wo, ldc).  wpk: the weights
 * packed with blk = 32 (qlearn_qconv_dw_pack); off: the T tap offsets. */
QGEMM_VNNI_FN static void qconv_dw_row_avx512(const uint8_t *xp, long Wp, long C,
                                              const int32_t *wz, const int16_t *wpk,
                                              const long *off, int T, long oy, long Wo,
                                              int sh, int sw, int32_t *acc,
                                              const qgemm_epilogue *e, uint8_t *out,
                                              long ldc) {
    const long C32 = C & ~31L;
    const int Q = (T + 1) / 2;
    const uint8_t *xrow = xp + oy * sh * Wp * C;
    long off9[9];
    for (int t = 0; t < 9 && t < T; t++) off9[t] = off[t];
    for (long c = 0; c < C32; c += 32) {
        const int16_t *wq = wpk + c * Q * 2;
        if (T == 9)   /* off9: see qconv_dw_row_avx2 */
            qconv_dw_block_avx512(xrow, C, c, wq, off9, 9, Wo, sw, e, out, ldc);
        else
            qconv_dw_block_avx512(xrow, C, c, wq, off, T, Wo, sw, e, out, ldc);
    }
    if (C32 < C) {
        /* the tail: a last 16-channel block through vpmaddwd, the rest one lane at a
         * time, then the epilogue on them all */
        const long C16 = C & ~15L;
        const __m256i *wq16 = (const __m256i *)(wpk + C32 * Q * 2);
        for (long ox = 0; ox < Wo; ox++) {
            const uint8_t *xb = xrow + ox * sw * C;
            if (C16 > C32) qconv_dw_sum16_avx2(xb, C32, wq16, off, T, acc + ox * C);
            for (long c = C16; c < C; c++) {
                int32_t s = 0;
                for (int t = 0; t < T; t++) s += (int32_t)xb[off[t] + c] * wz[t * C + c];
                acc[ox * C + c] = s;
            }
        }
        qgemm_epilogue_avx512(acc + C32, C, 0, Wo, C32, C - C32, e, out, NULL, ldc);
    }
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
