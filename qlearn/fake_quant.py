r"""The fake-quant *functions* (``torch.fake_quantize_per_tensor_affine`` and kin):
quantize and dequantize in one float-to-float step, with the straight-through estimator
(STE) as its gradient.

This module holds the stateless functions and their autograd Functions.  The
*modules* that wrap them with an observer for quantization-aware training
(``FakeQuantize``, ``FusedMovingAvgObsFakeQuantize``, ``LearnableFakeQuantize``, as
``torch.ao.quantization.fake_quantize``) are in :mod:`qlearn.quantization.fake_quantize`.
The compiled kernels are reached through :mod:`qlearn.kernels.fake_quant`.

.. math::

   \hat x = \big(\operatorname{clamp}(\operatorname{round}(x / S) + Z,\ q_{min},\ q_{max})
            - Z\big)\, S
   \qquad
   \frac{\partial L}{\partial x} = \frac{\partial L}{\partial \hat x}\,
   \mathbb{1}\big[q_{min} \le \operatorname{round}(x / S) + Z \le q_{max}\big]

``S`` is ``scale``, ``Z`` is ``zero_point``, ``[q_min, q_max]`` is
``[quant_min, quant_max]``.  The forward values and gradients equal PyTorch's
``torch.fake_quantize_per_tensor_affine`` / ``fake_quantize_per_channel_affine`` bit for
bit: ``x / S`` is computed as ``x * (1.0f / S)`` in float32 and rounded half to even
*before* ``Z`` is added.  (:func:`qlearn.quantize_per_tensor` adds ``Z`` before rounding,
as ``torch.quantize_per_tensor`` does; the two differ at exact ties with an odd zero
point, see the "Quantization-aware training" page.)

The LSQ functions (:func:`_fake_quantize_learnable_per_tensor_affine` and the
per-channel one) compute the same forward value but also return gradients for the
scale and the zero point (Esser et al., *Learned Step Size Quantization*), as
``torch._fake_quantize_learnable_per_tensor_affine`` does; they back
:class:`qlearn.quantization.fake_quantize.LearnableFakeQuantize`.
"""
import numbers

import numpy as np

from . import _validation as V
from .autograd import Function, Tensor
from .fake_quant_float_qparams import fake_quantize_per_channel_float_qparams
from .float_qparams import is_float_array
from .kernels import fake_quant as _kernels

__all__ = ["fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
           "FakeQuantizePerTensorAffine", "FakeQuantizePerChannelAffine",
           "LearnableFakeQuantizePerTensorAffine", "LearnableFakeQuantizePerChannelAffine"]

_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1


# -- argument checks ---------------------------------------------------------------------

def _check_quant_range(quant_min, quant_max):
    """Return ``(quant_min, quant_max)`` as ints with ``quant_min <= quant_max`` in int32."""
    for name, v in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be an integer, got {v!r}")
        if not _INT32_MIN <= int(v) <= _INT32_MAX:
            raise ValueError(f"`{name}` must be in [{_INT32_MIN}, {_INT32_MAX}], got {v}")
    if quant_min > quant_max:
        raise ValueError(f"`quant_min` must be <= `quant_max`, got quant_min={quant_min} "
                         f"and quant_max={quant_max}")
    return int(quant_min), int(quant_max)


def _as_input(input, name="input"):
    """A Tensor passes through (its gradient is tracked); anything else becomes float32."""
    if isinstance(input, Tensor):
        return input
    return V.as_float32(input, name)


def _raise_nonfinite(name="input"):
    raise ValueError(f"`{name}` must be finite: it holds NaN or infinity, which have no "
                     f"quantized value")


def _contiguous(x):
    return np.asarray(x, dtype=np.float32, order="C")   # ascontiguousarray makes 0-d 1-d


def _channel_array(value, name):
    """The 1-d float32 data of a per-channel parameter (Tensor or array)."""
    arr = np.asarray(value.data if isinstance(value, Tensor) else value)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-d (one entry per channel), got shape "
                         f"{arr.shape}")
    return arr


