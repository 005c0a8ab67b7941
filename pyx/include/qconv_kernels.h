/* Depthwise 3x3 int8 convolution, direct (no im2col), channels innermost.
 *
 * For each output pixel (oy, ox) and channel c (eq. (9) of int8.rst):
 *     C[oy, ox, c] = sum_{dy, dx < 3} xz[oy*s + dy*d, ox*s + dx*d, c] * wz[dy, dx, c]
 * where xz = A - Za (int16, zero padded: the padding *is* real zero) and
 * wz = W - Zw[c] (int32).  Both differences are exact in int16 and each product fits in
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

/* xp: padded input (Hp, Wp, C) int16; wz: (9, C) int32; acc: (Wo, C) int32.
 * Blocks of 16 channels keep their 16 sums in registers across the 9 taps (GCC
 * vectorizes the fixed-length lane loops); the channel tail runs one lane at a time. */
static inline __attribute__((always_inline)) void qconv_dw3x3_row_body(
        const int16_t *xp, long Wp, long C, const int32_t *wz, long oy, long Wo,
        int stride, int dil, int32_t *acc) {
    for (long ox = 0; ox < Wo; ox++) {
        int32_t *o = acc + ox * C;
        const int16_t *xb = xp + (oy * stride * Wp + ox * stride) * C;
        long c = 0;
        for (; c + 16 <= C; c += 16) {
            int32_t s[16];
            for (int l = 0; l < 16; l++) s[l] = 0;
            for (int dy = 0; dy < 3; dy++)
                for (int dx = 0; dx < 3; dx++) {
                    const int16_t *x = xb + (dy * dil * Wp + dx * dil) * C + c;
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

/* memcpy for the short runs of im2col (a tap of a few channels, a kernel row of a
 * 3-channel image): 8-byte moves, the last one overlapping, instead of a libc call. */
static inline void qlearn_qconv_copy(uint8_t *d, const uint8_t *s, long n) {
    if (n >= 8) {
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            memcpy(d + i, &v, 8);
        }
        if (i < n) {
            uint64_t v;
            memcpy(&v, s + n - 8, 8);
            memcpy(d + n - 8, &v, 8);
        }
        return;
    }
    for (long i = 0; i < n; i++) d[i] = s[i];
}

/* NCHW -> NHWC for images with few channels (NumPy's transposing copy is slow there):
 * each thread converts whole rows y. */
static void qlearn_qconv_nchw_row_to_nhwc(const uint8_t *src, long C, long HW, long W,
                                          uint8_t *dst) {
    for (long x = 0; x < W; x++)
        for (long c = 0; c < C; c++) dst[x * C + c] = src[c * HW + x];
}

/* One input row into the padded int16 copy: dst[i] = src[i] - Za (eq. (9)). */
static void qlearn_qconv_widen_row(const uint8_t *src, long n, int32_t a_zp,
                                   int16_t *dst) {
    for (long i = 0; i < n; i++) dst[i] = (int16_t)((int32_t)src[i] - a_zp);
}

static void qconv_dw3x3_row_generic(const int16_t *xp, long Wp, long C, const int32_t *wz,
                                    long oy, long Wo, int stride, int dil, int32_t *acc) {
    qconv_dw3x3_row_body(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
}

/* One output row: accumulate, then requantize (eq. (6)) into out (Wo, ldc). */
static void qlearn_qconv_dw3x3_row(int simd, const int16_t *xp, long Wp, long C,
                                   const int32_t *wz, long oy, long Wo, int stride, int dil,
                                   int32_t *acc, const qgemm_epilogue *e, uint8_t *out,
                                   long ldc);

#if QLEARN_HAVE_X86_SIMD
QGEMM_AVX2_FN static void qconv_dw3x3_row_avx2(const int16_t *xp, long Wp, long C,
                                               const int32_t *wz, long oy, long Wo,
                                               int stride, int dil, int32_t *acc) {
    qconv_dw3x3_row_body(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
}
#endif

static void qlearn_qconv_dw3x3_row(int simd, const int16_t *xp, long Wp, long C,
                                   const int32_t *wz, long oy, long Wo, int stride, int dil,
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
