/* Layout conversion of uint8 activations, NCHW -> NHWC (channels last), the layout
 * every int8 convolution kernel reads.  SSE2 (baseline x86-64), and for three channels
 * an SSSE3 shuffle chosen at run time. */
#ifndef QLEARN_QCONV_LAYOUT_H
#define QLEARN_QCONV_LAYOUT_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "../qgemm/common.h"

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

#if QLEARN_HAVE_X86_SIMD
/* The same network on 16 x 32 bytes: each 128-bit lane of the ymm registers transposes
 * its own 16 x 16 block (the unpacks work within lanes), lane 0 pixels 0-15 and lane 1
 * pixels 16-31, so half the instructions per byte. */
QGEMM_AVX2_FN static void qlearn_transpose_16x32_avx2(const uint8_t *src, long ls,
                                                      uint8_t *dst, long ld) {
    __m256i r[16], a[16], b[16], c[16];
    for (int i = 0; i < 16; i++) r[i] = _mm256_loadu_si256((const __m256i *)(src + i * ls));
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm256_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm256_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 16; h += 4) {
        b[h] = _mm256_unpacklo_epi16(a[h], a[h + 2]);
        b[h + 1] = _mm256_unpackhi_epi16(a[h], a[h + 2]);
        b[h + 2] = _mm256_unpacklo_epi16(a[h + 1], a[h + 3]);
        b[h + 3] = _mm256_unpackhi_epi16(a[h + 1], a[h + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            c[h + 2 * i] = _mm256_unpacklo_epi32(b[h + i], b[h + i + 4]);
            c[h + 2 * i + 1] = _mm256_unpackhi_epi32(b[h + i], b[h + i + 4]);
        }
    for (int i = 0; i < 8; i++) {
        const __m256i lo = _mm256_unpacklo_epi64(c[i], c[i + 8]);
        const __m256i hi = _mm256_unpackhi_epi64(c[i], c[i + 8]);
        _mm_storeu_si128((__m128i *)(dst + (2 * i) * ld), _mm256_castsi256_si128(lo));
        _mm_storeu_si128((__m128i *)(dst + (2 * i + 1) * ld), _mm256_castsi256_si128(hi));
        _mm_storeu_si128((__m128i *)(dst + (16 + 2 * i) * ld),
                         _mm256_extracti128_si256(lo, 1));
        _mm_storeu_si128((__m128i *)(dst + (17 + 2 * i) * ld),
                         _mm256_extracti128_si256(hi, 1));
    }
}
#endif

/* Rows [p0, p1) of the (HW, C) result for one image, pixel q at dst + q ld (ld >= C:
 * C channels of wider pixels): 32 pixels a step with AVX2, then 16 with SSE2, then one
 * at a time. */
static void qlearn_qconv_nchw_to_nhwc_rows_ld(const uint8_t *src, long C, long HW, long p0,
                                              long p1, uint8_t *dst, long ld) {
    long p = p0;
#if QLEARN_HAVE_X86_SIMD
    static int has_avx2 = -1;     /* the CPU does not change: ask once */
    if (has_avx2 < 0) has_avx2 = qlearn_cpu_has_avx2();
    if (has_avx2 && C >= 16) {
        /* 16 planes at a time along the whole range: 16 streams of reads, which the
         * hardware prefetchers follow (all C planes at once are too many streams) */
        const long C16 = C & ~15L, pe = p0 + ((p1 - p0) & ~31L);
        for (long c = 0; c < C16; c += 16)
            for (long q = p0; q < pe; q += 32)
                qlearn_transpose_16x32_avx2(src + c * HW + q, HW, dst + q * ld + c, ld);
        for (long q = p0; q < pe; q++)
            for (long c = C16; c < C; c++) dst[q * ld + c] = src[c * HW + q];
        p = pe;
    }
#endif
#if defined(__SSE2__)
    long C16 = C & ~15L;
    for (; p + 16 <= p1; p += 16) {
        for (long c = 0; c < C16; c += 16)
            qlearn_transpose_16x16(src + c * HW + p, HW, dst + p * ld + c, ld);
        for (long q = p; q < p + 16; q++)
            for (long c = C16; c < C; c++) dst[q * ld + c] = src[c * HW + q];
    }
    if (p < p1 && p1 - p0 >= 16 && C16) {
        /* the last pixels (a row of 56 ends in 8): one more tile ending at p1, which
         * rewrites some pixels already done with the same bytes, not a scalar loop */
        for (long c = 0; c < C16; c += 16)
            qlearn_transpose_16x16(src + c * HW + p1 - 16, HW, dst + (p1 - 16) * ld + c,
                                   ld);
        for (long q = p; q < p1; q++)
            for (long c = C16; c < C; c++) dst[q * ld + c] = src[c * HW + q];
        p = p1;
    }
#endif
    for (; p < p1; p++)
        for (long c = 0; c < C; c++) dst[p * ld + c] = src[c * HW + p];
}

/* The same with the pixels C bytes apart: the (HW, C) channels-last rows. */
static void qlearn_qconv_nchw_to_nhwc_rows(const uint8_t *src, long C, long HW, long p0,
                                           long p1, uint8_t *dst) {
    qlearn_qconv_nchw_to_nhwc_rows_ld(src, C, HW, p0, p1, dst, C);
}

#if QLEARN_HAVE_X86_SIMD
/* Three channels (an RGB image), 16 pixels at a time: the planes' 16-byte rows are
 * interleaved into 48 bytes by pshufb (SSSE3, part of the AVX2 target), each output
 * vector or-ing the bytes it takes from each plane (the mask index 0x80 gives 0). */
QGEMM_AVX2_FN static long qlearn_qconv_rgb_to_nhwc_ssse3(const uint8_t *src, long HW,
                                                         long W, uint8_t *dst) {
#define QLEARN_M(a) _mm_setr_epi8(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7), a(8), \
                                  a(9), a(10), a(11), a(12), a(13), a(14), a(15))
    /* output byte i of vector v is pixel (16 v + i) / 3, channel (16 v + i) % 3 */
#define QLEARN_SEL(v, c, i) (((16 * (v) + (i)) % 3 == (c)) ? (16 * (v) + (i)) / 3 : 0x80)
#define QLEARN_A00(i) QLEARN_SEL(0, 0, i)
#define QLEARN_A01(i) QLEARN_SEL(0, 1, i)
#define QLEARN_A02(i) QLEARN_SEL(0, 2, i)
#define QLEARN_A10(i) QLEARN_SEL(1, 0, i)
#define QLEARN_A11(i) QLEARN_SEL(1, 1, i)
#define QLEARN_A12(i) QLEARN_SEL(1, 2, i)
#define QLEARN_A20(i) QLEARN_SEL(2, 0, i)
#define QLEARN_A21(i) QLEARN_SEL(2, 1, i)
#define QLEARN_A22(i) QLEARN_SEL(2, 2, i)
    const __m128i m00 = QLEARN_M(QLEARN_A00), m01 = QLEARN_M(QLEARN_A01),
                  m02 = QLEARN_M(QLEARN_A02), m10 = QLEARN_M(QLEARN_A10),
                  m11 = QLEARN_M(QLEARN_A11), m12 = QLEARN_M(QLEARN_A12),
                  m20 = QLEARN_M(QLEARN_A20), m21 = QLEARN_M(QLEARN_A21),
                  m22 = QLEARN_M(QLEARN_A22);
    long x = 0;
    for (; x + 16 <= W; x += 16) {
        const __m128i r = _mm_loadu_si128((const __m128i *)(src + x));
        const __m128i g = _mm_loadu_si128((const __m128i *)(src + HW + x));
        const __m128i b = _mm_loadu_si128((const __m128i *)(src + 2 * HW + x));
        /* pshufb indexes 0-15 within each plane's vector: pixel index mod 16 */
        __m128i o0 = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, m00),
                                               _mm_shuffle_epi8(g, m01)),
                                  _mm_shuffle_epi8(b, m02));
        __m128i o1 = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, m10),
                                               _mm_shuffle_epi8(g, m11)),
                                  _mm_shuffle_epi8(b, m12));
        __m128i o2 = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, m20),
                                               _mm_shuffle_epi8(g, m21)),
                                  _mm_shuffle_epi8(b, m22));
        _mm_storeu_si128((__m128i *)(dst + 3 * x), o0);
        _mm_storeu_si128((__m128i *)(dst + 3 * x + 16), o1);
        _mm_storeu_si128((__m128i *)(dst + 3 * x + 32), o2);
    }
