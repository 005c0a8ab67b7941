/* AVX2 loops of the quantized layer / group / instance norms (pyx/_qnorm.pyx).
 *
 * Two jobs, each with a portable twin in _qnorm.pyx that gives the same bits:
 *
 *  - the exact integer sums of a group, sum q and sum q^2 (int32 lanes, flushed to
 *    int64 before they can overflow: the order of an integer sum does not matter);
 *  - the element map of a group followed by the "vector" quantize PyTorch's AVX2
 *    kernels use (functional_norm.py, eqs. qnorm-affine and qnorm-quantize):
 *        layer:    y = fma(((q - Zx) - mu) * r, w[j], b[j])
 *        channel:  y = fma((q - Zx) - mu, g, s)
 *        out = clamp(nearbyint(min(y * inv, 2^31 - 128)) + Zy, lo, hi),
 *              lo where the rounded value is 2^31 - 128 and Zy > 127 (`wrap`).
 *    Every step is one float32 operation, rounded as the scalar C code rounds it (the
 *    module is compiled with -ffp-contract=off, so the portable loop has an fma exactly
 *    where fmaf is written).  min_ps returns its second operand for NaN, as PyTorch's
 *    x86 min does: a NaN y quantizes like 2^31 - 128.
 *
 * Functions take `sgn`: 1 for int8 integers (qint8), 0 for uint8 (quint8).
 */
#ifndef QLEARN_QNORM_AVX2_H
#define QLEARN_QNORM_AVX2_H

#include <stdint.h>
#include <string.h>
#include "qlearn_cpu.h"

/* the largest float32 below 2^31: PyTorch's vectorised quantize clamps y / S here */
#define QLEARN_QNORM_INT32_FLOAT_MAX 2147483520.0f

#if QLEARN_HAVE_X86_SIMD
#include <immintrin.h>

#define QLEARN_QNORM_AVX2 __attribute__((target("avx2,fma")))

/* 8 integers (int8 or uint8) as float32 lanes */
QLEARN_QNORM_AVX2 static inline __m256 qlearn_qnorm_load8(const void *p, int sgn) {
    __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(sgn ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
}

/* the vector quantize of 8 lanes, stored as 8 bytes */
QLEARN_QNORM_AVX2 static inline void qlearn_qnorm_store8(
        void *o, __m256 y, __m256 inv, __m256 zpy, __m256 lo, __m256 hi, int wrap,
        int sgn) {
    const __m256 bound = _mm256_set1_ps(QLEARN_QNORM_INT32_FLOAT_MAX);
    __m256 r = _mm256_round_ps(_mm256_min_ps(_mm256_mul_ps(y, inv), bound),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, zpy), lo), hi);
    if (wrap)   /* 2^31 - 128 + Zy wraps around in PyTorch's int32 addition */
        v = _mm256_blendv_ps(v, lo, _mm256_cmp_ps(r, bound, _CMP_EQ_OQ));
    __m256i i = _mm256_cvtps_epi32(v);      /* integers in [lo, hi] already */
    __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    __m128i p8 = sgn ? _mm_packs_epi16(p16, p16) : _mm_packus_epi16(p16, p16);
    _mm_storel_epi64((__m128i *)o, p8);
}

/* sum q and sum q^2 of q[0..n) */
QLEARN_QNORM_AVX2 static void qlearn_qnorm_sums_avx2(const void *p, long n, int sgn,
                                                     int64_t *sum, int64_t *sumsq) {
    const uint8_t *q = (const uint8_t *)p;
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t s = 0, ss = 0;
    long j = 0;
    while (j + 32 <= n) {
        /* a lane of the squares gains at most 4 * 255^2 per step of 32: 4096 steps stay
         * below 2^31 */
        long end = j + 32L * 4096 < n ? j + 32L * 4096 : n;
        __m256i vs = _mm256_setzero_si256(), vss = _mm256_setzero_si256();
        for (; j + 32 <= end; j += 32) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(q + j));
            __m128i b0 = _mm256_castsi256_si128(b), b1 = _mm256_extracti128_si256(b, 1);
            __m256i w0 = sgn ? _mm256_cvtepi8_epi16(b0) : _mm256_cvtepu8_epi16(b0);
            __m256i w1 = sgn ? _mm256_cvtepi8_epi16(b1) : _mm256_cvtepu8_epi16(b1);
            vs = _mm256_add_epi32(vs, _mm256_add_epi32(_mm256_madd_epi16(w0, ones),
                                                       _mm256_madd_epi16(w1, ones)));
            vss = _mm256_add_epi32(vss, _mm256_add_epi32(_mm256_madd_epi16(w0, w0),
                                                         _mm256_madd_epi16(w1, w1)));
        }
        int32_t a[8], c[8];
        _mm256_storeu_si256((__m256i *)a, vs);
        _mm256_storeu_si256((__m256i *)c, vss);
        for (int k = 0; k < 8; k++) {
            s += a[k];
            ss += c[k];
        }
    }
    for (; j < n; j++) {
        int64_t v = sgn ? (int64_t)((const int8_t *)q)[j] : (int64_t)q[j];
        s += v;
        ss += v * v;
    }
    *sum = s;
    *sumsq = ss;
    _mm256_zeroupper();   /* GCC omitted it; the caller is baseline x86-64 (dispatch.h) */
}

