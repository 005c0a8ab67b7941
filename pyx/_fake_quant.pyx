# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Fake-quantize kernels: quantize then dequantize in float, plus the STE mask.

Arguments are validated by :mod:`qlearn.fake_quant`, the only caller: arrays are
C-contiguous, shapes agree, scales are positive and finite, zero points lie in
[qmin, qmax] and every range fits in int32.

Per element, in PyTorch's order (it rounds *before* adding the zero point, unlike
``quantize_per_tensor``; the docs page "Quantization-aware training" shows where the
two orders differ)::

    t     = nearbyint(x * inv_scale) + Z          float32, inv_scale = 1.0f / S
    mask  = qmin <= t <= qmax                     the straight-through estimator's mask
    x_hat = (clamp(t, qmin, qmax) - Z) * S        in double, rounded once to float32

which is ``fake_quantize_per_tensor_affine_cachemask`` of ATen, bit for bit.  NaN and
infinity are detected in the same pass (the caller raises).

Per-channel tensors are handled as a 3-d view ``(outer, C, inner)``, ``C`` the channel
axis, as in :mod:`_quantize`.
"""
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc

from _rounding cimport nearbyint32
from _simd cimport simd_avx2
from _typedefs cimport float32_t, float64_t, int32_t, int64_t, intp_t, uint8_t

cdef extern from "fake_quant_avx2.h":
    int qlearn_fake_quant_f32_avx2(const float *x, float *out, uint8_t *mask, long n,
                                   float scale, float inv_scale, float zero_point,
                                   float qmin, float qmax) noexcept nogil

cdef enum:
    # Work is split into blocks of this many elements; below it a kernel runs serially.
    BLOCK = 32768

# The AVX2 kernel works in float32 only; that equals the double arithmetic of the
# scalar loop when every integer involved is exact in float32.
cdef int64_t F32_EXACT = 1 << 24


cdef inline float32_t _fake_quant_one(float32_t x, float32_t scale, float32_t inv_scale,
                                      int32_t zero_point, int32_t qmin, int32_t qmax,
                                      uint8_t *mask) noexcept nogil:
    """x_hat = (clamp(nearbyint(x / S) + Z, qmin, qmax) - Z) * S; mask = t in range.

    The clamp and ``(q - Z) * S`` are in double, as ATen computes them: exact for any
    int32 range.
    """
    cdef float32_t t = nearbyint32(x * inv_scale) + <float32_t> zero_point
    cdef float64_t td = t
    mask[0] = (td >= qmin) & (td <= qmax)            # branch-free: & not and
    cdef float64_t c = td if td > qmin else qmin      # maxsd: NaN -> qmin, as fmax
    c = c if c < qmax else qmax                       # minsd
    return <float32_t> ((c - zero_point) * <float64_t> scale)


cdef inline float32_t _fake_quant_one_f32(float32_t x, float32_t scale, float32_t inv_scale,
                                          float32_t zero_point, float32_t lo, float32_t hi,
                                          uint8_t *mask) noexcept nogil:
    """The same in float32 only, valid when |qmin|, |qmax| and qmax - qmin are at most
    2^24: then q - Z is exact
    and the float32 product is the correctly rounded double one.  The plain twin of
    ``qlearn_fake_quant_f32_avx2``."""
    cdef float32_t t = nearbyint32(x * inv_scale) + zero_point
    mask[0] = (t >= lo) & (t <= hi)
    cdef float32_t c = t if t > lo else lo            # maxss: NaN -> lo
    c = c if c < hi else hi                           # minss
    return (c - zero_point) * scale


cdef int _fake_quant_run(const float32_t *x, float32_t *out, uint8_t *mask, intp_t n,
                         float32_t scale, int32_t zero_point, int32_t qmin,
                         int32_t qmax, bint avx2) noexcept nogil:
    """Fake-quantize ``n`` contiguous elements sharing S and Z; 1 if any was not finite."""
    cdef intp_t i
    cdef int bad = 0
    cdef float32_t one = 1.0
    cdef float32_t inv_scale = one / scale   # 1.0f / S in float32, as ATen
    cdef float32_t zp = <float32_t> zero_point, lo = <float32_t> qmin, hi = <float32_t> qmax
    # float32 holds qmin, qmax and Z exactly, and (c - Z) with |c - Z| <= qmax - qmin:
    # bounding the ends alone is not enough (qmin = -2^24, qmax = 2^24 gives q - Z up
    # to 2^25 - 1, which float32 rounds)
    cdef bint small = (-F32_EXACT <= qmin and qmax <= F32_EXACT
                       and <int64_t> qmax - <int64_t> qmin <= F32_EXACT)
    if avx2 and small:
        return qlearn_fake_quant_f32_avx2(x, out, mask, n, scale, inv_scale, zp, lo, hi)
    if small:
        for i in range(n):
            out[i] = _fake_quant_one_f32(x[i], scale, inv_scale, zp, lo, hi, &mask[i])
            bad |= (x[i] - x[i]) != 0
        return bad
    for i in range(n):
        out[i] = _fake_quant_one(x[i], scale, inv_scale, zero_point, qmin, qmax, &mask[i])
        bad |= (x[i] - x[i]) != 0
    return bad


def fake_quantize_per_tensor(const float32_t[::1] x,   # IN  n floats
                             float32_t[::1] out,       # OUT n floats, x_hat
                             uint8_t[::1] mask,        # OUT n bytes, the STE mask
                             float32_t scale, int32_t zero_point,
                             int32_t qmin, int32_t qmax, int simd, int num_threads):
    """out[i] := (clamp(nearbyint(x[i] / S) + Z, qmin, qmax) - Z) * S;
    mask[i] := qmin <= nearbyint(x[i] / S) + Z <= qmax

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
            bad += _fake_quant_run(&x[start], &out[start], &mask[start], stop - start,
                                   scale, zero_point, qmin, qmax, avx2)
    return bad


