r"""Conv + BatchNorm (+ ReLU) for quantization-aware training, with the folding simulated.

After ``convert`` the batch norm is gone: the int8 convolution holds the folded weight
:math:`W' = W \gamma / \sigma_r` with :math:`\sigma_r = \sqrt{\hat\sigma^2 + \epsilon}`
the running standard deviation.  So it is :math:`W'` that must be fake-quantized during
training, while the batch norm keeps normalising with the batch's own statistics (its
gradients are what makes training with BN stable).  :class:`ConvBn2d` does both in one
convolution, as PyTorch's ``_ConvBnNd`` does (Krishnamoorthi, *Quantizing deep
convolutional networks for efficient inference*, section 3.2):

.. math::

   s = \gamma / \sigma_r, \qquad
   y_0 = \operatorname{conv}\big(x, \operatorname{fq}(W s)\big) / s, \qquad
   y = \operatorname{BN}(y_0 + b)

Dividing by :math:`s` undoes the scaling (up to the quantization error), so the batch
norm sees what the unfolded convolution would give it, and with the batch statistics
:math:`\mu_B, \sigma_B` it outputs
:math:`\gamma (\operatorname{conv}(x, \operatorname{fq}(Ws))/s + b - \mu_B)/\sigma_B +
\beta`.  Once the statistics are frozen (:meth:`ConvBn2d.freeze_bn_stats`) the batch
norm uses the running ones, and the output is exactly what the folded int8 layer
computes before rounding: :math:`\operatorname{conv}(x, \operatorname{fq}(W')) + b'`.
"""
import numpy as np

from .... import functional as F
from .... import init
from ....modules.activation import ReLU
from ....modules.batchnorm import BatchNorm2d
from ....modules.conv import Conv2d
from ....parameter import Parameter
from ....qat.modules._common import check_qconfig, float_qconfig
from ....qat.modules.conv import Conv2d as _QATConv2d
from ....utils.fusion import fuse_conv_bn_weights
from ...modules import fused as nni
from ...modules.fused import _FusedModule
from ._bn_state import BnStateMixin

__all__ = ["ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "freeze_bn_stats", "update_bn_stats"]


class _ConvBnNd(BnStateMixin):
    """The conv-bn QAT behaviour for any number of spatial axes, mixed in before the
    float convolution (documented on :class:`ConvBn2d`)."""

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
        # after reset_bn_parameters: both touch the batch norm's state
        self._start_bn_state(freeze_bn)

    def reset_bn_parameters(self):
        r"""Reset the running statistics, draw :math:`\gamma \sim \mathcal U(0, 1)`, set
        :math:`\beta = 0` and draw the conv bias as the float convolution does (PyTorch's
        initialisation of this module)."""
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / np.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_float(cls, mod):
        """The QAT module for the float fused ``mod`` (``nni.ConvBn2d``,
        ``nni.ConvBnReLU2d`` or their 1-d / 3-d forms), sharing its conv and batch-norm
        parameters and statistics; ``mod.qconfig`` is required."""
        qconfig = float_qconfig(mod, (cls._FLOAT_MODULE,), cls.__name__)
        conv, bn = mod[0], mod[1]
        qat = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                  conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                  conv.padding_mode, bn.eps, bn.momentum, False, qconfig)
        qat.weight = conv.weight
        qat.bias = conv.bias
        qat.bn.weight = bn.weight
        qat.bn.bias = bn.bias
        qat.bn.running_mean = bn.running_mean
        qat.bn.running_var = bn.running_var
        qat.bn.num_batches_tracked = bn.num_batches_tracked
        return qat

    def fold_bn(self):
        """``(weight, bias)`` with the batch norm folded in by its running statistics:
        :func:`~qlearn.nn.utils.fusion.fuse_conv_bn_weights` (the weights ``convert``
        quantizes)."""
        bn = self.bn
        return fuse_conv_bn_weights(self.weight, self.bias, bn.running_mean, bn.running_var,
                                    bn.eps, bn.weight, bn.bias)

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
    """``relu`` after the conv-bn forward."""

    def forward(self, input):
        return F.relu(self._forward(input))


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


