/* Grouped int8 convolution with G = 4 or 8 input and as many output channels per
 * group (ResNeXt's 32x4d and 32x8d blocks), direct, AVX512-VNNI: every lane does
 * useful work.
 *
 * A GEMM per group would fill G of the 16 columns of a tile.  Here one vpdpbusd takes
 * 64 consecutive input channels of one pixel as they lie in memory, 64 / G groups:
 * dword lane l holds 4 channels of group l G / 4, and the weight vector j of a tap
 * holds in lane l the 4 weights of that group's output channel j for those channels,
 *     acc_j[l] += sum_{c < 4} x[pixel + tap, 4 l + c] w[G (4 l / G) + j, 4 l % G + c, tap]
 * (u8 x s8 -> s32, exact).  Over the taps and, for G = 8, the two lanes of a group
 * (eq. (3) with Zw = 0, the weight symmetric):
 *     C[p, G g + j] = sum_{t, c < G} x[p + off_t, G g + c] w[G g + j, c, t]
 *                     - Za colsum[G g + j]
 * colsum[o] = sum_{t, c} w[o, c, t]; the padding of the band holds Za, so it adds
 * Za w and the subtraction removes it, as for the depthwise kernel (eq. (9)).
 * Transpositions of the G accumulators (within and then across their 128-bit lanes)
 * put the outputs in channel order for the epilogue (eq. (6)).
 *
 * Weights (qlearn.kernels.int8.pack_groupwise): per block of 64 / G groups, per tap t
 * and output j, 64 bytes: byte G l + c = w[G (64 / G b + l) + j, c, t], zero past the
 * last group. */
#ifndef QLEARN_QCONV_GROUPWISE_AVX512_H
#define QLEARN_QCONV_GROUPWISE_AVX512_H

#include <stdint.h>
#include "../qgemm/common.h"
#include "depthwise_avx512.h"

#if QLEARN_HAVE_X86_SIMD
/* Requantize 16 outputs in channel order [j, j + 16), the first n of them stored. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw_out16(__m512i acc, const qgemm_epilogue *e,
                                                long j, long n, uint8_t *o) {
    const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    const __m512i zc = _mm512_mullo_epi32(_mm512_set1_epi32(e->a_zp),
                                          _mm512_maskz_loadu_epi32(m, e->colsum + j));
    const __m512 bq = e->bias_q ? _mm512_maskz_loadu_ps(m, e->bias_q + j)
                                : _mm512_setzero_ps();
    _mm_mask_storeu_epi8(o, m, qconv_requant16(acc, zc, bq,
                                               _mm512_maskz_loadu_ps(m, e->mult + j), e));
}

/* r[L] = lane L of o0, o1, o2, o3 (a 4x4 transposition of 128-bit lanes). */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw_lanes(__m512i o0, __m512i o1, __m512i o2,
                                               __m512i o3, __m512i *r) {
    const __m512i u0 = _mm512_shuffle_i64x2(o0, o1, 0x44);    /* o0.0 o0.1 o1.0 o1.1 */
    const __m512i u1 = _mm512_shuffle_i64x2(o2, o3, 0x44);
    const __m512i u2 = _mm512_shuffle_i64x2(o0, o1, 0xEE);    /* o0.2 o0.3 o1.2 o1.3 */
    const __m512i u3 = _mm512_shuffle_i64x2(o2, o3, 0xEE);
    r[0] = _mm512_shuffle_i64x2(u0, u1, 0x88);                /* o0.0 o1.0 o2.0 o3.0 */
    r[1] = _mm512_shuffle_i64x2(u0, u1, 0xDD);
    r[2] = _mm512_shuffle_i64x2(u2, u3, 0x88);
    r[3] = _mm512_shuffle_i64x2(u2, u3, 0xDD);
}

/* The 64 outputs of one pixel in channel order, from G = 4 accumulators acc[j] whose
 * 128-bit lane L holds groups 4L..4L+3's output j: a 4x4 transposition within each
 * lane (o_m lane L = group 4L+m's outputs), then one of the lanes (r[L] = channels
 * 16L .. 16L+15). */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw_order4(const __m512i *acc, __m512i *r) {
    const __m512i t0 = _mm512_unpacklo_epi32(acc[0], acc[1]);
    const __m512i t1 = _mm512_unpacklo_epi32(acc[2], acc[3]);
    const __m512i t2 = _mm512_unpackhi_epi32(acc[0], acc[1]);
    const __m512i t3 = _mm512_unpackhi_epi32(acc[2], acc[3]);
    qconv_gw_lanes(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1),
                   _mm512_unpacklo_epi64(t2, t3), _mm512_unpackhi_epi64(t2, t3), r);
}

