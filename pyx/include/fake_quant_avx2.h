/* AVX2 fake-quantize micro-kernel: float32 in, float32 out plus the STE mask.
 *
 * Per element (eq. (1) of docs/qat, PyTorch's order: round first, then add Z):
 *     t      = nearbyint(x * inv_scale) + zero_point          (float32)
 *     mask   = qmin <= t <= qmax                               (1 or 0)
 *     x_hat  = (clamp(t, qmin, qmax) - zero_point) * scale     (float32)
 * _mm256_round_ps(.., _MM_FROUND_TO_NEAREST_INT) rounds half to even, as nearbyint
 * does.  The caller uses this kernel only when |qmin|, |qmax| and qmax - qmin are
 * at most 2^24, so that
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

/* Distiller's quantizers (pyx/_quantizers.pyx), their documented equation
 *     x_hat = round(clamp(x, lo, hi) * levels / unit) * unit / levels
 * evaluated in double and rounded once to float32.  clamp(x) * levels is exact in
 * double (24-bit by 16-bit), so an exact tie of the equation (DoReFa's 0.5 * 3 = 1.5)
 * stays a tie and rounds to even, and a tiny unit (PACT's alpha) cannot overflow.
 * Same operations as the plain loop, so the results are identical. */
QLEARN_FQ_AVX2 static int qlearn_clip_round_f32_avx2(
        const float *x, float *out, long n, float lo, float hi, double unit,
        double levels) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256d u = _mm256_set1_pd(unit), k = _mm256_set1_pd(levels);
    __m256 nonfinite = _mm256_setzero_ps();
    int bad = 0;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 d = _mm256_sub_ps(v, v);
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
        /* fmaxf(v, lo): max_ps(v, lo) returns lo when v is NaN, as fmaxf does */
        __m256 c = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
        __m256d c0 = _mm256_cvtps_pd(_mm256_castps256_ps128(c));
        __m256d c1 = _mm256_cvtps_pd(_mm256_extractf128_ps(c, 1));
        __m256d q0 = _mm256_round_pd(_mm256_div_pd(_mm256_mul_pd(c0, k), u),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256d q1 = _mm256_round_pd(_mm256_div_pd(_mm256_mul_pd(c1, k), u),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m128 r0 = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_mul_pd(q0, u), k));
        __m128 r1 = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_mul_pd(q1, u), k));
        _mm256_storeu_ps(out + i, _mm256_insertf128_ps(_mm256_castps128_ps256(r0), r1, 1));
    }
    for (; i < n; i++) {
        double c = fminf(fmaxf(x[i], lo), hi);
        out[i] = (float)(nearbyint(c * levels / unit) * unit / levels);
        bad |= (x[i] - x[i]) != 0.0f;
    }
    return bad | (_mm256_movemask_ps(nonfinite) != 0);
}

/* The clip's straight-through gradient: out = g where lo <= x <= hi (x < hi when not
 * hi_inclusive), else 0.  Returns the sum, in float64, of g where x >= sum_from (PACT's
 * clip-value gradient; +inf gives 0), accumulated in eight lanes then added in a fixed
 * order, so it depends only on n, never on the thread count. */
QLEARN_FQ_AVX2 static double qlearn_clip_grad_f32_avx2(
        const float *x, const float *g, float *out, long n, float lo, float hi,
        int hi_inclusive, float sum_from) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256 vfrom = _mm256_set1_ps(sum_from);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), gv = _mm256_loadu_ps(g + i);
        __m256 upper = hi_inclusive ? _mm256_cmp_ps(v, vhi, _CMP_LE_OQ)
                                    : _mm256_cmp_ps(v, vhi, _CMP_LT_OQ);
        __m256 in = _mm256_and_ps(_mm256_cmp_ps(v, vlo, _CMP_GE_OQ), upper);
        _mm256_storeu_ps(out + i, _mm256_and_ps(in, gv));
        __m256 gs = _mm256_and_ps(_mm256_cmp_ps(v, vfrom, _CMP_GE_OQ), gv);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(gs)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(gs, 1)));
    }
    double lanes[8], total = 0;
    _mm256_storeu_pd(lanes, acc0);
    _mm256_storeu_pd(lanes + 4, acc1);
    for (int k = 0; k < 8; k++) total += lanes[k];
    for (; i < n; i++) {
        int in = x[i] >= lo && (hi_inclusive ? x[i] <= hi : x[i] < hi);
        out[i] = in ? g[i] : 0.0f;
        if (x[i] >= sum_from) total += g[i];
    }
    return total;
}

#else  /* not x86: never called, qlearn_cpu_has_avx2() returns 0 */
static double qlearn_clip_grad_f32_avx2(
        const float *x, const float *g, float *out, long n, float lo, float hi,
        int hi_inclusive, float sum_from) {
    (void)x; (void)g; (void)out; (void)n; (void)lo; (void)hi; (void)hi_inclusive;
    (void)sum_from;
    return 0;
}
static int qlearn_clip_round_f32_avx2(
        const float *x, float *out, long n, float lo, float hi, double unit,
        double levels) {
    (void)x; (void)out; (void)n; (void)lo; (void)hi; (void)unit; (void)levels;
    return 0;
}
static int qlearn_fake_quant_f32_avx2(
        const float *x, float *out, uint8_t *mask, long n, float scale, float inv_scale,
        float zero_point, float qmin, float qmax) {
    (void)x; (void)out; (void)mask; (void)n; (void)scale; (void)inv_scale;
    (void)zero_point; (void)qmin; (void)qmax;
    return 0;
}
#endif

#endif
