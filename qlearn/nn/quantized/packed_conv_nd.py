r"""Packed weights and calls for the quantized 1-d and 3-d convolutions
(``torch.ops.quantized.conv1d_prepack`` / ``conv1d`` / ``conv3d_prepack`` / ``conv3d``).

Both compute what the 2-d convolution computes (eqs. :eq:`int8-acc` to
:eq:`int8-requant`), with the same requantization constants, so their integers are
PyTorch's x86 backend's:

* **1-d** is a 2-d convolution of height 1, as in PyTorch: the (N, C, L) input is
  viewed as (N, C, 1, L), the (O, C/g, K) weight as (O, C/g, 1, K), and
  :class:`~qlearn.nn.quantized.packed_params.PackedConvWeight` /
  :func:`~qlearn.nn.quantized.packed_params.conv2d_apply` run it.
* **3-d** forms the patch matrix :math:`A` of shape
  :math:`(N D_o H_o W_o,\ K_D K_H K_W\, C/g)` per group in NumPy (depth order
  (kd, kh, kw, c), padding filled with :math:`Z_a`, which is real zero) and runs one
  int8 GEMM per group (:func:`qlearn.kernels.int8.gemm_u8`) on it.  The requantization
  rounds once, after the whole reduction, so the patch matrix must span all three
  kernel axes: summing requantized per-depth-slice products would round several times.
"""
import itertools
import math

import numpy as np

from ...dtypes import per_tensor_affine, quint8
from ...kernels import int8 as _int8
from ...kernels.quantize import per_tensor_unchecked
from ...qtensor import QTensor
from .packed_params import (
    PackedConvWeight,
    _check_bias,
    _check_conv_weight_sizes,
    _check_out_qparams,
    _int_tuple,
    _PackedGemmWeight,
    _weight_qparams,
    conv2d_apply,
    require_quantized,
)

__all__ = ["PackedConv1dWeight", "PackedConv3dWeight", "conv1d_apply", "conv3d_apply",
           "ntuple"]


def ntuple(v, n, name, who, minimum):
    """An int or a tuple of ``n`` ints in ``[minimum, 2**30]`` as a tuple of ``n`` ints."""
    return _int_tuple(v, n, name, who, minimum, f"a tuple of {n} ints")


def _geometry(stride, padding, dilation, n, who):
    """``stride``, ``padding`` and ``dilation`` of an ``n``-d prepack as tuples of ``n``
    ints (stride and dilation at least 1)."""
    return (ntuple(stride, n, "stride", who, 1), ntuple(padding, n, "padding", who, 0),
            ntuple(dilation, n, "dilation", who, 1))


def _check_groups(groups, who):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{who}: `groups` must be a positive integer, got {groups!r}")
    return int(groups)


def _check_weight(qweight, ndim, who):
    if not isinstance(qweight, QTensor) or qweight.ndim != ndim:
        raise ValueError(f"{who}: `weight` must be a {ndim}-d qint8 QTensor (out_channels, "
                         f"in_channels/groups, *kernel_size), got "
                         f"{getattr(qweight, 'shape', type(qweight).__name__)}")
    _check_conv_weight_sizes(qweight, who, "(out_channels, in_channels/groups, "
                             "*kernel_size)")


def _output_size(sizes, kernel, stride, padding, dilation):
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))


