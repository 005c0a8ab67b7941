/* Depthwise 3x3 int8 convolution, AVX2: 16 channels per step, pairs of taps through
 * vpmaddwd over the weights packed by qlearn_qconv_dw_pack.  Exact, as the generic
 * loops (depthwise3x3_generic.h, whose header has the equation). */
#ifndef QLEARN_QCONV_DEPTHWISE3X3_AVX2_H
#define QLEARN_QCONV_DEPTHWISE3X3_AVX2_H

#include <stdint.h>
#include "../qgemm/common.h"

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

#endif
