r"""Packed weights and the call of the quantized transposed convolutions
(``torch.ops.quantized.conv_transpose1d_prepack`` / ``conv_transpose1d`` and the 2-d
and 3-d pairs).

The int32 accumulator of output element :math:`(n, o, \mathbf q)` is the transposed
convolution of :math:`x - Z_x` with :math:`w - Z_w`,

.. math::

   C_{n,o,\mathbf q} = \sum_{c} \sum_{\mathbf p S + \mathbf k D - P = \mathbf q}
   (x_{n,c,\mathbf p} - Z_x)(w_{c,\,o,\,\mathbf k} - Z_w),

requantized with the constants of eq. :eq:`int8-requant` (FBGEMM's: the float bias
divided by :math:`S_x S_w`, added to the accumulator in float32, scaled, rounded half
to even), so the integers equal PyTorch's.  The accumulators are formed exactly with
float64 products of the integers (every partial sum stays far below :math:`2^{53}`) by
:func:`qlearn.nn.functional_conv_transpose.transposed_array`, the float layer's own
col2im.  Only per-tensor weights, as PyTorch ("Per Channel Quantization is currently
disabled for transposed conv").
"""
import numpy as np

from ...dtypes import per_tensor_affine, per_tensor_symmetric, qint8, quint8
from ...kernels import int8 as _int8
from ...kernels.quantize import per_tensor_unchecked
from ...qtensor import QTensor
from ..functional_conv_transpose import transposed_array, transposed_output_size
from .packed_conv_nd import _check_groups, ntuple
from .packed_params import (
    _check_bias,
    _check_conv_weight_sizes,
    _check_out_qparams,
    require_quantized,
)

__all__ = ["PackedConvTransposeWeight", "conv_transpose_apply"]


class PackedConvTransposeWeight:
    """``torch.ops.quantized.conv_transpose{1,2,3}d_prepack``'s result: a per-tensor qint8
    weight (C, O/groups, \\*K), its integers minus the zero point (float64, exact), the
    float32 bias and the geometry.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn.nn.quantized.packed_conv_transpose import PackedConvTransposeWeight
    >>> w = ql.quantize_per_tensor(np.ones((4, 2, 3)), 0.1, 0, ql.qint8)
    >>> pw = PackedConvTransposeWeight(w, None, stride=2, padding=1, output_padding=1)
    >>> pw.out_channels, pw.output_size((5,))
    (2, (10,))
    """

    def __init__(self, qweight, bias, stride=1, padding=0, output_padding=0, dilation=1,
                 groups=1):
        who = "conv_transpose_prepack"
        if not isinstance(qweight, QTensor) or qweight.ndim not in (3, 4, 5):
            raise ValueError(f"{who}: `weight` must be a 3-d, 4-d or 5-d qint8 QTensor "
                             f"(in_channels, out_channels/groups, *kernel_size), got "
                             f"{getattr(qweight, 'shape', type(qweight).__name__)}")
        if qweight.qscheme() not in (per_tensor_affine, per_tensor_symmetric):
            raise ValueError(f"{who}: `weight` must be quantized per tensor: per-channel "
                             f"quantization is not supported for transposed convolutions "
                             f"(nor by PyTorch), got {qweight.qscheme()!r}")
        if qweight.dtype is not qint8:
            raise TypeError(f"{who}: `weight` must be qint8, got {qweight.dtype!r}")
        _check_conv_weight_sizes(qweight, who, "(in_channels, out_channels/groups, "
                                 "*kernel_size)")
        n = qweight.ndim - 2
        self.stride = ntuple(stride, n, "stride", who, 1)
        self.padding = ntuple(padding, n, "padding", who, 0)
        self.output_padding = ntuple(output_padding, n, "output_padding", who, 0)
        self.dilation = ntuple(dilation, n, "dilation", who, 1)
        self.groups = g = _check_groups(groups, who)
        c, og = qweight.shape[:2]
        if c % g:
            raise ValueError(f"{who}: in_channels ({c}) must be divisible by groups ({g})")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"{who}: `output_padding` must be smaller than either "
                                 f"stride or dilation, got {self.output_padding}")
        self.in_channels, self.out_channels = c, og * g
        self.kernel_size = tuple(qweight.shape[2:])
        self.qweight = qweight
        self.bias = _check_bias(bias, self.out_channels, who)
        self.w_scale = np.full(self.out_channels, qweight.q_scale(), np.float32)
        self.w_centered = qweight._int.astype(np.float64) - qweight.q_zero_point()

    def unpack(self):
        """``(qweight, bias)`` as given."""
        return self.qweight, self.bias

    def output_size(self, size):
        """The output's spatial size for input spatial size ``size``."""
        return transposed_output_size(size, self.kernel_size, self.stride, self.padding,
                                      self.dilation, self.output_padding)


def conv_transpose_apply(x, pc, scale, zero_point, who="quantized conv_transpose"):
    """Quantized transposed convolution of the quint8 ``x`` (N, C, \\*L): exact int32
    accumulators, then eq. :eq:`int8-requant`; a QTensor (N, O, \\*L_out)."""
    require_quantized(x, who)
    scale, zero_point = _check_out_qparams(scale, zero_point)
    d = len(pc.kernel_size)
    if x.ndim != d + 2:
        raise ValueError(f"{who}: `input` must be {d + 2}-d (N, C, ...), got shape "
                         f"{x.shape}")
    if x.shape[1] != pc.in_channels:
        raise ValueError(f"{who}: `input` must have {pc.in_channels} channels, got "
                         f"{x.shape[1]}")
    out = pc.output_size(x.shape[2:])
    if min(out) < 1:
        raise ValueError(f"{who}: the output size {out} is not positive for input of "
                         f"shape {x.shape} (padding {pc.padding} is too large)")
    xc = x._int.astype(np.float64) - x.q_zero_point()
    acc = transposed_array(xc, pc.w_centered, pc.stride, pc.padding, pc.dilation,
                           pc.output_padding, pc.groups)[0]
    bias_q, mult = _int8.requant_constants(x.q_scale(), pc.w_scale, scale, pc.bias, False)
    shape = (1, -1) + (1,) * d
    t = acc.astype(np.float32)     # rounded to nearest, as FBGEMM converts its int32
    if bias_q.size:
        t += bias_q.reshape(shape)
    t *= mult.reshape(shape)
    y = np.clip(np.rint(t) + np.float32(zero_point), 0, 255).astype(np.uint8)
    return per_tensor_unchecked(y, quint8, per_tensor_affine, scale, zero_point)
