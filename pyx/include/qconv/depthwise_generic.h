/* Depthwise int8 convolution (one filter per channel, any kh x kw window, stride and
 * dilation), direct (no im2col), channels innermost: the plain loops (the reference,
 * and the portable path).
 *
 * For each output pixel (oy, ox) and channel c (eq. (9) of int8.rst):
 *     C[oy, ox, c] = sum_{ky < kh, kx < kw} (A - Za)[oy*sh + ky*dh, ox*sw + kx*dw, c]
 *                                           * wz[ky, kx, c]
 * with wz = W - Zw[c].  Computed as sum A wz - Za sum wz: the padded copy of A holds Za
 * in the padding (real zero), and the GEMM epilogue subtracts Za * sum_t wz[t, c] as it
 * subtracts Za colsum' for a GEMM (eq. (4)) before requantizing (eq. (6)).
 *
 * Every row kernel takes the taps as T = kh kw byte offsets into the padded rows,
 * off[t] = (ky dh Wp + kx dw) C for t = ky kw + kx, formed once per call by the driver. */
#ifndef QLEARN_QCONV_DEPTHWISE_GENERIC_H
#define QLEARN_QCONV_DEPTHWISE_GENERIC_H

#include <stdint.h>

/* xp: padded input rows (rows, Wp, C) uint8, the padding filled with Za; wz: (T, C)
 * int32 (W - Zw); acc: (Wo, C) int32 receives sum_t xp * wz for output row oy of the
 * band.  The epilogue then subtracts Za * sum_t wz[t, c] (its colsum), which gives
 * eq. (9): the padding, equal to Za, contributes (Za - Za) wz = 0.  Blocks of 16
 * channels keep their sums in registers across the taps; the channel tail runs one
 * lane at a time. */
static void qconv_dw_row_generic(const uint8_t *xp, long Wp, long C, const int32_t *wz,
                                 const long *off, int T, long oy, long Wo, int sh, int sw,
                                 int32_t *acc) {
    const uint8_t *xrow = xp + oy * sh * Wp * C;
    for (long ox = 0; ox < Wo; ox++) {
        int32_t *o = acc + ox * C;
        const uint8_t *xb = xrow + ox * sw * C;
        long c = 0;
        for (; c + 16 <= C; c += 16) {
            int32_t s[16];
            for (int l = 0; l < 16; l++) s[l] = 0;
            for (int t = 0; t < T; t++) {
                const uint8_t *x = xb + off[t] + c;
                const int32_t *w = wz + t * C + c;
                for (int l = 0; l < 16; l++) s[l] += (int32_t)x[l] * w[l];
            }
            for (int l = 0; l < 16; l++) o[c + l] = s[l];
        }
        for (; c < C; c++) {
            int32_t s = 0;
            for (int t = 0; t < T; t++) s += (int32_t)xb[off[t] + c] * wz[t * C + c];
            o[c] = s;
        }
    }
}

#endif
