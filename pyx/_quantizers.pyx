# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Kernels of Distiller's quantizers (DoReFa, PACT, WRPN): clip, round, and their
straight-through gradients.

Arguments are validated by :mod:`qlearn.quantizers._ste`, the only caller: arrays are
C-contiguous float32 of matching shapes, ``lo <= hi``, ``scale > 0``.

Every quantizer is a clip to ``[lo, hi]`` followed by the uniform rounding of its
documented equation, with ``levels = 2^k - 1`` (or ``2^(k-1) - 1``) steps per ``unit``
(1 for DoReFa and WRPN, the clipping value for PACT), i.e. ``S = unit / levels`` and
``Z = 0`` in qlearn's convention ``r = S q``::

    y     = clamp(x, lo, hi)                                   float32
    x_hat = float32(nearbyint(y * levels / unit) * unit / levels)   in double

In double ``y * levels`` is exact, so the equation's exact ties (``0.5 * 3``) stay ties
and round half to even, which ``y * float32(1 / S)`` does not guarantee (for k = 3, 4,
6, 8, 12 it moves values at ties by a whole step), and a tiny ``unit`` cannot overflow.
Reductions (PACT's clip-value gradient, DoReFa's max |tanh w|) are summed per block in
float64 and then over blocks in a fixed order: results do not depend on the thread
count.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY, fabs, fmaxf, nearbyint, tanh
from libc.stdlib cimport free, malloc

from _simd cimport simd_avx2
from _typedefs cimport float32_t, float64_t, intp_t

cdef extern from "fake_quant_avx2.h":
    int qlearn_clip_round_f32_avx2(const float *x, float *out, long n, float lo, float hi,
                                   double unit, double levels) noexcept nogil
    double qlearn_clip_grad_f32_avx2(const float *x, const float *g, float *out, long n,
                                     float lo, float hi, int hi_inclusive,
                                     float sum_from) noexcept nogil

cdef enum:
    BLOCK = 32768


cdef inline float32_t _clip_round(float32_t x, float32_t lo, float32_t hi, float64_t unit,
                                  float64_t levels) noexcept nogil:
    """float32(round(clamp(x, lo, hi) * levels / unit) * unit / levels)"""
    cdef float32_t c = x if x > lo else lo        # maxss: NaN -> lo, as fmaxf
    c = c if c < hi else hi                       # minss
    return <float32_t> (nearbyint(<float64_t> c * levels / unit) * unit / levels)


def clip_round(const float32_t[::1] x,   # IN  n floats
               float32_t[::1] out,       # OUT n floats
               float32_t lo, float32_t hi, float64_t unit, float64_t levels,
               int simd, int num_threads):
    """out[i] := float32(nearbyint(clamp(x[i], lo, hi) * levels / unit) * unit / levels)

    Returns the number of blocks holding NaN or infinity (0 for clean input).
    """
    cdef bint avx2 = simd_avx2(simd)
    cdef intp_t n = x.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, i, start, stop
    cdef int bad = 0, blk
    if nblocks <= 1:
        num_threads = 1
    with nogil:
        for b in prange(nblocks, num_threads=num_threads, schedule="static"):
            start = b * BLOCK
            stop = min(start + BLOCK, n)
            if avx2:
                blk = qlearn_clip_round_f32_avx2(&x[start], &out[start], stop - start, lo,
                                                 hi, unit, levels)
            else:
                blk = 0
                for i in range(start, stop):
                    out[i] = _clip_round(x[i], lo, hi, unit, levels)
                    blk = blk | ((x[i] - x[i]) != 0)
            bad += blk
    return bad


cdef float64_t _clip_grad_ref(const float32_t *x, const float32_t *g, float32_t *out,
                              intp_t n, float32_t lo, float32_t hi, bint hi_inclusive,
                              float32_t sum_from) noexcept nogil:
    """out[i] := g[i] if lo <= x[i] <= hi (x[i] < hi when not ``hi_inclusive``) else 0;
    returns the float64 sum of g[i] over x[i] >= sum_from.  The plain twin of
    ``qlearn_clip_grad_f32_avx2`` (same values; the sum may differ in the last bits,
    its lanes add in another order)."""
    cdef intp_t i
    cdef float64_t total = 0
    cdef bint inside
    for i in range(n):
        inside = (x[i] >= lo) & ((x[i] < hi) | (hi_inclusive & (x[i] == hi)))
        out[i] = g[i] if inside else 0
        total += g[i] if x[i] >= sum_from else 0
    return total


cdef float64_t _clip_grad_blocks(const float32_t[::1] x, const float32_t[::1] grad,
                                 float32_t[::1] out, float32_t lo, float32_t hi,
                                 bint hi_inclusive, float32_t sum_from, bint avx2,
                                 int num_threads) except? -1:
    """Run the clip gradient over blocks (in parallel above one block); sum the blocks'
    partial sums in block order."""
    cdef intp_t n = x.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, start, stop
    cdef float64_t *partial = <float64_t *> malloc(max(nblocks, 1) * sizeof(float64_t))
    cdef float64_t total = 0
    if partial == NULL:
        raise MemoryError()
    if nblocks <= 1:
        num_threads = 1
    try:
        with nogil:
            for b in prange(nblocks, num_threads=num_threads, schedule="static"):
                start = b * BLOCK
                stop = min(start + BLOCK, n)
                if avx2:
                    partial[b] = qlearn_clip_grad_f32_avx2(
                        &x[start], &grad[start], &out[start], stop - start, lo, hi,
                        hi_inclusive, sum_from)
                else:
                    partial[b] = _clip_grad_ref(&x[start], &grad[start], &out[start],
                                                stop - start, lo, hi, hi_inclusive,
                                                sum_from)
        for b in range(nblocks):
            total += partial[b]
    finally:
        free(partial)
    return total


