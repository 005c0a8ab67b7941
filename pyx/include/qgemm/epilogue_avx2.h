/* The AVX2 epilogue of an int32 tile in memory: eqs. (4), (6), (8), 8 columns at a time,
 * the same float operations as qgemm_epilogue_scalar (bit-exact). */
#ifndef QLEARN_QGEMM_EPILOGUE_AVX2_H
#define QLEARN_QGEMM_EPILOGUE_AVX2_H

#include "common.h"

#if QLEARN_HAVE_X86_SIMD
/* ---- AVX2 epilogue: 8 columns at a time, same float operations as the scalar one ----- */
QGEMM_AVX2_FN static void qgemm_epilogue_avx2(
        const int32_t *tile, long ldt, long i0, long mr, long j0, long nc,
        const qgemm_epilogue *e, uint8_t *out_u8, float *out_f, long ldc) {
    const __m256i za = _mm256_set1_epi32(e->a_zp);
    long c8 = nc & ~7L;
    for (long r = 0; r < mr; r++) {
        long i = i0 + r;
        const __m256i rs = _mm256_set1_epi32(e->rowsum ? e->rowsum[i] : 0);
        for (long c = 0; c < c8; c += 8) {
            long j = j0 + c;
            __m256i acc = _mm256_loadu_si256((const __m256i *)(tile + r * ldt + c));
            __m256i raw = _mm256_sub_epi32(acc, _mm256_mullo_epi32(
                za, _mm256_loadu_si256((const __m256i *)(e->colsum + j))));
            if (e->rowsum)
                raw = _mm256_sub_epi32(raw, _mm256_mullo_epi32(
                    rs, _mm256_loadu_si256((const __m256i *)(e->wzp + j))));
            __m256 x = _mm256_cvtepi32_ps(raw);
            if (out_u8) {
                if (e->bias_q) x = _mm256_add_ps(x, _mm256_loadu_ps(e->bias_q + j));
                x = _mm256_mul_ps(x, _mm256_loadu_ps(e->mult + j));
                x = _mm256_min_ps(_mm256_set1_ps(1e9f), x);  /* see QGEMM_CLAMP_NOTE */
                __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(x),
                                             _mm256_set1_epi32(e->out_zp));
                q = _mm256_max_epi32(q, _mm256_set1_epi32(e->lo));
                if (e->hi < 255) q = _mm256_min_epi32(q, _mm256_set1_epi32(e->hi));
                /* 8 int32 in [0,255] -> 8 bytes */
                __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q),
                                              _mm256_extracti128_si256(q, 1));
                __m128i q8 = _mm_packus_epi16(q16, q16);
                _mm_storel_epi64((__m128i *)(out_u8 + i * ldc + j), q8);
            } else {
                __m256 y = _mm256_mul_ps(x, _mm256_loadu_ps(e->fscale + j));
                if (e->fbias) y = _mm256_add_ps(y, _mm256_loadu_ps(e->fbias + j));
                if (e->relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
                _mm256_storeu_ps(out_f + i * ldc + j, y);
            }
        }
    }
    if (c8 < nc)
        qgemm_epilogue_scalar(tile + c8, ldt, i0, mr, j0 + c8, nc - c8, e, out_u8, out_f,
                              ldc);
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
