# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Quantize and dequantize with float zero points (``per_channel_affine_float_qparams``).

The scheme PyTorch uses for embedding tables: every channel ``c`` has a float32 scale
``S_c`` and a float32 zero point ``Z_c`` (``-min_c / S_c``, rarely a whole number), and::

    q = clamp(nearbyint(x * (1 / S_c) + Z_c), qmin, qmax)      in float32, unfused
    r = (float(q) - Z_c) * S_c                                 in float32

Arguments are validated by :mod:`qlearn.float_qparams`, the only caller (and the
QTensor, whose dequantize calls the second kernel): arrays are
C-contiguous, shapes agree, scales are positive and finite in float32, zero points are
finite.  Tensors are seen as ``(outer, C, inner)`` with ``C`` the channel axis, as in
``_quantize.pyx``; every ``inner``-long row shares one (S_c, Z_c).  The 8-bit dtypes
and quint4x2 have this scheme (PyTorch has no qint32 kernel for it); quint4x2 values
(0..15) arrive one per byte, so its quantize and dequantize are the quint8 kernels with
``qmax = 15``, and only its lookup reads packed rows.
"""
from cython.parallel cimport parallel, prange
from libc.math cimport fmaf, fminf, fmaxf
from libc.stdlib cimport free, malloc

from _rounding cimport nearbyint32
from _typedefs cimport float32_t, int8_t, int64_t, intp_t, uint8_t

cdef extern from "embedding_avx2.h":
    void qlearn_embedding_row_avx2(const uint8_t *q, float *out, long n, float s, float b,
                                   int mode) noexcept nogil

cdef extern from "qlearn_cpu.h":
    int qlearn_cpu_has_avx2() noexcept nogil

ctypedef fused q8_t:
    uint8_t
    int8_t

cdef enum:
    BLOCK = 32768    # below this many elements a kernel runs serially


cdef int _quantize_row(const float32_t *x, q8_t *out, intp_t n, float32_t inv_scale,
                       float32_t zero_point, float32_t lo, float32_t hi) noexcept nogil:
    """One row; returns 1 if it held NaN or infinity (``x - x`` is then not zero)."""
    cdef intp_t i
    cdef int bad = 0
    cdef float32_t t
    for i in range(n):
        t = x[i] * inv_scale + zero_point      # two roundings, as PyTorch (no FMA)
        # clamp first (the bounds are integers, so clamp-then-round equals
        # round-then-clamp) so that the conversion to an integer cannot overflow
        out[i] = <q8_t> nearbyint32(fminf(fmaxf(t, lo), hi))
        bad |= (x[i] - x[i]) != 0
    return bad


def quantize_per_channel_float_qparams(
        const float32_t[:, :, ::1] x,        # IN  (outer, C, inner)
        q8_t[:, :, ::1] out,                 # OUT (outer, C, inner)
        const float32_t[::1] inv_scales,     # IN  (C,)  1.0f / S_c
        const float32_t[::1] zero_points,    # IN  (C,)  Z_c
        int qmin, int qmax, int num_threads):
    """out[o, c, i] := clamp(nearbyint(x[o, c, i] * inv_scales[c] + zero_points[c]), qmin, qmax)

    Returns the number of rows that held NaN or infinity (0 for clean input).
    """
    cdef intp_t outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef intp_t rows = outer * C, r, c
    cdef int bad = 0
    cdef float32_t lo = qmin, hi = qmax
    if rows * inner < BLOCK:
        num_threads = 1
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            c = r % C
            bad += _quantize_row[q8_t](&x[r // C, c, 0], &out[r // C, c, 0], inner,
                                       inv_scales[c], zero_points[c], lo, hi)
    return bad


def dequantize_per_channel_float_qparams(
        const q8_t[:, :, ::1] q,             # IN  (outer, C, inner)
        float32_t[:, :, ::1] out,            # OUT (outer, C, inner)
        const float32_t[::1] scales,         # IN  (C,)
        const float32_t[::1] zero_points,    # IN  (C,)
        int num_threads):
    """out[o, c, i] := (float(q[o, c, i]) - zero_points[c]) * scales[c], in float32"""
    cdef intp_t outer = q.shape[0], C = q.shape[1], inner = q.shape[2]
    cdef intp_t rows = outer * C, r, c, o, i
    cdef float32_t s, z
    if rows * inner < BLOCK:
        num_threads = 1
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            c = r % C
            o = r // C
            s = scales[c]
            z = zero_points[c]
            for i in range(inner):
                out[o, c, i] = (<float32_t> q[o, c, i] - z) * s


# -- quantized embedding lookups --------------------------------------------------------------
# A quint8 table row i stands for (q - Z_i) * S_i.  PyTorch's packed lookup stores
# bias_i = float32(Z_i * S_i * -1) and computes each element as fma(S_i, q, bias_i), one
# rounding, which can differ from the dequantized value by an ulp: the same is done here.

def embedding_bag_byte(const uint8_t[:, ::1] qweight,   # IN  (N, D) the table's integers
                       const float32_t[::1] scales,     # IN  (N,)   S_i
                       const float32_t[::1] biases,     # IN  (N,)   -Z_i * S_i
                       const int64_t[::1] indices,      # IN  (L,)   rows read, bag by bag
                       const int64_t[::1] bounds,       # IN  (B+1,) bag b is [bounds[b], bounds[b+1])
                       const float32_t[::1] weights,    # IN  (L,) per-sample weights, or (0,)
                       int mode,                        # 0 sum, 1 mean, 2 max
                       float32_t[:, ::1] out,           # OUT (B, D)
                       int simd,                        # 0 portable loop, >= 1 AVX2
                       int num_threads):
    """out[b] := reduce over p in bag b of fma(S_i, q[i], bias_i), i = indices[p]

    sum accumulates buf = fma(w S_i, q, buf + w bias_i) in index order (PyTorch's
    FBGEMM kernel); mean divides the sum by the bag's size; max takes the element-wise
    maximum; an empty bag gives zeros.
    """
    cdef intp_t B = out.shape[0], D = out.shape[1], b, p, j, i
    cdef float32_t s, z, v, n
    cdef bint weighted = weights.shape[0] > 0
    # the AVX2 rows only where this CPU has AVX2 and FMA (an illegal instruction would
    # kill the interpreter), whatever the caller asks
    cdef bint avx2 = simd >= 1 and qlearn_cpu_has_avx2()
    if indices.shape[0] * D < BLOCK:
        num_threads = 1
    with nogil:
        for b in prange(B, num_threads=num_threads, schedule="static"):
            for j in range(D):
                out[b, j] = 0
            for p in range(bounds[b], bounds[b + 1]):
                i = indices[p]
                s = scales[i]
                z = biases[i]
                if weighted:
                    s = s * weights[p]
                    z = z * weights[p]
                if avx2 and mode != 2:
                    qlearn_embedding_row_avx2(&qweight[i, 0], &out[b, 0], D, s, z, 0)
                    continue
                if avx2 and p > bounds[b]:        # max: the first row sets the bag
                    qlearn_embedding_row_avx2(&qweight[i, 0], &out[b, 0], D, s, z, 2)
                    continue
                for j in range(D):
                    if mode == 2:
                        v = fmaf(s, <float32_t> qweight[i, j], z)
                        if p == bounds[b] or v > out[b, j]:
                            out[b, j] = v
                    else:
                        out[b, j] = fmaf(s, <float32_t> qweight[i, j], out[b, j] + z)
            if mode == 1 and bounds[b + 1] > bounds[b]:
                n = <float32_t> (bounds[b + 1] - bounds[b])
                for j in range(D):
                    out[b, j] = out[b, j] / n


# A quint4x2 table is packed per row: byte k of row i holds columns 2k (low nibble) and
# 2k + 1 (high nibble), and the row's scale and bias are kept as float16 (PyTorch's
# ``embedding_bag_4bit_prepack`` stores them in 2 bytes each); they arrive here already
# widened back to float32, so the arithmetic is the 8-bit lookup's.

def embedding_bag_4bit(const uint8_t[:, ::1] packed,    # IN  (N, ceil(D/2)) two values a byte
                       const float32_t[::1] scales,     # IN  (N,)   float16(S_i), widened
                       const float32_t[::1] biases,     # IN  (N,)   float16(-Z_i S_i), widened
                       const int64_t[::1] indices,      # IN  (L,)   rows read, bag by bag
                       const int64_t[::1] bounds,       # IN  (B+1,) bag b is [bounds[b], bounds[b+1])
                       const float32_t[::1] weights,    # IN  (L,) per-sample weights, or (0,)
                       int mode,                        # 0 sum, 1 mean, 2 max
                       float32_t[:, ::1] out,           # OUT (B, D)
                       int simd,                        # 0 portable loop, >= 1 AVX2
                       int num_threads):
    """out[b] := reduce over p in bag b of fma(S_i, q[i, j], bias_i), i = indices[p],
    q[i, j] = (packed[i, j // 2] >> 4 (j % 2)) & 15

    As :func:`embedding_bag_byte`: sum accumulates buf = fma(w S_i, q, buf + w bias_i)
    in index order, mean divides by the bag's size, max is element-wise, an empty bag
    gives zeros.  The AVX2 path unpacks each row into a byte buffer and folds it in
    with the 8-bit row kernel (the same fma, so the same bits).
    """
    cdef intp_t B = out.shape[0], D = out.shape[1], b, p, j, i, half = D // 2
    cdef float32_t s, z, v, n, qv
    cdef uint8_t byte
    cdef uint8_t *row = NULL
    cdef bint weighted = weights.shape[0] > 0
    cdef bint avx2 = simd >= 1 and qlearn_cpu_has_avx2()
    if indices.shape[0] * D < BLOCK:
        num_threads = 1
    # one unpacking buffer per thread, not per bag (a failed malloc leaves the
    # portable loop, which needs none)
    with nogil, parallel(num_threads=num_threads):
        row = <uint8_t *> malloc(D + 1) if avx2 else NULL
        for b in prange(B, schedule="static"):
            for j in range(D):
                out[b, j] = 0
            for p in range(bounds[b], bounds[b + 1]):
                i = indices[p]
                s = scales[i]
                z = biases[i]
                if weighted:
                    s = s * weights[p]
                    z = z * weights[p]
                if row != NULL and (mode != 2 or p > bounds[b]):
                    for j in range(half):
                        byte = packed[i, j]
                        row[2 * j] = byte & 15
                        row[2 * j + 1] = byte >> 4
                    if D % 2:
                        row[D - 1] = packed[i, half] & 15
                    qlearn_embedding_row_avx2(row, &out[b, 0], D, s, z,
                                              2 if mode == 2 else 0)
                    continue
                for j in range(D):
                    qv = <float32_t> ((packed[i, j >> 1] >> ((j & 1) << 2)) & 15)
                    if mode == 2:
                        v = fmaf(s, qv, z)
                        if p == bounds[b] or v > out[b, j]:
                            out[b, j] = v
                    else:
                        out[b, j] = fmaf(s, qv, out[b, j] + z)
            if mode == 1 and bounds[b + 1] > bounds[b]:
                n = <float32_t> (bounds[b + 1] - bounds[b])
                for j in range(D):
                    out[b, j] = out[b, j] / n
        free(row)
