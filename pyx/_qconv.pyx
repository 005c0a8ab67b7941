# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Int8 convolution: im2col (then :func:`qlearn._ext._qgemm.gemm`) and depthwise 3x3.

Called only by :mod:`qlearn.nn.quantized._packed`, which validates the arguments.
The kernels read activations channels-last, ``(N, H, W, C)`` C-contiguous: a
convolution's own output already is (as PyTorch's are); an NCHW input is converted once
per call (a NumPy transposing copy).

Equation numbers refer to ``docs/int8.rst``.
"""
import numpy as np

from cython.parallel cimport prange
from libc.string cimport memcpy, memset

from _typedefs cimport float32_t, int8_t, int16_t, int32_t, intp_t, uint8_t

cdef extern from "qconv_kernels.h":
    ctypedef struct qgemm_epilogue:
        const int32_t *colsum
        const int32_t *wzp
        const int32_t *rowsum
        int32_t a_zp
        const float *bias_q
        const float *mult
        int32_t out_zp, lo, hi
        const float *fscale
        const float *fbias
        int relu
    int qlearn_cpu_has_avx2() noexcept nogil
    void qlearn_qconv_dw3x3_row(int simd, const int16_t *xp, long Wp, long C,
                                const int16_t *wz, long oy, long Wo, int stride, int dil,
                                int32_t *acc, const qgemm_epilogue *e, uint8_t *out,
                                long ldc) noexcept nogil

cdef enum:
    SERIAL_BYTES = 1 << 16


def im2col(const uint8_t[:, :, :, ::1] x,   # IN  (N, H, W, C) channels last
           intp_t c0, intp_t cg,             # the group's channels [c0, c0 + cg)
           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
           uint8_t a_zp,
           uint8_t[:, ::1] out,              # OUT (N Ho Wo, lda), lda >= kh kw cg
           int num_threads):
    """out[(n, oy, ox), (ky, kx, c)] := x[n, oy sh - ph + ky dh, ox sw - pw + kx dw, c0 + c]

    Positions in the padding hold ``a_zp`` (they stand for real zero, so
    ``x - Za = 0`` there, eq. (3)); columns past ``kh kw cg`` hold 0 (the packed weight
    is zero there).  Depth is ordered (ky, kx, c): each tap is a run of ``cg``
    contiguous bytes of the channels-last input, and with dilation 1 and one group a
    whole kernel row is one run of ``kw C`` bytes.
    """
    cdef intp_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef intp_t lda = out.shape[1], Kc = kh * kw * cg
    cdef intp_t Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    cdef intp_t Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cdef intp_t row, n, oy, ox, ky, kx, iy, ix, base, ix0
    cdef bint whole_rows = dw == 1 and cg == C
    cdef uint8_t *dst
    cdef const uint8_t *src
    if out.shape[0] * lda < SERIAL_BYTES:
        num_threads = 1
    with nogil:
        for row in prange(N * Ho, num_threads=num_threads, schedule="static"):
            n = row // Ho
            oy = row % Ho
            for ox in range(Wo):
                dst = &out[(n * Ho + oy) * Wo + ox, 0]
                ix0 = ox * sw - pw
                for ky in range(kh):
                    iy = oy * sh - ph + ky * dh
                    base = ky * kw * cg
                    if iy < 0 or iy >= H:
                        memset(dst + base, a_zp, kw * cg)
                        continue
                    src = &x[n, iy, 0, c0]
                    if whole_rows and ix0 >= 0 and ix0 + kw <= W:
                        memcpy(dst + base, src + ix0 * C, kw * cg)
                        continue
                    for kx in range(kw):
                        ix = ix0 + kx * dw
                        if ix < 0 or ix >= W:
                            memset(dst + base + kx * cg, a_zp, cg)
                        else:
                            memcpy(dst + base + kx * cg, src + ix * C, cg)
                if lda > Kc:
                    memset(dst + Kc, 0, lda - Kc)


def depthwise3x3(const uint8_t[:, :, :, ::1] x,  # IN  (N, H, W, C) channels last
                 const int16_t[:, ::1] wz,      # IN  (9, C): W - Zw[c], taps (ky, kx)
                 int stride, int pad, int dil,
                 int32_t a_zp,
                 const int32_t[::1] zeros,      # IN  (C,) zeros: no zero-point folding
                 const float32_t[::1] bias_q,   # IN  (C,) or empty
                 const float32_t[::1] mult,     # IN  (C,)
                 int32_t out_zp, int32_t lo, int32_t hi,
                 uint8_t[:, :, :, ::1] out,     # OUT (N, Ho, Wo, C) channels last
                 bint simd, int num_threads):
    """out[n, oy, ox, c] := eq. (6) of sum_{ky,kx} (x - Za)[n, c, oy s + ky d - p, ...] wz[ky kx, c]

    The input is laid out once as int16 ``(N, Hp, Wp, C)`` holding ``x - Za`` with zero
    padding (eq. (9)); each thread then owns whole output rows.
    """
    cdef intp_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef intp_t Ho = out.shape[1], Wo = out.shape[2]
    cdef intp_t Hp = H + 2 * pad, Wp = W + 2 * pad
    cdef int16_t[:, :, :, ::1] xp = np.zeros((N, Hp, Wp, C), dtype=np.int16)
    cdef int32_t[:, ::1] acc = np.empty((max(num_threads, 1), Wo * C), dtype=np.int32)
    cdef qgemm_epilogue e
    cdef intp_t n, y, xx, c, row, tid
    e.colsum = &zeros[0]
    e.wzp = &zeros[0]
    e.rowsum = NULL
    e.a_zp = 0
    e.bias_q = &bias_q[0] if bias_q.shape[0] > 0 else NULL
    e.mult = &mult[0]
    e.out_zp = out_zp
    e.lo = lo
    e.hi = hi
    e.fscale = NULL
    e.fbias = NULL
    e.relu = 0
    if N * C * Ho * Wo * 9 < SERIAL_BYTES:
        num_threads = 1
    with nogil:
        for row in prange(N * H, num_threads=num_threads, schedule="static"):
            n = row // H
            y = row % H
            for xx in range(W):
                for c in range(C):
                    xp[n, y + pad, xx + pad, c] = <int16_t> x[n, y, xx, c] - a_zp
        for row in prange(N * Ho, num_threads=num_threads, schedule="static"):
            n = row // Ho
            tid = _thread_id()
            qlearn_qconv_dw3x3_row(simd, &xp[n, 0, 0, 0], Wp, C, &wz[0, 0], row % Ho, Wo,
                                   stride, dil, &acc[tid, 0], &e, &out[n, row % Ho, 0, 0],
                                   C)


cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int qlearn_qconv_thread_id(void) { return omp_get_thread_num(); }
    #else
    static int qlearn_qconv_thread_id(void) { return 0; }
    #endif
    """
    int qlearn_qconv_thread_id() noexcept nogil


cdef inline intp_t _thread_id() noexcept nogil:
    return qlearn_qconv_thread_id()
