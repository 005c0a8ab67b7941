"""``nnqat.Conv1d`` and ``nnqat.Conv3d``: convolutions whose weight is fake-quantized in
every forward pass (``nnqat.Conv2d`` is in :mod:`qlearn.nn.qat.modules.conv`)."""
from ...modules.conv_nd import Conv1d as _Conv1d
from ...modules.conv_nd import Conv3d as _Conv3d
from .conv import _QATConv

__all__ = ["Conv1d", "Conv3d"]


class Conv1d(_QATConv, _Conv1d):
    r"""1-d convolution for quantization-aware training (``torch.ao.nn.qat.Conv1d``):

    .. math::  y = \operatorname{conv1d}(x, \operatorname{fq}(W)) + b

    with :math:`\operatorname{fq}` = ``weight_fake_quant = qconfig.weight()``.  The
    arguments are :class:`qlearn.nn.Conv1d`'s and ``qconfig`` (required).

    >>> import numpy as np
    >>> import qlearn.nn.qat as nnqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nnqat.Conv1d(3, 4, 3, padding=1, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.ones((2, 3, 7), np.float32)).shape
    (2, 4, 7)
    """

    _FLOAT_MODULE = _Conv1d
    _FLOAT_CONV_MODULE = _Conv1d


class Conv3d(_QATConv, _Conv3d):
    r"""3-d convolution for quantization-aware training (``torch.ao.nn.qat.Conv3d``):

    .. math::  y = \operatorname{conv3d}(x, \operatorname{fq}(W)) + b

    >>> import numpy as np
    >>> import qlearn.nn.qat as nnqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nnqat.Conv3d(2, 4, 3, padding=1, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.ones((1, 2, 3, 4, 5), np.float32)).shape
    (1, 4, 3, 4, 5)
    """

    _FLOAT_MODULE = _Conv3d
    _FLOAT_CONV_MODULE = _Conv3d
