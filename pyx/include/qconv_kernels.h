/* Depthwise 3x3 int8 convolution, direct (no im2col), channels innermost.
 *
 * For each output pixel (oy, ox) and channel c (eq. (9) of int8.rst):
 *     C[oy, ox, c] = sum_{dy, dx < 3} (A - Za)[oy*s + dy*d, ox*s + dx*d, c] * wz[dy, dx, c]
 * with wz = W - Zw[c].  Computed as sum A wz - Za sum wz: the padded copy of A holds Za
 * in the padding (real zero), and the GEMM epilogue subtracts Za * sum_t wz[t, c] as it
 * subtracts Za colsum' for a GEMM (eq. (4)) before requantizing (eq. (6)).
 *
 * qconv_dw3x3_row_body is the plain loop (the reference, and the portable path);
 * qconv_dw3x3_row_avx2 adds pairs of taps with vpmaddwd.  Both are exact.
 */
#ifndef QLEARN_QCONV_KERNELS_H
#define QLEARN_QCONV_KERNELS_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "qgemm_kernels.h"

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

/* The weights of 16-channel blocks for vpmaddwd: taps paired (0,1) (2,3) (4,5) (6,7)
 * (8,-) and interleaved as _mm256_unpacklo/hi_epi16 interleave the activations, so that
 * one vpmaddwd adds two taps' products for 8 channels.  out: (C/16, 5, 2, 16) int16. */
static void qlearn_qconv_dw_pack(const int32_t *wz, long C, int16_t *out) {
    for (long b = 0; b + 16 <= C; b += 16)
        for (int q = 0; q < 5; q++)
            for (int h = 0; h < 2; h++)            /* unpacklo, unpackhi */
                for (int lane = 0; lane < 2; lane++)
                    for (int i = 0; i < 4; i++) {
                        long c = b + 8 * lane + 4 * h + i;
                        int16_t *d = out + (((b / 16) * 5 + q) * 2 + h) * 16 + lane * 8
                                     + 2 * i;
                        d[0] = (int16_t)wz[(2 * q) * C + c];
                        d[1] = q < 4 ? (int16_t)wz[(2 * q + 1) * C + c] : 0;
                    }
}

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
        for (long ky = 0; ky < kh; ky++) {
            const long iy = iy0 + ky * dh;
            uint8_t *dk = d + ky * run;
            if (iy < 0 || iy >= H) {
                memset(dk, a_zp, (size_t)run);
                continue;
            }
            const uint8_t *src = x + ((n * H + iy) * W) * C + c0;
            if (whole_rows && inside_x) {
                qlearn_qconv_copy(dk, src + ix0 * C, run);
                continue;
            }
            for (long kx = 0; kx < kw; kx++) {
                const long ix = ix0 + kx * dw;
                if (ix < 0 || ix >= W) memset(dk + kx * cg, a_zp, (size_t)cg);
                else qlearn_qconv_copy(dk + kx * cg, src + ix * C, cg);
            }
        }
        for (long k = Kc; k < lda; k++) d[k] = 0;
        if (++ox == Wo) {
            ox = 0;
            if (++oy == Ho) { oy = 0; n++; }
        }
    }
}

/* NCHW -> NHWC: per image, the (C, HW) byte matrix transposed to (HW, C), in 16x16
 * tiles transposed in SSE2 registers (baseline x86-64: no dispatch needed), scalar at
 * the edges.  src rows have stride HW, dst rows stride C. */
