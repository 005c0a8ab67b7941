# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""2-d pooling kernels, forward and backward, over (N, C, H, W) arrays.

Every (n, c) plane is independent: the work is split over the N*C planes, each plane
handled by one thread, so results do not depend on the thread count.  Window bounds::

    max / avg:  h0 = oh*SH - PH,  h = h0 + i*DH  for i < KH   (likewise w)
    adaptive:   h0 = floor(oh*H / OH),  h1 = ceil((oh + 1)*H / OH)

Arguments are validated by :mod:`qlearn.nn.functional`, the only caller.
"""
from cython.parallel cimport prange

from _typedefs cimport int64_t, intp_t

ctypedef fused real_t:
    float
    double

cdef enum:
    # Below this many output elements (about a millisecond of work) the kernels run
    # serially: a parallel region costs more than it saves on small inputs.
    PARALLEL_MIN = 1 << 18


cdef inline void _max_plane(const real_t[:, ::1] x, real_t[:, ::1] y, int64_t[:, ::1] idx,
                            intp_t KH, intp_t KW, intp_t SH, intp_t SW, intp_t PH,
                            intp_t PW, intp_t DH, intp_t DW) noexcept nogil:
    """y[oh, ow] := max over the window of x; idx := flat index h*W + w of the first max"""
    cdef intp_t H = x.shape[0], W = x.shape[1], OH = y.shape[0], OW = y.shape[1]
    cdef intp_t oh, ow, i, j, h, w, best_i
    cdef real_t best, v
    for oh in range(OH):
        for ow in range(OW):
            best_i = -1
            best = 0
            for i in range(KH):
                h = oh * SH - PH + i * DH
                if h < 0 or h >= H:
                    continue
                for j in range(KW):
                    w = ow * SW - PW + j * DW
                    if w < 0 or w >= W:
                        continue
                    v = x[h, w]
                    if best_i < 0 or v > best or v != v:   # NaN propagates, as in PyTorch
                        best, best_i = v, h * W + w
                        if v != v:
                            break
            y[oh, ow] = best
            idx[oh, ow] = best_i


def max_pool2d_forward(const real_t[:, :, :, ::1] x,   # IN  (N, C, H, W)
                       real_t[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                       int64_t[:, :, :, ::1] idx,      # OUT (N, C, OH, OW) arg-max h*W + w
                       intp_t KH, intp_t KW, intp_t SH, intp_t SW, intp_t PH, intp_t PW,
                       intp_t DH, intp_t DW, int num_threads):
    """y[n, c, oh, ow] := max_{i,j} x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]"""
    cdef intp_t p, N = x.shape[0], C = x.shape[1]
    cdef bint serial = y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3] < PARALLEL_MIN
    with nogil:
        if serial or num_threads <= 1:
            for p in range(N * C):
                _max_plane(x[p // C, p % C], y[p // C, p % C], idx[p // C, p % C],
                           KH, KW, SH, SW, PH, PW, DH, DW)
        else:
            for p in prange(N * C, num_threads=num_threads, schedule="static"):
                _max_plane(x[p // C, p % C], y[p // C, p % C], idx[p // C, p % C],
                           KH, KW, SH, SW, PH, PW, DH, DW)


cdef inline void _max_plane_backward(const real_t[:, ::1] g, const int64_t[:, ::1] idx,
                                     real_t[::1] dx) noexcept nogil:
    """dx[idx[oh, ow]] += g[oh, ow]  (dx is the flattened H*W plane)"""
    cdef intp_t oh, ow, k
    for k in range(dx.shape[0]):
        dx[k] = 0
    for oh in range(g.shape[0]):
        for ow in range(g.shape[1]):
            if idx[oh, ow] >= 0:
                dx[idx[oh, ow]] += g[oh, ow]


def max_pool2d_backward(const real_t[:, :, :, ::1] g,      # IN  (N, C, OH, OW)
                        const int64_t[:, :, :, ::1] idx,   # IN  (N, C, OH, OW)
                        real_t[:, :, ::1] dx,              # OUT (N, C, H*W), overwritten
                        int num_threads):
    """dx[n, c, idx[n, c, oh, ow]] += g[n, c, oh, ow]

    Each window's gradient goes to its arg-max."""
    cdef intp_t p, N = g.shape[0], C = g.shape[1]
    cdef bint serial = g.shape[0] * g.shape[1] * g.shape[2] * g.shape[3] < PARALLEL_MIN
    with nogil:
        if serial or num_threads <= 1:
            for p in range(N * C):
                _max_plane_backward(g[p // C, p % C], idx[p // C, p % C], dx[p // C, p % C])
        else:
            for p in prange(N * C, num_threads=num_threads, schedule="static"):
                _max_plane_backward(g[p // C, p % C], idx[p // C, p % C], dx[p // C, p % C])


cdef inline void _avg_plane(const real_t[:, ::1] x, real_t[:, ::1] y, real_t[:, ::1] g,
                            real_t[:, ::1] dx, bint backward,
                            intp_t KH, intp_t KW, intp_t SH, intp_t SW, intp_t PH,
                            intp_t PW, bint count_include_pad, intp_t divisor,
                            bint adaptive) noexcept nogil:
    """Forward: y[oh, ow] := sum_window x / d.  Backward: dx[h, w] += g[oh, ow] / d.

    The window is [h0, h1) x [w0, w1) clipped to the input; d is ``divisor`` when > 0,
    else the window size, counting padding when ``count_include_pad``.
    """
    cdef intp_t H, W, OH, OW
    cdef intp_t oh, ow, h, w, h0, h1, w0, w1, ph1, pw1
    cdef real_t acc, d
    if backward:
        H, W, OH, OW = dx.shape[0], dx.shape[1], g.shape[0], g.shape[1]
        for h in range(H):
            for w in range(W):
                dx[h, w] = 0
    else:
        H, W, OH, OW = x.shape[0], x.shape[1], y.shape[0], y.shape[1]
    for oh in range(OH):
        if adaptive:
            h0 = (oh * H) // OH
            h1 = ((oh + 1) * H + OH - 1) // OH
            ph1 = h1
        else:
            h0 = oh * SH - PH
            ph1 = h0 + KH
            if ph1 > H + PH:
                ph1 = H + PH
            h1 = ph1 if ph1 < H else H
        for ow in range(OW):
            if adaptive:
                w0 = (ow * W) // OW
                w1 = ((ow + 1) * W + OW - 1) // OW
                pw1 = w1
            else:
                w0 = ow * SW - PW
                pw1 = w0 + KW
                if pw1 > W + PW:
                    pw1 = W + PW
                w1 = pw1 if pw1 < W else W
            if divisor > 0:
                d = divisor
            elif count_include_pad:
                d = (ph1 - h0) * (pw1 - w0)
            else:
                d = (h1 - (h0 if h0 > 0 else 0)) * (w1 - (w0 if w0 > 0 else 0))
            if backward:
                acc = g[oh, ow] / d
                for h in range(h0 if h0 > 0 else 0, h1):
                    for w in range(w0 if w0 > 0 else 0, w1):
                        dx[h, w] += acc
            else:
                acc = 0
                for h in range(h0 if h0 > 0 else 0, h1):
                    for w in range(w0 if w0 > 0 else 0, w1):
                        acc = acc + x[h, w]
                y[oh, ow] = acc / d


def avg_pool2d(const real_t[:, :, :, ::1] x,   # IN  (N, C, H, W)  (forward) or unused
               real_t[:, :, :, ::1] y,         # OUT (N, C, OH, OW) (forward) or unused
               real_t[:, :, :, ::1] g,         # IN  (N, C, OH, OW) (backward) or unused
               real_t[:, :, :, ::1] dx,        # OUT (N, C, H, W)  (backward), overwritten
               bint backward, intp_t KH, intp_t KW, intp_t SH, intp_t SW,
               intp_t PH, intp_t PW, bint count_include_pad, intp_t divisor,
               bint adaptive, int num_threads):
    """Average pooling over each window (fixed windows, or adaptive when ``adaptive``):
    forward y[n, c, oh, ow] := (1/d) sum_window x[n, c, h, w]; backward
    dx[n, c, h, w] := sum over the windows containing (h, w) of g[n, c, oh, ow] / d."""
    cdef real_t[:, :, :, ::1] big = dx if backward else x
    cdef real_t[:, :, :, ::1] small = g if backward else y
    cdef intp_t p, N = big.shape[0], C = big.shape[1]
    cdef bint serial = small.shape[0] * small.shape[1] * small.shape[2] * small.shape[3] \
        < PARALLEL_MIN
    with nogil:
        if serial or num_threads <= 1:
            for p in range(N * C):
                _avg_plane(x[p // C, p % C], y[p // C, p % C], g[p // C, p % C],
                           dx[p // C, p % C], backward, KH, KW, SH, SW, PH, PW,
                           count_include_pad, divisor, adaptive)
        else:
            for p in prange(N * C, num_threads=num_threads, schedule="static"):
                _avg_plane(x[p // C, p % C], y[p // C, p % C], g[p // C, p % C],
                           dx[p // C, p % C], backward, KH, KW, SH, SW, PH, PW,
                           count_include_pad, divisor, adaptive)
