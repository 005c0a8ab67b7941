/* Depthwise 3x3 int8 convolution, direct (no im2col), channels innermost: the plain
 * loops (the reference, and the portable path).
 *
 * For each output pixel (oy, ox) and channel c (eq. (9) of int8.rst):
 *     C[oy, ox, c] = sum_{dy, dx < 3} (A - Za)[oy*s + dy*d, ox*s + dx*d, c] * wz[dy, dx, c]
 * with wz = W - Zw[c].  Computed as sum A wz - Za sum wz: the padded copy of A holds Za
 * in the padding (real zero), and the GEMM epilogue subtracts Za * sum_t wz[t, c] as it
 * subtracts Za colsum' for a GEMM (eq. (4)) before requantizing (eq. (6)). */
#ifndef QLEARN_QCONV_DEPTHWISE3X3_GENERIC_H
#define QLEARN_QCONV_DEPTHWISE3X3_GENERIC_H

#include <stdint.h>

/* xp: padded input (Hp, Wp, C) uint8, the padding filled with Za; wz: (9, C) int32
 * (W - Zw); acc: (Wo, C) int32 receives sum_t xp * wz.  The epilogue then subtracts
 * Za * sum_t wz[t, c] (its colsum), which gives eq. (9): the padding, equal to Za,
 * contributes (Za - Za) wz = 0.  Blocks of 16 channels keep their sums in registers
 * across the 9 taps; the channel tail runs one lane at a time. */
static inline __attribute__((always_inline)) void qconv_dw3x3_row_body(
        const uint8_t *xp, long Wp, long C, const int32_t *wz, long oy, long Wo,
        int stride, int dil, int32_t *acc) {
    for (long ox = 0; ox < Wo; ox++) {
        int32_t *o = acc + ox * C;
        const uint8_t *xb = xp + (oy * stride * Wp + ox * stride) * C;
        long c = 0;
        for (; c + 16 <= C; c += 16) {
            int32_t s[16];
            for (int l = 0; l < 16; l++) s[l] = 0;
            for (int dy = 0; dy < 3; dy++)
                for (int dx = 0; dx < 3; dx++) {
                    const uint8_t *x = xb + (dy * dil * Wp + dx * dil) * C + c;
                    const int32_t *w = wz + (dy * 3 + dx) * C + c;
                    for (int l = 0; l < 16; l++) s[l] += (int32_t)x[l] * w[l];
                }
            for (int l = 0; l < 16; l++) o[c + l] = s[l];
        }
        for (; c < C; c++) {
            int32_t s = 0;
            for (int dy = 0; dy < 3; dy++)
                for (int dx = 0; dx < 3; dx++)
                    s += (int32_t)xb[(dy * dil * Wp + dx * dil) * C + c]
                         * wz[(dy * 3 + dx) * C + c];
            o[c] = s;
        }
    }
}

static void qconv_dw3x3_row_generic(const uint8_t *xp, long Wp, long C, const int32_t *wz,
                                    long oy, long Wo, int stride, int dil, int32_t *acc) {
    qconv_dw3x3_row_body(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
}

#endif