# -- kernels wrapped for the Functions ----------------------------------------------------

def _fq_per_tensor(x, scale, zero_point, quant_min, quant_max):
    """(x_hat, mask) of eq. :eq:`qat-fq` for a float32 array ``x``."""
    x = _contiguous(x)
    out = np.empty(x.shape, np.float32)
    mask = np.empty(x.shape, np.uint8)
    if x.size and _kernels.fake_quantize_per_tensor(x, out, mask, scale, zero_point,
                                                    quant_min, quant_max):
        _raise_nonfinite()
    return out, mask


def _fq_per_channel(x, scales, zero_points, axis, quant_min, quant_max):
    """(x_hat, mask) with one (S_c, Z_c) per slice along ``axis``."""
    x = _contiguous(x)
    out = np.empty(x.shape, np.float32)
    mask = np.empty(x.shape, np.uint8)
    if x.size and _kernels.fake_quantize_per_channel(x, out, mask, scales, zero_points,
                                                     axis, quant_min, quant_max):
        _raise_nonfinite()
    return out, mask


def _ste(grad, mask):
    """dL/dx = dL/dx_hat * mask."""
    grad = _contiguous(grad)
    out = np.empty(grad.shape, np.float32)
    if grad.size:
        _kernels.ste_backward(grad, mask, out)
    return out


# -- fake quantize with the STE -----------------------------------------------------------

