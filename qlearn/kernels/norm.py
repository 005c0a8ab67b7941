"""The quantized normalisation kernels (the only importer of ``qlearn._ext._qnorm``):
layer, group and instance norm, and the per-channel map of the quantized batch norm.

The operators (argument checks, QTensors, the layouts PyTorch picks) are in
:mod:`qlearn.nn.quantized.functional_norm` and :mod:`qlearn.nn.quantized.modules.batchnorm`;
the equations are in the former's notes, and the NumPy twins are
:func:`qlearn.reference.layer_norm_ref`, :func:`~qlearn.reference.group_norm_ref` and
:func:`~qlearn.reference.batch_norm_ref`.  The integers come in and go out as uint8
(quint8) or int8 (qint8) arrays.

>>> import numpy as np
>>> from qlearn.kernels import norm
>>> norm.layer_norm(np.array([[10, 30]], np.uint8), None, None, 0.1, 10, 1e-5, 0.01, 128,
...                 0, 255)
array([[ 28, 228]], dtype=uint8)
"""
import numpy as np

from .._ext import _qnorm
from . import simd as _simd
from . import threads as _threads

__all__ = ["layer_norm", "group_norm", "batch_norm"]


def _ints(q, ndim):
    q = np.asarray(q)
    if q.dtype not in (np.uint8, np.int8) or q.ndim != ndim:
        raise TypeError(f"`q` must be a {ndim}-d uint8 or int8 array, got {q.ndim}-d "
                        f"{q.dtype}")
    return np.ascontiguousarray(q)


def _vector(v, n, fill):
    if v is None:
        return np.full(n, fill, np.float32)
    v = np.ascontiguousarray(v, np.float32).reshape(-1)
    if v.size != n:
        raise ValueError(f"expected {n} affine parameters, got {v.size}")
    return v


def layer_norm(q, weight, bias, x_scale, x_zero_point, eps, out_scale, out_zero_point,
               qmin, qmax, num_threads=None):
    """Layer norm of each row of the (M, N) integers ``q`` with its own statistics;
    ``weight`` and ``bias`` (N,) or None.  Returns a new array of ``q``'s dtype."""
    q = _ints(q, 2)
    out = np.empty_like(q)
    if q.size == 0:
        return out
    N = q.shape[1]
    _qnorm.layer_norm(q, out, _vector(weight, N, 1), _vector(bias, N, 0), float(x_scale),
                      int(x_zero_point), float(eps), float(out_scale),
                      int(out_zero_point), int(qmin), int(qmax), int(_simd.active()),
                      _threads.resolve_openmp(num_threads))
    return out


def group_norm(q, gamma, beta, num_groups, nhwc, float32_sums, x_scale, x_zero_point, eps,
               out_scale, out_zero_point, qmin, qmax, num_threads=None):
    """Group norm of the (B G, C / G, P) integers ``q``, row ``n G + g`` holding group
    ``g`` of sample ``n``; ``gamma`` and ``beta`` (C,) or None; ``nhwc``: PyTorch's
    channels-last formula and quantize loops, ``float32_sums``: its float32 sums.
    Returns a new array of ``q``'s dtype and shape."""
    q = _ints(q, 3)
    out = np.empty_like(q)
    if q.size == 0:
        return out
    C = int(num_groups) * q.shape[1]
    _qnorm.group_norm(q, out, _vector(gamma, C, 1), _vector(beta, C, 0), int(num_groups),
                      bool(nhwc), bool(float32_sums), float(x_scale), int(x_zero_point),
                      float(eps), float(out_scale), int(out_zero_point), int(qmin),
                      int(qmax), int(_simd.active()), _threads.resolve_openmp(num_threads))
    return out


def batch_norm(q, alpha, beta, x_zero_point, out_zero_point, lo, hi, num_threads=None):
    """The batch norm map of the (N, C, inner) uint8 integers ``q``, channel ``c``
    multiplied by ``alpha[c]`` after the zero point is taken off and shifted by
    ``beta[c]``, rounded, clamped to ``[lo, hi]``.  Returns a new uint8 array."""
    q = _ints(q, 3)
    if q.dtype != np.uint8:
        raise TypeError(f"`q` must be uint8 (quint8), got {q.dtype}")
    out = np.empty_like(q)
    if q.size == 0:
        return out
    C = q.shape[1]
    _qnorm.batch_norm(q, out, _vector(alpha, C, 1), _vector(beta, C, 0), int(x_zero_point),
                      int(out_zero_point), int(lo), int(hi), int(_simd.active()),
                      _threads.resolve_openmp(num_threads))
    return out