#if defined(__SSE2__)
static void qlearn_transpose_16x16(const uint8_t *src, long ls, uint8_t *dst, long ld) {
    __m128i r[16], a[16], b[16], c[16];
    for (int i = 0; i < 16; i++) r[i] = _mm_loadu_si128((const __m128i *)(src + i * ls));
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 16; h += 4) {
        b[h] = _mm_unpacklo_epi16(a[h], a[h + 2]);
        b[h + 1] = _mm_unpackhi_epi16(a[h], a[h + 2]);
        b[h + 2] = _mm_unpacklo_epi16(a[h + 1], a[h + 3]);
        b[h + 3] = _mm_unpackhi_epi16(a[h + 1], a[h + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            c[h + 2 * i] = _mm_unpacklo_epi32(b[h + i], b[h + i + 4]);
            c[h + 2 * i + 1] = _mm_unpackhi_epi32(b[h + i], b[h + i + 4]);
        }
    for (int i = 0; i < 8; i++) {
        _mm_storeu_si128((__m128i *)(dst + (2 * i) * ld), _mm_unpacklo_epi64(c[i], c[i + 8]));
        _mm_storeu_si128((__m128i *)(dst + (2 * i + 1) * ld),
                         _mm_unpackhi_epi64(c[i], c[i + 8]));
    }
}
#endif

/* Rows [p0, p1) of the (HW, C) result for one image. */
static void qlearn_qconv_nchw_to_nhwc_rows(const uint8_t *src, long C, long HW, long p0,
                                           long p1, uint8_t *dst) {
    long p = p0;
#if defined(__SSE2__)
    long C16 = C & ~15L;
    for (; p + 16 <= p1; p += 16) {
        for (long c = 0; c < C16; c += 16)
            qlearn_transpose_16x16(src + c * HW + p, HW, dst + p * C + c, C);
        for (long q = p; q < p + 16; q++)
            for (long c = C16; c < C; c++) dst[q * C + c] = src[c * HW + q];
    }
#endif
    for (; p < p1; p++)
        for (long c = 0; c < C; c++) dst[p * C + c] = src[c * HW + p];
}

/* NCHW -> NHWC for images with few channels (NumPy's transposing copy is slow there):
 * each thread converts whole rows y. */
static void qlearn_qconv_nchw_row_to_nhwc(const uint8_t *src, long C, long HW, long W,
                                          uint8_t *dst) {
    for (long x = 0; x < W; x++)
        for (long c = 0; c < C; c++) dst[x * C + c] = src[c * HW + x];
}

static void qconv_dw3x3_row_generic(const uint8_t *xp, long Wp, long C, const int32_t *wz,
                                    long oy, long Wo, int stride, int dil, int32_t *acc) {
    qconv_dw3x3_row_body(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
}

#if QLEARN_HAVE_X86_SIMD
/* AVX2: 16 channels = 16 uint8 widened to int16; taps in pairs through vpmaddwd
 * (|x| <= 255, |wz| <= 255: each pair sum fits int32 exactly). */
QGEMM_AVX2_FN static void qconv_dw3x3_row_avx2(const uint8_t *xp, long Wp, long C,
                                               const int32_t *wz, const int16_t *wpk,
                                               long oy, long Wo, int stride, int dil,
                                               int32_t *acc) {
    long C16 = C & ~15L;
    long off[10];
    for (int t = 0; t < 9; t++) off[t] = ((t / 3) * dil * Wp + (t % 3) * dil) * C;
    for (long ox = 0; ox < Wo; ox++) {
        int32_t *o = acc + ox * C;
        const uint8_t *xb = xp + (oy * stride * Wp + ox * stride) * C;
        for (long c = 0; c < C16; c += 16) {
            const __m256i *wq = (const __m256i *)(wpk + (c / 16) * 5 * 32);
            __m256i lo = _mm256_setzero_si256(), hi = lo;
            for (int q = 0; q < 5; q++) {
                __m256i x0 = _mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i *)(xb + off[2 * q] + c)));
                __m256i x1 = q < 4 ? _mm256_cvtepu8_epi16(
                    _mm_loadu_si128((const __m128i *)(xb + off[2 * q + 1] + c)))
                                   : _mm256_setzero_si256();
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(
                    _mm256_unpacklo_epi16(x0, x1), _mm256_loadu_si256(wq + 2 * q)));
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(
                    _mm256_unpackhi_epi16(x0, x1), _mm256_loadu_si256(wq + 2 * q + 1)));
            }
            /* lo holds channels 0-3 | 8-11, hi 4-7 | 12-15: put them back in order */
            _mm256_storeu_si256((__m256i *)(o + c), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(o + c + 8),
                                _mm256_permute2x128_si256(lo, hi, 0x31));
        }
        for (long c = C16; c < C; c++) {
            int32_t s = 0;
            for (int t = 0; t < 9; t++) s += (int32_t)xb[off[t] + c] * wz[t * C + c];
            o[c] = s;
        }
    }
}
#endif

/* One output row: accumulate, then requantize (eq. (6)) into out (Wo, ldc).
 * simd: 0 plain loops, 1 AVX2, 2 AVX2 kernel + AVX-512 epilogue. */
static void qlearn_qconv_dw3x3_row(int simd, const uint8_t *xp, long Wp, long C,
                                   const int32_t *wz, const int16_t *wpk, long oy, long Wo,
                                   int stride, int dil, int32_t *acc,
                                   const qgemm_epilogue *e, uint8_t *out, long ldc) {
#if QLEARN_HAVE_X86_SIMD
    if (simd) {
        qconv_dw3x3_row_avx2(xp, Wp, C, wz, wpk, oy, Wo, stride, dil, acc);
        if (simd == 2)          /* AVX-512 available: 16 outputs per step */
            qgemm_epilogue_avx512(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
        else
            qgemm_epilogue_avx2(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
        return;
    }
#endif
    (void)simd; (void)wpk;
    qconv_dw3x3_row_generic(xp, Wp, C, wz, oy, Wo, stride, dil, acc);
    qgemm_epilogue_scalar(acc, C, 0, Wo, 0, C, e, out, NULL, ldc);
}

#endif
