r"""Conv1d / Conv3d + BatchNorm (+ ReLU) for quantization-aware training, and the QAT
Conv + ReLU forms (``torch.ao.nn.intrinsic.qat.ConvBn1d`` ... ``ConvReLU3d``).

The same simulated folding as :class:`qlearn.nn.intrinsic.qat.ConvBn2d` (see
:mod:`qlearn.nn.intrinsic.qat.modules.conv_fused`), over one or three spatial axes:

.. math::

   s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}, \qquad
   y = \operatorname{BN}\Big(\frac{\operatorname{conv}(x,\ \operatorname{fq}(W s))}{s}
   + b\Big)
"""

from ....modules.activation import ReLU
from ....modules.batchnorm import BatchNorm1d, BatchNorm3d
from ....modules.conv_nd import Conv1d, Conv3d
from ....qat.modules.conv_nd import Conv1d as _QATConv1d
from ....qat.modules.conv_nd import Conv3d as _QATConv3d
from ...modules import fused_nd as nni
from ...modules.fused import _FusedModule
from .conv_fused import _ConvBnNd, _QATConvReLU, _ReLUForward

__all__ = ["ConvBn1d", "ConvBnReLU1d", "ConvReLU1d", "ConvBn3d", "ConvBnReLU3d",
           "ConvReLU3d"]


class ConvBn1d(_ConvBnNd, Conv1d, _FusedModule):
    r"""``Conv1d`` + ``BatchNorm1d`` for QAT with batch-norm folding simulated
    (``torch.ao.nn.intrinsic.qat.ConvBn1d``); the arguments and behaviour are
    :class:`qlearn.nn.intrinsic.qat.ConvBn2d`'s.

    >>> import numpy as np
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBn1d(3, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.random.default_rng(0).normal(size=(2, 3, 8))).shape
    (2, 4, 6)
    """

    _FLOAT_MODULE = nni.ConvBn1d
    _FLOAT_CONV_MODULE = Conv1d
    _FLOAT_BN_MODULE = BatchNorm1d


class ConvBnReLU1d(_ReLUForward, ConvBn1d):
    r"""``Conv1d`` + ``BatchNorm1d`` + ``ReLU`` for QAT: :class:`ConvBn1d` then
    :math:`\max(\cdot, 0)` (``torch.ao.nn.intrinsic.qat.ConvBnReLU1d``).

    >>> import numpy as np
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBnReLU1d(3, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> bool((m(np.random.default_rng(0).normal(size=(2, 3, 8))).numpy() >= 0).all())
    True
    """

    _FLOAT_MODULE = nni.ConvBnReLU1d
    _FLOAT_RELU_MODULE = ReLU
    _FUSED_FLOAT_MODULE = nni.ConvReLU1d


class ConvBn3d(_ConvBnNd, Conv3d, _FusedModule):
    r"""``Conv3d`` + ``BatchNorm3d`` for QAT with batch-norm folding simulated
    (``torch.ao.nn.intrinsic.qat.ConvBn3d``).

    >>> import numpy as np
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBn3d(2, 4, 3, padding=1, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.random.default_rng(0).normal(size=(2, 2, 3, 4, 4))).shape
    (2, 4, 3, 4, 4)
    """

    _FLOAT_MODULE = nni.ConvBn3d
    _FLOAT_CONV_MODULE = Conv3d
    _FLOAT_BN_MODULE = BatchNorm3d


class ConvBnReLU3d(_ReLUForward, ConvBn3d):
    r"""``Conv3d`` + ``BatchNorm3d`` + ``ReLU`` for QAT
    (``torch.ao.nn.intrinsic.qat.ConvBnReLU3d``).

    >>> import numpy as np
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBnReLU3d(2, 4, 1, qconfig=get_default_qat_qconfig("x86"))
    >>> bool((m(np.random.default_rng(0).normal(size=(2, 2, 2, 3, 3))).numpy() >= 0).all())
    True
    """

    _FLOAT_MODULE = nni.ConvBnReLU3d
    _FLOAT_RELU_MODULE = ReLU
    _FUSED_FLOAT_MODULE = nni.ConvReLU3d


class ConvReLU1d(_QATConvReLU, _QATConv1d, _FusedModule):
    r"""``Conv1d`` + ``ReLU`` for QAT: :math:`y = \max(\operatorname{conv1d}(x,
    \operatorname{fq}(W)) + b, 0)` (``torch.ao.nn.intrinsic.qat.ConvReLU1d``).

    >>> import numpy as np
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvReLU1d(3, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.ones((1, 3, 5))).shape
    (1, 4, 3)
    """

    _FLOAT_MODULE = nni.ConvReLU1d
    _FUSED_FLOAT_MODULE = nni.ConvReLU1d


class ConvReLU3d(_QATConvReLU, _QATConv3d, _FusedModule):
    r"""``Conv3d`` + ``ReLU`` for QAT (``torch.ao.nn.intrinsic.qat.ConvReLU3d``).

    >>> import numpy as np
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvReLU3d(2, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.ones((1, 2, 3, 3, 3))).shape
    (1, 4, 1, 1, 1)
    """

    _FLOAT_MODULE = nni.ConvReLU3d
    _FUSED_FLOAT_MODULE = nni.ConvReLU3d
