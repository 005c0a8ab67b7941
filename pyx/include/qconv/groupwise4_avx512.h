/* Grouped int8 convolution with 4 input and 4 output channels per group (ResNeXt's
 * 32x4d blocks), direct, AVX512-VNNI: every lane does useful work.
 *
 * A GEMM per group would fill 4 of the 16 columns of a tile.  Here one vpdpbusd
 * takes 64 consecutive input channels of one pixel as they lie in memory: dword lane
 * l holds the 4 channels of group l of the block, and the weight vector j of a tap
 * holds in lane l the 4 weights of that group's output channel j, so the lane sums
 *     acc_j[l] += sum_{c < 4} x[pixel + tap, 4 l + c] w[4 l + j, c, tap]
 * (u8 x s8 -> s32, exact) are the outputs 4 l + j of 16 groups.  Over the taps
 * (eq. (3) with Zw = 0, the weight symmetric):
 *     C[p, 4 g + j] = sum_{t, c} x[p + off_t, 4 g + c] w[4 g + j, c, t] - Za colsum[4 g + j]
 * colsum[o] = sum_{t, c} w[o, c, t]; the padding of the band holds Za, so it adds
 * Za w and the subtraction removes it, as for the depthwise kernel (eq. (9)).  A 4x4
 * transposition of the four accumulators (within and then across 128-bit lanes) puts
 * the outputs in channel order for the epilogue (eq. (6)).
 *
 * Weights (qlearn.nn.quantized.packed_params): per block of 16 groups, per tap t and
 * output j, 64 bytes: byte 4 l + c = w[4 (16 b + l) + j, c, t], zero past the last
 * group. */
#ifndef QLEARN_QCONV_GROUPWISE4_AVX512_H
#define QLEARN_QCONV_GROUPWISE4_AVX512_H

#include <stdint.h>
#include "../qgemm/common.h"
#include "depthwise_avx512.h"

#if QLEARN_HAVE_X86_SIMD
/* Requantize 16 outputs in channel order [j, j + 16), the first n of them stored. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw4_out16(__m512i acc, const qgemm_epilogue *e,
                                                long j, long n, uint8_t *o) {
    const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    const __m512i zc = _mm512_mullo_epi32(_mm512_set1_epi32(e->a_zp),
                                          _mm512_maskz_loadu_epi32(m, e->colsum + j));
    const __m512 bq = e->bias_q ? _mm512_maskz_loadu_ps(m, e->bias_q + j)
                                : _mm512_setzero_ps();
    _mm_mask_storeu_epi8(o, m, qconv_requant16(acc, zc, bq,
                                               _mm512_maskz_loadu_ps(m, e->mult + j), e));
}

/* P (1 or 4) output pixels, ps bytes apart in the band, of the 64-channel block at xb
 * (the first of them; mx: the block's channels inside C), and their epilogue into
 * out (pixel stride ldc) from channel cb on. */
QGEMM_INLINE QGEMM_VNNI_FN void qconv_gw4_block(const uint8_t *xb, long ps, __mmask64 mx,
                                                const int8_t *wq, const long *off, int T,
                                                const int P, const qgemm_epilogue *e,
                                                long cb, long C, uint8_t *out, long ldc) {
    __m512i acc[4][4];
    for (int p = 0; p < P; p++)
        for (int j = 0; j < 4; j++) acc[p][j] = _mm512_setzero_si512();
    for (int t = 0; t < T; t++) {
        const __m512i *w = (const __m512i *)(wq + t * 256);
        const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 1);
        const __m512i w2 = _mm512_loadu_si512(w + 2), w3 = _mm512_loadu_si512(w + 3);
        for (int p = 0; p < P; p++) {
            const __m512i x = _mm512_maskz_loadu_epi8(mx, xb + p * ps + off[t]);
            acc[p][0] = _mm512_dpbusd_epi32(acc[p][0], x, w0);
            acc[p][1] = _mm512_dpbusd_epi32(acc[p][1], x, w1);
            acc[p][2] = _mm512_dpbusd_epi32(acc[p][2], x, w2);
            acc[p][3] = _mm512_dpbusd_epi32(acc[p][3], x, w3);
        }
    }
    for (int p = 0; p < P; p++) {
        /* acc_j's 128-bit lane L holds groups 4L..4L+3, output j: transpose each lane's
         * 4x4 (o_m lane L = group 4L+m's 4 outputs), then the lanes (R_L = channels
         * 16L .. 16L+15) */
        const __m512i t0 = _mm512_unpacklo_epi32(acc[p][0], acc[p][1]);
        const __m512i t1 = _mm512_unpacklo_epi32(acc[p][2], acc[p][3]);
        const __m512i t2 = _mm512_unpackhi_epi32(acc[p][0], acc[p][1]);
        const __m512i t3 = _mm512_unpackhi_epi32(acc[p][2], acc[p][3]);
        const __m512i o0 = _mm512_unpacklo_epi64(t0, t1), o1 = _mm512_unpackhi_epi64(t0, t1);
        const __m512i o2 = _mm512_unpacklo_epi64(t2, t3), o3 = _mm512_unpackhi_epi64(t2, t3);
        const __m512i u0 = _mm512_shuffle_i64x2(o0, o1, 0x44);
        const __m512i u1 = _mm512_shuffle_i64x2(o2, o3, 0x44);
        const __m512i u2 = _mm512_shuffle_i64x2(o0, o1, 0xEE);
        const __m512i u3 = _mm512_shuffle_i64x2(o2, o3, 0xEE);
        const __m512i r[4] = {_mm512_shuffle_i64x2(u0, u1, 0x88),
                              _mm512_shuffle_i64x2(u0, u1, 0xDD),
                              _mm512_shuffle_i64x2(u2, u3, 0x88),
                              _mm512_shuffle_i64x2(u2, u3, 0xDD)};
        uint8_t *o = out + p * ldc;
        for (int L = 0; L < 4 && cb + 16 * L < C; L++)
            qconv_gw4_out16(r[L], e, cb + 16 * L, C - cb - 16 * L, o + cb + 16 * L);
    }
}

/* One output row oy of the band (padded rows of Wp pixels of C channels, the padding
 * Za; off: the T tap offsets, as depthwise_generic.h's), requantized into out (Wo,
 * ldc).  wpk: the packed weights, blocks of 16 groups; 64-channel blocks are the outer
 * loop, so a block's weights stay in L1 along the row. */
QGEMM_VNNI_FN static void qconv_gw4_row_avx512(const uint8_t *xp, long Wp, long C,
                                               const int8_t *wpk, const long *off, int T,
                                               long oy, long Wo, int sh, int sw,
                                               const qgemm_epilogue *e, uint8_t *out,
                                               long ldc) {
    const uint8_t *xrow = xp + oy * sh * Wp * C;
    const long ps = sw * C;
    for (long cb = 0; cb < C; cb += 64) {
        const long nc = C - cb < 64 ? C - cb : 64;
        const __mmask64 mx = nc == 64 ? ~(__mmask64)0 : (((__mmask64)1 << nc) - 1);
        const int8_t *wq = wpk + (cb / 64) * T * 256;
        long ox = 0;
        for (; ox + 4 <= Wo; ox += 4)
            qconv_gw4_block(xrow + ox * ps + cb, ps, mx, wq, off, T, 4, e, cb, C,
                            out + ox * ldc, ldc);
        for (; ox < Wo; ox++)
            qconv_gw4_block(xrow + ox * ps + cb, ps, mx, wq, off, T, 1, e, cb, C,
                            out + ox * ldc, ldc);
    }
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
