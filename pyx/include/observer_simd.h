/* Reduction micro-kernels of the observers (pyx/_observer.pyx).
 *
 * Each has a plain C loop ("_ref", the version to read and the one it is tested against)
 * and an SSE2 loop.  SSE2 is part of the x86-64 baseline, so no run-time dispatch is
 * needed; other architectures use the plain loops.  Both give identical results: min,
 * max and integer counts do not depend on the order of evaluation.
 *
 * NaN: the min/max loops skip NaN (minps returns its second operand when either is
 * NaN) and report whether one was seen, so the caller can raise.
 */
#ifndef QLEARN_OBSERVER_SIMD_H
#define QLEARN_OBSERVER_SIMD_H

#include <stdint.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* *mn := min(*mn, x[0..n)), *mx := max(*mx, x[0..n)); returns 1 if some x[i] is NaN. */
static int qlearn_minmax_f32_ref(const float *x, long n, float *mn, float *mx) {
    float lo = *mn, hi = *mx;
    int nan = 0;
    for (long i = 0; i < n; i++) {
        float v = x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        nan |= (v != v);
    }
    *mn = lo;
    *mx = hi;
    return nan;
}

static int qlearn_minmax_f32(const float *x, long n, float *mn, float *mx) {
#if defined(__SSE2__)
    long i = 0;
    if (n >= 16) {
        __m128 lo0 = _mm_set1_ps(*mn), lo1 = lo0, lo2 = lo0, lo3 = lo0;
        __m128 hi0 = _mm_set1_ps(*mx), hi1 = hi0, hi2 = hi0, hi3 = hi0;
        __m128 nan = _mm_setzero_ps();
        for (; i + 16 <= n; i += 16) {
            __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
            __m128 c = _mm_loadu_ps(x + i + 8), d = _mm_loadu_ps(x + i + 12);
            /* min(v, acc) keeps acc when v is NaN */
            lo0 = _mm_min_ps(a, lo0); hi0 = _mm_max_ps(a, hi0);
            lo1 = _mm_min_ps(b, lo1); hi1 = _mm_max_ps(b, hi1);
            lo2 = _mm_min_ps(c, lo2); hi2 = _mm_max_ps(c, hi2);
            lo3 = _mm_min_ps(d, lo3); hi3 = _mm_max_ps(d, hi3);
            nan = _mm_or_ps(nan, _mm_or_ps(_mm_cmpunord_ps(a, b), _mm_cmpunord_ps(c, d)));
        }
        float l[4], h[4];
        _mm_storeu_ps(l, _mm_min_ps(_mm_min_ps(lo0, lo1), _mm_min_ps(lo2, lo3)));
        _mm_storeu_ps(h, _mm_max_ps(_mm_max_ps(hi0, hi1), _mm_max_ps(hi2, hi3)));
        float lo = l[0], hi = h[0];
        for (int k = 1; k < 4; k++) {
            lo = l[k] < lo ? l[k] : lo;
            hi = h[k] > hi ? h[k] : hi;
        }
        *mn = lo;
        *mx = hi;
        int bad = _mm_movemask_ps(nan) != 0;
        return bad | qlearn_minmax_f32_ref(x + i, n - i, mn, mx);
    }
#endif
    return qlearn_minmax_f32_ref(x, n, mn, mx);
}

/* mn[j] := min(mn[j], x[j]), mx[j] := max(mx[j], x[j]) for j < k; returns 1 on NaN. */
static int qlearn_minmax_accum_f32_ref(const float *x, long k, float *mn, float *mx) {
    int nan = 0;
    for (long j = 0; j < k; j++) {
        float v = x[j];
        mn[j] = v < mn[j] ? v : mn[j];
        mx[j] = v > mx[j] ? v : mx[j];
        nan |= (v != v);
    }
    return nan;
}

static int qlearn_minmax_accum_f32(const float *x, long k, float *mn, float *mx) {
#if defined(__SSE2__)
    long j = 0;
    __m128 nan = _mm_setzero_ps();
    for (; j + 4 <= k; j += 4) {
        __m128 v = _mm_loadu_ps(x + j);
        _mm_storeu_ps(mn + j, _mm_min_ps(v, _mm_loadu_ps(mn + j)));
        _mm_storeu_ps(mx + j, _mm_max_ps(v, _mm_loadu_ps(mx + j)));
        nan = _mm_or_ps(nan, _mm_cmpunord_ps(v, v));
    }
    return (_mm_movemask_ps(nan) != 0) | qlearn_minmax_accum_f32_ref(x + j, k - j, mn + j, mx + j);
#else
    return qlearn_minmax_accum_f32_ref(x, k, mn, mx);
#endif
}