class ConvBn2d(_ConvBnNd, Conv2d, _FusedModule):
    r"""``Conv2d`` + ``BatchNorm2d`` for QAT, with batch-norm folding simulated
    (``torch.ao.nn.intrinsic.qat.ConvBn2d``).

    ``forward(x)`` computes, with :math:`s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}`
    from the *running* variance :math:`\hat\sigma^2` (before this batch updates it):

    .. math::

       y = \operatorname{BN}\Big(\frac{\operatorname{conv2d}(x,\
       \operatorname{fq}(W s))}{s} + b\Big)

    where :math:`\operatorname{fq}` is ``weight_fake_quant`` and BN is the child ``bn``,
    which in training mode normalises with the batch statistics and updates its running
    ones, and after :meth:`freeze_bn_stats` uses the running ones.  Gradients reach
    ``weight``, ``bias``, ``bn.weight`` and ``bn.bias`` (through :math:`s` too).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        As :class:`qlearn.nn.Conv2d`.
    bias : bool or None
        Whether the convolution has a bias (default: none, as PyTorch's).
    padding_mode : str
    eps, momentum : float
        The batch norm's.
    freeze_bn : bool
        Start with frozen batch-norm statistics.
    qconfig : QConfig
        Required; ``qconfig.weight()`` makes ``weight_fake_quant``.

    Examples
    --------
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBn2d(3, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> y = m(np.random.default_rng(0).normal(size=(2, 3, 6, 6)))
    >>> y.shape, int(m.bn.num_batches_tracked)
    ((2, 4, 4, 4), 1)
    >>> _ = m.freeze_bn_stats(); _ = m(np.ones((2, 3, 6, 6)))
    >>> int(m.bn.num_batches_tracked)     # frozen: the running statistics stay
    1
    """

    _FLOAT_MODULE = nni.ConvBn2d
    _FLOAT_CONV_MODULE = Conv2d
    _FLOAT_BN_MODULE = BatchNorm2d


class ConvBnReLU2d(_ReLUForward, ConvBn2d):
    r"""``Conv2d`` + ``BatchNorm2d`` + ``ReLU`` for QAT: :class:`ConvBn2d` followed by
    :math:`\max(\cdot, 0)` (``torch.ao.nn.intrinsic.qat.ConvBnReLU2d``).

    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBnReLU2d(3, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> bool((m(np.random.default_rng(0).normal(size=(2, 3, 5, 5))).numpy() >= 0).all())
    True
    """

    _FLOAT_MODULE = nni.ConvBnReLU2d
    _FLOAT_RELU_MODULE = ReLU
    _FUSED_FLOAT_MODULE = nni.ConvReLU2d


class ConvReLU2d(_QATConvReLU, _QATConv2d, _FusedModule):
    r"""``Conv2d`` + ``ReLU`` for QAT: :math:`y = \max(\operatorname{conv2d}(x,
    \operatorname{fq}(W)) + b, 0)` (``torch.ao.nn.intrinsic.qat.ConvReLU2d``).

    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvReLU2d(3, 4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.ones((1, 3, 5, 5))).shape
    (1, 4, 3, 3)
    """

    _FLOAT_MODULE = nni.ConvReLU2d
    _FUSED_FLOAT_MODULE = nni.ConvReLU2d


def update_bn_stats(mod):
    """``mod.update_bn_stats()`` when ``mod`` is a QAT conv-bn module; for
    ``model.apply(update_bn_stats)``.

    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.ConvBn2d(1, 1, 1, qconfig=get_default_qat_qconfig("x86"))
    >>> _ = m.apply(nniqat.freeze_bn_stats); m.freeze_bn
    True
    >>> _ = m.apply(nniqat.update_bn_stats); m.freeze_bn
    False
    """
    if isinstance(mod, BnStateMixin):     # every QAT conv-bn / linear-bn module
        mod.update_bn_stats()


def freeze_bn_stats(mod):
    """``mod.freeze_bn_stats()`` when ``mod`` is a QAT conv-bn module; for
    ``model.apply(freeze_bn_stats)`` (see :func:`update_bn_stats`)."""
    if isinstance(mod, BnStateMixin):
        mod.freeze_bn_stats()
