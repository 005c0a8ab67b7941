"""The float embedding-bag kernel (the only importer of ``qlearn._ext._embedding``).

>>> import numpy as np
>>> from qlearn.kernels import embedding as ke
>>> out, win = np.empty((1, 2), np.float32), np.empty((0, 0), np.int64)
>>> ke.embedding_bag_forward(np.eye(2, dtype=np.float32), np.array([0, 1, 1]),
...                          np.array([0, 3]), None, 0, True, out, win)
>>> out
array([[1., 2.]], dtype=float32)
"""
import numpy as np

from .._ext import _embedding
from . import threads as _threads

__all__ = ["embedding_bag_forward"]


def embedding_bag_forward(weight, indices, bounds, weights, mode, fused, out, winner,
                          num_threads=None):
    """Bag ``b`` of ``out`` := the sum (``mode`` 0) or maximum (2, with the winning
    positions in ``winner``) of ``weight[indices[p]]`` for ``p`` in
    ``[bounds[b], bounds[b + 1])``, weighted by ``weights`` (None for none; ``fused``:
    one fma per step)."""
    _embedding.embedding_bag_forward(
        np.ascontiguousarray(weight, np.float32), np.ascontiguousarray(indices, np.int64),
        np.ascontiguousarray(bounds, np.int64),
        np.zeros(0, np.float32) if weights is None else
        np.ascontiguousarray(weights, np.float32),
        mode, fused, out, winner, _threads.resolve_openmp(num_threads))
