# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""im2col / col2im: convolution as one matrix product.

For an input ``x`` of shape (N, C, H, W) and a kernel of size (KH, KW) with stride
(SH, SW), padding (PH, PW) and dilation (DH, DW), the column matrix has one row per
(c, i, j) kernel tap and one column per output position (n, oh, ow)::

    cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]

(zero where the index falls in the padding).  A convolution is then
``W.reshape(O, C*KH*KW) @ cols``; its input gradient is ``col2im(W^T @ G)``, the
adjoint of im2col, which adds every column entry back into the pixel it came from.

Arguments are validated by :mod:`qlearn.nn.functional`, the only caller.
"""
from cython.parallel cimport prange

from _typedefs cimport intp_t

ctypedef fused real_t:
    float
    double

cdef enum:
    # Below this many column entries (about a millisecond of copying) the kernels run
    # serially: starting a parallel region costs more than it saves on small layers,
    # and on a busy machine much more (a waiting thread loses its time slice).
    PARALLEL_MIN = 1 << 20


cdef inline void _im2col_row(const real_t[:, :, :, ::1] x, real_t[:, ::1] cols, intp_t r,
                             intp_t KH, intp_t KW, intp_t OH, intp_t OW,
                             intp_t SH, intp_t SW, intp_t PH, intp_t PW,
                             intp_t DH, intp_t DW) noexcept nogil:
    """cols[r, (n*OH + oh)*OW + ow] := x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]"""
    cdef intp_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef intp_t c = r // (KH * KW), i = (r // KW) % KH, j = r % KW
    cdef intp_t n, oh, ow, h, w, col = 0
    for n in range(N):
        for oh in range(OH):
            h = oh * SH - PH + i * DH
            if h < 0 or h >= H:
                for ow in range(OW):
                    cols[r, col + ow] = 0
            else:
                for ow in range(OW):
                    w = ow * SW - PW + j * DW
                    cols[r, col + ow] = x[n, c, h, w] if 0 <= w < W else 0
            col += OW


def im2col(const real_t[:, :, :, ::1] x,   # IN  (N, C, H, W)
           real_t[:, ::1] cols,            # OUT (C*KH*KW, N*OH*OW)
           intp_t KH, intp_t KW, intp_t SH, intp_t SW, intp_t PH, intp_t PW,
           intp_t DH, intp_t DW, int num_threads):
    """cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] := x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]

    Each row of ``cols`` is written by one thread, so the result does not depend on
    ``num_threads``.
    """
    cdef intp_t OH = (x.shape[2] + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    cdef intp_t OW = (x.shape[3] + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    cdef intp_t r, R = cols.shape[0]
    with nogil:
        if cols.shape[0] * cols.shape[1] < PARALLEL_MIN or num_threads <= 1:
            for r in range(R):
                _im2col_row(x, cols, r, KH, KW, OH, OW, SH, SW, PH, PW, DH, DW)
        else:
            for r in prange(R, num_threads=num_threads, schedule="static"):
                _im2col_row(x, cols, r, KH, KW, OH, OW, SH, SW, PH, PW, DH, DW)


cdef inline void _col2im_channel(const real_t[:, ::1] cols, real_t[:, :, :, ::1] dx,
                                 intp_t c, intp_t KH, intp_t KW, intp_t OH, intp_t OW,
                                 intp_t SH, intp_t SW, intp_t PH, intp_t PW,
                                 intp_t DH, intp_t DW) noexcept nogil:
    """dx[n, c, h, w] += cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] for every tap that read it."""
    cdef intp_t N = dx.shape[0], H = dx.shape[2], W = dx.shape[3]
    cdef intp_t i, j, n, oh, ow, h, w, r, col
    for n in range(N):
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0
    for i in range(KH):
        for j in range(KW):
            r = (c * KH + i) * KW + j
            col = 0
            for n in range(N):
                for oh in range(OH):
                    h = oh * SH - PH + i * DH
                    if 0 <= h < H:
                        for ow in range(OW):
                            w = ow * SW - PW + j * DW
                            if 0 <= w < W:
                                dx[n, c, h, w] += cols[r, col + ow]
                    col += OW


def col2im(const real_t[:, ::1] cols,      # IN  (C*KH*KW, N*OH*OW)
           real_t[:, :, :, ::1] dx,        # OUT (N, C, H, W), overwritten
           intp_t KH, intp_t KW, intp_t SH, intp_t SW, intp_t PH, intp_t PW,
           intp_t DH, intp_t DW, int num_threads):
    """dx[n, c, h, w] := sum of cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] over the taps
    (i, j, oh, ow) with oh*SH - PH + i*DH = h and ow*SW - PW + j*DW = w.

    The adjoint of :func:`im2col`.  One thread owns each channel ``c`` and adds its taps
    in a fixed order, so the sums do not depend on ``num_threads``.
    """
    cdef intp_t OH = (dx.shape[2] + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    cdef intp_t OW = (dx.shape[3] + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    cdef intp_t c, C = dx.shape[1]
    with nogil:
        if cols.shape[0] * cols.shape[1] < PARALLEL_MIN or num_threads <= 1:
            for c in range(C):
                _col2im_channel(cols, dx, c, KH, KW, OH, OW, SH, SW, PH, PW, DH, DW)
        else:
            for c in prange(C, num_threads=num_threads, schedule="static"):
                _col2im_channel(cols, dx, c, KH, KW, OH, OW, SH, SW, PH, PW, DH, DW)