# ---- conv1d ------------------------------------------------------------------------------
class PackedConv1dWeight:
    """``torch.ops.quantized.conv1d_prepack``'s result: a (O, C/g, K) qint8 weight packed
    as the (O, C/g, 1, K) weight of a height-1 2-d convolution.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn.nn.quantized.packed_conv_nd import PackedConv1dWeight
    >>> w = ql.quantize_per_tensor(np.ones((4, 2, 3)), 0.1, 0, ql.qint8)
    >>> pw = PackedConv1dWeight(w, None, stride=2, padding=1)
    >>> pw.kernel_size, pw.stride, pw.padding, pw.output_size(10)
    ((3,), (2,), (1,), 5)
    """

    def __init__(self, qweight, bias, stride=1, padding=0, dilation=1, groups=1):
        who = "conv1d_prepack"
        _check_weight(qweight, 3, who)
        self.stride, self.padding, self.dilation = _geometry(stride, padding, dilation,
                                                             1, who)
        self.groups = _check_groups(groups, who)
        o, cg, k = qweight.shape
        self.qweight = qweight
        self.kernel_size = (k,)
        self.conv2d = PackedConvWeight(qweight.reshape(o, cg, 1, k), bias,
                                       (1,) + self.stride, (0,) + self.padding,
                                       (1,) + self.dilation, self.groups, _who=who)
        self.bias = self.conv2d.bias
        self.in_channels, self.out_channels = self.conv2d.in_channels, o

    def unpack(self):
        """``(qweight, bias)`` as given (``torch.ops.quantized.conv1d_unpack``)."""
        return self.qweight, self.bias

    def output_size(self, length):
        r""":math:`L_\text{out} = \lfloor (L + 2p - d(k - 1) - 1) / s \rfloor + 1`."""
        return _output_size((length,), self.kernel_size, self.stride, self.padding,
                            self.dilation)[0]


def conv1d_apply(x, pc, scale, zero_point, relu=False, who="quantized conv1d"):
    """Quantized conv1d of the (N, C, L) quint8 ``x``: :func:`conv2d_apply` on the
    (N, C, 1, L) view; returns a QTensor (N, O, L_out)."""
    require_quantized(x, who)
    if x.ndim != 3:
        raise ValueError(f"{who}: `input` must be 3-d (N, C, L), got shape {x.shape}")
    n, c, length = x.shape
    if c != pc.in_channels:
        raise ValueError(f"{who}: `input` must have {pc.in_channels} channels, got {c}")
    lo = pc.output_size(length)
    if lo < 1:
        raise ValueError(f"{who}: the input length {length} is too small for kernel "
                         f"{pc.kernel_size} with padding {pc.padding} and dilation "
                         f"{pc.dilation}")
    y = conv2d_apply(x.reshape(n, c, 1, length), pc.conv2d, scale, zero_point, relu, who)
    return y.reshape(n, pc.out_channels, lo)


# ---- conv3d ------------------------------------------------------------------------------
class PackedConv3dWeight:
    """``torch.ops.quantized.conv3d_prepack``'s result: the (O, C/g, KD, KH, KW) qint8
    weight reordered to depth order (kd, kh, kw, c) and packed per group for the GEMM.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn.nn.quantized.packed_conv_nd import PackedConv3dWeight
    >>> w = ql.quantize_per_tensor(np.ones((4, 2, 3, 3, 3)), 0.1, 0, ql.qint8)
    >>> pw = PackedConv3dWeight(w, None, padding=1)
    >>> pw.group_gemm[0].k, pw.output_size(4, 5, 6)     # K = 3 * 3 * 3 * 2
    (54, (4, 5, 6))
    """

    def __init__(self, qweight, bias, stride=1, padding=0, dilation=1, groups=1):
        who = "conv3d_prepack"
        _check_weight(qweight, 5, who)
        self.stride, self.padding, self.dilation = _geometry(stride, padding, dilation,
                                                             3, who)
        self.groups = g = _check_groups(groups, who)
        o, cg, kd, kh, kw = qweight.shape
        if o % g:
            raise ValueError(f"{who}: out_channels ({o}) must be divisible by groups ({g})")
        self.out_channels, self.in_channels = o, cg * g
        self.kernel_size = (kd, kh, kw)
        self.qweight = qweight
        self.w_scale, self.w_zp, self.per_channel = _weight_qparams(qweight, o, who)
        self.bias = _check_bias(bias, o, who)
        rows = np.ascontiguousarray(qweight._int.transpose(0, 2, 3, 4, 1).reshape(o, -1))
        og = o // g
        self.group_gemm = []
        for gi in range(g):
            part = slice(gi * og, (gi + 1) * og)
            pwg = _PackedGemmWeight(rows[part], qweight[part],
                                    None if self.bias is None else self.bias[part], who)
            pwg.per_channel = self.per_channel     # bias rounding follows the whole weight
            self.group_gemm.append(pwg)

    def unpack(self):
        """``(qweight, bias)`` as given (``torch.ops.quantized.conv3d_unpack``)."""
        return self.qweight, self.bias

    def output_size(self, d, h, w):
        r"""``(D_out, H_out, W_out)``, each :math:`\lfloor (n + 2p - d(k - 1) - 1) / s
        \rfloor + 1`."""
        return _output_size((d, h, w), self.kernel_size, self.stride, self.padding,
                            self.dilation)