def fake_quantize_per_channel(const float32_t[:, :, ::1] x,     # IN  (outer, C, inner)
                              float32_t[:, :, ::1] out,         # OUT (outer, C, inner)
                              uint8_t[:, :, ::1] mask,          # OUT (outer, C, inner)
                              const float32_t[::1] scales,      # IN  (C,)
                              const int32_t[::1] zero_points,   # IN  (C,)
                              int32_t qmin, int32_t qmax, int simd, int num_threads):
    """out[o, c, i] := (clamp(nearbyint(x[o, c, i] / S_c) + Z_c, qmin, qmax) - Z_c) * S_c,
    mask likewise per channel; ``1 / S_c`` is taken in float32 as ATen does.

    Returns the number of rows that held NaN or infinity (0 for clean input).
    """
    cdef bint avx2 = simd_avx2(simd)
    cdef intp_t outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef intp_t rows = outer * C, r, c, o
    cdef int bad = 0
    if rows * inner < BLOCK:
        num_threads = 1
    with nogil:
        for r in prange(rows, num_threads=num_threads, schedule="static"):
            o = r // C
            c = r % C
            bad += _fake_quant_run(&x[o, c, 0], &out[o, c, 0], &mask[o, c, 0], inner,
                                   scales[c], zero_points[c], qmin, qmax, avx2)
    return bad


def ste_backward(const float32_t[::1] grad,   # IN  n floats, dL/dx_hat
                 const uint8_t[::1] mask,     # IN  n bytes, from the forward pass
                 float32_t[::1] out,          # OUT n floats, dL/dx
                 int num_threads):
    """out[i] := grad[i] * mask[i]  (the straight-through estimator, PyTorch's rule)"""
    cdef intp_t n = grad.shape[0], i
    if n < BLOCK:
        num_threads = 1
    with nogil:
        for i in prange(n, num_threads=num_threads, schedule="static"):
            out[i] = grad[i] * <float32_t> mask[i]


# -- LSQ: the gradients of _fake_quantize_learnable_per_{tensor,channel}_affine ----------

