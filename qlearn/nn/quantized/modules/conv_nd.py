r"""``nnq.Conv1d`` and ``nnq.Conv3d``: quantized 1-d and 3-d convolutions.

Both compute, for output channel :math:`o` and output position :math:`\mathbf p`,

.. math::

   y_{n,o,\mathbf p} = \operatorname{requant}_{S_o, Z_o}\Big(\textstyle
   \sum_{c,\mathbf k} (x_{n,c,\mathbf p S - P + \mathbf k D} - Z_x)
   (w_{o,c,\mathbf k} - Z_{w,o}) + b_o / (S_x S_{w,o})\Big)

exactly as :class:`qlearn.nn.quantized.Conv2d` does (eq. :eq:`int8-requant`), so the
integers are PyTorch's x86 backend's.  Conv1d runs as a height-1 Conv2d; Conv3d as a
patch matrix and one int8 GEMM per group (:mod:`qlearn.nn.quantized.packed_conv_nd`).
"""

from ..packed_conv_nd import (
    PackedConv1dWeight,
    PackedConv3dWeight,
    conv1d_apply,
    conv3d_apply,
    ntuple,
)
from .conv import _ConvBase

__all__ = ["Conv1d", "Conv3d"]


class _ConvNd(_ConvBase):
    """The constructor the quantized Conv1d and Conv3d share (the 2-d one has its own,
    with its own messages)."""

    _DIMS = 0
    _NAME = "QuantizedConvNd"
    _PADDING_MODES = ("zeros",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        who = type(self).__name__
        if padding_mode not in self._PADDING_MODES:
            modes = " or ".join(repr(m) for m in self._PADDING_MODES)
            raise ValueError(f"{who}: `padding_mode` must be {modes} (as PyTorch's "
                             f"quantized {who}), got {padding_mode!r}")
        self._set_channels(in_channels, out_channels, groups)
        if isinstance(padding, str):
            raise TypeError(f"{who}: string padding {padding!r} is not supported; give "
                            f"the padding as numbers")
        n = self._DIMS
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", who, 1)
        self.stride = ntuple(stride, n, "stride", who, 1)
        self.padding = ntuple(padding, n, "padding", who, 0)
        self.dilation = ntuple(dilation, n, "dilation", who, 1)
        self.padding_mode = padding_mode
        self._init_weight(bias)


class Conv1d(_ConvNd):
    r"""Quantized 1-d convolution (the API of ``torch.ao.nn.quantized.Conv1d``).

    .. math::

       y_{n,o,p} = \operatorname{requant}_{S_o, Z_o}\Big(\textstyle\sum_{c,k}
       (x_{n,c,pS - P + kD} - Z_x)(w_{o,c,k} - Z_{w,o}) + b_o / (S_x S_{w,o})\Big)

    over quint8 (N, C, L) input with a qint8 (O, C/groups, K) weight (per tensor or per
    output channel); computed as a Conv2d of height 1.  ``padding_mode`` is
    ``"zeros"`` or ``"reflect"`` (the integers are reflected, as PyTorch's quantized
    pad does).

    Examples
    --------
    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.Conv1d(2, 4, 3, padding=1)
    >>> m
    QuantizedConv1d(2, 4, kernel_size=(3,), stride=(1,), scale=1.0, zero_point=0, padding=(1,))
    >>> x = ql.quantize_per_tensor(np.ones((1, 2, 6)), 0.1, 0, ql.quint8)
    >>> m(x).shape
    (1, 4, 6)
    """

    _DIMS = 1
    _NAME = "QuantizedConv1d"
    _SPATIAL = "length"
    _PADDING_MODES = ("zeros", "reflect")
    _PACKED = PackedConv1dWeight
    _APPLY = staticmethod(conv1d_apply)

    @classmethod
    def _float_modules(cls):
        """The float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ...intrinsic.qat import ConvBn1d
        from ...modules.conv_nd import Conv1d as FloatConv1d
        from ...qat import Conv1d as QATConv1d
        return (FloatConv1d, QATConv1d, ConvBn1d)


class Conv3d(_ConvNd):
    r"""Quantized 3-d convolution (the API of ``torch.ao.nn.quantized.Conv3d``).

    .. math::

       y_{n,o,\mathbf p} = \operatorname{requant}_{S_o, Z_o}\Big(\textstyle
       \sum_{c,i,j,k} (x_{n,c,\mathbf p S - P + (i,j,k) D} - Z_x)(w_{o,c,i,j,k} -
       Z_{w,o}) + b_o / (S_x S_{w,o})\Big)

    over quint8 (N, C, D, H, W) input with a qint8 (O, C/groups, KD, KH, KW) weight;
    the patch matrix of all three kernel axes times the packed weight, one GEMM per
    group, rounded once.  Only ``padding_mode="zeros"``, as PyTorch's.

    Examples
    --------
    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1)
    >>> m   # doctest: +ELLIPSIS
    QuantizedConv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 2, 2), scale=1.0, ...)
    >>> m(ql.quantize_per_tensor(np.ones((1, 2, 4, 6, 6)), 0.1, 0, ql.quint8)).shape
    (1, 4, 4, 3, 3)
    """

    _DIMS = 3
    _NAME = "QuantizedConv3d"
    _PACKED = PackedConv3dWeight
    _APPLY = staticmethod(conv3d_apply)

    @classmethod
    def _float_modules(cls):
        """The float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ...intrinsic.qat import ConvBn3d
        from ...modules.conv_nd import Conv3d as FloatConv3d
        from ...qat import Conv3d as QATConv3d
        return (FloatConv3d, QATConv3d, ConvBn3d)
