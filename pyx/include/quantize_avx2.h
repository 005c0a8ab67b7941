/* AVX2 quantize and dequantize micro-kernels: float32 <-> uint8 / int8.
 *
 * Each computes, per element (eq. (1) of the docs, "Quantization math"):
 *     q = clamp(nearbyint(x * inv_scale + zero_point), qmin, qmax)
 * `fused` selects one FMA for x * inv_scale + zero_point (PyTorch's 8-bit per-tensor
 * path) or a multiply then an add (its per-channel path).  _mm256_cvtps_epi32 rounds
 * half to even under the default MXCSR mode, as nearbyint does.  Clamping in float
 * before the conversion keeps huge inputs from overflowing the int32 lanes.
 * The scalar tail uses the same arithmetic, so the result does not depend on n % 32.
 * The return value is nonzero if any x was NaN or infinite, so that the caller can refuse
 * such input without a second pass over memory.  The check is a running vector sum of
 * the inputs (four adds per 32 elements): a NaN or an infinity always leaves the sum
 * non-finite, so a finite sum proves the block clean; a non-finite sum (which huge but
 * finite inputs can also cause) triggers an exact rescan of the block.
 */
#ifndef QLEARN_QUANTIZE_AVX2_H
#define QLEARN_QUANTIZE_AVX2_H

#include <stdint.h>
#include <math.h>
#include "qlearn_cpu.h"

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>

#define QLEARN_AVX2 __attribute__((target("avx2,fma")))

QLEARN_AVX2 static inline __m256i qlearn_q8_lanes(
        __m256 x, __m256 inv, __m256 zp, __m256 lo, __m256 hi, int fused) {
    __m256 t = fused ? _mm256_fmadd_ps(x, inv, zp) : _mm256_add_ps(_mm256_mul_ps(x, inv), zp);
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    return _mm256_cvtps_epi32(t);
}

QLEARN_AVX2 static inline float qlearn_q8_scalar_avx2(
        float x, float inv, float zp, float lo, float hi, int fused) {
    float t = fused ? fmaf(x, inv, zp) : x * inv + zp;
    t = fminf(fmaxf(t, lo), hi);
    return nearbyintf(t);
}

/* Quantize 32 floats at o[0..31]; inv/zp hold the parameters of each lane (the same
 * value in every lane per tensor, one per element for per-element parameters).
 * Returns x[0..31] summed into 8 lanes, for the finiteness check.
 * `is_signed` selects int8 (packs_epi16) or uint8 (packus_epi16) packing. */
QLEARN_AVX2 static inline __m256 qlearn_q8_block32(
        const float *x, uint8_t *o, const __m256 inv[4], const __m256 zp[4],
        __m256 lo, __m256 hi, int fused, int is_signed) {
    /* packs interleave 128-bit lanes; this permutation puts them back in order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
    __m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
    __m256i a = qlearn_q8_lanes(x0, inv[0], zp[0], lo, hi, fused);
    __m256i b = qlearn_q8_lanes(x1, inv[1], zp[1], lo, hi, fused);
    __m256i c = qlearn_q8_lanes(x2, inv[2], zp[2], lo, hi, fused);
    __m256i d = qlearn_q8_lanes(x3, inv[3], zp[3], lo, hi, fused);
    __m256i ab = _mm256_packs_epi32(a, b);
    __m256i cd = _mm256_packs_epi32(c, d);
    __m256i abcd = is_signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    _mm256_storeu_si256((__m256i *)o, _mm256_permutevar8x32_epi32(abcd, order));
    return _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
}

/* Nonzero if the running sum is not finite and an exact scan finds NaN or Inf in x. */
QLEARN_AVX2 static int qlearn_any_nonfinite(__m256 sum, const float *x, long n) {
    __m256 probe = _mm256_sub_ps(sum, sum);  /* NaN exactly in lanes where sum is not finite */
    if (_mm256_movemask_ps(_mm256_cmp_ps(probe, probe, _CMP_UNORD_Q)) == 0) return 0;
    for (long i = 0; i < n; i++)
        if (x[i] - x[i] != 0.0f) return 1;
    return 0;
}

/* One scale and zero point for all n elements. */
QLEARN_AVX2 static int qlearn_quantize_q8_avx2(
        const float *x, void *out, long n, float inv_scale, int zero_point,
        int qmin, int qmax, int fused, int is_signed) {
    const __m256 inv1 = _mm256_set1_ps(inv_scale), zp1 = _mm256_set1_ps((float)zero_point);
    const __m256 inv[4] = {inv1, inv1, inv1, inv1}, zp[4] = {zp1, zp1, zp1, zp1};
    const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
    uint8_t *o = (uint8_t *)out;
    __m256 sum = _mm256_setzero_ps();
    int bad = 0;
    long i = 0;
    for (; i + 32 <= n; i += 32)
        sum = _mm256_add_ps(sum, qlearn_q8_block32(x + i, o + i, inv, zp, lo, hi, fused,
                                                   is_signed));
    for (; i < n; i++) {
        int q = (int)qlearn_q8_scalar_avx2(x[i], inv_scale, (float)zero_point,
                                           (float)qmin, (float)qmax, fused);
        o[i] = is_signed ? (uint8_t)(int8_t)q : (uint8_t)q;
        bad |= (x[i] - x[i]) != 0.0f;
    }
    return bad | qlearn_any_nonfinite(sum, x, i);
}

/* Element i has its own inv_scale[i] and zero_point[i] (a float holding an integer):
 * the per-channel case with a short inner extent, parameters expanded per element.
 * Multiply then add, as PyTorch's per-channel path. */
QLEARN_AVX2 static int qlearn_quantize_q8_each_avx2(
        const float *x, void *out, long n, const float *inv_scale, const float *zero_point,
        int qmin, int qmax, int is_signed) {
    const __m256 lo = _mm256_set1_ps((float)qmin), hi = _mm256_set1_ps((float)qmax);
    uint8_t *o = (uint8_t *)out;
    __m256 sum = _mm256_setzero_ps();
    int bad = 0;
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 inv[4], zp[4];
        for (int k = 0; k < 4; k++) {
            inv[k] = _mm256_loadu_ps(inv_scale + i + 8 * k);
            zp[k] = _mm256_loadu_ps(zero_point + i + 8 * k);
        }
        sum = _mm256_add_ps(sum, qlearn_q8_block32(x + i, o + i, inv, zp, lo, hi, 0,
                                                   is_signed));
    }
    for (; i < n; i++) {
        int q = (int)qlearn_q8_scalar_avx2(x[i], inv_scale[i], zero_point[i],
                                           (float)qmin, (float)qmax, 0);
        o[i] = is_signed ? (uint8_t)(int8_t)q : (uint8_t)q;
        bad |= (x[i] - x[i]) != 0.0f;
    }
    return bad | qlearn_any_nonfinite(sum, x, i);
}