#undef QLEARN_M
#undef QLEARN_SEL
#undef QLEARN_A00
#undef QLEARN_A01
#undef QLEARN_A02
#undef QLEARN_A10
#undef QLEARN_A11
#undef QLEARN_A12
#undef QLEARN_A20
#undef QLEARN_A21
#undef QLEARN_A22
    return x;
}
#endif

/* NCHW -> NHWC for images with few channels (NumPy's transposing copy is slow there):
 * each thread converts whole rows y; three channels go 16 pixels at a time. */
static void qlearn_qconv_nchw_row_to_nhwc(const uint8_t *src, long C, long HW, long W,
                                          uint8_t *dst) {
    long x0 = 0;
#if QLEARN_HAVE_X86_SIMD
    static int has_avx2 = -1;     /* the CPU does not change: ask once */
    if (has_avx2 < 0) has_avx2 = qlearn_cpu_has_avx2();
    if (C == 3 && has_avx2) x0 = qlearn_qconv_rgb_to_nhwc_ssse3(src, HW, W, dst);
#endif
    for (long x = x0; x < W; x++)
        for (long c = 0; c < C; c++) dst[x * C + c] = src[c * HW + x];
}

/* Input rows [y0, y1) of channels [c0, c0 + cg) of one NCHW image (src: the image,
 * C planes of H x W) into dst ((y1 - y0) W, cg), channels last: the band a block of a
 * convolution reads, converted into the thread's cache-resident buffer just before
 * the block's GEMM reads it (the whole channels-last copy of the input never goes to
 * memory and back).  The rows are contiguous in every plane, so the band is one
 * (cg, (y1 - y0) W) -> ((y1 - y0) W, cg) transpose; few channels go row by row (the
 * three of an image by pshufb). */
