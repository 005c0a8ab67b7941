"""The table lookup of the quantized element-wise maps (the only importer of
``qlearn._ext._lookup``).

>>> import numpy as np
>>> from qlearn.kernels import lookup
>>> table = np.arange(256, dtype=np.uint8)[::-1]
>>> lookup.lookup_u8(table, np.array([[0, 1], [254, 255]], np.uint8))
array([[255, 254],
       [  1,   0]], dtype=uint8)
"""
import numpy as np

from .._ext import _lookup
from . import threads as _threads

__all__ = ["lookup_u8"]


def lookup_u8(table, q, num_threads=None):
    """``table[q]`` for a (256,) uint8 ``table`` and uint8 integers ``q`` of any shape:
    a new uint8 array of ``q``'s shape."""
    table = np.ascontiguousarray(table, np.uint8).reshape(-1)
    if table.size != 256:
        raise ValueError(f"`table` must have 256 entries, got {table.size}")
    q = np.asarray(q)
    if q.dtype != np.uint8:
        raise TypeError(f"`q` must be a uint8 array, got {q.dtype}")
    src = np.ascontiguousarray(q).reshape(-1)
    out = np.empty(q.shape, np.uint8)
    _lookup.lookup_u8(table, src, out.reshape(-1), _threads.resolve_openmp(num_threads))
    return out
