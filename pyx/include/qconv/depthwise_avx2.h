/* Depthwise int8 convolution, AVX2: 16 channels per step, pairs of taps through
 * vpmaddwd over the weights packed by qlearn_qconv_dw_pack.  Exact, as the generic
 * loops (depthwise_generic.h, whose header has the equation and the tap offsets). */
#ifndef QLEARN_QCONV_DEPTHWISE_AVX2_H
#define QLEARN_QCONV_DEPTHWISE_AVX2_H

#include <stdint.h>
#include "../qgemm/common.h"

/* The weights for vpmaddwd: the T taps paired (0,1) (2,3) ... (the last one with a
 * zero when T is odd), Q = (T + 1) / 2 pairs, and interleaved as
 * _mm256_unpacklo/hi_epi16 interleave the activations, so that one vpmaddwd adds two
 * taps' products for 8 channels.  A block of blk = 16 (AVX2) or 32 (AVX-512) channels
 * holds, per pair and per half (unpacklo, unpackhi), its 16-channel sub-blocks one
 * after the other: (Q, 2, blk) int16 per block.  With blk = 32 a last block of 16
 * channels follows when C % 32 >= 16; the rest of the channel tail stays unpacked.
 * out: (C / 16) 16 Q 2 int16.  wz: (T, C) int32, W - Zw. */
static void qlearn_qconv_dw_pack(const int32_t *wz, long C, int T, int blk, int16_t *out) {
    const int Q = (T + 1) / 2;
    for (long b = 0; b + 16 <= C; b += blk) {
        if (b + blk > C) blk = 16;         /* the 16-channel block after the 32s */
        int16_t *base = out + b * Q * 2;
        for (int q = 0; q < Q; q++)
            for (int h = 0; h < 2; h++)            /* unpacklo, unpackhi */
                for (int s = 0; s < blk / 16; s++)
                    for (int lane = 0; lane < 2; lane++)
                        for (int i = 0; i < 4; i++) {
                            long c = b + 16 * s + 8 * lane + 4 * h + i;
                            int16_t *d = base + (q * 2 + h) * blk + 16 * s + lane * 8
                                         + 2 * i;
                            d[0] = (int16_t)wz[(2 * q) * C + c];
                            d[1] = 2 * q + 1 < T ? (int16_t)wz[(2 * q + 1) * C + c] : 0;
                        }
    }
}

#if QLEARN_HAVE_X86_SIMD
/* The sums of one pixel's 16 channels [c, c+16) into o[c..c+16): 16 uint8 widened to
 * int16, taps in pairs through vpmaddwd (|x| <= 255, |wz| <= 255: each pair sum fits
 * int32 exactly).  wq: the block's packed weights (Q, 2, 16). */
QGEMM_INLINE QGEMM_AVX2_FN void qconv_dw_sum16_avx2(const uint8_t *xb, long c,
                                                   const __m256i *wq, const long *off,
                                                   const int T, int32_t *o) {
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (int q = 0; q < (T + 1) / 2; q++) {
        __m256i x0 = _mm256_cvtepu8_epi16(
            _mm_loadu_si128((const __m128i *)(xb + off[2 * q] + c)));
        __m256i x1 = 2 * q + 1 < T ? _mm256_cvtepu8_epi16(
            _mm_loadu_si128((const __m128i *)(xb + off[2 * q + 1] + c)))
                                   : _mm256_setzero_si256();
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(
            _mm256_unpacklo_epi16(x0, x1), _mm256_loadu_si256(wq + 2 * q)));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(
            _mm256_unpackhi_epi16(x0, x1), _mm256_loadu_si256(wq + 2 * q + 1)));
    }
    /* lo holds channels 0-3 | 8-11, hi 4-7 | 12-15: put them back in order */
    _mm256_storeu_si256((__m256i *)(o + c), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256((__m256i *)(o + c + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* AVX2: the sums of output row oy of the band into acc (Wo, C), 16 channels a step;
 * wpk: the weights packed with blk = 16.  T is a constant where this is inlined for
 * the 3x3 window (its pair loop then unrolls). */
QGEMM_INLINE QGEMM_AVX2_FN void qconv_dw_row_avx2_body(const uint8_t *xp, long Wp, long C,
                                                      const int32_t *wz,
                                                      const int16_t *wpk, const long *off,
                                                      const int T, long oy, long Wo,
                                                      int sh, int sw, int32_t *acc) {
    const long C16 = C & ~15L;
    const uint8_t *xrow = xp + oy * sh * Wp * C;
    for (long ox = 0; ox < Wo; ox++) {
        int32_t *o = acc + ox * C;
        const uint8_t *xb = xrow + ox * sw * C;
        for (long c = 0; c < C16; c += 16)
            qconv_dw_sum16_avx2(xb, c, (const __m256i *)(wpk + c * ((T + 1) / 2) * 2), off,
                                T, o);
        for (long c = C16; c < C; c++) {
            int32_t s = 0;
            for (int t = 0; t < T; t++) s += (int32_t)xb[off[t] + c] * wz[t * C + c];
            o[c] = s;
        }
    }
}

QGEMM_AVX2_FN static void qconv_dw_row_avx2(const uint8_t *xp, long Wp, long C,
                                            const int32_t *wz, const int16_t *wpk,
                                            const long *off, int T, long oy, long Wo,
                                            int sh, int sw, int32_t *acc) {
    if (T == 9) {
        /* a local copy: the stores of the sums cannot alias it (the extension is built
         * with -fno-strict-aliasing), so the offsets stay in registers */
        long off9[9];
        for (int t = 0; t < 9; t++) off9[t] = off[t];
        qconv_dw_row_avx2_body(xp, Wp, C, wz, wpk, off9, 9, oy, Wo, sh, sw, acc);
    } else
        qconv_dw_row_avx2_body(xp, Wp, C, wz, wpk, off, T, oy, Wo, sh, sw, acc);
}
#endif

#endif
