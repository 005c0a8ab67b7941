r"""Quantize / dequantize kernels (the only importer of ``qlearn._ext._quantize`` and
``qlearn._ext._qtensor``).

Array level: the callers (:mod:`qlearn.qtensor`, the QTensor class) have checked the
user's arguments (scale, zero point, dtype); these functions make the arrays what the
kernels need (C-contiguous, the storage dtype, flat or the ``(outer, C, inner)``
per-channel view), resolve the thread count and the SIMD path, and report whether the
input held NaN or infinity.  Their NumPy twins are the functions of the same name with
``_ref`` in :mod:`qlearn.reference`.

Examples
--------
>>> import numpy as np
>>> from qlearn.kernels import quantize as kq
>>> out = np.empty(3, np.uint8)
>>> kq.quantize_per_tensor(np.array([0.0, 0.5, 1.0], np.float32), out, 10.0, 3, 0, 255)
False
>>> out
array([ 3,  8, 13], dtype=uint8)
"""
import numpy as np

from .._ext import _qtensor, _quantize
from . import simd as _simd
from . import threads as _threads

__all__ = ["QTensor", "channel_view_shape", "quantize_per_tensor", "quantize_per_channel",
           "dequantize_per_tensor", "dequantize_per_channel", "per_tensor_unchecked"]

#: The quantized tensor type (a compiled class; :mod:`qlearn.qtensor` re-exports it).
QTensor = _qtensor.QTensor
#: ``QTensor`` from per-tensor parameters the caller has already validated (no checks).
per_tensor_unchecked = _qtensor._per_tensor_unchecked


def channel_view_shape(shape, axis):
    """The 3-d shape ``(outer, C, inner)`` the per-channel kernels iterate over."""
    return _qtensor._channel_view_shape(shape, axis)


def _flat(a, dtype):
    return np.require(a, dtype, "CA").reshape(-1)      # C order and aligned


def quantize_per_tensor(x, out, inv_scale, zero_point, quant_min, quant_max, fused=True,
                        num_threads=None):
    r"""``out[i] = clamp(nearbyint(x[i] inv_scale + Z), qmin, qmax)`` in float32 (eq.
    :eq:`quantize`); ``fused``: one rounding of ``x * inv_scale + Z`` (an FMA).

    ``out`` is a C-contiguous integer array (uint8, int8 or int32) of ``x``'s size,
    written in place.  Returns True if ``x`` held NaN or infinity.
    """
    return bool(_quantize.quantize_per_tensor(
        _flat(x, np.float32), out.reshape(-1), inv_scale, zero_point, quant_min, quant_max,
        fused, _simd.active(), _threads.resolve_openmp(num_threads)))


def quantize_per_channel(x, out, inv_scales, zero_points, axis, quant_min, quant_max,
                         num_threads=None):
    r"""``q[..c..] = clamp(nearbyint(x[..c..] inv_scales[c] + Z_c), qmin, qmax)`` (eq.
    :eq:`per-channel`), multiply then add.  Returns True if ``x`` held NaN or infinity."""
    x = np.asarray(x, dtype=np.float32, order="C")
    view = channel_view_shape(x.shape, axis)
    return bool(_quantize.quantize_per_channel(
        x.reshape(view), out.reshape(view), np.ascontiguousarray(inv_scales, np.float32),
        np.ascontiguousarray(zero_points, np.int32), quant_min, quant_max, _simd.active(),
        _threads.resolve_openmp(num_threads)))


def dequantize_per_tensor(q, out, scale, zero_point, num_threads=None):
    r"""``out[i] = (q[i] - Z) S`` in float32 (eq. :eq:`dequantize`), into the float32
    array ``out`` (flat views of both are used)."""
    _quantize.dequantize_per_tensor(np.ascontiguousarray(q).reshape(-1), out.reshape(-1),
                                    np.float32(scale), zero_point, _simd.active(),
                                    _threads.resolve_openmp(num_threads))


def dequantize_per_channel(q, out, scales, zero_points, num_threads=None):
    r"""``out[o, c, i] = float32((q[o, c, i] - Z_c) S_c)``, the product in float64, for
    ``(outer, C, inner)`` arrays ``q`` and ``out``."""
    _quantize.dequantize_per_channel(
        np.ascontiguousarray(q), out, np.ascontiguousarray(scales, np.float64),
        np.ascontiguousarray(zero_points, np.int32), _simd.active(),
        _threads.resolve_openmp(num_threads))
