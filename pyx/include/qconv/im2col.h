/* im2col for the int8 convolution: the patch rows of a block of output pixels, depth
 * ordered (ky, kx, c), padding holding Za.  Plain C plus SSE2 (baseline x86-64). */
#ifndef QLEARN_QCONV_IM2COL_H
#define QLEARN_QCONV_IM2COL_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* memcpy for the short runs of im2col (a tap of a few channels, a kernel row of a
 * 3-channel image): 16- or 8-byte moves, the last one overlapping, instead of a libc
 * call.  SSE2 is baseline x86-64. */
static inline void qlearn_qconv_copy(uint8_t *d, const uint8_t *s, long n) {
#if defined(__SSE2__)
    if (n >= 16) {
        long i = 0;
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
        if (i < n)
            _mm_storeu_si128((__m128i *)(d + n - 16),
                             _mm_loadu_si128((const __m128i *)(s + n - 16)));
        return;
    }
#endif
    if (n >= 8) {
        uint64_t v, w;
        memcpy(&v, s, 8);
        memcpy(&w, s + n - 8, 8);
        memcpy(d, &v, 8);
        memcpy(d + n - 8, &w, 8);
        return;
    }
    for (long i = 0; i < n; i++) d[i] = s[i];
}

/* memset for the same short runs (a padding tap of a 3-channel image is 3 bytes, the
 * depth padding of a patch row 1 byte): a libc call per run took 14-17 % of a 7x7/2
 * stem convolution on an AMD Zen 3. */
static inline void qlearn_qconv_fill(uint8_t *d, uint8_t v, long n) {
    if (n >= 8) {
        uint64_t w = 0x0101010101010101ULL * v;
        long i = 0;
        for (; i + 8 <= n; i += 8) memcpy(d + i, &w, 8);
        if (i < n) memcpy(d + n - 8, &w, 8);
        return;
    }
    /* overlapping stores, no loop: GCC would turn a byte loop back into memset */
    if (n >= 4) {
        uint32_t w = 0x01010101U * v;
        memcpy(d, &w, 4);
        memcpy(d + n - 4, &w, 4);
    } else if (n >= 2) {
        uint16_t w = (uint16_t)(0x0101U * v);
        memcpy(d, &w, 2);
        memcpy(d + n - 2, &w, 2);
    } else if (n == 1) {
        d[0] = v;
    }
}

/* im2col for output pixels [r0, r1) (flattened (n, oy, ox)) into dst (r1 - r0, lda):
 * row (n, oy, ox), depth (ky, kx, c) := x[n, oy sh - ph + ky dh, ox sw - pw + kx dw,
 * c0 + c], padding := a_zp (real zero), depth padding past kh kw cg := 0.
 * x is (N, H, W, C) channels last.  With dilation 1 and a whole-channel group, a kernel
 * row inside the image is one run of kw C bytes. */
static void qlearn_qconv_im2col_rows(const uint8_t *x, long H, long W, long C, long Ho,
                                     long Wo, long c0, long cg, long lda, long kh, long kw,
                                     long sh, long sw, long ph, long pw, long dh, long dw,
                                     uint8_t a_zp, long r0, long r1, uint8_t *dst) {
    const long run = kw * cg, Kc = kh * run;
    const int whole_rows = dw == 1 && cg == C;
    long n = r0 / (Ho * Wo), oy = (r0 / Wo) % Ho, ox = r0 % Wo;
    for (long r = r0; r < r1; r++) {
        uint8_t *d = dst + (r - r0) * lda;
        const long ix0 = ox * sw - pw, iy0 = oy * sh - ph;
        const int inside_x = ix0 >= 0 && ix0 + (kw - 1) * dw < W;
        if (whole_rows && inside_x && iy0 >= 0 && iy0 + (kh - 1) * dh < H) {
            /* the whole window inside the image (most pixels): kh runs, no tests */
            const uint8_t *src = x + ((n * H + iy0) * W + ix0) * C + c0;
            for (long ky = 0; ky < kh; ky++, src += dh * W * C)
                qlearn_qconv_copy(d + ky * run, src, run);
            qlearn_qconv_fill(d + Kc, 0, lda - Kc);
            if (++ox == Wo) {
                ox = 0;
                if (++oy == Ho) { oy = 0; n++; }
            }
            continue;
        }
        for (long ky = 0; ky < kh; ky++) {
            const long iy = iy0 + ky * dh;
            uint8_t *dk = d + ky * run;
            if (iy < 0 || iy >= H) {
                qlearn_qconv_fill(dk, a_zp, run);
                continue;
            }
            const uint8_t *src = x + ((n * H + iy) * W) * C + c0;
            if (whole_rows && inside_x) {
                qlearn_qconv_copy(dk, src + ix0 * C, run);
                continue;
            }
            for (long kx = 0; kx < kw; kx++) {
                const long ix = ix0 + kx * dw;
                if (ix < 0 || ix >= W) qlearn_qconv_fill(dk + kx * cg, a_zp, cg);
                else qlearn_qconv_copy(dk + kx * cg, src + ix * C, cg);
            }
        }
        qlearn_qconv_fill(d + Kc, 0, lda - Kc);
        if (++ox == Wo) {
            ox = 0;
            if (++oy == Ho) { oy = 0; n++; }
        }
    }
}

#endif
