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
 * the operations of qgemm_vnni_out (eq. (6), bit-exact with the scalar epilogue).
 * Up to 4 output pixels are summed together (independent vpdpwssd chains).  The
 * channel tail (C % 32) runs a 16-channel block on ymm registers the same way, and the
 * last C % 16 channels one lane at a time, then qgemm_epilogue_avx512.
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

/* The most output pixels summed together (see qconv_dw_pixels_avx512). */
#define QCONV_DW_PIXELS 4

/* The sums of P output pixels at xb, xb + step, ... of the 32 channels whose pairs wq
 * (or, with keep, the registers w) hold, requantized into o, o + ldc, ...  Each pixel
 * and half is one chain of Q dependent vpdpwssd (13 for a 5x5 window): a lone pixel's
 * 2 chains wait on the instruction's latency, P pixels keep 2 P in flight, and each
 * weight pair, loaded once, serves the P pixels.  P and T are constants where this is
 * inlined. */
/* A 32-channel block's epilogue constants, kept in registers along the row: the
 * vpermt2d indices that put lo | hi back in channel order, Za colsum, bias and mult of
 * channels [c, c+16) (0) and [c+16, c+32) (1). */
typedef struct {
    __m512i idx0, idx1, z0, z1;
    __m512 bq0, bq1, m0, m1;
} qconv_dw_consts;

QGEMM_INLINE QGEMM_VNNI_FN void qconv_dw_pixels_avx512(const uint8_t *xb, long step,
                                                       const int16_t *wq, const __m512i *w,
                                                       const int keep, const long *off,
                                                       const int T, const int P,
                                                       const qconv_dw_consts *k,
                                                       const qgemm_epilogue *e,
                                                       uint8_t *o, long ldc) {
    __m512i lo[QCONV_DW_PIXELS], hi[QCONV_DW_PIXELS];
    for (int p = 0; p < P; p++) lo[p] = hi[p] = _mm512_setzero_si512();
    for (int q = 0; q < (T + 1) / 2; q++) {
        const __m512i wl = keep ? w[2 * q] : _mm512_loadu_si512(wq + 2 * q * 32);
        const __m512i wh = keep ? w[2 * q + 1] : _mm512_loadu_si512(wq + (2 * q + 1) * 32);
        for (int p = 0; p < P; p++) {
            const uint8_t *x = xb + p * step;
            const __m512i x0 = _mm512_cvtepu8_epi16(
                _mm256_loadu_si256((const __m256i *)(x + off[2 * q])));
            const __m512i x1 = 2 * q + 1 < T ? _mm512_cvtepu8_epi16(
                _mm256_loadu_si256((const __m256i *)(x + off[2 * q + 1])))
                                             : _mm512_setzero_si512();
            /* unpacklo/hi leave channels 0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31 */
            lo[p] = _mm512_dpwssd_epi32(lo[p], _mm512_unpacklo_epi16(x0, x1), wl);
            hi[p] = _mm512_dpwssd_epi32(hi[p], _mm512_unpackhi_epi16(x0, x1), wh);
        }
    }
    for (int p = 0; p < P; p++) {
        qconv_dw_out16(_mm512_permutex2var_epi32(lo[p], k->idx0, hi[p]), k->z0, k->bq0,
                       k->m0, e, o + p * ldc);
        qconv_dw_out16(_mm512_permutex2var_epi32(lo[p], k->idx1, hi[p]), k->z1, k->bq1,
                       k->m1, e, o + p * ldc + 16);
    }
}

