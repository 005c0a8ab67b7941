r"""``nnq.PReLU``: the parametric ReLU of a quantized tensor, in integers, as PyTorch's
``quantized::prelu``.

With the input :math:`x = S_x (q_x - Z_x)`, the quint8 slope :math:`a = S_w (q_w - Z_w)`
and the output :math:`y = S_y (q_y - Z_y)`, PyTorch writes the positive part as a
product with the quantized 1, :math:`q_1 = Q_w(1)`, so both parts are integer products:

.. math::

   d = (\max(q_x, Z_x) - Z_x)(q_1 - Z_w) + (\min(q_x, Z_x) - Z_x)(q_w - Z_w), \qquad
   q_y = \operatorname{clamp}\big(\operatorname{nearbyint}(d \cdot m) + Z_y\big), \quad
   m = \mathrm{fl}(\mathrm{fl}(S_x S_w) \cdot \mathrm{fl}(1 / S_y))

(:math:`d` is exact in int32; :math:`m` and :math:`d m` are float32).  As in
PyTorch, :math:`q_1` saturates when the slopes' scale cannot hold 1 (quint8 with
:math:`S_w < 1/(255 - Z_w)`), and the positive part is then scaled by
:math:`S_w (255 - Z_w) < 1`: the ONNX export writes that factor out.
"""
import warnings

import numpy as np

from ....dtypes import per_tensor_affine, qint8, quint8
from ....qtensor import QTensor, quantize_per_tensor
from ... import functional as F
from ...modules.activation import PReLU as _FloatPReLU
from ...modules.module import Module
from ..functional_norm import _require_input
from .utils import activation_qparams

__all__ = ["PReLU", "quantized_prelu"]

_RANGES = {quint8: (0, 255), qint8: (-128, 127)}


def quantized_prelu(input, weight, output_scale, output_zero_point):
    r"""``quantized::prelu`` of a quint8 or qint8 QTensor ``input`` with the quantized
    slopes ``weight`` (a QTensor of one value, or one per channel along axis 1); see the
    module docstring for the integer equation.

    >>> from qlearn.nn.quantized.modules.prelu import quantized_prelu
    >>> x = ql.quantize_per_tensor([-2.0, -1.0, 1.0], 0.5, 128, ql.quint8)
    >>> w = ql.quantize_per_tensor([0.25], 1 / 64, 0, ql.quint8)
    >>> quantized_prelu(x, w, 0.125, 128).dequantize()
    array([-0.5 , -0.25,  1.  ], dtype=float32)
    """
    who = "QuantizedPReLU"
    x = _require_input(input, who)
    if not isinstance(weight, QTensor) or weight.dtype is not x.dtype:
        raise TypeError(f"{who}: `weight` must be a {x.dtype!r} QTensor, got "
                        f"{getattr(weight, 'dtype', type(weight).__name__)!r}")
    qmin, qmax = _RANGES[x.dtype]
    n = weight.int_repr().size
    if n != 1 and (x.ndim < 2 or x.shape[1] != n):
        raise ValueError(f"{who}: `weight` has {n} values, but `input` of shape {x.shape} "
                         f"has {x.shape[1] if x.ndim >= 2 else None} channels (axis 1)")
    zx, zw = int(x.q_zero_point()), int(weight.q_zero_point())
    sw = float(weight.q_scale())
    q1 = int(quantize_per_tensor(np.float32(1.0), sw, zw, weight.dtype).int_repr()) - zw
    qx = x.int_repr().astype(np.int32)
    qw = weight.int_repr().astype(np.int32).reshape(-1) - zw
    if n > 1:
        qw = qw.reshape((1, n) + (1,) * (x.ndim - 2))
    d = (np.maximum(qx, zx) - zx) * q1 + (np.minimum(qx, zx) - zx) * qw
    m = (np.float32(x.q_scale()) * np.float32(sw)) * (np.float32(1) / np.float32(
        output_scale))
    out = np.clip(np.rint(d.astype(np.float32) * m) + output_zero_point, qmin, qmax)
    return QTensor(out.astype(x.int_repr().dtype), x.dtype, per_tensor_affine,
                   output_scale, output_zero_point)


class PReLU(Module):
    r"""Quantized parametric ReLU (``torch.ao.nn.quantized.PReLU``): :math:`y = x` for
    :math:`x > 0`, :math:`a x` otherwise, with quint8 slopes :math:`a` (``weight``, set by
    :meth:`set_weight`) and the output ``scale`` / ``zero_point``
    (:func:`quantized_prelu`).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.PReLU(0.125, 128)
    >>> m.set_weight(ql.quantize_per_tensor([0.25], 1 / 64, 0, ql.quint8))
    >>> m
    QuantizedPReLU()
    >>> m(ql.quantize_per_tensor([-2.0, 1.0], 0.5, 128, ql.quint8)).dequantize()
    array([-0.5,  1. ], dtype=float32)
    """

    def __init__(self, output_scale, output_zero_point, num_parameters=1):
        super().__init__()
        self.num_parameters = int(num_parameters)
        self.scale, self.zero_point = float(output_scale), int(output_zero_point)
        # as PyTorch: slopes drawn from a normal distribution, quantized at scale 1
        w = np.random.default_rng().standard_normal(self.num_parameters).astype(np.float32)
        self.set_weight(quantize_per_tensor(w, 1.0, 0, quint8))

    def set_weight(self, w):
        """Use the quantized slopes ``w`` (a quint8 QTensor of ``num_parameters``)."""
        self.weight = w

    def forward(self, input):
        return quantized_prelu(input, self.weight, self.scale, self.zero_point)

    def __repr__(self):
        return "QuantizedPReLU()"

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``nn.PReLU``: the output qparams of
        ``mod.activation_post_process``, and the slopes quantized to quint8 with the
        qparams of ``mod.qconfig.weight()`` (PyTorch warns, as qlearn does, when that
        observer is not quint8: its scale and zero point are then used for quint8
        anyway, so negative slopes clamp at the zero point)."""
        if type(mod) is not _FloatPReLU:
            raise TypeError(f"{cls.__name__}.from_float expects a float PReLU, got "
                            f"{type(mod).__name__}")
        scale, zero_point = activation_qparams(mod, cls.__name__)
        new = cls(scale, zero_point, mod.num_parameters)
        w = F._tensor(mod.weight).data
        observer = mod.qconfig.weight()
        observer(w)
        if observer.dtype is not quint8:
            warnings.warn(f"PReLU's weight observer should have dtype quint8 but got "
                          f"{observer.dtype!r}", stacklevel=2)
        ws, wz = observer.calculate_qparams()
        if np.size(ws) != 1:
            raise ValueError(f"{cls.__name__}.from_float: the weight observer gave "
                             f"{np.size(ws)} scales (per channel), but the slopes are "
                             f"quantized per tensor; give PReLU a per-tensor weight "
                             f"observer in its qconfig")
        new.set_weight(quantize_per_tensor(w, float(np.asarray(ws).reshape(-1)[0]),
                                           int(np.asarray(wz).reshape(-1)[0]), quint8))
        return new
