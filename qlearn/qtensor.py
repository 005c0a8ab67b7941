r"""Quantize and dequantize: the affine map between reals and integers.

.. math::

   Q(r) = \operatorname{clamp}\big(\operatorname{round}(r / S + Z),\ q_{min},\ q_{max}\big)
   \qquad\qquad r \approx S\,(Q(r) - Z)

``S`` is ``scale``, ``Z`` is ``zero_point``, ``[q_min, q_max]`` the dtype's range and
``round`` rounds half to even.  Computation is in float32 with ``1/S`` taken once, as
PyTorch does, so the integers are PyTorch's to the last bit.
"""
import numpy as np

from . import _validation as V
from ._ext import _quantize
from ._ext._openmp import get_num_threads
from ._ext._qtensor import QTensor, _channel_view_shape
from .dtypes import per_channel_affine, per_tensor_affine, qint8, qint32, quint8

__all__ = ["QTensor", "quantize_per_tensor", "quantize_per_channel", "dequantize"]

_DTYPES = (quint8, qint8, qint32)


def _raise_nonfinite(name):
    raise ValueError(f"`{name}` must be finite: it holds NaN or infinity, which have no "
                     f"quantized value")


def quantize_per_tensor(input, scale, zero_point, dtype):
    r"""Quantize ``input`` with one scale and zero point for the whole tensor.

    .. math::

       q = \operatorname{clamp}\big(\operatorname{nearbyint}(x \cdot S^{-1} + Z),
       \ q_{min},\ q_{max}\big), \qquad S^{-1} = 1 / \mathrm{float32}(S)

    Parameters
    ----------
    input : array_like of float
        The real values ``x``.  float64 is converted to float32 (PyTorch refuses it).
    scale : float
        ``S > 0``, the real value of one integer step.
    zero_point : int
        ``Z``, the integer that represents real 0; must lie in the dtype's range.
    dtype : QDType
        :data:`qlearn.quint8` (0..255), :data:`qlearn.qint8` (-128..127) or
        :data:`qlearn.qint32`.

    Returns
    -------
    QTensor

    Notes
    -----
    For quint8 and qint8, ``x * inv_scale + zero_point`` is one fused multiply-add
    (one rounding), as PyTorch's FBGEMM path computes it; for qint32 it is a multiply
    then an add.  The two differ only for inputs within one float32 ulp of a tie.

    Examples
    --------
    >>> import qlearn as ql
    >>> q = ql.quantize_per_tensor([-1.0, 0.0, 0.5, 2.0], scale=0.1, zero_point=10,
    ...                            dtype=ql.quint8)
    >>> q.int_repr()
    array([ 0, 10, 15, 30], dtype=uint8)
    >>> q.dequantize()
    array([-1. ,  0. ,  0.5,  2. ], dtype=float32)
    """
    dtype = V.check_dtype(dtype, allowed=_DTYPES)
    x = V.as_float32(input, "input")
    scale = V.check_scale(scale)
    zero_point = V.check_zero_point(zero_point, dtype.quant_min, dtype.quant_max)
    out = np.empty(x.shape, dtype=dtype.storage)
    if x.size:
        bad = _quantize.quantize_per_tensor(
            x.reshape(-1), out.reshape(-1), np.float32(1) / np.float32(scale), zero_point,
            dtype.quant_min, dtype.quant_max, dtype is not qint32, get_num_threads())
        if bad:
            _raise_nonfinite("input")
    return QTensor(out, dtype, per_tensor_affine, scale, zero_point)


def quantize_per_channel(input, scales, zero_points, axis, dtype):
    r"""Quantize ``input`` with one scale and zero point per slice along ``axis``.

    .. math::

       q_{\dots c \dots} = \operatorname{clamp}\big(\operatorname{nearbyint}(
       x_{\dots c \dots} \cdot S_c^{-1} + Z_c),\ q_{min},\ q_{max}\big)

    Parameters
    ----------
    input : array_like of float
        The real values; float64 is converted to float32.
    scales : array_like of float, shape (C,)
        ``S_c > 0`` for each of the ``C = input.shape[axis]`` channels.
    zero_points : array_like of int, shape (C,)
        ``Z_c`` for each channel, inside the dtype's range.
    axis : int
        The channel axis (negative counts from the end).
    dtype : QDType
        :data:`qlearn.quint8`, :data:`qlearn.qint8` or :data:`qlearn.qint32`.

    Returns
    -------
    QTensor

    Examples
    --------
    The tensor of the quantization-schemes notebook, one scale per row:

    >>> import qlearn as ql
    >>> x = [[0.5827, 0.8619], [0.3827, -0.1982], [-0.8213, 0.6351]]
    >>> q = ql.quantize_per_channel(x, [1e-2, 1e-3, 5e-2], [0, 0, 0], axis=0,
    ...                             dtype=ql.qint8)
    >>> q.int_repr()
    array([[  58,   86],
           [ 127, -128],
           [ -16,   13]], dtype=int8)
    """
    dtype = V.check_dtype(dtype, allowed=_DTYPES)
    x = V.as_float32(input, "input")
    if x.ndim == 0:
        raise ValueError("`input` must have at least one dimension for per-channel "
                         "quantization, got a 0-d array")
    axis = V.check_axis(axis, x.ndim)
    channels = x.shape[axis]
    scales = V.check_scales(scales, channels)
    zero_points = V.check_zero_points(zero_points, channels, dtype.quant_min,
                                      dtype.quant_max)
    out = np.empty(x.shape, dtype=dtype.storage)
    if x.size:
        view = _channel_view_shape(x.shape, axis)
        bad = _quantize.quantize_per_channel(
            x.reshape(view), out.reshape(view),
            np.float32(1) / scales.astype(np.float32), zero_points.astype(np.int32),
            dtype.quant_min, dtype.quant_max, get_num_threads())
        if bad:
            _raise_nonfinite("input")
    return QTensor(out, dtype, per_channel_affine, 1.0, 0, scales, zero_points, axis)


def dequantize(input):
    r"""The real values of a quantized tensor, :math:`r = S\,(q - Z)`, as float32.

    A plain float array is returned unchanged (as ``torch.dequantize`` does for a
    float tensor), so the function can sit at the end of any pipeline.

    >>> import qlearn as ql
    >>> ql.dequantize(ql.quantize_per_tensor([0.26], 0.5, 0, ql.qint8))
    array([0.5], dtype=float32)
    """
    if isinstance(input, QTensor):
        return input.dequantize()
    if isinstance(input, np.ndarray) and input.dtype.kind == "f":
        return input
    raise TypeError(f"`input` must be a QTensor, got {type(input).__name__}")
