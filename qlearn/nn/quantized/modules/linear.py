"""``nnq.Linear``: a linear layer with qint8 weights, quint8 input and output."""
import numpy as np

from .... import _validation as V
from ....dtypes import qint8
from ....qtensor import quantize_per_tensor
from ..packed_params import PackedLinearWeight, linear_apply
from .utils import (
    QuantizedWeightModule,
    activation_qparams,
    check_float_module,
    quantize_weight,
    weight_for_quantization,
)

__all__ = ["Linear"]


class Linear(QuantizedWeightModule):
    r"""Quantized linear layer (the API of ``torch.ao.nn.quantized.Linear``).

    .. math::

       y = \operatorname{requant}_{S_o, Z_o}\big(\textstyle\sum_k (x_k - Z_x)(w_{jk} -
       Z_{w,j}) + b_j / (S_x S_{w,j})\big)

    The weight is packed once, in :meth:`set_weight_bias`; ``scale`` and
    ``zero_point`` are the output's parameters.

    Parameters
    ----------
    in_features, out_features : int
    bias_ : bool
        Whether the layer has a (float) bias.
    dtype : QDType
        The weight dtype, :data:`qlearn.qint8`.

    Examples
    --------
    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.Linear(4, 2)
    >>> m   # doctest: +ELLIPSIS
    QuantizedLinear(in_features=4, out_features=2, scale=1.0, zero_point=0, qscheme=...)
    >>> m.set_weight_bias(ql.quantize_per_tensor(np.ones((2, 4)), 0.1, 0, ql.qint8),
    ...                   np.array([0.0, 1.0], np.float32))
    >>> m.scale, m.zero_point = 0.5, 10
    >>> m(ql.quantize_per_tensor([[1.0, 2.0, 3.0, 4.0]], 0.1, 0, ql.quint8)).dequantize()
    array([[10., 11.]], dtype=float32)
    """

    _NAME = "QuantizedLinear"
    _RELU = False

    @classmethod
    def _float_modules(cls):
        """The float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ...intrinsic.qat import LinearBn1d
        from ...modules.linear import Linear as FloatLinear
        from ...qat import Linear as QATLinear
        return (FloatLinear, QATLinear, LinearBn1d)

    def __init__(self, in_features, out_features, bias_=True, dtype=qint8):
        super().__init__()
        if dtype is not qint8:
            raise ValueError(f"`dtype` must be qlearn.qint8, got {dtype!r}")
        who = type(self).__name__
        self.in_features = V.check_size(in_features, "in_features", 0, who)
        self.out_features = V.check_size(out_features, "out_features", 0, who)
        w = quantize_per_tensor(np.zeros((self.out_features, self.in_features),
                                         np.float32), 1.0, 0, qint8)
        self.set_weight_bias(w, np.zeros(self.out_features, np.float32) if bias_ else None)
        self.scale = 1.0
        self.zero_point = 0

    # -- weights -----------------------------------------------------------------------
    def set_weight_bias(self, w, b):
        """Set the qint8 weight ``w`` (out, in) and float bias ``b``; packs ``w``."""
        packed = PackedLinearWeight(w, b)
        if w.shape != (self.out_features, self.in_features):
            raise ValueError(f"`w` must have shape ({self.out_features}, "
                             f"{self.in_features}), got {w.shape}")
        self._packed_params = packed

    # -- forward -----------------------------------------------------------------------
    def forward(self, x):
        return linear_apply(x, self._packed_params, self.scale, self.zero_point,
                            relu=self._RELU, who=self._NAME)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scale={self.scale}, zero_point={self.zero_point}, "
                f"qscheme={self.weight().qscheme()!r}")

    # -- conversion ----------------------------------------------------------------------
    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``nn.Linear`` (or ``nnqat.Linear``,
        ``nniqat.LinearBn1d`` with its batch norm folded in; the ``nniq.LinearReLU``
        subclass takes the fused forms).

        The weight is quantized with the qparams of ``mod.qconfig.weight()`` (or the QAT
        module's ``weight_fake_quant``) run over it; the output's scale and zero point
        are those of ``mod.activation_post_process``.
        """
        check_float_module(mod, cls._float_modules(), cls.__name__)
        scale, zero_point = activation_qparams(mod, cls.__name__)
        lin, w, b, obs = weight_for_quantization(mod)
        q = cls(lin.in_features, lin.out_features, b is not None)
        q.set_weight_bias(quantize_weight(w, obs), b)
        q.scale, q.zero_point = scale, zero_point
        return q
