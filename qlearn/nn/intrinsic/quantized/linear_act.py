r"""Quantized ``leaky_relu(linear(x))`` and ``tanh(linear(x))`` in one module
(``torch.ao.nn.intrinsic.quantized.LinearLeakyReLU`` / ``LinearTanh``).

Unlike ReLU, these activations cannot be folded into the integer requantization, so
the int32 accumulator :math:`C_{ij} = \sum_k (x_{ik} - Z_x)(w_{jk} - Z_{w,j})` is first
taken back to float, the activation applied there, and the result quantized with the
output's :math:`(S_o, Z_o)`:

.. math::

   y_{ij} = (S_x S_{w,j})\, C_{ij} + b_j, \qquad
   q_{ij} = \operatorname{clamp}\big(\operatorname{round}(\phi(y_{ij}) / S_o) + Z_o,
   0, 255\big)

with :math:`\phi` the leaky ReLU of slope ``negative_slope`` or tanh, all in float32
and rounding half to even.  This is what PyTorch's ``quantized::linear_leaky_relu`` /
``quantized::linear_tanh`` compute (they exist only for its oneDNN engine); tests
compare the integers with them, with 7-bit activations as for every int8 operator
(:doc:`/int8`).  :math:`S_o, Z_o` are ``scale``, ``zero_point``; ``LinearTanh`` is
normally given the fixed output qparams :math:`(2/256, 128)` of
:data:`~qlearn.quantization.observer.default_symmetric_fixed_qparams_observer`.
"""
import numpy as np

from ....dtypes import per_tensor_affine, quint8
from ....kernels import int8 as _int8
from ....kernels.quantize import per_tensor_unchecked
from ...quantized.modules.linear import Linear as _Linear
from ...quantized.packed_params import require_quantized

__all__ = ["LinearLeakyReLU", "LinearTanh"]


def _linear_float_then_quantize(x, pw, scale, zero_point, act, who):
    """The equations of the module notes: float accumulator, ``act``, requantize."""
    require_quantized(x, who)
    xi = x.int_repr()
    k = pw.k
    if xi.ndim == 0 or xi.shape[-1] != k:
        raise ValueError(f"{who}: `input` must have {k} features in its last dimension, "
                         f"got shape {xi.shape}")
    lead = xi.shape[:-1]
    rows = xi.reshape(-1, k) if k else np.zeros((int(np.prod(lead)), 0), np.uint8)
    if rows.shape[0] == 0 or pw.n == 0:
        y = np.zeros((rows.shape[0], pw.n), np.float32)
    elif k == 0:
        y = np.zeros((rows.shape[0], pw.n), np.float32) + (0 if pw.bias is None else pw.bias)
    else:
        fscale = (np.float32(x.q_scale()) * pw.w_scale).astype(np.float32)
        y = _int8.gemm_f32(pw, _int8.as_rows(np.ascontiguousarray(rows), k),
                           x.q_zero_point(), fscale, pw.bias, False)
    q = np.rint(act(y).astype(np.float32) / np.float32(scale)) + zero_point
    out = np.clip(q, 0, 255).astype(np.uint8).reshape(lead + (pw.n,))
    return per_tensor_unchecked(out, quint8, per_tensor_affine, float(scale),
                                int(zero_point))


class LinearLeakyReLU(_Linear):
    r"""Quantized ``leaky_relu(linear(x), negative_slope)`` (see the module notes for
    the equations).

    Parameters
    ----------
    in_features, out_features : int
    negative_slope : float
        :math:`\alpha` of :math:`\phi(y) = y` for :math:`y > 0`, :math:`\alpha y` else.
    bias : bool
    dtype : QDType
        :data:`qlearn.qint8`.

    Examples
    --------
    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> m = nniq.LinearLeakyReLU(2, 1, 0.1)
    >>> m.set_weight_bias(ql.quantize_per_tensor([[1.0, -1.0]], 0.5, 0, ql.qint8), None)
    >>> m.scale, m.zero_point = 0.1, 50
    >>> m(ql.quantize_per_tensor([[1.0, 3.0], [3.0, 1.0]], 0.5, 0, ql.quint8)).dequantize()
    array([[-0.2],
           [ 2. ]], dtype=float32)
    """

    _NAME = "QuantizedLinearLeakyReLU"

    def __init__(self, in_features, out_features, negative_slope, bias=True, dtype=None):
        from ....dtypes import qint8
        super().__init__(in_features, out_features, bias, qint8 if dtype is None else dtype)
        try:
            slope = float(negative_slope)
        except (TypeError, ValueError):
            raise TypeError(f"`negative_slope` must be a number, got "
                            f"{negative_slope!r}") from None
        if not np.isfinite(slope):
            raise ValueError(f"`negative_slope` must be finite, got {negative_slope!r}")
        self.negative_slope = slope

    @classmethod
    def _float_modules(cls):
        from ..modules.linear_act import LinearLeakyReLU as FloatLinearLeakyReLU
        return (FloatLinearLeakyReLU,)

    def forward(self, x):
        slope = np.float32(self.negative_slope)
        return _linear_float_then_quantize(
            x, self._packed_params, self.scale, self.zero_point,
            lambda y: np.where(y > 0, y, y * slope), self._NAME)

    @classmethod
    def from_float(cls, mod):
        """Build from an observed ``nni.LinearLeakyReLU``: the weight is quantized with
        ``mod.qconfig.weight()``, the output qparams are the observer's, the slope is
        the ``LeakyReLU``'s."""
        slope = mod[1].negative_slope if isinstance(mod, cls._float_modules()) else 0.01
        return _from_float_linear(cls, mod, lambda i, o, b: cls(i, o, slope, bias=b))


class LinearTanh(_Linear):
    r"""Quantized ``tanh(linear(x))`` (see the module notes for the equations).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : QDType
        :data:`qlearn.qint8`.

    Examples
    --------
    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> m = nniq.LinearTanh(2, 1)
    >>> m.set_weight_bias(ql.quantize_per_tensor([[1.0, -1.0]], 0.5, 0, ql.qint8), None)
    >>> m.scale, m.zero_point = 2 / 256, 128
    >>> m(ql.quantize_per_tensor([[1.0, 3.0], [3.0, 1.0]], 0.5, 0, ql.quint8)).int_repr()
    array([[  5],
           [251]], dtype=uint8)
    """

    _NAME = "QuantizedLinearTanh"

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        from ....dtypes import qint8
        super().__init__(in_features, out_features, bias, qint8 if dtype is None else dtype)

    @classmethod
    def _float_modules(cls):
        from ..modules.linear_act import LinearTanh as FloatLinearTanh
        return (FloatLinearTanh,)

    def forward(self, x):
        return _linear_float_then_quantize(x, self._packed_params, self.scale,
                                           self.zero_point, np.tanh, self._NAME)

    @classmethod
    def from_float(cls, mod):
        """Build from an observed ``nni.LinearTanh`` (weight from
        ``mod.qconfig.weight()``, output qparams from its observer)."""
        return _from_float_linear(cls, mod, lambda i, o, b: cls(i, o, bias=b))


def _from_float_linear(cls, mod, make):
    from ...quantized.modules.utils import (
        activation_qparams,
        check_float_module,
        quantize_weight,
        weight_for_quantization,
    )
    check_float_module(mod, cls._float_modules(), cls.__name__)
    scale, zero_point = activation_qparams(mod, cls.__name__)
    lin, w, b, obs = weight_for_quantization(mod)
    q = make(lin.in_features, lin.out_features, b is not None)
    q.set_weight_bias(quantize_weight(w, obs), b)
    q.scale, q.zero_point = scale, zero_point
    return q
