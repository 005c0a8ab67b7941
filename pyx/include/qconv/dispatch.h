/* Int8 convolution kernels other than the GEMM tiles (those are in ../qgemm/):
 * layout.h (NCHW -> NHWC), im2col.h (patch rows), indirect.h (the pointers of the
 * indirect convolution), depthwise_generic.h, depthwise_avx2.h, depthwise_avx512.h
 * groupwise_avx2.h and groupwise_avx512.h (the direct kernels), and here the choice between them. */
#ifndef QLEARN_QCONV_DISPATCH_H
#define QLEARN_QCONV_DISPATCH_H

#include "../qgemm/dispatch.h"
#include "layout.h"
#include "im2col.h"
#include "depthwise_generic.h"
#include "depthwise_avx2.h"
#include "depthwise_avx512.h"
#include "groupwise_avx2.h"
#include "groupwise_avx512.h"
#include "indirect.h"

/* One output row of the depthwise convolution: accumulate, then requantize (eq. (6))
 * into out (Wo, ldc).  simd: 0 plain loops, 1 AVX2, 2 AVX-512 (VNNI's vpdpwssd) with the
 * epilogue in registers; wpk is packed in blocks of qlearn_qconv_dw_blk(simd) channels;
 * off: the T tap offsets (depthwise_generic.h). */
static inline int qlearn_qconv_dw_blk(int simd) { return simd == 2 ? 32 : 16; }

static void qlearn_qconv_dw_row(int simd, const uint8_t *xp, long Wp, long C,
                                const int32_t *wz, const int16_t *wpk, const long *off,
                                int T, long oy, long Wo, int sh, int sw, int32_t *acc,
                                const qgemm_epilogue *e, uint8_t *out, long ldc) {
#if QLEARN_HAVE_X86_SIMD
    if (simd) {
        if (simd == 2) {
            qconv_dw_row_avx512(xp, Wp, C, wz, wpk, off, T, oy, Wo, sh, sw, acc, e, out,
                                ldc);
            return;
        }
        qconv_dw_row_avx2(xp, Wp, C, wz, wpk, off, T, oy, Wo, sh, sw, acc);
        qgemm_epilogue_avx2(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
        return;
    }
#endif
    (void)simd; (void)wpk;
    qconv_dw_row_generic(xp, Wp, C, wz, off, T, oy, Wo, sh, sw, acc);
    qgemm_epilogue_scalar(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
}

/* One output row of the grouped convolution of G = 4 or 8 input and output channels
 * per group: simd 2, groupwise_avx512.h with wpk its int8 weights, the epilogue in
 * registers; simd 1, groupwise_avx2.h with wpk its int16 weights (the caller checks
 * the CPU). */
static void qlearn_qconv_gw_row(int simd, const uint8_t *xp, long Wp, long C, int G,
                                const void *wpk, const long *off, int T, long oy,
                                long Wo, int sh, int sw, const qgemm_epilogue *e,
                                uint8_t *out, long ldc) {
#if QLEARN_HAVE_X86_SIMD
    if (simd == 2) {
        qconv_gw_row_avx512(xp, Wp, C, G, (const int8_t *)wpk, off, T, oy, Wo, sh, sw, e,
                            out, ldc);
        return;
    }
    qconv_gw_row_avx2(xp, Wp, C, G, (const int16_t *)wpk, off, T, oy, Wo, sh, sw, e, out,
                      ldc);
#else
    (void)simd; (void)xp; (void)Wp; (void)C; (void)G; (void)wpk; (void)off; (void)T;
    (void)oy; (void)Wo; (void)sh; (void)sw; (void)e; (void)out; (void)ldc;
#endif
}

#endif