cdef inline float32_t _lsq_one(float32_t x, float32_t dy, float32_t scale,
                               float32_t inv_scale, float32_t zero_point, int64_t qmin,
                               int64_t qmax, float32_t grad_factor, float32_t *dscale,
                               float32_t *dzero_point) noexcept nogil:
    """One element of LSQ's backward, in ATen's float32 arithmetic; returns dL/dx.

    q = nearbyint(Z + x / S) (ATen adds Z *before* rounding here), then
    dx = dy [qmin <= q <= qmax];  dS = dy (x_hat - x) / S inside the range,
    dy (qmin - Z) or dy (qmax - Z) outside it; dZ = -dy S outside, 0 inside;
    dS and dZ are multiplied by ``grad_factor``.
    """
    cdef float32_t t = nearbyint32(zero_point + x * inv_scale)
    cdef float64_t td = t if t >= -9.0e18 else -9.0e18   # NaN -> -9e18: the int64
    td = td if td <= 9.0e18 else 9.0e18                    # conversion stays defined
    cdef int64_t q = <int64_t> td
    cdef int64_t qc = qmin if q < qmin else (qmax if q > qmax else q)
    cdef float32_t x_hat
    if q < qmin or q > qmax:
        dzero_point[0] = dy * (-1) * scale * grad_factor
        if q < qmin:
            dscale[0] = (dy * (<float32_t> qmin - zero_point)) * grad_factor
        else:
            dscale[0] = (dy * (<float32_t> qmax - zero_point)) * grad_factor
        return 0
    dzero_point[0] = 0
    x_hat = (<float32_t> qc - zero_point) * scale
    dscale[0] = dy * (x_hat - x) * inv_scale * grad_factor
    return dy


cdef void _lsq_run(const float32_t *x, const float32_t *dy, float32_t *dx, intp_t n,
                   float32_t scale, float32_t zero_point, int64_t qmin, int64_t qmax,
                   float32_t grad_factor, float64_t *dscale_sum,
                   float64_t *dzero_point_sum) noexcept nogil:
    """LSQ backward over ``n`` contiguous elements sharing S and Z; adds the sums of the
    per-element dS and dZ (in float64) into ``dscale_sum`` and ``dzero_point_sum``."""
    cdef intp_t i
    cdef float32_t one = 1.0
    cdef float32_t inv_scale = one / scale
    cdef float32_t ds, dz
    cdef float64_t s_acc = 0, z_acc = 0
    for i in range(n):
        dx[i] = _lsq_one(x[i], dy[i], scale, inv_scale, zero_point, qmin, qmax,
                         grad_factor, &ds, &dz)
        s_acc += ds
        z_acc += dz
    dscale_sum[0] += s_acc
    dzero_point_sum[0] += z_acc


def lsq_backward_per_tensor(const float32_t[::1] x,    # IN  n floats, the forward input
                            const float32_t[::1] dy,   # IN  n floats, dL/dx_hat
                            float32_t[::1] dx,         # OUT n floats, dL/dx
                            float32_t scale, float32_t zero_point,
                            int64_t qmin, int64_t qmax, float32_t grad_factor,
                            int num_threads):
    """dx, and the sums over all elements of dS and dZ (see ``_lsq_one``).

    Blocks are summed in a fixed order, so the result does not depend on the thread
    count.  Returns ``(dscale, dzero_point)`` as Python floats.
    """
    cdef intp_t n = x.shape[0], nblocks = (n + BLOCK - 1) // BLOCK, b, start, stop
    cdef float64_t *partial = <float64_t *> malloc(2 * max(nblocks, 1) * sizeof(float64_t))
    cdef float64_t ds = 0, dz = 0
    if partial == NULL:
        raise MemoryError()
    if nblocks <= 1:
        num_threads = 1
    try:
        with nogil:
            for b in prange(nblocks, num_threads=num_threads, schedule="static"):
                start = b * BLOCK
                stop = min(start + BLOCK, n)
                partial[2 * b] = 0
                partial[2 * b + 1] = 0
                _lsq_run(&x[start], &dy[start], &dx[start], stop - start, scale,
                         zero_point, qmin, qmax, grad_factor, &partial[2 * b],
                         &partial[2 * b + 1])
        for b in range(nblocks):
            ds += partial[2 * b]
            dz += partial[2 * b + 1]
    finally:
        free(partial)
    return ds, dz


