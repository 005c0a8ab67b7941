# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The 256-entry table lookup of the quantized element-wise maps.

A quint8 tensor holds at most 256 distinct integers, so an element-wise map of it
(hard swish, sigmoid, ELU, leaky ReLU, hardtanh, ... in
:mod:`qlearn.nn.quantized.functional`) is computed once per integer, into a table ``T``
of the output's integers, and applied as ``out[i] = T[q[i]]``.  The table is made by
the caller; :mod:`qlearn.kernels.lookup` (the only caller) checks it has 256 entries.
"""
from cython.parallel cimport prange

from _typedefs cimport intp_t, uint8_t

cdef enum:
    BLOCK = 262144      # below this many elements the lookup runs serially
    CHUNK = 65536       # elements per parallel work unit


def lookup_u8(const uint8_t[::1] table,     # IN  (256,) T
              const uint8_t[::1] q,         # IN  (n,)
              uint8_t[::1] out,             # OUT (n,)
              int num_threads):
    """out[i] := table[q[i]]"""
    cdef intp_t n = q.shape[0], chunks = (n + CHUNK - 1) // CHUNK, k, i, end
    cdef const uint8_t *t = &table[0]
    if n == 0:
        return
    if n < BLOCK:
        num_threads = 1
    with nogil:
        for k in prange(chunks, num_threads=num_threads, schedule="dynamic"):
            end = (k + 1) * CHUNK
            if end > n:
                end = n
            for i in range(k * CHUNK, end):
                out[i] = t[q[i]]