/* Dequantize eight 8-bit integers at a time (eq. (2) of the docs):
 *   per-tensor:  r = float32(q - zero_point) * scale               (float32 product)
 *   per-channel: r = float32(float64(q - zero_point) * scale_f64)  (float64 product)
 * q - zero_point is exact in int32 for 8-bit q, so both match the scalar loops bit for bit.
 */
QLEARN_AVX2 static inline __m256i qlearn_load8_epi32(const void *q, int is_signed) {
    __m128i b = _mm_loadl_epi64((const __m128i *)q);
    return is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

QLEARN_AVX2 static void qlearn_dequantize_q8_avx2(
        const void *q, float *out, long n, float scale, int zero_point, int is_signed) {
    const __m256i zp = _mm256_set1_epi32(zero_point);
    const __m256 s = _mm256_set1_ps(scale);
    const uint8_t *p = (const uint8_t *)q;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i d = _mm256_sub_epi32(qlearn_load8_epi32(p + i, is_signed), zp);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(d), s));
    }
    for (; i < n; i++) {
        int v = is_signed ? (int)(int8_t)p[i] : (int)p[i];
        out[i] = (float)(v - zero_point) * scale;
    }
}

QLEARN_AVX2 static void qlearn_dequantize_q8_f64_avx2(
        const void *q, float *out, long n, double scale, int zero_point, int is_signed) {
    const __m256i zp = _mm256_set1_epi32(zero_point);
    const __m256d s = _mm256_set1_pd(scale);
    const uint8_t *p = (const uint8_t *)q;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i d = _mm256_sub_epi32(qlearn_load8_epi32(p + i, is_signed), zp);
        __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(d)), s));
        __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(d, 1)), s));
        _mm256_storeu_ps(out + i, _mm256_set_m128(hi, lo));
    }
    for (; i < n; i++) {
        int v = is_signed ? (int)(int8_t)p[i] : (int)p[i];
        out[i] = (float)((double)(v - zero_point) * scale);
    }
}

#else  /* not x86: never called, qlearn_cpu_has_avx2() returns 0 */
static int qlearn_quantize_q8_each_avx2(
        const float *x, void *out, long n, const float *inv_scale, const float *zero_point,
        int qmin, int qmax, int is_signed) {
    (void)x; (void)out; (void)n; (void)inv_scale; (void)zero_point;
    (void)qmin; (void)qmax; (void)is_signed;
    return 0;
}
static void qlearn_dequantize_q8_avx2(
        const void *q, float *out, long n, float scale, int zero_point, int is_signed) {
    (void)q; (void)out; (void)n; (void)scale; (void)zero_point; (void)is_signed;
}
static void qlearn_dequantize_q8_f64_avx2(
        const void *q, float *out, long n, double scale, int zero_point, int is_signed) {
    (void)q; (void)out; (void)n; (void)scale; (void)zero_point; (void)is_signed;
}
static int qlearn_quantize_q8_avx2(
        const float *x, void *out, long n, float inv_scale, int zero_point,
        int qmin, int qmax, int fused, int is_signed) {
    (void)x; (void)out; (void)n; (void)inv_scale; (void)zero_point;
    (void)qmin; (void)qmax; (void)fused; (void)is_signed;
    return 0;
}
#endif

#endif
