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
from .dtypes import per_channel_affine, per_tensor_affine, qint8, qint32, quint4x2, quint8
from .float_qparams import is_float_array, quantize_per_channel_float_qparams
from .kernels import quantize as _kernels
from .kernels.quantize import QTensor

__all__ = ["QTensor", "quantize_per_tensor", "quantize_per_channel", "dequantize"]

_DTYPES = (quint8, qint8, qint32)
_PER_TENSOR_DTYPES = _DTYPES + (quint4x2,)


def _raise_nonfinite(name):
    raise ValueError(f"`{name}` must be finite: it holds NaN or infinity, which have no "
                     f"quantized value")


def _refuse_quantized(input):
    # a QTensor would convert to its dequantized floats; PyTorch refuses it too
    if isinstance(input, QTensor):
        raise TypeError("`input` is already quantized (a QTensor); dequantize() it first "
                        "to quantize it again")


def quantize_per_tensor(input, scale, zero_point, dtype):
    r"""Quantize ``input`` with one scale and zero point for the whole tensor.

    Each value becomes ``q = clamp(round(x / scale + zero_point), q_min, q_max)``, with
    ``round`` half to even and ``[q_min, q_max]`` the range of ``dtype``: the affine map
    (eq. :eq:`quantize`), computed in float32 exactly as ``torch.quantize_per_tensor``:

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
        :data:`qlearn.quint8` (0..255), :data:`qlearn.qint8` (-128..127),
        :data:`qlearn.qint32` or :data:`qlearn.quint4x2` (0..15).

    Returns
    -------
    QTensor
        Per-tensor affine; ``int_repr()`` gives the integers, ``dequantize()`` the reals
        :math:`S\,(q - Z)` they stand for.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive finite number, ``zero_point`` lies outside the
        dtype's range, or ``input`` holds NaN or infinity.

    See Also
    --------
    quantize_per_channel : one scale and zero point per channel.
    dequantize : the inverse map.
    qlearn.quantization.qparams.calculate_qparams : a scale and zero point for a range.

    Notes
    -----
    For quint8 and qint8, ``x * inv_scale + zero_point`` is one fused multiply-add
    (one rounding), as PyTorch's FBGEMM path computes it; for qint32 it is a multiply
    then an add.  The two differ only for inputs within one float32 ulp of a tie.
    For quint4x2, as PyTorch's sub-byte path, the product is rounded *before* the zero
    point is added, :math:`\operatorname{clamp}(\operatorname{nearbyint}(x S^{-1}) + Z,
    0, 15)`, which differs from the other order at ties with an odd ``zero_point``
    (PyTorch also accepts ``zero_point`` 16 and up there; qlearn requires [0, 15]).

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
    dtype = V.check_dtype(dtype, allowed=_PER_TENSOR_DTYPES)
    _refuse_quantized(input)
    x = V.as_float32(input, "input")
    scale = V.check_scale(scale)
    zero_point = V.check_zero_point(zero_point, dtype.quant_min, dtype.quant_max)
    if dtype is quint4x2:
        return QTensor(_quantize_4bit(x, scale, zero_point), dtype, per_tensor_affine,
                       scale, zero_point)
    out = np.empty(x.shape, dtype=dtype.storage)
    if x.size and _kernels.quantize_per_tensor(
            x, out, np.float32(1) / np.float32(scale), zero_point, dtype.quant_min,
            dtype.quant_max, fused=dtype is not qint32):
        _raise_nonfinite("input")
    return QTensor(out, dtype, per_tensor_affine, scale, zero_point)


def _quantize_4bit(x, scale, zero_point):
    """quint4x2 per tensor: clamp(nearbyint(x * (1 / S)) + Z, 0, 15), float32, the values
    one a byte (rounded before Z is added, as PyTorch's sub-byte kernel)."""
    if not np.isfinite(x).all():
        _raise_nonfinite("input")
    with np.errstate(over="ignore"):          # beyond float32: inf, clamped to 15
        q = np.rint(x * (np.float32(1) / np.float32(scale))) + np.float32(zero_point)
    return np.clip(q, 0, 15).astype(np.uint8)


def quantize_per_channel(input, scales, zero_points, axis, dtype):
    r"""Quantize ``input`` with one scale and zero point per slice along ``axis``.

    The slice ``c`` of ``input`` along ``axis`` becomes
    ``clamp(round(x / scales[c] + zero_points[c]), q_min, q_max)`` (eq.
    :eq:`per-channel`), in float32 as ``torch.quantize_per_channel`` computes it:

    .. math::

       q_{\dots c \dots} = \operatorname{clamp}\big(\operatorname{nearbyint}(
       x_{\dots c \dots} \cdot S_c^{-1} + Z_c),\ q_{min},\ q_{max}\big)

    Parameters
    ----------
    input : array_like of float
        The real values; float64 is converted to float32.
    scales : array_like of float, shape (C,)
        ``S_c > 0`` for each of the ``C = input.shape[axis]`` channels.
    zero_points : array_like of int or float, shape (C,)
        ``Z_c`` for each channel, inside the dtype's range.  Float zero points (a float
        array or Tensor, as ``torch.zeros(3)``) select the scheme
        :data:`qlearn.per_channel_affine_float_qparams`, as in PyTorch (see
        :func:`qlearn.float_qparams.quantize_per_channel_float_qparams`).
    axis : int
        The channel axis (negative counts from the end).
    dtype : QDType
        :data:`qlearn.quint8`, :data:`qlearn.qint8` or :data:`qlearn.qint32`.

    Returns
    -------
    QTensor
        Per-channel affine (or float-qparams); ``q_per_channel_scales()``,
        ``q_per_channel_zero_points()`` and ``q_per_channel_axis()`` give its
        parameters back.

    Raises
    ------
    ValueError
        If a scale is not positive and finite, a zero point lies outside the dtype's
        range, the number of scales or zero points is not ``input.shape[axis]``, or
        ``input`` holds NaN or infinity.

    See Also
    --------
    quantize_per_tensor : one scale and zero point for the whole tensor.

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
    if is_float_array(zero_points):     # PyTorch picks the scheme from their dtype
        return quantize_per_channel_float_qparams(input, scales, zero_points, axis, dtype)
    dtype = V.check_dtype(dtype, allowed=_DTYPES)
    _refuse_quantized(input)
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
    if x.size and _kernels.quantize_per_channel(
            x, out, np.float32(1) / scales.astype(np.float32), zero_points, axis,
            dtype.quant_min, dtype.quant_max):
        _raise_nonfinite("input")
    return QTensor(out, dtype, per_channel_affine, 1.0, 0, scales, zero_points, axis)


def dequantize(input):
    r"""The real values of a quantized tensor, ``r = scale * (q - zero_point)``, as float32.

    The inverse of the affine map (eq. :eq:`dequantize`), per tensor or per channel.  A
    plain float array, NumPy float scalar or float :class:`qlearn.Tensor` is returned
    unchanged (as ``torch.dequantize`` does for a float tensor, 0-d included), so the
    function can sit at the end of any pipeline.

    Parameters
    ----------
    input : QTensor, ndarray of float, NumPy float scalar or float Tensor

    Returns
    -------
    ndarray of float32 (or ``input`` itself)

    Raises
    ------
    TypeError
        If ``input`` is none of these (an integer array, a Python float, a list: torch
        refuses a Python number too).

    Examples
    --------
    >>> import qlearn as ql
    >>> ql.dequantize(ql.quantize_per_tensor([0.26], 0.5, 0, ql.qint8))
    array([0.5], dtype=float32)
    """
    if isinstance(input, QTensor):
        return input.dequantize()
    # a NumPy float scalar is a 0-d float array in all but type: both pass through, as
    # torch.dequantize returns a float tensor (0-d included) itself
    if isinstance(input, (np.ndarray, np.floating)) and input.dtype.kind == "f":
        return input
    from .autograd.tensor import Tensor  # (lazy: autograd imports this module)
    if isinstance(input, Tensor) and input.is_floating_point():
        return input
    raise TypeError(f"`input` must be a QTensor or a float array or Tensor, got "
                    f"{type(input).__name__}"
                    + (f" of {input.dtype}" if isinstance(input, (np.ndarray, Tensor))
                       else ""))
