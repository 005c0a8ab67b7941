# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""Float embedding-bag reductions (the forward pass of ``F.embedding_bag``).

Arguments are validated by :mod:`qlearn.nn.functional_embedding`, the only caller:
indices lie in ``[0, N)``, bag bounds are non-decreasing from 0 to at most ``L``, arrays
are C-contiguous.  Each bag accumulates its rows in index order, one float32 rounding
per step, as PyTorch's CPU kernels do::

    sum   out = out + row                   (unweighted)
          out = fma(w, row, out)            (weighted, FBGEMM's path: ``fused``)
          out = out + w * row               (weighted, PyTorch's path with a padding_idx)
    max   out = row if first or row > out   (and the winning position, for the gradient)
"""
from cython.parallel cimport prange
from libc.math cimport fmaf

from _typedefs cimport float32_t, int64_t, intp_t

cdef enum:
    BLOCK = 32768    # below this many elements a kernel runs serially


def embedding_bag_forward(const float32_t[:, ::1] weight,   # IN  (N, D)
                          const int64_t[::1] indices,      # IN  (L,) rows, bag by bag
                          const int64_t[::1] bounds,       # IN  (B+1,)
                          const float32_t[::1] weights,    # IN  (L,) or (0,)
                          int mode,                        # 0 sum, 2 max
                          bint fused,
                          float32_t[:, ::1] out,           # OUT (B, D)
                          int64_t[:, ::1] winner,          # OUT (B, D) max only, else (0, 0)
                          int num_threads):
    """out[b] := sum (or max) over p in bag b of weights[p] * weight[indices[p]]"""
    cdef intp_t B = out.shape[0], D = out.shape[1], b, p, j, i
    cdef float32_t w, v
    cdef bint weighted = weights.shape[0] > 0
    if indices.shape[0] * D < BLOCK:
        num_threads = 1
    with nogil:
        for b in prange(B, num_threads=num_threads, schedule="static"):
            for j in range(D):
                out[b, j] = 0
            for p in range(bounds[b], bounds[b + 1]):
                i = indices[p]
                if mode == 2:
                    for j in range(D):
                        v = weight[i, j]
                        if p == bounds[b] or v > out[b, j]:
                            out[b, j] = v
                            winner[b, j] = p
                elif not weighted:
                    for j in range(D):
                        out[b, j] = out[b, j] + weight[i, j]
                elif fused:
                    w = weights[p]
                    for j in range(D):
                        out[b, j] = fmaf(w, weight[i, j], out[b, j])
                else:
                    w = weights[p]
                    for j in range(D):
                        out[b, j] = out[b, j] + w * weight[i, j]