def patches3d(xp, c0, cg, kernel, stride, dilation, out):
    """The patch matrix (N Do Ho Wo, 4 ceil(K/4)) of channels ``[c0, c0 + cg)`` of the
    padded channels-last uint8 ``xp`` (N, D, H, W, C), depth order (kd, kh, kw, c).

    >>> import numpy as np
    >>> from qlearn.nn.quantized.packed_conv_nd import patches3d
    >>> xp = np.arange(8, dtype=np.uint8).reshape(1, 2, 2, 2, 1)
    >>> patches3d(xp, 0, 1, (2, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1))
    array([[0, 1, 2, 3, 4, 5, 6, 7]], dtype=uint8)
    """
    n = xp.shape[0]
    k = math.prod(kernel) * cg
    m = n * math.prod(out)
    a = np.zeros((m, 4 * ((k + 3) // 4)), np.uint8)   # the kernels read whole groups of 4
    view = a[:, :k]
    view.shape = (n,) + out + tuple(kernel) + (cg,)     # a view (raises if it were a copy)
    for i, j, q in itertools.product(*map(range, kernel)):
        view[:, :, :, :, i, j, q] = xp[:, _sl(i, 0, out, stride, dilation),
                                       _sl(j, 1, out, stride, dilation),
                                       _sl(q, 2, out, stride, dilation), c0:c0 + cg]
    return a


def _sl(k, axis, out, stride, dilation):
    start = k * dilation[axis]
    return slice(start, start + stride[axis] * (out[axis] - 1) + 1, stride[axis])


def conv3d_apply(x, pc, scale, zero_point, relu=False, who="quantized conv3d"):
    """Quantized conv3d of the (N, C, D, H, W) quint8 ``x``: the patch matrix of each
    group times its packed weight, requantized (:eq:`int8-acc` to :eq:`int8-requant`).

    Returns a QTensor (N, O, Do, Ho, Wo) whose integers are channels-last in memory.
    """
    require_quantized(x, who)
    scale, zero_point = _check_out_qparams(scale, zero_point)
    if x.ndim != 5:
        raise ValueError(f"{who}: `input` must be 5-d (N, C, D, H, W), got shape "
                         f"{x.shape}")
    n, c = x.shape[:2]
    if c != pc.in_channels:
        raise ValueError(f"{who}: `input` must have {pc.in_channels} channels, got {c}")
    out = pc.output_size(*x.shape[2:])
    if min(out) < 1:
        raise ValueError(f"{who}: the input {'x'.join(map(str, x.shape[2:]))} is too small "
                         f"for kernel {pc.kernel_size} with padding {pc.padding} and "
                         f"dilation {pc.dilation}")
    o = pc.out_channels
    y = np.empty((n,) + out + (o,), np.uint8)
    lo = zero_point if relu else 0
    a_zp = x.q_zero_point()
    if n and o:
        xi = x._int.transpose(0, 2, 3, 4, 1)
        pads = ((0, 0),) + tuple((p, p) for p in pc.padding) + ((0, 0),)
        xp = np.pad(xi, pads, constant_values=a_zp) if any(pc.padding) else xi
        y2 = y.reshape(-1, o)
        cg, og = c // pc.groups, o // pc.groups
        for gi, pwg in enumerate(pc.group_gemm):
            a = patches3d(xp, gi * cg, cg, pc.kernel_size, pc.stride, pc.dilation, out)
            bias_q, mult = pwg.requant_constants(x.q_scale(), scale)
            _int8.gemm_u8(pwg, a, a_zp, bias_q, mult, zero_point, lo, 255,
                          y2[:, gi * og:(gi + 1) * og])
    return per_tensor_unchecked(y.transpose(0, 4, 1, 2, 3), quint8, per_tensor_affine,
                                scale, zero_point)
