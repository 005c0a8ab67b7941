# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Quantized layer, group and instance norm, and the quantized batch norm's map.

The equations are those of ``qlearn/nn/quantized/functional_norm.py`` (its module notes
derive them from PyTorch's x86 kernels); per group of ``n`` integers ``q``::

    qbar = fl(sum q / n),  mu = qbar - Zx,  v = max(fma(-qbar, qbar, fl(sum q^2 / n)), 0)
    r    = float32(float64(Sx) / sqrt(float64(fl(v Sx) Sx) + eps))
    layer norm:  y_j = fma(((q_j - Zx) - mu) r, w_j, b_j)
    group norm:  y   = fma((q - Zx) - mu, fl(r gamma_c), beta_c)
    (NHWC):      y   = fma(q - Zx, g_c, fma(-g_c, mu, beta_c)),  g_c = fl(r gamma_c)

with exact integer sums (in float32, one element after the other, for PyTorch's NHWC
kernel on ``H W >= 512``), every other step one float32 operation, and ``y`` quantized
by one of PyTorch's two quantize loops:

* vector: ``clamp(nearbyint(min(y / Sy, 2^31 - 128)) + Zy, lo, hi)`` (NaN takes the
  bound; a rounded value at the bound gives ``lo`` when ``Zy > 127``: PyTorch's int32
  addition wraps), for the elements of its full blocks of 32;
* scalar: ``clamp(nearbyint(fma(y, 1 / Sy, Zy)), lo, hi)``, NaN to 0, for the rest (the
  last ``n mod 32`` of a layer-norm group; the channels of an NHWC group past the last
  multiple of 32).

Arguments are checked by :mod:`qlearn.nn.quantized.functional_norm` and arrays made
C-contiguous by :mod:`qlearn.kernels.norm`, the only caller.  A group is one row and
rows are independent, so the rows are split between the threads and the result does not
depend on their number.  The AVX2 loops (``qnorm_avx2.h``) compute the same float32
operations in lanes; the loops here are their portable twins.
"""
from cython.parallel cimport prange
from libc.math cimport fmaf, fmaxf, fminf, sqrt

from _rounding cimport nearbyint32
from _simd cimport simd_avx2
from _typedefs cimport float32_t, int8_t, int64_t, intp_t, uint8_t

cdef extern from "qnorm_avx2.h":
    float INT32_FLOAT_MAX "QLEARN_QNORM_INT32_FLOAT_MAX"
    void qlearn_qnorm_sums_avx2(const void *q, long n, int sgn, int64_t *s,
                                int64_t *ss) noexcept nogil
    void qlearn_qnorm_layer_avx2(const void *q, void *out, long n, float zpx, float mean,
                                 float r, const float *w, const float *b, float inv,
                                 float zpy, float lo, float hi, int wrap,
                                 int sgn) noexcept nogil
    void qlearn_qnorm_channel_avx2(const void *q, void *out, long n, float zpx,
                                   float mean, float g, float s, float inv, float zpy,
                                   float lo, float hi, int wrap, int sgn) noexcept nogil
    void qlearn_qnorm_affine_avx2(const uint8_t *q, uint8_t *out, long n, float a,
                                  float s, float zpx, float zpy, float lo,
                                  float hi) noexcept nogil

ctypedef fused q8_t:
    uint8_t
    int8_t

cdef enum:
    BLOCK = 32768       # below this many elements a kernel runs serially
    TORCH_BLOCK = 32    # the elements PyTorch quantizes per vector block

cdef inline intp_t _chunk(intp_t row) noexcept nogil:
    """Rows per work unit: about 16 K elements.  The units are handed out as threads
    free up (dynamic schedule), so a thread the OS stalls on this shared machine holds
    back one unit, not a fixed half of the rows."""
    return max(1, 16384 // max(row, 1))


cdef struct Quant:      # the output quantization, both loops
    float inv           # fl(1 / Sy)
    float zpy           # Zy
    float lo, hi        # the dtype's range
    int wrap            # Zy > 127


cdef inline Quant _quant(float32_t out_scale, int out_zero_point, int qmin,
                         int qmax) noexcept:
    """The output quantization of both norms, filled in this one place."""
    cdef float one = 1
    cdef Quant p
    p.inv = one / out_scale
    p.zpy = <float>out_zero_point
    p.lo = <float>qmin
    p.hi = <float>qmax
    p.wrap = out_zero_point > 127
    return p


cdef inline float _vector_rule(float y, const Quant *p) noexcept nogil:
    """PyTorch's vectorised quantize of one element (round, then add Zy)."""
    cdef float t = y * p.inv
    if not (t < INT32_FLOAT_MAX):       # min(t, bound), NaN giving the bound (minps)
        t = INT32_FLOAT_MAX
    cdef float r = nearbyint32(t)
    if p.wrap and r == INT32_FLOAT_MAX:
        return p.lo
    return fminf(fmaxf(r + p.zpy, p.lo), p.hi)


cdef inline float _scalar_rule(float y, const Quant *p) noexcept nogil:
    """PyTorch's scalar quantize of one element (add Zy in the fma, then round)."""
    cdef float t = nearbyint32(fmaf(y, p.inv, p.zpy))
    if t != t:
        return 0
    return fminf(fmaxf(t, p.lo), p.hi)


cdef void _stats(const q8_t *q, intp_t n, bint float32_sums, bint avx2, float xs,
                 float zpx, double eps, float *mean, float *r) noexcept nogil:
    """The centred mean ``mu`` and the factor ``r`` of the group ``q[0..n)``."""
    cdef int64_t s = 0, ss = 0
    cdef intp_t j
    cdef float nf = <float>n, fs = 0, fss = 0, ms, msq, var
    cdef int sgn
    if q8_t is int8_t:
        sgn = 1
    else:
        sgn = 0
    if float32_sums:            # PyTorch's NHWC kernel, H W >= 512, in one thread's order
        for j in range(n):
            fs = fs + <float>q[j]
            fss = fss + <float>(q[j] * q[j])
        ms = fs / nf
        msq = fss / nf
    else:
        if avx2:
            qlearn_qnorm_sums_avx2(q, n, sgn, &s, &ss)
        else:
            for j in range(n):
                s += q[j]
                ss += q[j] * q[j]
        ms = <float>s / nf
        msq = <float>ss / nf
    mean[0] = ms - zpx
    var = fmaf(-ms, ms, msq)
    if var < 0:
        var = 0
    r[0] = <float>(<double>xs / sqrt(<double>((var * xs) * xs) + eps))


cdef void _layer_row(const q8_t *q, q8_t *o, intp_t n, const float *w, const float *b,
                     float xs, float zpx, double eps, const Quant *p,
                     bint avx2) noexcept nogil:
    cdef float mean, r, u
    cdef intp_t j, nvec = n - n % TORCH_BLOCK
    cdef int sgn
    if q8_t is int8_t:
        sgn = 1
    else:
        sgn = 0
    _stats(q, n, False, avx2, xs, zpx, eps, &mean, &r)
    if avx2:
        qlearn_qnorm_layer_avx2(q, o, nvec, zpx, mean, r, w, b, p.inv, p.zpy, p.lo, p.hi,
                                p.wrap, sgn)
    else:
        for j in range(nvec):
            u = fmaf(((<float>q[j] - zpx) - mean) * r, w[j], b[j])
            o[j] = <q8_t><int>_vector_rule(u, p)
    for j in range(nvec, n):
        u = fmaf(((<float>q[j] - zpx) - mean) * r, w[j], b[j])
        o[j] = <q8_t><int>_scalar_rule(u, p)


def layer_norm(const q8_t[:, ::1] q,            # IN  (M, N): M groups of N integers
               q8_t[:, ::1] out,                # OUT (M, N)
               const float32_t[::1] weight,     # IN  (N,) gamma (ones for none)
               const float32_t[::1] bias,       # IN  (N,) beta (zeros for none)
               float32_t x_scale, int x_zero_point, double eps,
               float32_t out_scale, int out_zero_point, int qmin, int qmax,
               int simd, int num_threads):
    """out[m] := quantize(fma(((q[m] - Zx) - mu_m) r_m, weight, bias)), the vector loop
    for the first N - N mod 32 elements of a row, the scalar loop for the rest."""
    cdef intp_t M = q.shape[0], N = q.shape[1], m
    cdef bint avx2 = simd_avx2(simd)
    cdef Quant p = _quant(out_scale, out_zero_point, qmin, qmax)
    cdef intp_t chunk = _chunk(N)
    if M * N < BLOCK:
        num_threads = 1
    with nogil:
        for m in prange(M, num_threads=num_threads, schedule="dynamic", chunksize=chunk):
            _layer_row(&q[m, 0], &out[m, 0], N, &weight[0], &bias[0], x_scale,
                       <float>x_zero_point, eps, &p, avx2)


cdef void _group_row(const q8_t *q, q8_t *o, intp_t cpg, intp_t P, const float *gamma,
                     const float *beta, bint nhwc, bint float32_sums, float xs, float zpx,
                     double eps, const Quant *p, bint avx2) noexcept nogil:
    cdef float mean, r, mu, gain, shift, y
    cdef intp_t c, j
    # NHWC: the channels of the group past the last multiple of 32 take the scalar loop
    cdef intp_t cvec = cpg - cpg % TORCH_BLOCK if nhwc else cpg
    cdef const q8_t *qc
    cdef q8_t *oc
    cdef int sgn
    if q8_t is int8_t:
        sgn = 1
    else:
        sgn = 0
    _stats(q, cpg * P, float32_sums, avx2, xs, zpx, eps, &mean, &r)
    for c in range(cpg):
        gain = r * gamma[c]
        if nhwc:            # the mean folded into the shift; (q - Zx) - 0 is q - Zx
            shift = fmaf(-gain, mean, beta[c])
            mu = 0
        else:
            shift = beta[c]
            mu = mean
        qc = q + c * P
        oc = o + c * P
        if c >= cvec:
            for j in range(P):
                y = fmaf((<float>qc[j] - zpx) - mu, gain, shift)
                oc[j] = <q8_t><int>_scalar_rule(y, p)
        elif avx2:
            qlearn_qnorm_channel_avx2(qc, oc, P, zpx, mu, gain, shift, p.inv, p.zpy, p.lo,
                                      p.hi, p.wrap, sgn)
        else:
            for j in range(P):
                y = fmaf((<float>qc[j] - zpx) - mu, gain, shift)
                oc[j] = <q8_t><int>_vector_rule(y, p)


def group_norm(const q8_t[:, :, ::1] q,         # IN  (B G, C / G, P): row n G + g
               q8_t[:, :, ::1] out,             # OUT (B G, C / G, P)
               const float32_t[::1] gamma,      # IN  (C,) (ones for none)
               const float32_t[::1] beta,       # IN  (C,) (zeros for none)
               int num_groups, bint nhwc, bint float32_sums,
               float32_t x_scale, int x_zero_point, double eps,
               float32_t out_scale, int out_zero_point, int qmin, int qmax,
               int simd, int num_threads):
    """out[m, c] := quantize(fma((q[m, c] - Zx) - mu_m, fl(r_m gamma_k), beta_k)),
    k = (m mod G) C / G + c; with ``nhwc`` fma(q - Zx, g, fma(-g, mu_m, beta_k)) and
    the scalar loop for the channels of a group past the last multiple of 32;
    ``float32_sums``: the group's sums in float32, in order."""
    cdef intp_t M = q.shape[0], cpg = q.shape[1], P = q.shape[2], m, k
    cdef bint avx2 = simd_avx2(simd)
    cdef Quant p = _quant(out_scale, out_zero_point, qmin, qmax)
    cdef intp_t chunk = _chunk(cpg * P)
    if M * cpg * P < BLOCK:
        num_threads = 1
    with nogil:
        for m in prange(M, num_threads=num_threads, schedule="dynamic", chunksize=chunk):
            k = (m % num_groups) * cpg
            _group_row(&q[m, 0, 0], &out[m, 0, 0], cpg, P, &gamma[k], &beta[k], nhwc,
                       float32_sums, x_scale, <float>x_zero_point, eps, &p, avx2)


def batch_norm(const uint8_t[:, :, ::1] q,      # IN  (N, C, inner) quint8
               uint8_t[:, :, ::1] out,          # OUT (N, C, inner)
               const float32_t[::1] alpha,      # IN  (C,) the channel's multiplier
               const float32_t[::1] beta,       # IN  (C,) the channel's offset
               int x_zero_point, int out_zero_point, int lo, int hi,
               int simd, int num_threads):
    """out[n, c, i] := clamp(nearbyint(fma(alpha_c, q - Zx, beta_c)) + Zy, lo, hi)
    (NaN to ``lo``)."""
    cdef intp_t B = q.shape[0], C = q.shape[1], inner = q.shape[2], rows = B * C, m, i
    cdef intp_t c, n
    cdef bint avx2 = simd_avx2(simd)
    cdef float zpx = <float>x_zero_point, zpy = <float>out_zero_point
    cdef float flo = <float>lo, fhi = <float>hi, a, s
    cdef intp_t chunk = _chunk(inner)
    if rows * inner < BLOCK:
        num_threads = 1
    with nogil:
        for m in prange(rows, num_threads=num_threads, schedule="dynamic", chunksize=chunk):
            n = m // C
            c = m % C
            a = alpha[c]
            s = beta[c]
            if avx2:
                qlearn_qnorm_affine_avx2(&q[n, c, 0], &out[n, c, 0], inner, a, s, zpx,
                                         zpy, flo, fhi)
            else:
                for i in range(inner):
                    # fmaxf gives flo for NaN
                    out[n, c, i] = <uint8_t><int>fminf(fmaxf(nearbyint32(fmaf(
                        a, <float>q[n, c, i] - zpx, s)) + zpy, flo), fhi)