class FakeQuantizePerTensorAffine(Function):
    """Autograd Function of :func:`fake_quantize_per_tensor_affine` (arguments checked)."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, quant_min, quant_max):
        out, mask = _fq_per_tensor(x, scale, zero_point, quant_min, quant_max)
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return _ste(grad, mask), None, None, None, None


class FakeQuantizePerChannelAffine(Function):
    """Autograd Function of :func:`fake_quantize_per_channel_affine` (arguments checked)."""

    @staticmethod
    def forward(ctx, x, scales, zero_points, axis, quant_min, quant_max):
        out, mask = _fq_per_channel(x, scales, zero_points, axis, quant_min, quant_max)
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return _ste(grad, mask), None, None, None, None, None


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    r"""Quantize and dequantize ``input`` with one scale and zero point; STE gradient.

    Each value becomes ``(clamp(round(x / scale) + zero_point, quant_min, quant_max) -
    zero_point) * scale``, the nearest value the integers can represent (eq.
    :eq:`qat-fq`), and the gradient passes straight through where the integer was inside
    the range and is 0 where it was clamped (eq. :eq:`qat-ste`).  The arithmetic is
    ``torch.fake_quantize_per_tensor_affine``'s:

    .. math::

       \hat x = \big(\operatorname{clamp}(\operatorname{nearbyint}(x \cdot S^{-1}) + Z,\
                q_{min},\ q_{max}) - Z\big)\, S, \qquad S^{-1} = 1 / \mathrm{float32}(S)

    .. math::

       \frac{\partial L}{\partial x} = \frac{\partial L}{\partial \hat x}\cdot
       \mathbb{1}\big[q_{min} \le \operatorname{nearbyint}(x \cdot S^{-1}) + Z \le q_{max}\big]

    Parameters
    ----------
    input : Tensor or array_like of float
        ``x``.  A :class:`qlearn.Tensor` that requires grad gets the STE gradient;
        float64 arrays are converted to float32.
    scale : float
        ``S > 0`` (a one-element array or Tensor is accepted, as FakeQuantize stores it).
    zero_point : int
        ``Z``, in ``[quant_min, quant_max]``.
    quant_min, quant_max : int
        The integer range, e.g. 0 and 255 for quint8, -8 and 7 for a signed 4-bit type.

    Returns
    -------
    Tensor
        ``x_hat``, float32, same shape as ``input``.

    Raises
    ------
    ValueError
        If ``scale`` is not positive and finite, ``quant_min > quant_max``,
        ``zero_point`` is outside ``[quant_min, quant_max]``, or ``input`` holds NaN or
        infinity.

    See Also
    --------
    fake_quantize_per_channel_affine : one scale and zero point per channel.
    qlearn.quantize_per_tensor : the integers themselves (adds ``Z`` before rounding).
    qlearn.quantization.FakeQuantize : the module that observes and fake-quantizes.

    Notes
    -----
    Exactly PyTorch's arithmetic: ``nearbyint`` rounds half to even, ``Z`` is added after
    rounding, and ``(q - Z) * S`` is rounded once to float32.  ``input`` must be finite
    (PyTorch silently maps NaN to ``q_min``).

    Examples
    --------
    >>> import qlearn as ql
    >>> x = ql.tensor([-1.0, 0.04, 0.05, 0.15, 3.0], requires_grad=True)
    >>> y = ql.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 15)
    >>> y.numpy()
    array([-0.3,  0. ,  0. ,  0.2,  1.2], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad.numpy()                  # 1 where the integer was inside [0, 15]
    array([0., 1., 1., 1., 0.], dtype=float32)
    """
    x = _as_input(input)
    quant_min, quant_max = _check_quant_range(quant_min, quant_max)
    scale = V.check_scale(scale)
    zero_point = V.check_zero_point(zero_point, quant_min, quant_max)
    return FakeQuantizePerTensorAffine.apply(x, scale, zero_point, quant_min, quant_max)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    r"""Quantize and dequantize ``input`` with one scale and zero point per channel.

    The slice ``c`` along ``axis`` becomes ``(clamp(round(x / scale[c]) + zero_point[c],
    quant_min, quant_max) - zero_point[c]) * scale[c]`` (eq. :eq:`qat-fq` per channel),
    as ``torch.fake_quantize_per_channel_affine`` computes it:

    .. math::

       \hat x_{\dots c \dots} = \big(\operatorname{clamp}(\operatorname{nearbyint}(
       x_{\dots c \dots} \cdot S_c^{-1}) + Z_c,\ q_{min},\ q_{max}) - Z_c\big)\, S_c

    with the STE gradient of :func:`fake_quantize_per_tensor_affine` channel by channel.

    Parameters
    ----------
    input : Tensor or array_like of float
        ``x``, with at least one dimension.
    scale : array_like of float, shape (C,)
        ``S_c > 0`` for each of the ``C = input.shape[axis]`` channels (used in float32,
        as PyTorch requires a float32 scale tensor).
    zero_point : array_like of int, shape (C,)
        ``Z_c``, each in ``[quant_min, quant_max]``.  A float array selects PyTorch's
        float-zero-point formula instead (``Z`` added before rounding, not bounded):
        see :func:`qlearn.fake_quant_float_qparams.fake_quantize_per_channel_float_qparams`.
    axis : int
        The channel axis.
    quant_min, quant_max : int
        The integer range.

    Returns
    -------
    Tensor
        ``x_hat``, float32, same shape as ``input``.

    See Also
    --------
    fake_quantize_per_tensor_affine : one scale and zero point for the whole tensor.

    Examples
    --------
    >>> import qlearn as ql
    >>> w = [[0.26, -0.26], [0.26, -0.26]]
    >>> ql.fake_quantize_per_channel_affine(w, [0.1, 0.2], [0, 0], 0, -8, 7).numpy()
    array([[ 0.3, -0.3],
           [ 0.2, -0.2]], dtype=float32)
    """
    if is_float_array(zero_point):   # as PyTorch: a float zero point changes the formula
        return fake_quantize_per_channel_float_qparams(input, scale, zero_point, axis,
                                                       quant_min, quant_max)
    x = _as_input(input)
    if x.ndim == 0:
        raise ValueError("`input` must have at least one dimension for per-channel "
                         "fake quantization, got a 0-d array")
    quant_min, quant_max = _check_quant_range(quant_min, quant_max)
    axis = V.check_axis(axis, x.ndim)
    channels = x.shape[axis]
    scales = V.check_scales(_channel_array(scale, "scale"), channels, "scale")
    zero_points = V.check_zero_points(_channel_array(zero_point, "zero_point"), channels,
                                      quant_min, quant_max, "zero_point")
    return FakeQuantizePerChannelAffine.apply(x, scales.astype(np.float32),
                                              zero_points.astype(np.int32), axis,
                                              quant_min, quant_max)


# -- LSQ: learnable scale and zero point --------------------------------------------------

def _lsq_forward_zero_point(zp, quant_min, quant_max):
    """The integer Z of the forward pass: nearbyint(Z_float) clamped, as ATen."""
    return np.clip(np.rint(np.asarray(zp, np.float32)), quant_min, quant_max)


class LearnableFakeQuantizePerTensorAffine(Function):
    r"""LSQ, per tensor: ``x_hat`` as :func:`fake_quantize_per_tensor_affine` with
    ``Z = clamp(round(zero_point))``; gradients for ``x``, ``scale`` and ``zero_point``.

    With :math:`q = \operatorname{round}(x/S + Z)` (in the backward pass PyTorch adds
    :math:`Z` before rounding) and :math:`g` the ``grad_factor``:

    .. math::

       \frac{\partial \hat x}{\partial S} = g \cdot \begin{cases}
           q_{min} - Z & q < q_{min} \\
           (\hat x - x)/S & q_{min} \le q \le q_{max} \\
           q_{max} - Z & q > q_{max} \end{cases}
       \qquad
       \frac{\partial \hat x}{\partial Z} = g \cdot \begin{cases}
           -S & q \notin [q_{min}, q_{max}] \\ 0 & \text{otherwise} \end{cases}

    summed over the elements.  As in ATen, the backward pass takes the zero point as
    ``trunc(clamp(Z + 0.5))`` where the forward pass takes ``nearbyint``.
    """

    @staticmethod
    def forward(ctx, x, scale, zero_point, quant_min, quant_max, grad_factor):
        s = np.float32(np.asarray(scale).reshape(-1)[0])
        zp_f = np.float32(np.asarray(zero_point).reshape(-1)[0])
        zp = int(_lsq_forward_zero_point(zp_f, quant_min, quant_max))
        out, _ = _fq_per_tensor(x, s, zp, quant_min, quant_max)
        ctx.save_for_backward(_contiguous(x))
        ctx.qparams = (s, zp_f, quant_min, quant_max, np.float32(grad_factor))
        ctx.shapes = (np.shape(scale), np.shape(zero_point))
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s, zp_f, qmin, qmax, gf = ctx.qparams
        # ATen's _get_zero_point_from_tensor(..., is_forward=false): Z + 0.5, clamped,
        # then truncated towards zero by the int64 conversion
        zp = np.float32(int(min(max(zp_f + np.float32(0.5), np.float32(qmin)),
                                np.float32(qmax))))
        g = _contiguous(grad)
        dx = np.empty(x.shape, np.float32)
        ds = dz = 0.0
        if x.size:
            ds, dz = _kernels.lsq_backward_per_tensor(x, g, dx, s, zp, qmin, qmax, gf)
        return (dx, np.full(ctx.shapes[0], ds, np.float32),
                np.full(ctx.shapes[1], dz, np.float32), None, None, None)


class LearnableFakeQuantizePerChannelAffine(Function):
    """LSQ, per channel: the gradients of :class:`LearnableFakeQuantizePerTensorAffine`
    per channel, summed over every axis but ``axis``; the zero points are
    ``clamp(round(zero_point))`` in both passes, as in ATen."""

    @staticmethod
    def forward(ctx, x, scales, zero_points, axis, quant_min, quant_max, grad_factor):
        s = np.ascontiguousarray(scales, np.float32).reshape(-1)
        zp = _lsq_forward_zero_point(zero_points, quant_min, quant_max).reshape(-1)
        out, _ = _fq_per_channel(x, s, zp.astype(np.int32), axis, quant_min, quant_max)
        ctx.save_for_backward(_contiguous(x))
        ctx.qparams = (s, zp.astype(np.float32), axis, quant_min, quant_max,
                       np.float32(grad_factor))
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s, zp, axis, qmin, qmax, gf = ctx.qparams
        g = _contiguous(grad)
        dx = np.empty(x.shape, np.float32)
        ds = np.zeros(s.shape, np.float64)
        dz = np.zeros(s.shape, np.float64)
        if x.size:
            _kernels.lsq_backward_per_channel(x, g, dx, s, zp, ds, dz, axis, qmin, qmax,
                                              gf)
        return (dx, ds.astype(np.float32), dz.astype(np.float32), None, None, None, None)


def _check_learnable(input, scale, zero_point, quant_min, quant_max, grad_factor):
    x = _as_input(input)
    quant_min, quant_max = _check_quant_range(quant_min, quant_max)
    for name, v in (("scale", scale), ("zero_point", zero_point)):
        arr = np.asarray(v.data if isinstance(v, Tensor) else v)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"`{name}` must hold numbers, got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise ValueError(f"`{name}` must be finite, got {arr}")
    s = np.asarray(scale.data if isinstance(scale, Tensor) else scale, np.float32)
    if (s <= 0).any():
        raise ValueError(f"`scale` must be positive, got {s}")
    if isinstance(grad_factor, bool) or not isinstance(grad_factor, numbers.Real):
        raise TypeError(f"`grad_factor` must be a number, got {grad_factor!r}")
    return x, quant_min, quant_max


def _as_param(v):
    return v if isinstance(v, Tensor) else np.asarray(v, np.float32)


def _fake_quantize_learnable_per_tensor_affine(input, scale, zero_point, quant_min,
                                               quant_max, grad_factor=1.0):
    """LSQ fake quantization with one learnable scale and zero point (one-element
    Tensors); see :class:`LearnableFakeQuantizePerTensorAffine` for the gradients.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn.fake_quant import _fake_quantize_learnable_per_tensor_affine as lsq
    >>> x = ql.tensor([0.12, 0.5, 2.0], requires_grad=True)
    >>> s = ql.tensor([0.1], requires_grad=True); z = ql.tensor([0.0], requires_grad=True)
    >>> y = lsq(x, s, z, 0, 15)
    >>> y.numpy()
    array([0.1, 0.5, 1.5], dtype=float32)
    >>> y.sum().backward()
    >>> np.round(s.grad.numpy(), 4), z.grad.numpy()   # (0.1-0.12)/0.1 + 0 + 15 ; -0.1
    (array([14.8], dtype=float32), array([-0.1], dtype=float32))
    """
    x, quant_min, quant_max = _check_learnable(input, scale, zero_point, quant_min,
                                               quant_max, grad_factor)
    for name, v in (("scale", scale), ("zero_point", zero_point)):
        if np.size(v.data if isinstance(v, Tensor) else v) != 1:
            raise ValueError(f"`{name}` must have one element for per-tensor LSQ, got "
                             f"shape {np.shape(v.data if isinstance(v, Tensor) else v)}")
    return LearnableFakeQuantizePerTensorAffine.apply(
        x, _as_param(scale), _as_param(zero_point), quant_min, quant_max,
        float(grad_factor))


def _fake_quantize_learnable_per_channel_affine(input, scale, zero_point, axis, quant_min,
                                                quant_max, grad_factor=1.0):
    """LSQ fake quantization with one learnable scale and zero point per channel
    (1-d Tensors of length ``input.shape[axis]``)."""
    x, quant_min, quant_max = _check_learnable(input, scale, zero_point, quant_min,
                                               quant_max, grad_factor)
    axis = V.check_axis(axis, x.ndim)
    for name, v in (("scale", scale), ("zero_point", zero_point)):
        shape = np.shape(v.data if isinstance(v, Tensor) else v)
        if shape != (x.shape[axis],):
            raise ValueError(f"`{name}` must have shape ({x.shape[axis]},) (one entry per "
                             f"channel along axis {axis}), got {shape}")
    return LearnableFakeQuantizePerChannelAffine.apply(
        x, _as_param(scale), _as_param(zero_point), axis, quant_min, quant_max,
        float(grad_factor))
