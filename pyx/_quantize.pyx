# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Quantize and dequantize kernels (the affine map and its inverse).

Arguments are validated by :mod:`qlearn.qtensor`, the only caller: arrays are
C-contiguous, shapes agree, scales are positive and finite and zero points lie in
[qmin, qmax].  NaN and infinity are detected in the same pass that quantizes (a second
pass would cost as much memory traffic as the quantization itself): the quantize
kernels return how many blocks held one, and the caller raises before returning.

Per-channel tensors are handled as a 3-d view ``(outer, C, inner)`` where ``C`` is the
channel axis: every ``inner``-long row shares one scale and zero point.  When rows are
short (the channel axis last, say) a call per row would cost more than the row, so the
parameters are expanded to one per element of a ``C * inner`` slice and each outer slice
is quantized in one pass.
"""
import numpy as np

from cython.parallel cimport prange
from libc.math cimport fmaf, fminf, fmaxf

from _rounding cimport nearbyint32
from _simd cimport simd_avx2
from _typedefs cimport (float32_t, float64_t, int8_t, int32_t, int64_t, intp_t, qstore_t,
                        uint8_t)

cdef extern from "quantize_avx2.h":
    int qlearn_quantize_q8_avx2(const float *x, void *out, long n, float inv_scale,
                                int zero_point, int qmin, int qmax, int fused,
                                int is_signed) noexcept nogil
    int qlearn_quantize_q8_each_avx2(const float *x, void *out, long n,
                                     const float *inv_scale, const float *zero_point,
                                     int qmin, int qmax, int is_signed) noexcept nogil
    void qlearn_dequantize_q8_avx2(const void *q, float *out, long n, float scale,
                                   int zero_point, int is_signed) noexcept nogil
    void qlearn_dequantize_q8_f64_avx2(const void *q, float *out, long n, double scale,
                                       int zero_point, int is_signed) noexcept nogil

cdef enum:
    # Work is split into blocks of this many elements; below it a kernel runs serially.
    BLOCK = 32768
    # Per-channel rows shorter than this get per-element parameters (see above).
    SHORT_ROW = 32



cdef inline int64_t _quantize_one(float32_t x, float32_t inv_scale, float32_t zero_point,
                                  float32_t lo, float32_t hi, int64_t qmin, int64_t qmax,
                                  bint fused) noexcept nogil:
    """q = clamp(nearbyint(x / S + Z), qmin, qmax), in float32 as PyTorch computes it."""
    cdef float32_t t
    if fused:
        t = fmaf(x, inv_scale, zero_point)   # one rounding: PyTorch's 8-bit per-tensor path
    else:
        t = x * inv_scale + zero_point       # two roundings (-ffp-contract=off keeps it so)
    # Clamp in float first so that the integer conversion cannot overflow; for qint32,
    # float(qmax) rounds up to 2**31, hence the second clamp in int64.
    t = nearbyint32(fminf(fmaxf(t, lo), hi))
    cdef int64_t q = <int64_t> t
    return qmin if q < qmin else (qmax if q > qmax else q)


cdef int _quantize_run(const float32_t *x, qstore_t *out, intp_t n, float32_t inv_scale,
                       int32_t zero_point, int32_t qmin, int32_t qmax,
                       bint fused, bint avx2) noexcept nogil:
    """Quantize ``n`` contiguous elements that share one scale and zero point.

    Returns 1 if any element was NaN or infinite (``x - x`` is then not zero).
    """
    cdef intp_t i
    cdef int bad = 0
    cdef float32_t zp = <float32_t> zero_point, lo = <float32_t> qmin, hi = <float32_t> qmax
    if avx2 and (qstore_t is uint8_t or qstore_t is int8_t):
        return qlearn_quantize_q8_avx2(x, <void *> out, n, inv_scale, zero_point, qmin,
                                       qmax, fused, qstore_t is int8_t)
    for i in range(n):
        out[i] = <qstore_t> _quantize_one(x[i], inv_scale, zp, lo, hi, qmin, qmax, fused)
        bad |= (x[i] - x[i]) != 0
    return bad


def quantize_per_tensor(const float32_t[::1] x,    # IN  n floats
                        qstore_t[::1] out,         # OUT n integers
                        float32_t inv_scale, int32_t zero_point,
                        int32_t qmin, int32_t qmax, bint fused, int simd,
                        int num_threads):
    """out[i] := clamp(nearbyint(x[i] * inv_scale + zero_point), qmin, qmax)

    Returns the number of blocks that held NaN or infinity (0 for clean input).
    """
    cdef bint avx2 = simd_avx2(simd)
    cdef intp_t n = x.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, start, stop
    cdef int bad = 0
    if nblocks <= 1:
        num_threads = 1
    with nogil:
        for b in prange(nblocks, num_threads=num_threads, schedule="static"):
            start = b * BLOCK
            stop = min(start + BLOCK, n)
            bad += _quantize_run[qstore_t](&x[start], &out[start], stop - start, inv_scale,
                                           zero_point, qmin, qmax, fused, avx2)
    return bad


cdef int _quantize_run_each(const float32_t *x, qstore_t *out, intp_t n,
                            const float32_t *inv_scale, const float32_t *zero_point,
                            int32_t qmin, int32_t qmax, bint avx2) noexcept nogil:
    """Quantize ``n`` elements, element i with its own inv_scale[i] and zero_point[i]."""
    cdef intp_t i
    cdef int bad = 0
    if avx2 and (qstore_t is uint8_t or qstore_t is int8_t):
        return qlearn_quantize_q8_each_avx2(x, <void *> out, n, inv_scale, zero_point,
                                            qmin, qmax, qstore_t is int8_t)
    for i in range(n):
        out[i] = <qstore_t> _quantize_one(x[i], inv_scale[i], zero_point[i], <float32_t> qmin,
                                          <float32_t> qmax, qmin, qmax, False)
        bad |= (x[i] - x[i]) != 0
    return bad


def quantize_per_channel(const float32_t[:, :, ::1] x,   # IN  (outer, C, inner)
                         qstore_t[:, :, ::1] out,        # OUT (outer, C, inner)
                         const float32_t[::1] inv_scales,  # IN  (C,)
                         const int32_t[::1] zero_points,   # IN  (C,)
                         int32_t qmin, int32_t qmax, int simd, int num_threads):
    """out[o, c, i] := clamp(nearbyint(x[o, c, i] * inv_scales[c] + zero_points[c]), qmin, qmax)

    Returns the number of rows that held NaN or infinity (0 for clean input).
    """
    cdef bint avx2 = simd_avx2(simd)
    cdef intp_t outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef intp_t rows = outer * C, r, c, o
    cdef int bad = 0
    cdef const float32_t[::1] inv_each, zp_each
    if rows * inner < BLOCK:
        num_threads = 1
    if inner < SHORT_ROW:
        inv_each = np.repeat(np.asarray(inv_scales), inner)
        zp_each = np.repeat(np.asarray(zero_points).astype(np.float32), inner)
        with nogil:
            for o in prange(outer, num_threads=num_threads, schedule="static"):
                bad += _quantize_run_each[qstore_t](&x[o, 0, 0], &out[o, 0, 0], C * inner,
                                                    &inv_each[0], &zp_each[0], qmin, qmax,
                                                    avx2)
        return bad
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            c = r % C
            bad += _quantize_run[qstore_t](&x[r // C, c, 0], &out[r // C, c, 0], inner,
                                           inv_scales[c], zero_points[c], qmin, qmax, False,
                                           avx2)
    return bad


cdef void _dequantize_run(const qstore_t *q, float32_t *out, intp_t n, float32_t scale,
                          int32_t zero_point, bint avx2) noexcept nogil:
    """out[i] := (q[i] - zero_point) * scale for ``n`` contiguous elements, in float32."""
    cdef intp_t i
    if avx2 and (qstore_t is uint8_t or qstore_t is int8_t):
        qlearn_dequantize_q8_avx2(<const void *> q, out, n, scale, zero_point,
                                  qstore_t is int8_t)
        return
    for i in range(n):
        # int64: for qint32, q - zero_point can leave the int32 range
        out[i] = <float32_t> (<int64_t> q[i] - zero_point) * scale


cdef void _dequantize_run_f64(const qstore_t *q, float32_t *out, intp_t n, float64_t scale,
                              int32_t zero_point, bint avx2) noexcept nogil:
    """out[i] := float32((q[i] - zero_point) * scale), the product in float64."""
    cdef intp_t i
    if avx2 and (qstore_t is uint8_t or qstore_t is int8_t):
        qlearn_dequantize_q8_f64_avx2(<const void *> q, out, n, scale, zero_point,
                                      qstore_t is int8_t)
        return
    for i in range(n):
        out[i] = <float32_t> ((<int64_t> q[i] - zero_point) * scale)


cdef void _dequantize_run_each(const qstore_t *q, float32_t *out, intp_t n,
                               const float64_t *scale, const int32_t *zero_point) noexcept nogil:
    """out[i] := float32((q[i] - zero_point[i]) * scale[i]), the product in float64."""
    cdef intp_t i
    for i in range(n):
        out[i] = <float32_t> ((<int64_t> q[i] - zero_point[i]) * scale[i])


def dequantize_per_tensor(const qstore_t[::1] q,   # IN  n integers
                          float32_t[::1] out,      # OUT n floats
                          float32_t scale, int32_t zero_point, int simd, int num_threads):
    """out[i] := (q[i] - zero_point) * scale, in float32"""
    cdef bint avx2 = simd_avx2(simd)
    cdef intp_t n = q.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, start, stop
    if nblocks <= 1:
        num_threads = 1
    with nogil:
        for b in prange(nblocks, num_threads=num_threads, schedule="static"):
            start = b * BLOCK
            stop = min(start + BLOCK, n)
            _dequantize_run[qstore_t](&q[start], &out[start], stop - start, scale, zero_point,
                                      avx2)


def dequantize_per_channel(const qstore_t[:, :, ::1] q,   # IN  (outer, C, inner)
                           float32_t[:, :, ::1] out,      # OUT (outer, C, inner)
                           const float64_t[::1] scales,   # IN  (C,)
                           const int32_t[::1] zero_points,  # IN  (C,)
                           int simd, int num_threads):
    """out[o, c, i] := float32((q[o, c, i] - zero_points[c]) * scales[c]), product in float64"""
    cdef bint avx2 = simd_avx2(simd)
    cdef intp_t outer = q.shape[0], C = q.shape[1], inner = q.shape[2]
    cdef intp_t rows = outer * C, r, c, o, n
    cdef const float64_t[::1] s_each
    cdef const int32_t[::1] z_each
    if rows * inner < BLOCK:
        num_threads = 1
    if inner < SHORT_ROW:
        s_each = np.repeat(np.asarray(scales), inner)
        z_each = np.repeat(np.asarray(zero_points), inner)
        n = C * inner
        with nogil:
            for o in prange(outer, num_threads=num_threads, schedule="static"):
                _dequantize_run_each[qstore_t](&q[o, 0, 0], &out[o, 0, 0], n, &s_each[0],
                                               &z_each[0])
        return
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            c = r % C
            _dequantize_run_f64[qstore_t](&q[r // C, c, 0], &out[r // C, c, 0], inner,
                                          scales[c], zero_points[c], avx2)