/* The same from G = 8 accumulators, whose lane 2l + h holds the sum over input channels
 * 4h .. 4h+3 of group l's output j: each pair of lanes added (s[j/2] lane L = groups
 * 2L, 2L+1, outputs j, j+1), then the outputs of each group gathered (lane L of x: group
 * 2L's outputs 0-3, of z 4-7, of y and v group 2L+1's), then the lanes. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw_order8(const __m512i *acc, __m512i *r) {
    __m512i s[4];
    for (int i = 0; i < 4; i++) {
        const __m512i u = _mm512_unpacklo_epi32(acc[2 * i], acc[2 * i + 1]);
        const __m512i v = _mm512_unpackhi_epi32(acc[2 * i], acc[2 * i + 1]);
        s[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(u, v), _mm512_unpackhi_epi64(u, v));
    }
    qconv_gw_lanes(_mm512_unpacklo_epi64(s[0], s[1]), _mm512_unpacklo_epi64(s[2], s[3]),
                   _mm512_unpackhi_epi64(s[0], s[1]), _mm512_unpackhi_epi64(s[2], s[3]), r);
}

/* P output pixels, ps bytes apart in the band, of the 64-channel block at xb (the
 * first of them; mx: the block's channels inside C), G (4 or 8) channels per group,
 * and their epilogue into out (pixel stride ldc) from channel cb on.  P = 4 for G = 4,
 * 2 for G = 8 (16 accumulators), or 1 for the row's last pixels. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw_block(const uint8_t *xb, long ps, __mmask64 mx,
                                               const int8_t *wq, const long *off, int T,
                                               const int G, const int P,
                                               const qgemm_epilogue *e, long cb, long C,
                                               uint8_t *out, long ldc) {
    __m512i acc[4][8];
    for (int p = 0; p < P; p++)
        for (int j = 0; j < G; j++) acc[p][j] = _mm512_setzero_si512();
    for (int t = 0; t < T; t++) {
        const __m512i *wt = (const __m512i *)(wq + t * G * 64);
        __m512i w[8];
        for (int j = 0; j < G; j++) w[j] = _mm512_loadu_si512(wt + j);
        for (int p = 0; p < P; p++) {
            const __m512i x = _mm512_maskz_loadu_epi8(mx, xb + p * ps + off[t]);
            for (int j = 0; j < G; j++) acc[p][j] = _mm512_dpbusd_epi32(acc[p][j], x, w[j]);
        }
    }
    for (int p = 0; p < P; p++) {
        __m512i r[4];
        if (G == 4) qconv_gw_order4(acc[p], r);
        else qconv_gw_order8(acc[p], r);
        uint8_t *o = out + p * ldc;
        for (int L = 0; L < 4 && cb + 16 * L < C; L++)
            qconv_gw_out16(r[L], e, cb + 16 * L, C - cb - 16 * L, o + cb + 16 * L);
    }
}

QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw_row_body(const uint8_t *xrow, long C,
                                                  const int8_t *wpk, const long *off,
                                                  int T, const int G, long Wo, int sw,
                                                  const qgemm_epilogue *e, uint8_t *out,
                                                  long ldc) {
    const long ps = sw * C;
    const int P = G == 4 ? 4 : 2;
    for (long cb = 0; cb < C; cb += 64) {
        const long nc = C - cb < 64 ? C - cb : 64;
        const __mmask64 mx = nc == 64 ? ~(__mmask64)0 : (((__mmask64)1 << nc) - 1);
        const int8_t *wq = wpk + (cb / 64) * T * G * 64;
        long ox = 0;
        for (; ox + P <= Wo; ox += P)
            qconv_gw_block(xrow + ox * ps + cb, ps, mx, wq, off, T, G, P, e, cb, C,
                           out + ox * ldc, ldc);
        for (; ox < Wo; ox++)
            qconv_gw_block(xrow + ox * ps + cb, ps, mx, wq, off, T, G, 1, e, cb, C,
                           out + ox * ldc, ldc);
    }
}

/* One output row oy of the band (padded rows of Wp pixels of C channels, the padding
 * Za; off: the T tap offsets, as depthwise_generic.h's), G = 4 or 8 channels per
 * group, requantized into out (Wo, ldc).  wpk: the packed weights; 64-channel blocks
 * are the outer loop, so a block's weights stay in L1 along the row. */
QGEMM_VNNI_FN static void qconv_gw_row_avx512(const uint8_t *xp, long Wp, long C, int G,
                                              const int8_t *wpk, const long *off, int T,
                                              long oy, long Wo, int sh, int sw,
                                              const qgemm_epilogue *e, uint8_t *out,
                                              long ldc) {
    const uint8_t *xrow = xp + oy * sh * Wp * C;
    if (G == 4)
        qconv_gw_row_body(xrow, C, wpk, off, T, 4, Wo, sw, e, out, ldc);
    else
        qconv_gw_row_body(xrow, C, wpk, off, T, 8, Wo, sw, e, out, ldc);
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
