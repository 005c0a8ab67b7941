"""``nniqat.LinearBn1d``: Linear + BatchNorm1d for QAT, with the folding simulated."""
import numpy as np

from .... import functional as F
from .... import init
from ....modules.batchnorm import BatchNorm1d
from ....modules.linear import Linear
from ....qat.modules._common import check_qconfig, float_qconfig
from ....utils.fusion import fuse_linear_bn_weights
from ...modules import fused as nni
from ...modules.fused import _FusedModule
from ._bn_state import BnStateMixin

__all__ = ["LinearBn1d"]


class LinearBn1d(BnStateMixin, Linear, _FusedModule):
    r"""``Linear`` + ``BatchNorm1d`` for QAT (``torch.ao.nn.intrinsic.qat.LinearBn1d``):
    as :class:`~qlearn.nn.intrinsic.qat.ConvBn2d` with a linear layer,

    .. math::

       s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}, \qquad
       y = \operatorname{BN}\big(x \operatorname{fq}(\operatorname{diag}(s) W)^\top / s
       + b\big)

    Examples
    --------
    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.LinearBn1d(4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.random.default_rng(0).normal(size=(6, 4))).shape
    (6, 3)
    """

    _FLOAT_MODULE = nni.LinearBn1d

    def __init__(self, in_features, out_features, bias=True, eps=1e-05, momentum=0.1,
                 freeze_bn=False, qconfig=None):
        Linear.__init__(self, in_features, out_features, bias)
        check_qconfig(qconfig, type(self).__name__)
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = BatchNorm1d(out_features, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()
        self.reset_bn_parameters()
        self._start_bn_state(freeze_bn)

    def reset_bn_parameters(self):
        r"""Reset the running statistics, draw :math:`\gamma \sim \mathcal U(0, 1)` and
        set :math:`\beta = 0`."""
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)

    def forward(self, input):
        bn = self.bn
        running_std = np.sqrt(bn.running_var + np.float32(bn.eps))
        scale_factor = bn.weight / running_std
        scaled_weight = self.weight_fake_quant(self.weight * scale_factor.reshape(-1, 1))
        out = F.linear(input, scaled_weight, None) / scale_factor.reshape(1, -1)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1)
        return bn(out)

    @classmethod
    def from_float(cls, mod):
        """The QAT module for a float ``nni.LinearBn1d``, sharing its parameters and
        statistics; ``mod.qconfig`` is required."""
        qconfig = float_qconfig(mod, (cls._FLOAT_MODULE,), cls.__name__)
        linear, bn = mod[0], mod[1]
        qat = cls(linear.in_features, linear.out_features, linear.bias is not None,
                  bn.eps, bn.momentum, False, qconfig)
        qat.weight = linear.weight
        qat.bias = linear.bias
        qat.bn.weight = bn.weight
        qat.bn.bias = bn.bias
        qat.bn.running_mean = bn.running_mean
        qat.bn.running_var = bn.running_var
        qat.bn.num_batches_tracked = bn.num_batches_tracked
        return qat

    def fold_bn(self):
        """``(weight, bias)`` with the batch norm folded in by its running statistics."""
        bn = self.bn
        return fuse_linear_bn_weights(self.weight, self.bias, bn.running_mean,
                                      bn.running_var, bn.eps, bn.weight, bn.bias)

    def to_float(self):
        """The float ``nn.Linear`` with the batch norm folded in."""
        lin = Linear(self.in_features, self.out_features)
        lin.weight, lin.bias = self.fold_bn()
        lin.train(self.training)
        return lin
