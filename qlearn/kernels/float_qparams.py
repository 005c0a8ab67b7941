"""Kernels of ``per_channel_affine_float_qparams`` (the only importer of
``qlearn._ext._float_qparams``): quantize and dequantize with float zero points, and the
quantized embedding lookup.

The callers (:mod:`qlearn.float_qparams`, the QTensor) have checked the user's
arguments; these functions make the arrays what the kernels need and pass the thread
count and the SIMD path.

>>> import numpy as np
>>> from qlearn.kernels import float_qparams as kfq
>>> out = np.empty((1, 3), np.uint8)
>>> kfq.quantize_per_channel_float_qparams(np.array([[-1.0, 0.0, 0.5]], np.float32), out,
...                                        0, np.float32([170.0]), np.float32([170.0]), 0, 255)
False
>>> out
array([[  0, 170, 255]], dtype=uint8)
"""
import numpy as np

from .._ext import _float_qparams
from . import simd as _simd
from . import threads as _threads
from .quantize import channel_view_shape

__all__ = ["quantize_per_channel_float_qparams", "dequantize_per_channel_float_qparams",
           "embedding_bag_byte", "embedding_bag_4bit"]


def quantize_per_channel_float_qparams(x, out, axis, inv_scales, zero_points, quant_min,
                                       quant_max, num_threads=None):
    """``out = clamp(nearbyint(x * inv_scales[c] + zero_points[c]))`` along ``axis``, in
    float32 (``out``: a C-contiguous uint8 or int8 array of ``x``'s shape).  Returns True
    if ``x`` held NaN or infinity."""
    x = np.ascontiguousarray(x, np.float32)
    if x.size == 0:
        return False
    view = channel_view_shape(x.shape, axis)
    return bool(_float_qparams.quantize_per_channel_float_qparams(
        x.reshape(view), out.reshape(view), np.ascontiguousarray(inv_scales, np.float32),
        np.ascontiguousarray(zero_points, np.float32), quant_min, quant_max,
        _threads.resolve_openmp(num_threads)))


def dequantize_per_channel_float_qparams(q, out, axis, scales, zero_points,
                                         num_threads=None):
    """``out = (float(q) - zero_points[c]) * scales[c]`` along ``axis``, in float32."""
    q = np.ascontiguousarray(q)
    if q.size == 0:
        return
    view = channel_view_shape(q.shape, axis)
    _float_qparams.dequantize_per_channel_float_qparams(
        q.reshape(view), out.reshape(view), np.ascontiguousarray(scales, np.float32),
        np.ascontiguousarray(zero_points, np.float32), _threads.resolve_openmp(num_threads))


def embedding_bag_byte(ints, scales, biases, indices, bounds, weights, mode, out,
                       simd=None, num_threads=None):
    """The quantized lookup of :func:`qlearn.float_qparams.embedding_bag_byte` into
    ``out`` (``mode``: 0 sum, 1 mean, 2 max; ``weights`` of length 0 for none)."""
    _float_qparams.embedding_bag_byte(
        ints, scales, biases, indices, bounds, weights, mode, out,
        int(_simd.active() if simd is None else simd), _threads.resolve_openmp(num_threads))


def embedding_bag_4bit(packed, scales, biases, indices, bounds, weights, mode, out,
                       simd=None, num_threads=None):
    """The 4-bit lookup of :func:`qlearn.float_qparams.embedding_bag_4bit` into ``out``
    (``packed``: rows of two values a byte; ``mode`` and ``weights`` as
    :func:`embedding_bag_byte`)."""
    _float_qparams.embedding_bag_4bit(
        packed, scales, biases, indices, bounds, weights, mode, out,
        int(_simd.active() if simd is None else simd), _threads.resolve_openmp(num_threads))
