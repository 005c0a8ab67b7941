r"""Conv1d / Conv3d + BatchNorm (+ ReLU) for quantization-aware training, and the QAT
Conv + ReLU forms (``torch.ao.nn.intrinsic.qat.ConvBn1d`` ... ``ConvReLU3d``).

The same simulated folding as :class:`qlearn.nn.intrinsic.qat.ConvBn2d` (see
:mod:`qlearn.nn.intrinsic.qat.modules.conv_fused`), over one or three spatial axes:

.. math::

   s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}, \qquad
   y = \operatorname{BN}\Big(\frac{\operatorname{conv}(x,\ \operatorname{fq}(W s))}{s}
   + b\Big)
"""
import numpy as np

from .... import functional as F
from ....modules.activation import ReLU
from ....modules.batchnorm import BatchNorm1d, BatchNorm3d
from ....modules.conv_nd import Conv1d, Conv3d
from ....parameter import Parameter
from ....qat.modules._common import check_qconfig
from ....qat.modules.conv_nd import Conv1d as _QATConv1d
from ....qat.modules.conv_nd import Conv3d as _QATConv3d
from ...modules import fused_nd as nni
from ...modules.fused import _FusedModule
from ._bn_state import BnStateMixin
from .conv_fused import ConvBn2d

__all__ = ["ConvBn1d", "ConvBnReLU1d", "ConvReLU1d", "ConvBn3d", "ConvBnReLU3d",
           "ConvReLU3d"]


class _ConvBnNd(BnStateMixin):
    """The conv-bn QAT behaviour for any number of spatial axes, mixed in before the
    float convolution.  The methods that do not depend on the number of axes are
    :class:`~qlearn.nn.intrinsic.qat.ConvBn2d`'s own."""

    _FLOAT_MODULE = None
    _FLOAT_CONV_MODULE = None
    _FLOAT_BN_MODULE = None
    _FLOAT_RELU_MODULE = None
    _FUSED_FLOAT_MODULE = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=None, padding_mode="zeros", eps=1e-05,
                 momentum=0.1, freeze_bn=False, qconfig=None):
        self._FLOAT_CONV_MODULE.__init__(self, in_channels, out_channels, kernel_size,
                                         stride, padding, dilation, groups, False,
                                         padding_mode)
        check_qconfig(qconfig, type(self).__name__)
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = self._FLOAT_BN_MODULE(out_channels, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()
        if bias:
            self.bias = Parameter(np.empty(out_channels, np.float32))
        self.reset_bn_parameters()
        self._start_bn_state(freeze_bn)

    reset_bn_parameters = ConvBn2d.reset_bn_parameters
    fold_bn = ConvBn2d.fold_bn
    from_float = ConvBn2d.__dict__["from_float"]

    def _forward(self, input):
        bn = self.bn
        ones = (1,) * (self.weight.ndim - 2)
        running_std = np.sqrt(bn.running_var + np.float32(bn.eps))
        scale_factor = bn.weight / running_std                       # s = gamma / sigma_r
        scaled_weight = self.weight_fake_quant(
            self.weight * scale_factor.reshape((-1, 1) + ones))
        conv = self._conv_forward(input, scaled_weight, None)        # the bias comes later
        conv_orig = conv / scale_factor.reshape((1, -1) + ones)
        if self.bias is not None:
            conv_orig = conv_orig + self.bias.reshape((1, -1) + ones)
        return bn(conv_orig)

    def forward(self, input):
        return self._forward(input)

    def to_float(self):
        """The float convolution with the batch norm folded in (the ``ConvReLU`` fused
        float module for the ReLU forms)."""
        cls = type(self)
        conv = cls._FLOAT_CONV_MODULE(self.in_channels, self.out_channels, self.kernel_size,
                                      self.stride, self.padding, self.dilation, self.groups,
                                      True, self.padding_mode)
        conv.weight, conv.bias = self.fold_bn()
        if cls._FLOAT_RELU_MODULE is not None:
            fused = cls._FUSED_FLOAT_MODULE(conv, cls._FLOAT_RELU_MODULE())
            fused.train(self.training)
            return fused
        conv.train(self.training)
        return conv


class _ReLUForward:
    def forward(self, input):
        return F.relu(self._forward(input))


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


class _QATConvReLU:
    """``relu(conv(x, fq(W)) + b)`` and ``to_float`` as the fused float module."""

    _FUSED_FLOAT_MODULE = None

    def forward(self, input):
        return F.relu(self._conv_forward(input, self.weight_fake_quant(self.weight),
                                         self.bias))

    def to_float(self):
        """The float fused ``ConvReLU`` (conv, ReLU) with this layer's weights."""
        fused = self._FUSED_FLOAT_MODULE(self._float_conv(), ReLU())
        fused.train(self.training)
        return fused


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
