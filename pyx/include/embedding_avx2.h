/* AVX2 row kernel of the quantized embedding lookup (float-qparams quint8 tables).
 *
 * One table row q[0..n) (uint8) with scale s and bias b = -(Z s) is folded into out:
 *     mode 0 (sum):  out[j] = fma(s, q[j], out[j] + b)     (FBGEMM's accumulation)
 *     mode 2 (max):  out[j] = max(out[j], fma(s, q[j], b))
 * _mm256_fmadd_ps rounds once, as fmaf does, so the lanes and the scalar tail give the
 * same bits as the portable loop in _float_qparams.pyx.
 */
#ifndef QLEARN_EMBEDDING_AVX2_H
#define QLEARN_EMBEDDING_AVX2_H

#include <stdint.h>
#include <math.h>
#include "qlearn_cpu.h"

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static void qlearn_embedding_row_avx2(const uint8_t *q, float *out, long n, float s,
                                      float b, int mode) {
    const __m256 vs = _mm256_set1_ps(s), vb = _mm256_set1_ps(b);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        __m128i q8 = _mm_loadl_epi64((const __m128i *)(q + j));
        __m256 qf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q8));
        __m256 o = _mm256_loadu_ps(out + j);
        if (mode == 2)
            o = _mm256_max_ps(_mm256_fmadd_ps(vs, qf, vb), o);   /* v > o ? v : o */
        else
            o = _mm256_fmadd_ps(vs, qf, _mm256_add_ps(o, vb));
        _mm256_storeu_ps(out + j, o);
    }
    for (; j < n; j++) {
        if (mode == 2) {
            float v = fmaf(s, (float)q[j], b);
            out[j] = v > out[j] ? v : out[j];
        } else {
            out[j] = fmaf(s, (float)q[j], out[j] + b);
        }
    }
}

#else  /* not x86: never called, qlearn_cpu_has_avx2() returns 0 */
static void qlearn_embedding_row_avx2(const uint8_t *q, float *out, long n, float s,
                                      float b, int mode) {
    (void)q; (void)out; (void)n; (void)s; (void)b; (void)mode;
}
#endif

#endif
