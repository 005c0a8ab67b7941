r"""``nnq.ConvTranspose1d``, ``nnq.ConvTranspose2d`` and ``nnq.ConvTranspose3d``: quantized
transposed
convolutions (per-tensor qint8 weights, quint8 input and output), with the integers of
``torch.ops.quantized.conv_transpose1d`` / ``conv_transpose2d`` / ``conv_transpose3d``
(:mod:`qlearn.nn.quantized.packed_conv_transpose`)."""
from ..packed_conv_nd import ntuple
from ..packed_conv_transpose import PackedConvTransposeWeight, conv_transpose_apply
from .conv import _ConvBase

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _ConvTransposeNd(_ConvBase):
    """The quantized transposed convolutions' constructor, weight layout and kernel."""

    _DIMS = 0
    _NAME = "QuantizedConvTransposeNd"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        who = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f"{who}: `padding_mode` must be 'zeros', got {padding_mode!r}")
        self._set_channels(in_channels, out_channels, groups)
        n = self._DIMS
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", who, 1)
        self.stride = ntuple(stride, n, "stride", who, 1)
        self.padding = ntuple(padding, n, "padding", who, 0)
        self.output_padding = ntuple(output_padding, n, "output_padding", who, 0)
        self.dilation = ntuple(dilation, n, "dilation", who, 1)
        self.padding_mode = padding_mode
        self._init_weight(bias)

    def _weight_shape(self):
        return (self.in_channels, self.out_channels // self.groups) + self.kernel_size

    def set_weight_bias(self, w, b):
        """Set the per-tensor qint8 weight ``w`` (C, O/groups, \\*kernel_size) and the
        float bias ``b`` (O,) or None."""
        self._check_weight_shape(w)
        self._packed_params = PackedConvTransposeWeight(w, b, self.stride, self.padding,
                                                        self.output_padding, self.dilation,
                                                        self.groups)

    def forward(self, input):
        return conv_transpose_apply(input, self._packed_params, self.scale, self.zero_point,
                                    who=self._NAME)

    @classmethod
    def _from_conv(cls, conv, bias):
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                   conv.padding, conv.output_padding, conv.groups, bias, conv.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    r"""Quantized 1-d transposed convolution (``torch.ao.nn.quantized.ConvTranspose1d``):

    .. math::

       y_{n,o,q} = \operatorname{requant}_{S_o, Z_o}\Big(\textstyle
       \sum_{c}\sum_{pS + kD - P = q} (x_{n,c,p} - Z_x)(w_{c,o,k} - Z_w)
       + b_o / (S_x S_w)\Big)

    ``from_float`` takes an observed float ``nn.ConvTranspose1d``; its qconfig's weight
    observer must be per tensor (``default_qconfig``'s), as PyTorch's.

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


class ConvTranspose3d(_ConvTransposeNd):
    r"""Quantized 3-d transposed convolution (``torch.ao.nn.quantized.ConvTranspose3d``),
    the 3-d form of :class:`ConvTranspose1d` on (N, C, D, H, W) quint8 input, with the
    integers of ``torch.ops.quantized.conv_transpose3d``.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.ConvTranspose3d(4, 2, 3, stride=2)
    >>> m
    QuantizedConvTranspose3d(4, 2, kernel_size=(3, 3, 3), stride=(2, 2, 2), scale=1.0, zero_point=0)
    >>> m(ql.quantize_per_tensor(np.ones((1, 4, 2, 3, 3)), 0.1, 0, ql.quint8)).shape
    (1, 2, 5, 7, 7)
    """

    _DIMS = 3
    _NAME = "QuantizedConvTranspose3d"

    @classmethod
    def _float_modules(cls):
        from ...modules.conv_transpose import ConvTranspose3d as Float
        return (Float,)
