r"""``qF.conv1d`` and ``qF.conv3d`` (``torch.ao.nn.quantized.functional.conv1d`` /
``conv3d``), re-exported by :mod:`qlearn.nn.quantized.functional`."""
from ...dtypes import quint8
from .packed_conv_nd import (
    PackedConv1dWeight,
    PackedConv3dWeight,
    conv1d_apply,
    conv3d_apply,
)
from .packed_params import require_quantized

__all__ = ["conv1d", "conv3d"]


def _check(padding_mode, dtype, input, who):
    if padding_mode != "zeros":
        raise ValueError(f"{who}: `padding_mode` must be 'zeros', got {padding_mode!r}")
    if dtype is not quint8:
        raise ValueError(f"{who}: `dtype` must be qlearn.quint8, got {dtype!r}")
    require_quantized(input, who)


def conv1d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", scale=1.0, zero_point=0, dtype=quint8):
    r"""Quantized 1-d convolution, requantized to ``(scale, zero_point)``.

    .. math::

       y_{n,o,p} = \operatorname{requant}\Big(\textstyle\sum_{c,k}
       (a_{n,c,pS + kD - P} - Z_a)(w_{o,c,k} - Z_{w,o}) + b_o / (S_a S_{w,o})\Big)

    computed as a 2-d convolution of height 1 (as PyTorch does), so the integers are
    ``torch.ops.quantized.conv1d``'s.  ``input`` is a quint8 (N, C, L) QTensor,
    ``weight`` a qint8 (O, C/groups, K) one (per tensor or per channel along axis 0),
    ``bias`` float (O,) or None; only ``padding_mode="zeros"``.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.ones((1, 1, 5)), 0.5, 0, ql.quint8)
    >>> w = ql.quantize_per_tensor(np.ones((1, 1, 3)), 0.5, 0, ql.qint8)
    >>> qF.conv1d(x, w, None, padding=1, scale=1.0, zero_point=0).int_repr()
    array([[[2, 3, 3, 3, 2]]], dtype=uint8)
    """
    _check(padding_mode, dtype, input, "qF.conv1d")
    packed = PackedConv1dWeight(weight, bias, stride, padding, dilation, groups)
    return conv1d_apply(input, packed, scale, zero_point, who="qF.conv1d")


def conv3d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", scale=1.0, zero_point=0, dtype=quint8):
    r"""Quantized 3-d convolution, requantized to ``(scale, zero_point)``.

    .. math::

       y_{n,o,\mathbf p} = \operatorname{requant}\Big(\textstyle\sum_{c,\mathbf k}
       (a_{n,c,\mathbf p S + \mathbf k D - P} - Z_a)(w_{o,c,\mathbf k} - Z_{w,o})
       + b_o / (S_a S_{w,o})\Big)

    over a quint8 (N, C, D, H, W) ``input`` and a qint8 (O, C/groups, KD, KH, KW)
    ``weight``: one patch matrix and int8 GEMM per group, so the integers are
    ``torch.ops.quantized.conv3d``'s.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.ones((1, 1, 2, 2, 2)), 0.5, 0, ql.quint8)
    >>> w = ql.quantize_per_tensor(np.ones((1, 1, 2, 2, 2)), 0.5, 0, ql.qint8)
    >>> qF.conv3d(x, w, None, scale=1.0, zero_point=0).int_repr().ravel()
    array([8], dtype=uint8)
    """
    _check(padding_mode, dtype, input, "qF.conv3d")
    packed = PackedConv3dWeight(weight, bias, stride, padding, dilation, groups)
    return conv3d_apply(input, packed, scale, zero_point, who="qF.conv3d")