/* One 32-channel block [c, c+32) of an output row (see qconv_dw_row_avx512): 4 pixels
 * at a time when the weights are read from L1, 2 when they stay in registers (4 would
 * spill them), then the rest.  T is a constant where this is inlined for the 3x3
 * window, so that its pairs stay in registers. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_dw_block_avx512(const uint8_t *xrow, long C, long c,
                                                      const int16_t *wq, const long *off,
                                                      const int T, long Wo, int sw,
                                                      const qgemm_epilogue *e,
                                                      uint8_t *out, long ldc) {
    const int Q = (T + 1) / 2, keep = Q <= QCONV_DW_KEEP;
    __m512i w[2 * QCONV_DW_KEEP];
    if (keep)
        for (int q = 0; q < 2 * Q; q++) w[q] = _mm512_loadu_si512(wq + q * 32);
    const __m512i za = _mm512_set1_epi32(e->a_zp);
    qconv_dw_consts k;
    k.idx0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    k.idx1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    k.z0 = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + c));
    k.z1 = _mm512_mullo_epi32(za, _mm512_loadu_si512(e->colsum + c + 16));
    k.bq0 = e->bias_q ? _mm512_loadu_ps(e->bias_q + c) : _mm512_setzero_ps();
    k.bq1 = e->bias_q ? _mm512_loadu_ps(e->bias_q + c + 16) : _mm512_setzero_ps();
    k.m0 = _mm512_loadu_ps(e->mult + c);
    k.m1 = _mm512_loadu_ps(e->mult + c + 16);
    const long step = (long)sw * C;
    const uint8_t *xb = xrow + c;
    uint8_t *o = out + c;
    long ox = 0;
    if (!keep)
        for (; ox + QCONV_DW_PIXELS <= Wo; ox += QCONV_DW_PIXELS)
            qconv_dw_pixels_avx512(xb + ox * step, step, wq, w, keep, off, T,
                                   QCONV_DW_PIXELS, &k, e, o + ox * ldc, ldc);
    for (; ox + 2 <= Wo; ox += 2)
        qconv_dw_pixels_avx512(xb + ox * step, step, wq, w, keep, off, T, 2, &k, e,
                               o + ox * ldc, ldc);
    if (ox < Wo)
        qconv_dw_pixels_avx512(xb + ox * step, step, wq, w, keep, off, T, 1, &k, e,
                               o + ox * ldc, ldc);
}

/* The 16-channel block [c, c+16) after the 32-channel ones (C % 32 >= 16): the same sums
 * on ymm registers (AVX512-VL vpdpwssd over the AVX2 layout, (Q, 2, 16)), P pixels at
 * a time, requantized from the registers. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_dw_block16_avx512(const uint8_t *xrow, long C, long c,
                                                        const int16_t *wq, const long *off,
                                                        const int T, long Wo, int sw,
                                                        const qgemm_epilogue *e,
                                                        uint8_t *out, long ldc) {
    enum { P = QCONV_DW_PIXELS };
    /* lo | hi hold channels 0-3 8-11 | 4-7 12-15 */
    const __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7,
                                          12, 13, 14, 15);
    const __m512i z = _mm512_mullo_epi32(_mm512_set1_epi32(e->a_zp),
                                         _mm512_loadu_si512(e->colsum + c));
    const __m512 bq = e->bias_q ? _mm512_loadu_ps(e->bias_q + c) : _mm512_setzero_ps();
    const __m512 m = _mm512_loadu_ps(e->mult + c);
    const long step = (long)sw * C;
    for (long ox = 0; ox < Wo; ox += P) {
        const int np = Wo - ox < P ? (int)(Wo - ox) : P;
        __m256i lo[P], hi[P];
        for (int p = 0; p < P; p++) lo[p] = hi[p] = _mm256_setzero_si256();
        for (int q = 0; q < (T + 1) / 2; q++) {
            const __m256i wl = _mm256_loadu_si256((const __m256i *)(wq + 2 * q * 16));
            const __m256i wh = _mm256_loadu_si256((const __m256i *)(wq + (2 * q + 1) * 16));
            for (int p = 0; p < P; p++) {
                if (p >= np) break;
                const uint8_t *x = xrow + (ox + p) * step + c;
                const __m256i x0 = _mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i *)(x + off[2 * q])));
                const __m256i x1 = 2 * q + 1 < T ? _mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i *)(x + off[2 * q + 1])))
                                                 : _mm256_setzero_si256();
                lo[p] = _mm256_dpwssd_epi32(lo[p], _mm256_unpacklo_epi16(x0, x1), wl);
                hi[p] = _mm256_dpwssd_epi32(hi[p], _mm256_unpackhi_epi16(x0, x1), wh);
            }
        }
        for (int p = 0; p < np; p++) {
            const __m512i acc = _mm512_permutexvar_epi32(
                idx, _mm512_inserti64x4(_mm512_castsi256_si512(lo[p]), hi[p], 1));
            qconv_dw_out16(acc, z, bq, m, e, out + (ox + p) * ldc + c);
        }
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
    const long C16 = C & ~15L;
    if (C16 > C32)
        qconv_dw_block16_avx512(xrow, C, C32, wpk + C32 * Q * 2, off, T, Wo, sw, e, out,
                                ldc);
    if (C16 < C) {
        /* the last C % 16 channels, one lane at a time, then the epilogue on them */
        for (long ox = 0; ox < Wo; ox++) {
            const uint8_t *xb = xrow + ox * sw * C;
            for (long c = C16; c < C; c++) {
                int32_t s = 0;
                for (int t = 0; t < T; t++) s += (int32_t)xb[off[t] + c] * wz[t * C + c];
                acc[ox * C + c] = s;
            }
        }
        qgemm_epilogue_avx512(acc + C16, C, 0, Wo, C16, C - C16, e, out, NULL, ldc);
    }
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