def clip_backward(const float32_t[::1] x,      # IN  n floats, the forward input
                  const float32_t[::1] grad,   # IN  n floats, dL/dx_hat
                  float32_t[::1] out,          # OUT n floats, dL/dx
                  float32_t lo, float32_t hi, bint hi_inclusive, int simd,
                  int num_threads):
    """out[i] := grad[i] if lo <= x[i] <= hi (``x[i] < hi`` when not ``hi_inclusive``)
    else 0: the gradient of the clip, with the straight-through estimator for round."""
    _clip_grad_blocks(x, grad, out, lo, hi, hi_inclusive, INFINITY, simd_avx2(simd),
                      num_threads)


def pact_backward(const float32_t[::1] x,      # IN  n floats, the forward input
                  const float32_t[::1] grad,   # IN  n floats, dL/dy_q
                  float32_t[::1] out,          # OUT n floats, dL/dx
                  float32_t alpha, int simd, int num_threads):
    """out[i] := grad[i] if 0 <= x[i] < alpha else 0;
    returns dL/dalpha = sum of grad[i] over x[i] >= alpha (float64, fixed order)."""
    return _clip_grad_blocks(x, grad, out, 0, alpha, False, alpha, simd_avx2(simd),
                             num_threads)


def dorefa_weight_forward(const float32_t[::1] w,   # IN  n floats
                          float32_t[::1] t,         # OUT n floats, tanh(w)
                          float32_t[::1] out,       # OUT n floats, w_q
                          float64_t levels, int num_threads):
    """t := tanh(w);  M := max |t|;  f := t / (2 M) + 1/2;
    out := 2 quantize_k(f) - 1, quantize_k(f) = float32(nearbyint(levels f) / levels),
    ``levels`` = 2^k - 1 (the product exact in double: ties round half to even).

    tanh is taken in double and rounded to float32 (reproducible across libms).  An
    all-zero ``w`` (M = 0) gives f = 1/2.  Returns ``(M, bad)``: bad is nonzero if ``w``
    held NaN or infinity.
    """
    cdef intp_t n = w.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, i, start, stop
    cdef float32_t *part = <float32_t *> malloc(2 * max(nblocks, 1) * sizeof(float32_t))
    cdef float32_t m, v, big = 0, bad = 0, one = 1.0, half = 0.5, two = 2.0
    if part == NULL:
        raise MemoryError()
    if nblocks <= 1:
        num_threads = 1
    try:
        with nogil:
            for b in prange(nblocks, num_threads=num_threads, schedule="static"):
                start = b * BLOCK
                stop = min(start + BLOCK, n)
                m = 0
                v = 0
                for i in range(start, stop):
                    t[i] = <float32_t> tanh(<float64_t> w[i])
                    m = fmaxf(m, fabs(t[i]))
                    v = v + (w[i] - w[i])        # NaN if any w is not finite
                part[2 * b] = m
                part[2 * b + 1] = v
            for b in range(nblocks):
                big = fmaxf(big, part[2 * b])
                bad = bad + part[2 * b + 1]
            for b in prange(nblocks, num_threads=num_threads, schedule="static"):
                start = b * BLOCK
                stop = min(start + BLOCK, n)
                for i in range(start, stop):
                    if big > 0:
                        v = t[i] / (two * big) + half
                    else:
                        v = half
                    out[i] = two * <float32_t> (nearbyint(<float64_t> v * levels)
                                                / levels) - one
    finally:
        free(part)
    return big, bad != 0


def dorefa_weight_backward(const float32_t[::1] t,      # IN  n floats, tanh(w)
                           const float32_t[::1] grad,   # IN  n floats, dL/dw_q
                           float32_t[::1] out,          # OUT n floats, the direct term
                           float32_t big, int num_threads):
    """out[i] := grad[i] (1 - t[i]^2) / M   (the direct part of dL/dw, STE through round);
    returns sum_i grad[i] t[i] (float64, fixed order), which the caller needs for the
    term through M = max |t|."""
    cdef intp_t n = t.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, i, start, stop
    cdef float64_t *partial = <float64_t *> malloc(max(nblocks, 1) * sizeof(float64_t))
    cdef float64_t acc, total = 0
    if partial == NULL:
        raise MemoryError()
    if nblocks <= 1:
        num_threads = 1
    try:
        with nogil:
            for b in prange(nblocks, num_threads=num_threads, schedule="static"):
                start = b * BLOCK
                stop = min(start + BLOCK, n)
                acc = 0
                for i in range(start, stop):
                    out[i] = grad[i] * (1 - t[i] * t[i]) / big
                    acc = acc + <float64_t> grad[i] * t[i]
                partial[b] = acc
        for b in range(nblocks):
            total += partial[b]
    finally:
        free(partial)
    return total
