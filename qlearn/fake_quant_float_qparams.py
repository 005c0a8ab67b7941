r"""Fake quantization with float zero points, as ``torch.fake_quantize_per_channel_affine``
computes it when its ``zero_point`` tensor is float (or half).

With an integer zero point PyTorch rounds first and adds ``Z`` after (eq. :eq:`qat-fq`);
with a float one it mirrors the float-qparams quantizer and adds ``Z`` *before* rounding:

.. math::

   q = \operatorname{nearbyint}(Z_c + x \cdot S_c^{-1}), \qquad
   \hat x = \big(\operatorname{clamp}(q,\ q_{min},\ q_{max}) - Z_c\big)\, S_c, \qquad
   \frac{\partial L}{\partial x} = \frac{\partial L}{\partial \hat x}\,
   \mathbb{1}[q_{min} \le q \le q_{max}]

``Z_c + x * (1 / S_c)`` is float32; the last product is taken in float64 and rounded to
float32, as PyTorch's kernel does (its ``fmin``/``fmax`` return doubles).  The zero points
are not bounded by ``[quant_min, quant_max]`` (PyTorch does not bound them either).
:func:`qlearn.fake_quantize_per_channel_affine` comes here when ``zero_point`` is a float
array.
"""
import numpy as np

from . import _validation as V
from .autograd import Function

__all__ = ["FakeQuantizePerChannelFloatQParams", "fake_quantize_per_channel_float_qparams"]


def _forward(x, scales, zero_points, axis, quant_min, quant_max):
    """(x_hat, mask) for a float32 array ``x`` (parameters checked, float32, (C,))."""
    shape = [1] * x.ndim
    shape[axis] = -1
    inv = (np.float32(1) / scales).reshape(shape)
    zp = zero_points.reshape(shape)
    q = np.rint(zp + x * inv)                  # float32: one product, one sum, no FMA
    mask = (q >= quant_min) & (q <= quant_max)
    qc = np.clip(q, quant_min, quant_max).astype(np.float64)
    out = ((qc - zp.astype(np.float64)) * scales.reshape(shape).astype(np.float64))
    return out.astype(np.float32), mask


class FakeQuantizePerChannelFloatQParams(Function):
    """Autograd Function of :func:`fake_quantize_per_channel_float_qparams` (the STE)."""

    @staticmethod
    def forward(ctx, x, scales, zero_points, axis, quant_min, quant_max):
        out, mask = _forward(np.asarray(x, np.float32), scales, zero_points, axis,
                             quant_min, quant_max)
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return np.where(mask, np.asarray(grad, np.float32), np.float32(0)), \
            None, None, None, None, None


def fake_quantize_per_channel_float_qparams(input, scale, zero_point, axis, quant_min,
                                            quant_max):
    r"""Quantize and dequantize ``input`` per channel with float zero points.

    .. math::

       \hat x_{\dots c \dots} = \big(\operatorname{clamp}(\operatorname{nearbyint}(
       Z_c + x_{\dots c \dots} \cdot S_c^{-1}),\ q_{min},\ q_{max}) - Z_c\big)\, S_c

    with the straight-through gradient, 1 where the rounded value lies in
    ``[quant_min, quant_max]`` and 0 elsewhere.  Equal, forward and backward, to
    ``torch.fake_quantize_per_channel_affine`` given a float ``zero_point`` tensor.

    Parameters
    ----------
    input : Tensor or array_like of float
        ``x``, with at least one dimension.
    scale : array_like of float, shape (C,)
        ``S_c > 0`` (float32).
    zero_point : array_like of float, shape (C,)
        ``Z_c``, any finite numbers (float32).
    axis : int
        The channel axis.
    quant_min, quant_max : int
        The integer range.

    Returns
    -------
    Tensor
        ``x_hat``, float32.

    Raises
    ------
    ValueError
        If a scale is not positive and finite, a zero point or an input value is not
        finite, or the channel counts differ.

    Examples
    --------
    ``Z = 0.5`` moves the grid by half a step: 0.26 / 0.1 + 0.5 = 3.1 rounds to 3, which
    stands for (3 - 0.5) * 0.1:

    >>> import qlearn as ql
    >>> ql.fake_quantize_per_channel_affine([[0.26, 2.0]], [0.1], [0.5], 0, 0, 15).numpy()
    array([[0.25, 1.45]], dtype=float32)
    """
    from .fake_quant import _as_input, _channel_array, _check_quant_range
    x = _as_input(input)
    if x.ndim == 0:
        raise ValueError("`input` must have at least one dimension for per-channel "
                         "fake quantization, got a 0-d array")
    quant_min, quant_max = _check_quant_range(quant_min, quant_max)
    axis = V.check_axis(axis, x.ndim)
    try:
        scales, zero_points = V.check_float_qparams(_channel_array(scale, "scale"),
                                                    _channel_array(zero_point, "zero_point"),
                                                    x.shape[axis])
    except (TypeError, ValueError) as exc:     # name the arguments as this function does
        raise type(exc)(str(exc).replace("`scales`", "`scale`")
                        .replace("`zero_points`", "`zero_point`")) from None
    data = x.data if hasattr(x, "requires_grad") else x
    if not np.all(np.isfinite(data)):
        raise ValueError("`input` must be finite: it holds NaN or infinity, which have no "
                         "quantized value")
    return FakeQuantizePerChannelFloatQParams.apply(x, scales, zero_points, axis,
                                                    quant_min, quant_max)
