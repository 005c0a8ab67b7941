/* Row sums and maximum of the activations (eq. (4)'s rowsum, eq. (7)'s test), AVX2. */
#ifndef QLEARN_QGEMM_ROWSUM_AVX2_H
#define QLEARN_QGEMM_ROWSUM_AVX2_H

#include "common.h"

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>
/* vpsadbw against zero sums 8 bytes into a 64-bit lane; vpmaxub keeps the maximum. */
__attribute__((target("avx2,fma"))) static int qlearn_qgemm_rowsum_max_avx2(
        const uint8_t *a, long M, long K, long lda, int32_t *rowsum, int want_max) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i vmax = zero;
    int amax = 0;
    if (!rowsum && lda == K && M > 1) {
        /* the maximum alone, of contiguous rows (a convolution group spanning every
         * channel): one run of M K bytes, not M short rows each with its own tail */
        K *= M;
        M = 1;
    }
    long K32 = K & ~31L;
    for (long i = 0; i < M; i++) {
        const uint8_t *r = a + i * lda;
        __m256i vs = zero;
        for (long k = 0; k < K32; k += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(r + k));
            if (rowsum) vs = _mm256_add_epi64(vs, _mm256_sad_epu8(v, zero));
            if (want_max) vmax = _mm256_max_epu8(vmax, v);
        }
        int64_t s = _mm256_extract_epi64(vs, 0) + _mm256_extract_epi64(vs, 1)
                  + _mm256_extract_epi64(vs, 2) + _mm256_extract_epi64(vs, 3);
        for (long k = K32; k < K; k++) {
            s += r[k];
            amax = r[k] > amax ? r[k] : amax;
        }
        if (rowsum) rowsum[i] = (int32_t)s;
    }
    if (want_max) {
        uint8_t buf[32];
        _mm256_storeu_si256((__m256i *)buf, vmax);
        for (int t = 0; t < 32; t++) amax = buf[t] > amax ? buf[t] : amax;
    }
    return amax;
}
#endif  /* QLEARN_HAVE_X86_SIMD */

#endif
