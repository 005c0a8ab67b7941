"""``nnq.Conv2d``: 2-d convolution with qint8 weights, quint8 input and output."""
import numpy as np

from .... import _validation as V
from ....dtypes import qint8
from ....qtensor import quantize_per_tensor
from ...modules._utils import conv_extra_repr
from ..packed_params import PackedConvWeight, _pair, conv2d_apply
from .utils import (
    QuantizedWeightModule,
    activation_qparams,
    check_float_module,
    quantize_weight,
    weight_for_quantization,
)

__all__ = ["Conv2d"]


class _ConvBase(QuantizedWeightModule):
    """What every quantized convolution (1-, 2-, 3-d, direct or transposed) shares: the
    checks of its channels and groups, the weight it starts with, its repr and
    ``from_float``.  A direct one packs its weight with ``_PACKED`` and runs ``_APPLY``;
    the transposed ones override ``set_weight_bias``, ``forward`` and
    ``_weight_shape``."""

    _RELU = False
    _PACKED = None
    _APPLY = None
    _SPATIAL = "spatial size"     # what reflect padding is measured against

    def _set_channels(self, in_channels, out_channels, groups):
        """Check and store ``in_channels``, ``out_channels`` and ``groups``."""
        who = type(self).__name__
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) \
                or groups < 1:
            raise ValueError(f"{who}: `groups` must be a positive integer, got {groups!r}")
        in_channels = V.check_size(in_channels, "in_channels", 1, who)
        out_channels = V.check_size(out_channels, "out_channels", 1, who)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{who}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.groups = int(groups)

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def _init_weight(self, bias):
        """A zero weight (scale 1), a zero bias if ``bias``; output qparams (1.0, 0)."""
        w = quantize_per_tensor(np.zeros(self._weight_shape(), np.float32), 1.0, 0, qint8)
        self.set_weight_bias(w, np.zeros(self.out_channels, np.float32) if bias else None)
        self.scale = 1.0
        self.zero_point = 0

    def _check_weight_shape(self, w):
        shape = self._weight_shape()
        if getattr(w, "shape", None) != shape:
            raise ValueError(f"`w` must have shape {shape}, got "
                             f"{getattr(w, 'shape', type(w).__name__)}")

    def set_weight_bias(self, w, b):
        """Set the qint8 weight ``w`` (O, C/groups, \\*kernel_size) and the float bias
        ``b`` (O,) or None; packs ``w``."""
        self._check_weight_shape(w)
        # reflect padding is applied to the input in forward; the kernel then pads nothing
        padding = (self.padding if self.padding_mode == "zeros"
                   else (0,) * len(self.kernel_size))
        self._packed_params = type(self)._PACKED(w, b, self.stride, padding, self.dilation,
                                                 self.groups)

    def _reflect_pad(self, x):
        """``x`` padded by reflection (the integers themselves, so no requantization)."""
        n = len(self.kernel_size)
        if getattr(x, "ndim", None) != n + 2 or not hasattr(x, "int_repr"):
            return x                     # the kernel's apply names what is wrong with it
        sizes = x.shape[-n:]
        if any(p >= size for p, size in zip(self.padding, sizes)):
            raise ValueError(f"{self._NAME}: reflect padding {self.padding} must be "
                             f"smaller than the input's {self._SPATIAL}, got "
                             f"{'x'.join(map(str, sizes))}")
        ints = np.pad(x.int_repr(), ((0, 0), (0, 0)) + tuple((p, p) for p in self.padding),
                      mode="reflect")
        return type(x)(ints, x.dtype, x.qscheme(), x.q_scale(), x.q_zero_point())

    def forward(self, input):
        if self.padding_mode == "reflect" and any(self.padding):
            input = self._reflect_pad(input)
        return type(self)._APPLY(input, self._packed_params, self.scale, self.zero_point,
                                 relu=self._RELU, who=self._NAME)

    def extra_repr(self):
        return conv_extra_repr(self, quantized=True)

    @classmethod
    def _from_conv(cls, conv, bias):
        """An instance with ``conv``'s geometry (``bias``: whether it has one)."""
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                   conv.padding, conv.dilation, conv.groups, bias,
                   getattr(conv, "padding_mode", "zeros"))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Build from an observed float convolution (or its QAT form, or the QAT conv-bn
        with the batch norm folded in; the ``nniq.ConvReLU...`` subclasses take the
        fused forms).  Weight and output qparams as in
        :meth:`qlearn.nn.quantized.Linear.from_float`."""
        check_float_module(mod, cls._float_modules(), cls.__name__)
        scale, zero_point = activation_qparams(mod, cls.__name__)
        conv, w, b, obs = weight_for_quantization(mod)
        if isinstance(conv.padding, str):
            raise TypeError(f"{cls.__name__}.from_float: string padding "
                            f"{conv.padding!r} is not supported; give the padding as "
                            f"numbers")
        q = cls._from_conv(conv, b is not None)
        q.set_weight_bias(quantize_weight(w, obs), b)
        q.scale, q.zero_point = scale, zero_point
        return q


class Conv2d(_ConvBase):
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
    _SPATIAL = "height and width"
    _PACKED = PackedConvWeight
    _APPLY = staticmethod(conv2d_apply)

    @classmethod
    def _float_modules(cls):
        """The float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ...intrinsic.qat import ConvBn2d
        from ...modules.conv import Conv2d as FloatConv2d
        from ...qat import Conv2d as QATConv2d
        return (FloatConv2d, QATConv2d, ConvBn2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        who = type(self).__name__
        # PyTorch's factory arguments: the CPU only, and the weight is always qint8
        if device is not None and str(device) != "cpu":
            raise ValueError(f"{who}: `device` must be None or 'cpu', got {device!r}")
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"{who}: `padding_mode` must be 'zeros' or 'reflect' (as "
                             f"PyTorch's quantized conv), got {padding_mode!r}")
        self._set_channels(in_channels, out_channels, groups)
        self.kernel_size = _pair(kernel_size, "kernel_size", who, 1)
        self.stride = _pair(stride, "stride", who, 1)
        self.padding = _pair(padding, "padding", who, 0)
        self.dilation = _pair(dilation, "dilation", who, 1)
        self.padding_mode = padding_mode
        self._init_weight(bias)