static void qlearn_qconv_nchw_band_to_nhwc(const uint8_t *src, long H, long W, long c0,
                                           long cg, long y0, long y1, uint8_t *dst) {
    const long HW = H * W;
    const uint8_t *s = src + c0 * HW + y0 * W;
    if (cg >= 16) {
        qlearn_qconv_nchw_to_nhwc_rows(s, cg, HW, 0, (y1 - y0) * W, dst);
        return;
    }
    for (long y = y0; y < y1; y++, s += W, dst += W * cg)
        qlearn_qconv_nchw_row_to_nhwc(s, cg, HW, W, dst);
}

/* A band's channels-last rows with their padding made real: dst row r (of rows, each
 * Wb pixels of C bytes) holds src row r - top (src: n rows of W pixels) from pixel pw
 * on, and fill (Za, real zero) in every other byte, so that every window of the band's
 * output pixels is inside it. */
static void qlearn_qconv_pad_band(const uint8_t *src, long top, long n, long rows, long W,
                                  long C, long pw, long Wb, uint8_t fill, uint8_t *dst) {
    const long left = pw < Wb ? pw : Wb;
    const long cp = Wb - left < W ? Wb - left : W;    /* >= 0 */
    const long right = Wb - left - cp;
    for (long r = 0; r < rows; r++, dst += Wb * C) {
        const long i = r - top;
        if (i < 0 || i >= n) {
            memset(dst, fill, (size_t)(Wb * C));
            continue;
        }
        memset(dst, fill, (size_t)(left * C));
        if (src) memcpy(dst + left * C, src + i * W * C, (size_t)(cp * C));
        memset(dst + (left + cp) * C, fill, (size_t)(right * C));
    }
}

/* The same with each of the Cs channels of a src pixel repeated m times (dst pixels of
 * C = Cs m bytes: byte c m + r = channel c), for a depthwise convolution with a channel
 * multiplier; m = 1 is qlearn_qconv_pad_band.  m = 2 and 4 double the bytes with SSE2
 * unpacks, 16 source bytes at a time. */