/* layer norm, elements [0, n) of a group (n a multiple of 8: the vector blocks) */
QLEARN_QNORM_AVX2 static void qlearn_qnorm_layer_avx2(
        const void *q, void *out, long n, float zpx, float mean, float r, const float *w,
        const float *b, float inv, float zpy, float lo, float hi, int wrap, int sgn) {
    const __m256 vzpx = _mm256_set1_ps(zpx), vmean = _mm256_set1_ps(mean);
    const __m256 vr = _mm256_set1_ps(r), vinv = _mm256_set1_ps(inv);
    const __m256 vzpy = _mm256_set1_ps(zpy), vlo = _mm256_set1_ps(lo);
    const __m256 vhi = _mm256_set1_ps(hi);
    for (long j = 0; j + 8 <= n; j += 8) {
        __m256 x = qlearn_qnorm_load8((const uint8_t *)q + j, sgn);
        __m256 u = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(x, vzpx), vmean), vr);
        u = _mm256_fmadd_ps(u, _mm256_loadu_ps(w + j), _mm256_loadu_ps(b + j));
        qlearn_qnorm_store8((uint8_t *)out + j, u, vinv, vzpy, vlo, vhi, wrap, sgn);
    }
}

/* group / instance norm, the n positions of one channel of a group (any n: the last
 * n mod 8 go through the same lanes, from a padded copy) */
QLEARN_QNORM_AVX2 static void qlearn_qnorm_channel_avx2(
        const void *q, void *out, long n, float zpx, float mean, float g, float s,
        float inv, float zpy, float lo, float hi, int wrap, int sgn) {
    const __m256 vzpx = _mm256_set1_ps(zpx), vmean = _mm256_set1_ps(mean);
    const __m256 vg = _mm256_set1_ps(g), vs = _mm256_set1_ps(s);
    const __m256 vinv = _mm256_set1_ps(inv), vzpy = _mm256_set1_ps(zpy);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const uint8_t *qb = (const uint8_t *)q;
    uint8_t *ob = (uint8_t *)out;
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = qlearn_qnorm_load8(qb + j, sgn);
        __m256 y = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_sub_ps(x, vzpx), vmean), vg, vs);
        qlearn_qnorm_store8(ob + j, y, vinv, vzpy, vlo, vhi, wrap, sgn);
    }
    if (j < n) {
        uint8_t qin[8] = {0}, qout[8];
        memcpy(qin, qb + j, (size_t)(n - j));
        __m256 x = qlearn_qnorm_load8(qin, sgn);
        __m256 y = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_sub_ps(x, vzpx), vmean), vg, vs);
        qlearn_qnorm_store8(qout, y, vinv, vzpy, vlo, vhi, wrap, sgn);
        memcpy(ob + j, qout, (size_t)(n - j));
    }
}

/* batch norm: out = clamp(nearbyint(fma(a, q - zpx, s)) + zpy, lo, hi) for quint8 q[0..n),
 * NaN to lo (max_ps returns its second operand for NaN, as fmaxf returns the number) */
QLEARN_QNORM_AVX2 static void qlearn_qnorm_affine_avx2(
        const uint8_t *q, uint8_t *out, long n, float a, float s, float zpx, float zpy,
        float lo, float hi) {
    const __m256 va = _mm256_set1_ps(a), vs = _mm256_set1_ps(s);
    const __m256 vzpx = _mm256_set1_ps(zpx), vzpy = _mm256_set1_ps(zpy);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    long j = 0;
    for (; j < n; j += 8) {
        uint8_t qin[8] = {0}, qout[8];
        long m = n - j < 8 ? n - j : 8;
        const uint8_t *src = q + j;
        if (m < 8) {        /* the last n mod 8, through the same lanes */
            memcpy(qin, src, (size_t)m);
            src = qin;
        }
        __m256 x = qlearn_qnorm_load8(src, 0);
        __m256 y = _mm256_fmadd_ps(va, _mm256_sub_ps(x, vzpx), vs);
        y = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        y = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(y, vzpy), vlo), vhi);
        __m256i i = _mm256_cvtps_epi32(y);
        __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i),
                                      _mm256_extracti128_si256(i, 1));
        __m128i p8 = _mm_packus_epi16(p16, p16);
        if (m == 8) {
            _mm_storel_epi64((__m128i *)(out + j), p8);
        } else {
            _mm_storel_epi64((__m128i *)qout, p8);
            memcpy(out + j, qout, (size_t)m);
        }
    }
    _mm256_zeroupper();   /* as in qlearn_qnorm_sums_avx2 */
}

#else  /* not x86: never called, qlearn_cpu_has_avx2() returns 0 */
static void qlearn_qnorm_sums_avx2(const void *p, long n, int sgn, int64_t *sum,
                                   int64_t *sumsq) {
    (void)p; (void)n; (void)sgn; *sum = 0; *sumsq = 0;
}
static void qlearn_qnorm_layer_avx2(
        const void *q, void *out, long n, float zpx, float mean, float r, const float *w,
        const float *b, float inv, float zpy, float lo, float hi, int wrap, int sgn) {
    (void)q; (void)out; (void)n; (void)zpx; (void)mean; (void)r; (void)w; (void)b;
    (void)inv; (void)zpy; (void)lo; (void)hi; (void)wrap; (void)sgn;
}
static void qlearn_qnorm_channel_avx2(
        const void *q, void *out, long n, float zpx, float mean, float g, float s,
        float inv, float zpy, float lo, float hi, int wrap, int sgn) {
    (void)q; (void)out; (void)n; (void)zpx; (void)mean; (void)g; (void)s; (void)inv;
    (void)zpy; (void)lo; (void)hi; (void)wrap; (void)sgn;
}
static void qlearn_qnorm_affine_avx2(
        const uint8_t *q, uint8_t *out, long n, float a, float s, float zpx, float zpy,
        float lo, float hi) {
    (void)q; (void)out; (void)n; (void)a; (void)s; (void)zpx; (void)zpy; (void)lo;
    (void)hi;
}
#endif

#endif
