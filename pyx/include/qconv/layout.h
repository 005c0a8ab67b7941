/* Layout conversion of uint8 activations, NCHW -> NHWC (channels last), the layout
 * every int8 convolution kernel reads.  SSE2 (baseline x86-64): no dispatch needed. */
#ifndef QLEARN_QCONV_LAYOUT_H
#define QLEARN_QCONV_LAYOUT_H

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

#endif
