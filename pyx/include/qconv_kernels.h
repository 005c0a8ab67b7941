/* Depthwise 3x3 int8 convolution, direct (no im2col), channels innermost.
 *
 * For each output pixel (oy, ox) and channel c (eq. (9) of int8.rst):
 *     C[oy, ox, c] = sum_{dy, dx < 3} xz[oy*s + dy*d, ox*s + dx*d, c] * wz[dy, dx, c]
 * where xz = A - Za (int16, zero padded: the padding *is* real zero) and
 * wz = W - Zw[c] (int16).  Both differences are exact in int16 and each product fits in
 * int32, so the sum is the exact eq. (3) restricted to one channel.  The int32 row of
 * Wo x C accumulators is then requantized by the GEMM epilogue (eq. (6)).
 *
 * The loop is written once (qconv_dw3x3_row_body) and compiled twice: for baseline
 * x86-64 (the reference / portable path) and with target("avx2,fma"), where GCC
 * vectorizes the channel loop; both compute the same integers.
 */
#ifndef QLEARN_QCONV_KERNELS_H
#define QLEARN_QCONV_KERNELS_H

#include <stdint.h>
#include "qgemm_kernels.h"

/* xp: padded input (Hp, Wp, C) int16; wz: (9, C) int16; acc: (Wo, C) int32 */
static inline __attribute__((always_inline)) void qconv_dw3x3_row_body(
        const int16_t *xp, long Wp, long C, const int16_t *wz, long oy, long Wo,
        int stride, int dil, int32_t *acc) {
    for (long ox = 0; ox < Wo; ox++) {
        int32_t *o = acc + ox * C;
        for (long c = 0; c < C; c++) o[c] = 0;
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++) {
                const int16_t *x = xp + ((oy * stride + dy * dil) * Wp
                                         + ox * stride + dx * dil) * C;
                const int16_t *w = wz + (dy * 3 + dx) * C;
                for (long c = 0; c < C; c++) o[c] += (int32_t)x[c] * (int32_t)w[c];
            }
    }
}

static void qconv_dw3x3_row_generic(const int16_t *xp, long Wp, long C, const int16_t *wz,
                                    long oy, long Wo, int stride, int dil, int32_t *acc) {
    qconv_dw3x3_row_body(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
}

/* One output row: accumulate, then requantize (eq. (6)) into out (Wo, ldc). */
static void qlearn_qconv_dw3x3_row(int simd, const int16_t *xp, long Wp, long C,
                                   const int16_t *wz, long oy, long Wo, int stride, int dil,
                                   int32_t *acc, const qgemm_epilogue *e, uint8_t *out,
                                   long ldc);

#if QLEARN_HAVE_X86_SIMD
QGEMM_AVX2_FN static void qconv_dw3x3_row_avx2(const int16_t *xp, long Wp, long C,
                                               const int16_t *wz, long oy, long Wo,
                                               int stride, int dil, int32_t *acc) {
    qconv_dw3x3_row_body(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
}
#endif

static void qlearn_qconv_dw3x3_row(int simd, const int16_t *xp, long Wp, long C,
                                   const int16_t *wz, long oy, long Wo, int stride, int dil,
                                   int32_t *acc, const qgemm_epilogue *e, uint8_t *out,
                                   long ldc) {
#if QLEARN_HAVE_X86_SIMD
    if (simd) {
        qconv_dw3x3_row_avx2(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
        qgemm_epilogue_avx2(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
        return;
    }
#endif
    (void)simd;
    qconv_dw3x3_row_generic(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
    qgemm_epilogue_scalar(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
}

#endif