static void qlearn_qconv_pad_band_repeat(const uint8_t *src, long top, long n, long rows,
                                         long W, long Cs, long m, long pw, long Wb,
                                         uint8_t fill, uint8_t *dst) {
    const long C = Cs * m;
    if (m == 1) {
        qlearn_qconv_pad_band(src, top, n, rows, W, C, pw, Wb, fill, dst);
        return;
    }
    qlearn_qconv_pad_band(NULL, top, n, rows, W, C, pw, Wb, fill, dst);
    const long left = pw < Wb ? pw : Wb;
    const long cp = Wb - left < W ? Wb - left : W;
    for (long r = 0; r < rows; r++) {
        const long i = r - top;
        if (i < 0 || i >= n) continue;
        const uint8_t *s = src + i * W * Cs;
        uint8_t *d = dst + (r * Wb + left) * C;
        const long len = cp * Cs;           /* the row's source bytes, in pixel order */
        long k = 0;
#if defined(__SSE2__)
        if (m == 2 || m == 4)
            for (; k + 16 <= len; k += 16) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(s + k));
                const __m128i lo = _mm_unpacklo_epi8(v, v), hi = _mm_unpackhi_epi8(v, v);
                if (m == 2) {
                    _mm_storeu_si128((__m128i *)(d + 2 * k), lo);
                    _mm_storeu_si128((__m128i *)(d + 2 * k + 16), hi);
                } else {
                    _mm_storeu_si128((__m128i *)(d + 4 * k), _mm_unpacklo_epi16(lo, lo));
                    _mm_storeu_si128((__m128i *)(d + 4 * k + 16), _mm_unpackhi_epi16(lo, lo));
                    _mm_storeu_si128((__m128i *)(d + 4 * k + 32), _mm_unpacklo_epi16(hi, hi));
                    _mm_storeu_si128((__m128i *)(d + 4 * k + 48), _mm_unpackhi_epi16(hi, hi));
                }
            }
#endif
        for (; k < len; k++)
            for (long j = 0; j < m; j++) d[k * m + j] = s[k];
    }
}

/* The same band (input rows yb0 .. yb0 + rows - 1, some of them past the image) taken
 * from channels [c0, c0 + cg) of the NCHW image img: rows of 16 pixels or more are
 * transposed straight into their padded rows; narrower ones (whose transposition would
 * be scalar row by row) are transposed as one run of pixels into tmp, then copied. */
static void qlearn_qconv_nchw_band_padded(const uint8_t *img, long H, long W, long c0,
                                          long cg, long yb0, long rows, long pw, long Wb,
                                          uint8_t fill, uint8_t *tmp, uint8_t *dst) {
    const long y0 = yb0 > 0 ? yb0 : 0, ye = yb0 + rows < H ? yb0 + rows : H;
    const long n = ye > y0 ? ye - y0 : 0;
    if (W >= 16 && cg >= 16) {
        const long left = pw < Wb ? pw : Wb;
        const long cp = Wb - left < W ? Wb - left : W;
        qlearn_qconv_pad_band(NULL, y0 - yb0, n, rows, W, cg, pw, Wb, fill, dst);
        /* 16 planes at a time down all the rows, not all cg planes row by row: 16
         * streams the hardware prefetchers follow, where cg interleaved ones (64 or
         * more) are too many when the input comes from L3 (measured on Zen 4, a 3x3
         * 64-channel convolution of a batch of 8 56x56 images: the conversion took
         * 7.3 % of it row by row, 4.3 % this way; 4 rows at a time, 5.8 %) */
        for (long c = 0; c < cg; c += 16) {
            const long nc = cg - c < 16 ? cg - c : 16;
            const uint8_t *plane = img + (c0 + c) * H * W;
            for (long y = y0; y < ye; y++)
                qlearn_qconv_nchw_to_nhwc_rows_ld(plane + y * W, nc, H * W, 0, cp,
                                                  dst + ((y - yb0) * Wb + left) * cg + c, cg);
        }
        return;
    }
    if (n) qlearn_qconv_nchw_band_to_nhwc(img, H, W, c0, cg, y0, ye, tmp);
    qlearn_qconv_pad_band(tmp, y0 - yb0, n, rows, W, cg, pw, Wb, fill, dst);
}

#endif
