r"""Fake-quantize kernels (the only importer of ``qlearn._ext._fake_quant``).

Array level, under :mod:`qlearn.fake_quant` (the autograd functions) and
:mod:`qlearn.quantization.fake_quantize` (the modules), which check the user's
arguments.  Each function takes float32 data (made C-contiguous here) and output arrays
it fills, resolves the thread count and the SIMD path, and returns True where the
kernel reports NaN or infinity in the input.  Per-channel functions take the natural
arrays and the channel ``axis``; the kernels see the ``(outer, C, inner)`` view.  The
NumPy twins are :func:`qlearn.reference.fake_quantize_per_tensor_ref` and its siblings.

Examples
--------
>>> import numpy as np
>>> from qlearn.kernels import fake_quant as kf
>>> x = np.array([-1.0, 0.26, 9.0], np.float32)
>>> out, mask = np.empty(3, np.float32), np.empty(3, np.uint8)
>>> kf.fake_quantize_per_tensor(x, out, mask, 0.5, 0, -2, 2)
False
>>> out, mask
(array([-1. ,  0.5,  1. ], dtype=float32), array([1, 1, 0], dtype=uint8))
"""
import numpy as np

from .._ext import _fake_quant
from . import simd as _simd
from . import threads as _threads
from .quantize import channel_view_shape

__all__ = ["fake_quantize_per_tensor", "fake_quantize_per_channel", "ste_backward",
           "lsq_backward_per_tensor", "lsq_backward_per_channel", "aminmax_per_channel"]


def _f32(a):
    return np.asarray(a, dtype=np.float32, order="C")


def fake_quantize_per_tensor(x, out, mask, scale, zero_point, quant_min, quant_max,
                             num_threads=None):
    r"""``out = (clamp(nearbyint(x / S) + Z, qmin, qmax) - Z) S`` and ``mask`` the STE's
    :math:`\mathbb{1}[q_{min} \le \mathrm{nearbyint}(x/S) + Z \le q_{max}]` (eq.
    :eq:`qat-fq`), elementwise into ``out`` (float32) and ``mask`` (uint8) of ``x``'s
    shape.  Returns True if ``x`` held NaN or infinity."""
    return bool(_fake_quant.fake_quantize_per_tensor(
        _f32(x).reshape(-1), out.reshape(-1), mask.reshape(-1), np.float32(scale),
        zero_point, quant_min, quant_max, _simd.active(), _threads.resolve_openmp(num_threads)))


def fake_quantize_per_channel(x, out, mask, scales, zero_points, axis, quant_min,
                              quant_max, num_threads=None):
    """The same with one ``(S_c, Z_c)`` per slice of ``x`` along ``axis``."""
    x = _f32(x)
    view = channel_view_shape(x.shape, axis)
    return bool(_fake_quant.fake_quantize_per_channel(
        x.reshape(view), out.reshape(view), mask.reshape(view), _f32(scales),
        np.ascontiguousarray(zero_points, np.int32), quant_min, quant_max, _simd.active(),
        _threads.resolve_openmp(num_threads)))


def ste_backward(grad, mask, out, num_threads=None):
    r"""``out = grad * mask``: the straight-through estimator's
    :math:`\partial L / \partial x`."""
    _fake_quant.ste_backward(_f32(grad).reshape(-1), mask.reshape(-1), out.reshape(-1),
                             _threads.resolve_openmp(num_threads))


def lsq_backward_per_tensor(x, dy, dx, scale, zero_point, quant_min, quant_max,
                            grad_factor, num_threads=None):
    """LSQ's backward: ``dx`` in place; returns ``(dscale, dzero_point)``, the sums over
    every element (fixed order: independent of the thread count)."""
    return _fake_quant.lsq_backward_per_tensor(
        _f32(x).reshape(-1), _f32(dy).reshape(-1), dx.reshape(-1), scale, zero_point,
        quant_min, quant_max, grad_factor, _threads.resolve_openmp(num_threads))


def lsq_backward_per_channel(x, dy, dx, scales, zero_points, dscales, dzero_points, axis,
                             quant_min, quant_max, grad_factor, num_threads=None):
    """LSQ's backward per channel: ``dx``, and the per-channel sums of dS and dZ into the
    float64 arrays ``dscales`` and ``dzero_points``."""
    x = _f32(x)
    view = channel_view_shape(x.shape, axis)
    _fake_quant.lsq_backward_per_channel(
        x.reshape(view), _f32(dy).reshape(view), dx.reshape(view), _f32(scales),
        _f32(zero_points), dscales, dzero_points, quant_min, quant_max, grad_factor,
        _threads.resolve_openmp(num_threads))


def aminmax_per_channel(x, mins, maxs, axis=None, num_threads=None):
    """``mins[c]``, ``maxs[c]``: the min and max of ``x`` per slice along ``axis``
    (``axis=None``: of the whole array, into 1-element outputs).  Returns True if ``x``
    held NaN or infinity."""
    x = _f32(x)
    view = (1, 1, x.size) if axis is None else channel_view_shape(x.shape, axis)
    return bool(_fake_quant.aminmax_per_channel(x.reshape(view), mins, maxs,
                                                _threads.resolve_openmp(num_threads)))