def lsq_backward_per_channel(const float32_t[:, :, ::1] x,    # IN  (outer, C, inner)
                             const float32_t[:, :, ::1] dy,   # IN  (outer, C, inner)
                             float32_t[:, :, ::1] dx,         # OUT (outer, C, inner)
                             const float32_t[::1] scales,     # IN  (C,)
                             const float32_t[::1] zero_points,  # IN (C,) rounded, clamped
                             float64_t[::1] dscales,          # OUT (C,) sums of dS
                             float64_t[::1] dzero_points,     # OUT (C,) sums of dZ
                             int64_t qmin, int64_t qmax, float32_t grad_factor,
                             int num_threads):
    """dx and, per channel, the sums of dS and dZ (see ``_lsq_one``); rows are summed in
    a fixed order, so the result does not depend on the thread count."""
    cdef intp_t outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef intp_t rows = outer * C, r, c, o
    cdef float64_t *partial = <float64_t *> malloc(2 * max(rows, 1) * sizeof(float64_t))
    if partial == NULL:
        raise MemoryError()
    if rows * inner < BLOCK:
        num_threads = 1
    try:
        with nogil:
            for r in prange(rows, num_threads=num_threads, schedule="static"):
                o = r // C
                c = r % C
                partial[2 * r] = 0
                partial[2 * r + 1] = 0
                _lsq_run(&x[o, c, 0], &dy[o, c, 0], &dx[o, c, 0], inner, scales[c],
                         zero_points[c], qmin, qmax, grad_factor, &partial[2 * r],
                         &partial[2 * r + 1])
        for c in range(C):
            dscales[c] = 0
            dzero_points[c] = 0
        for r in range(rows):
            dscales[r % C] += partial[2 * r]
            dzero_points[r % C] += partial[2 * r + 1]
    finally:
        free(partial)


# -- min and max, for FusedMovingAvgObsFakeQuantize -------------------------------------

def aminmax_per_channel(const float32_t[:, :, ::1] x,   # IN  (outer, C, inner)
                        float32_t[::1] mins,            # OUT (C,)
                        float32_t[::1] maxs,            # OUT (C,)
                        int num_threads):
    """mins[c] := min over (o, i) of x[o, c, i]; maxs likewise (a per-tensor reduction is
    the view (1, 1, n)).  Returns 1 if x held NaN or infinity."""
    cdef intp_t outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef intp_t rows = outer * C, r, c, o, i
    cdef float32_t lo, hi, v, nonfinite
    cdef int bad = 0
    cdef float32_t *part = <float32_t *> malloc(3 * max(rows, 1) * sizeof(float32_t))
    if part == NULL:
        raise MemoryError()
    if rows * inner < BLOCK:
        num_threads = 1
    try:
        with nogil:
            for r in prange(rows, num_threads=num_threads, schedule="static"):
                o = r // C
                c = r % C
                lo = x[o, c, 0]
                hi = lo
                nonfinite = 0   # x - x is 0 for finite x, NaN otherwise; NaN sticks
                for i in range(inner):
                    v = x[o, c, i]
                    lo = v if v < lo else lo
                    hi = v if v > hi else hi
                    nonfinite = nonfinite + (v - v)
                part[3 * r] = lo
                part[3 * r + 1] = hi
                part[3 * r + 2] = nonfinite
            for r in range(rows):
                c = r % C
                lo = part[3 * r]
                hi = part[3 * r + 1]
                if r < C:
                    mins[c] = lo
                    maxs[c] = hi
                else:
                    mins[c] = lo if lo < mins[c] else mins[c]
                    maxs[c] = hi if hi > maxs[c] else maxs[c]
                bad |= part[3 * r + 2] != 0
    finally:
        free(part)
    return bad
