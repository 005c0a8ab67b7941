/* Depthwise 3x3 int8 convolution, AVX-512 (the VNNI path): 32 channels per step.
 *
 * The same sum as depthwise3x3_generic.h (eq. (9)): taps paired (0,1) (2,3) (4,5) (6,7)
 * (8,-), each pair's int16 activations interleaved by vpunpck{l,h}wd and multiplied and
 * added into int32 by one vpdpwssd (AVX512-VNNI: exact, |x wz| <= 255 * 255 and a pair
 * sum fits int16 x int16 -> int32 without saturation).  The weights are the AVX2
 * packing (qlearn_qconv_dw_pack): two consecutive 16-channel blocks make one 32-channel
 * register.  Channel blocks are the outer loop, so a block's 10 weight vectors and its
 * epilogue constants stay in registers along the row; each pair of accumulators is put
 * back in channel order (vpermt2d) and requantized straight from the registers with the
 * operations of qgemm_vnni_out (eq. (6), bit-exact with the scalar epilogue).  The
 * channel tail (C % 32) runs the scalar sum and qgemm_epilogue_avx512.
 */
#ifndef QLEARN_QCONV_DEPTHWISE3X3_AVX512_H
#define QLEARN_QCONV_DEPTHWISE3X3_AVX512_H

#include <stdint.h>
#include "../qgemm/common.h"
#include "../qgemm/epilogue_avx512.h"

#if QLEARN_HAVE_X86_SIMD
/* 16 requantized channels [j, j+16) of one output pixel (eq. (6), as qgemm_vnni_out). */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_dw_out16(__m512i acc, __m512i zcol, __m512 bias,
                                               __m512 mult, const qgemm_epilogue *e,
                                               uint8_t *o) {
    __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, zcol));
    if (e->bias_q) x = _mm512_add_ps(x, bias);
    x = _mm512_mul_ps(x, mult);
    x = _mm512_min_ps(_mm512_set1_ps(1e9f), x);          /* see QGEMM_CLAMP_NOTE */
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(x), _mm512_set1_epi32(e->out_zp));
    q = _mm512_max_epi32(q, _mm512_set1_epi32(e->lo));
    if (e->hi < 255) q = _mm512_min_epi32(q, _mm512_set1_epi32(e->hi));
    _mm_storeu_si128((__m128i *)o, _mm512_cvtusepi32_epi8(q));
}

QGEMM_VNNI_FN static void qconv_dw3x3_row_avx512(const uint8_t *xp, long Wp, long C,
                                                 const int32_t *wz, const int16_t *wpk,
                                                 long oy, long Wo, int stride, int dil,
                                                 int32_t *acc, const qgemm_epilogue *e,
                                                 uint8_t *out, long ldc) {
    const long C32 = C & ~31L;
    long off[9];
    for (int t = 0; t < 9; t++) off[t] = ((t / 3) * dil * Wp + (t % 3) * dil) * C;
    const uint8_t *xrow = xp + oy * stride * Wp * C;
    /* unpacklo/hi leave channels 0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31 */
    const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7,
                                           20, 21, 22, 23);
    const __m512i idx1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15,
                                           28, 29, 30, 31);
    const __m512i za = _mm512_set1_epi32(e->a_zp);
    for (long c = 0; c < C32; c += 32) {
        __m512i wlo[5], whi[5];
        const int16_t *b0 = wpk + (c / 16) * 5 * 32, *b1 = b0 + 5 * 32;
        for (int q = 0; q < 5; q++) {
            wlo[q] = _mm512_inserti64x4(_mm512_castsi256_si512(
                _mm256_loadu_si256((const __m256i *)(b0 + q * 32))),
                _mm256_loadu_si256((const __m256i *)(b1 + q * 32)), 1);
            whi[q] = _mm512_inserti64x4(_mm512_castsi256_si512(
                _mm256_loadu_si256((const __m256i *)(b0 + q * 32 + 16))),
                _mm256_loadu_si256((const __m256i *)(b1 + q * 32 + 16)), 1);
        }
        const __m512i z0 = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + c));
        const __m512i z1 = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + c + 16));
        const __m512 bq0 = e->bias_q ? _mm512_loadu_ps(e->bias_q + c) : _mm512_setzero_ps();
        const __m512 bq1 = e->bias_q ? _mm512_loadu_ps(e->bias_q + c + 16)
                                     : _mm512_setzero_ps();
        const __m512 m0 = _mm512_loadu_ps(e->mult + c), m1 = _mm512_loadu_ps(e->mult + c + 16);
        for (long ox = 0; ox < Wo; ox++) {
            const uint8_t *xb = xrow + ox * stride * C + c;
            __m512i lo = _mm512_setzero_si512(), hi = lo;
            for (int q = 0; q < 5; q++) {
                const __m512i x0 = _mm512_cvtepu8_epi16(
                    _mm256_loadu_si256((const __m256i *)(xb + off[2 * q])));
                const __m512i x1 = q < 4 ? _mm512_cvtepu8_epi16(
                    _mm256_loadu_si256((const __m256i *)(xb + off[2 * q + 1])))
                                         : _mm512_setzero_si512();
                lo = _mm512_dpwssd_epi32(lo, _mm512_unpacklo_epi16(x0, x1), wlo[q]);
                hi = _mm512_dpwssd_epi32(hi, _mm512_unpackhi_epi16(x0, x1), whi[q]);
            }
            uint8_t *o = out + ox * ldc + c;
            qconv_dw_out16(_mm512_permutex2var_epi32(lo, idx0, hi), z0, bq0, m0, e, o);
            qconv_dw_out16(_mm512_permutex2var_epi32(lo, idx1, hi), z1, bq1, m1, e, o + 16);
        }
    }
    if (C32 < C) {
        for (long ox = 0; ox < Wo; ox++) {
            const uint8_t *xb = xrow + ox * stride * C;
            for (long c = C32; c < C; c++) {
                int32_t s = 0;
                for (int t = 0; t < 9; t++) s += (int32_t)xb[off[t] + c] * wz[t * C + c];
                acc[ox * C + c] = s;
            }
        }
        qgemm_epilogue_avx512(acc + C32, C, 0, Wo, C32, C - C32, e, out, NULL, ldc);
    }
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
