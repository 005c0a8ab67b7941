/* AVX2 fake-quantize micro-kernel: float32 in, float32 out plus the STE mask.
 *
 * Per element (eq. (1) of docs/qat, PyTorch's order: round first, then add Z):
 *     t      = nearbyint(x * inv_scale) + zero_point          (float32)
 *     mask   = qmin <= t <= qmax                               (1 or 0)
 *     x_hat  = (clamp(t, qmin, qmax) - zero_point) * scale     (float32)
 * _mm256_round_ps(.., _MM_FROUND_TO_NEAREST_INT) rounds half to even, as nearbyint
 * does.  The caller uses this kernel only when |qmin|, |qmax| <= 2^24, so that
 * clamp(t) - zero_point is exact in float32 and the float32 product equals PyTorch's
 * float32(double(q - Z) * double(S)) (a 24-bit by 24-bit product is exact in double).
 * The scalar tail uses the same arithmetic, so the result does not depend on n % 8.
 * Returns nonzero if any x was NaN or infinite (x - x is then NaN).
 */
#ifndef QLEARN_FAKE_QUANT_AVX2_H
#define QLEARN_FAKE_QUANT_AVX2_H

#include <stdint.h>
#include <math.h>
#include "qlearn_cpu.h"

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>

#define QLEARN_FQ_AVX2 __attribute__((target("avx2,fma")))

QLEARN_FQ_AVX2 static int qlearn_fake_quant_f32_avx2(
        const float *x, float *out, uint8_t *mask, long n, float scale, float inv_scale,
        float zero_point, float qmin, float qmax) {
    const __m256 inv = _mm256_set1_ps(inv_scale);
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 zp = _mm256_set1_ps(zero_point);
    const __m256 lo = _mm256_set1_ps(qmin);
    const __m256 hi = _mm256_set1_ps(qmax);
    const __m256i one = _mm256_set1_epi32(1);
    __m256 nonfinite = _mm256_setzero_ps();
    int bad = 0;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 d = _mm256_sub_ps(v, v);
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
        __m256 t = _mm256_round_ps(_mm256_mul_ps(v, inv),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        t = _mm256_add_ps(t, zp);
        __m256 in = _mm256_and_ps(_mm256_cmp_ps(t, lo, _CMP_GE_OQ),
                                  _mm256_cmp_ps(t, hi, _CMP_LE_OQ));
        /* max(t, lo) with t first returns lo for NaN t, as fmaxf does */
        __m256 c = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_sub_ps(c, zp), s));
        __m256i m = _mm256_and_si256(_mm256_castps_si256(in), one);
        __m128i m16 = _mm_packs_epi32(_mm256_castsi256_si128(m),
                                      _mm256_extracti128_si256(m, 1));
        _mm_storel_epi64((__m128i *)(mask + i), _mm_packus_epi16(m16, m16));
    }
    for (; i < n; i++) {
        float t = nearbyintf(x[i] * inv_scale) + zero_point;
        mask[i] = (t >= qmin) && (t <= qmax);
        float c = fminf(fmaxf(t, qmin), qmax);
        out[i] = (c - zero_point) * scale;
        bad |= (x[i] - x[i]) != 0.0f;
    }
    return bad | (_mm256_movemask_ps(nonfinite) != 0);
}

#else  /* not x86: never called, qlearn_cpu_has_avx2() returns 0 */
static int qlearn_fake_quant_f32_avx2(
        const float *x, float *out, uint8_t *mask, long n, float scale, float inv_scale,
        float zero_point, float qmin, float qmax) {
    (void)x; (void)out; (void)mask; (void)n; (void)scale; (void)inv_scale;
    (void)zero_point; (void)qmin; (void)qmax;
    return 0;
}
#endif

#endif
