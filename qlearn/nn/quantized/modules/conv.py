"""``nnq.Conv2d``: 2-d convolution with qint8 weights, quint8 input and output."""
import numpy as np

from .... import _validation as V
from ....dtypes import qint8
from ....qtensor import quantize_per_tensor
from ..packed_params import PackedConvWeight, _pair, conv2d_apply
from .utils import (
    QuantizedWeightModule,
    activation_qparams,
    check_float_module,
    quantize_weight,
    weight_for_quantization,
)

__all__ = ["Conv2d"]


class Conv2d(QuantizedWeightModule):
    r"""Quantized 2-d convolution (the API of ``torch.ao.nn.quantized.Conv2d``).

    .. math::

       y_{n,o} = \operatorname{requant}_{S_o, Z_o}\Big(\textstyle\sum_{c,i,j}
       (x - Z_x)_{n,c,\cdot} (w_{o,c,i,j} - Z_{w,o}) + b_o / (S_x S_{w,o})\Big)

    computed as im2col + the int8 GEMM, or directly for depthwise 3x3 (docs/int8.rst).
    The output's integers are channels-last in memory (as PyTorch's are).

    Examples
    --------
    >>> import qlearn.nn.quantized as nnq
    >>> nnq.Conv2d(3, 8, 3, stride=2, padding=1)   # doctest: +ELLIPSIS
    QuantizedConv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), scale=1.0, ...)
    """

    _NAME = "QuantizedConv2d"
    _RELU = False

    @classmethod
    def _float_modules(cls):
        """The float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ...intrinsic.qat import ConvBn2d
        from ...modules.conv import Conv2d as FloatConv2d
        from ...qat import Conv2d as QATConv2d
        return (FloatConv2d, QATConv2d, ConvBn2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=qint8):
        super().__init__()
        who = type(self).__name__
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"{who}: `padding_mode` must be 'zeros' or 'reflect' (as "
                             f"PyTorch's quantized conv), got {padding_mode!r}")
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) \
                or groups < 1:
            raise ValueError(f"{who}: `groups` must be a positive integer, got {groups!r}")
        in_channels = V.check_size(in_channels, "in_channels", 1, who)
        out_channels = V.check_size(out_channels, "out_channels", 1, who)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{who}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", who, 1)
        self.stride = _pair(stride, "stride", who, 1)
        self.padding = _pair(padding, "padding", who, 0)
        self.dilation = _pair(dilation, "dilation", who, 1)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        w = quantize_per_tensor(np.zeros((self.out_channels, self.in_channels // groups)
                                         + self.kernel_size, np.float32), 1.0, 0, qint8)
        self.set_weight_bias(w, np.zeros(self.out_channels, np.float32) if bias else None)
        self.scale = 1.0
        self.zero_point = 0

    def set_weight_bias(self, w, b):
        """Set the qint8 weight ``w`` (O, C/groups, kh, kw) and float bias; packs ``w``."""
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        if getattr(w, "shape", None) != shape:
            raise ValueError(f"`w` must have shape {shape}, got "
                             f"{getattr(w, 'shape', type(w).__name__)}")
        # reflect padding is applied to the input in forward; the kernel then pads nothing
        padding = self.padding if self.padding_mode == "zeros" else (0, 0)
        self._packed_params = PackedConvWeight(w, b, self.stride, padding, self.dilation,
                                               self.groups)

    def _reflect_pad(self, x):
        """``x`` padded by reflection (the integers themselves, so no requantization)."""
        if getattr(x, "ndim", None) != 4 or not hasattr(x, "int_repr"):
            return x                     # conv2d_apply names what is wrong with it
        (ph, pw), (h, w) = self.padding, x.shape[-2:]
        if ph >= h or pw >= w:
            raise ValueError(f"{self._NAME}: reflect padding {self.padding} must be "
                             f"smaller than the input's height and width, got {h}x{w}")
        ints = np.pad(x.int_repr(), ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="reflect")
        return type(x)(ints, x.dtype, x.qscheme(), x.q_scale(), x.q_zero_point())

    def forward(self, x):
        if self.padding_mode == "reflect" and self.padding != (0, 0):
            x = self._reflect_pad(x)
        return conv2d_apply(x, self._packed_params, self.scale, self.zero_point,
                            relu=self._RELU, who=self._NAME)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, scale={self.scale}, zero_point={self.zero_point}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias() is None:
            s += ", bias=False"
        return s

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``nn.Conv2d`` (or ``nnqat.Conv2d``,
        ``nniqat.ConvBn2d`` with its batch norm folded in; the ``nniq.ConvReLU2d``
        subclass takes the fused forms).  Weight and output qparams as in
        :meth:`qlearn.nn.quantized.Linear.from_float`."""
        check_float_module(mod, cls._float_modules(), cls.__name__)
        scale, zero_point = activation_qparams(mod, cls.__name__)
        conv, w, b, obs = weight_for_quantization(mod)
        if isinstance(conv.padding, str):
            raise TypeError(f"{cls.__name__}.from_float: string padding "
                            f"{conv.padding!r} is not supported; give the padding as "
                            f"numbers")
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.dilation, conv.groups, b is not None,
                getattr(conv, "padding_mode", "zeros"))
        q.set_weight_bias(quantize_weight(w, obs), b)
        q.scale, q.zero_point = scale, zero_point
        return q