/* Histogram as torch.histc computes it (LINEAR_INTERPOLATION, float32):
 *     keep x if left <= x <= right,  b = (int64)((x - left) * nbins / (right - left)),
 *     b = nbins - 1 if b == nbins  (the last bin includes its right edge).
 * counts has 4 * nbins entries: element i goes to copy i % 4, so that runs of equal
 * bins do not wait on each other's increments; the caller sums the four copies.
 * Counts are 32-bit (half the cache footprint); callers pass fewer than 2**32 elements.
 *
 * The float32 formula is exact in its ordering only while (right - left) * nbins is a
 * finite float32: beyond it (data near the float32 limits) the width or the product
 * overflows, the quotient becomes 0 or inf/inf = NaN, and casting NaN to an integer is
 * undefined (x86 gives INT_MIN: a write far before the array).  qlearn_histc_f32_safe
 * says whether the float32 formula is usable; when it is not, the same formula runs in
 * float64, which holds the whole float32 range (torch.histc drops or misplaces the
 * values there).
 */
static int qlearn_histc_f32_safe(float left, float right, long nbins) {
    const float width = right - left;
    return isfinite(width) && isfinite(width * (float)nbins);
}

static void qlearn_histc_f64_ref(const float *x, long n, float left, float right,
                                 long nbins, uint32_t *counts) {
    const double l = left, fb = (double)nbins, width = (double)right - (double)left;
    for (long i = 0; i < n; i++) {
        float v = x[i];
        if (!(v >= left && v <= right)) continue;
        double t = (((double)v - l) * fb) / width;   /* in [0, nbins]: the cast is defined */
        int64_t b = (int64_t)t;
        if (b >= nbins) b = nbins - 1;
        if (b < 0) b = 0;
        counts[(i & 3) * nbins + b] += 1;
    }
}

static void qlearn_histc_f32_ref(const float *x, long n, float left, float right,
                                 long nbins, uint32_t *counts) {
    if (!qlearn_histc_f32_safe(left, right, nbins)) {
        qlearn_histc_f64_ref(x, n, left, right, nbins, counts);
        return;
    }
    const float fb = (float)nbins, width = right - left;
    for (long i = 0; i < n; i++) {
        float v = x[i];
        if (!(v >= left && v <= right)) continue;
        int64_t b = (int64_t)(((v - left) * fb) / width);
        if (b >= nbins) b = nbins - 1;
        if (b < 0) b = 0;
        counts[(i & 3) * nbins + b] += 1;
    }
}

static void qlearn_histc_f32(const float *x, long n, float left, float right,
                             long nbins, uint32_t *counts) {
#if defined(__SSE2__)
    long i = 0;
    if (!qlearn_histc_f32_safe(left, right, nbins)) {
        qlearn_histc_f64_ref(x, n, left, right, nbins, counts);
        return;
    }
    const __m128 l = _mm_set1_ps(left), r = _mm_set1_ps(right);
    const __m128 fb = _mm_set1_ps((float)nbins), w = _mm_set1_ps(right - left);
    const __m128i top = _mm_set1_epi32((int)(nbins - 1));
    uint32_t *c0 = counts, *c1 = counts + nbins, *c2 = counts + 2 * nbins,
             *c3 = counts + 3 * nbins;
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(x + i);
        /* same operations, same order as the plain loop: (v - left) * nbins / width */
        __m128 t = _mm_div_ps(_mm_mul_ps(_mm_sub_ps(v, l), fb), w);
        int keep = _mm_movemask_ps(_mm_and_ps(_mm_cmpge_ps(v, l), _mm_cmple_ps(v, r)));
        /* kept lanes have t in [0, nbins]: truncate like the cast, then min(b, nbins-1) */
        __m128i b = _mm_cvttps_epi32(t);
        __m128i over = _mm_cmpgt_epi32(b, top);
        b = _mm_or_si128(_mm_and_si128(over, top), _mm_andnot_si128(over, b));
        if (keep == 15) {
            c0[_mm_cvtsi128_si32(b)]++;
            c1[_mm_cvtsi128_si32(_mm_shuffle_epi32(b, 1))]++;
            c2[_mm_cvtsi128_si32(_mm_shuffle_epi32(b, 2))]++;
            c3[_mm_cvtsi128_si32(_mm_shuffle_epi32(b, 3))]++;
        } else if (keep) {
            int32_t idx[4];
            _mm_storeu_si128((__m128i *)idx, b);
            for (int k = 0; k < 4; k++)
                if (keep & (1 << k)) counts[k * nbins + idx[k]]++;
        }
    }
    /* the tail keeps the i % 4 assignment of the plain loop (i is a multiple of 4 here) */
    qlearn_histc_f32_ref(x + i, n - i, left, right, nbins, counts);
#else
    qlearn_histc_f32_ref(x, n, left, right, nbins, counts);
#endif
}

#endif
