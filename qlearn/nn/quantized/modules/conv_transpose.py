r"""``nnq.ConvTranspose1d`` and ``nnq.ConvTranspose2d``: quantized transposed
convolutions (per-tensor qint8 weights, quint8 input and output), with the integers of
``torch.ops.quantized.conv_transpose1d`` / ``conv_transpose2d``
(:mod:`qlearn.nn.quantized.packed_conv_transpose`)."""
import numpy as np

from .... import _validation as V
from ....dtypes import qint8
from ....qtensor import quantize_per_tensor
from ..packed_conv_nd import ntuple
from ..packed_conv_transpose import PackedConvTransposeWeight, conv_transpose_apply
from .utils import (
    QuantizedWeightModule,
    activation_qparams,
    check_float_module,
    quantize_weight,
    weight_for_quantization,
)

__all__ = ["ConvTranspose1d", "ConvTranspose2d"]


class _ConvTransposeNd(QuantizedWeightModule):
    _DIMS = 0
    _NAME = "QuantizedConvTransposeNd"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        who = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f"{who}: `padding_mode` must be 'zeros', got {padding_mode!r}")
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) \
                or groups < 1:
            raise ValueError(f"{who}: `groups` must be a positive integer, got {groups!r}")
        in_channels = V.check_size(in_channels, "in_channels", 1, who)
        out_channels = V.check_size(out_channels, "out_channels", 1, who)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{who}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        n = self._DIMS
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", who, 1)
        self.stride = ntuple(stride, n, "stride", who, 1)
        self.padding = ntuple(padding, n, "padding", who, 0)
        self.output_padding = ntuple(output_padding, n, "output_padding", who, 0)
        self.dilation = ntuple(dilation, n, "dilation", who, 1)
        self.groups, self.padding_mode = int(groups), padding_mode
        w = quantize_per_tensor(np.zeros((self.in_channels, self.out_channels // groups)
                                         + self.kernel_size, np.float32), 1.0, 0, qint8)
        self.set_weight_bias(w, np.zeros(self.out_channels, np.float32) if bias else None)
        self.scale = 1.0
        self.zero_point = 0

    def set_weight_bias(self, w, b):
        """Set the per-tensor qint8 weight ``w`` (C, O/groups, \\*kernel_size) and the
        float bias ``b`` (O,) or None."""
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        if getattr(w, "shape", None) != shape:
            raise ValueError(f"`w` must have shape {shape}, got "
                             f"{getattr(w, 'shape', type(w).__name__)}")
        self._packed_params = PackedConvTransposeWeight(w, b, self.stride, self.padding,
                                                        self.output_padding, self.dilation,
                                                        self.groups)

    def forward(self, input):
        return conv_transpose_apply(input, self._packed_params, self.scale, self.zero_point,
                                    who=self._NAME)

    def extra_repr(self):
        n = self._DIMS
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, scale={self.scale}, zero_point={self.zero_point}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias() is None:
            s += ", bias=False"
        return s

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Build from an observed float ``nn.ConvTranspose1d`` / ``2d``; its qconfig's
        weight observer must be per tensor (``default_qconfig``'s), as PyTorch's."""
        check_float_module(mod, cls._float_modules(), cls.__name__)
        scale, zero_point = activation_qparams(mod, cls.__name__)
        conv, w, b, obs = weight_for_quantization(mod)
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.output_padding, conv.groups, b is not None,
                conv.dilation)
        q.set_weight_bias(quantize_weight(w, obs), b)
        q.scale, q.zero_point = scale, zero_point
        return q


class ConvTranspose1d(_ConvTransposeNd):
    r"""Quantized 1-d transposed convolution (``torch.ao.nn.quantized.ConvTranspose1d``):

    .. math::

       y_{n,o,q} = \operatorname{requant}_{S_o, Z_o}\Big(\textstyle
       \sum_{c}\sum_{pS + kD - P = q} (x_{n,c,p} - Z_x)(w_{c,o,k} - Z_w)
       + b_o / (S_x S_w)\Big)

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1)
    >>> m   # doctest: +ELLIPSIS
    QuantizedConvTranspose1d(4, 2, kernel_size=(3,), stride=(2,), scale=1.0, ...)
    >>> m(ql.quantize_per_tensor(np.ones((1, 4, 5)), 0.1, 0, ql.quint8)).shape
    (1, 2, 10)
    """

    _DIMS = 1
    _NAME = "QuantizedConvTranspose1d"

    @classmethod
    def _float_modules(cls):
        from ...modules.conv_transpose import ConvTranspose1d as Float
        return (Float,)


class ConvTranspose2d(_ConvTransposeNd):
    r"""Quantized 2-d transposed convolution (``torch.ao.nn.quantized.ConvTranspose2d``),
    the 2-d form of :class:`ConvTranspose1d`.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> nnq.ConvTranspose2d(4, 2, 3)
    QuantizedConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(1, 1), scale=1.0, zero_point=0)
    """

    _DIMS = 2
    _NAME = "QuantizedConvTranspose2d"

    @classmethod
    def _float_modules(cls):
        from ...modules.conv_transpose import ConvTranspose2d as Float
        return (Float,)
