"""``nnqat.Linear``: a Linear whose weight is fake-quantized in every forward pass."""
from ... import functional as F
from ...modules.linear import Linear as _Linear
from ...parameter import Parameter
from ._common import check_qconfig, float_qconfig

__all__ = ["Linear"]


class Linear(_Linear):
    r"""Linear layer for quantization-aware training (``torch.ao.nn.qat.Linear``):

    .. math::  y = x \, \operatorname{fq}(W)^\top + b

    where :math:`\operatorname{fq}` is ``weight_fake_quant = qconfig.weight()`` (its
    gradient is the straight-through estimator); the bias stays float.

    Parameters
    ----------
    in_features, out_features, bias
        As :class:`qlearn.nn.Linear`.
    qconfig : QConfig
        Required; ``qconfig.weight()`` makes the weight's fake quantizer.

    Examples
    --------
    >>> import qlearn.nn.qat as nnqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nnqat.Linear(4, 2, qconfig=get_default_qat_qconfig("x86"))
    >>> y = m(np.ones((3, 4), np.float32)); y.sum().backward()
    >>> y.shape, m.weight.grad.shape
    ((3, 2), (2, 4))
    """

    _FLOAT_MODULE = _Linear

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        check_qconfig(qconfig, type(self).__name__)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input):
        return F.linear(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod):
        """A QAT Linear sharing the parameters of the float ``mod`` (an ``nn.Linear``,
        or a fused ``LinearReLU`` for the fused subclass) with ``mod.qconfig``."""
        qconfig = float_qconfig(mod, (cls._FLOAT_MODULE,), cls.__name__)
        lin = mod[0] if type(mod) is not _Linear else mod
        qat = cls(lin.in_features, lin.out_features, bias=lin.bias is not None,
                  qconfig=qconfig)
        qat.weight = lin.weight
        qat.bias = lin.bias
        return qat

    def to_float(self):
        """The float ``nn.Linear`` with this layer's (not fake-quantized) weights."""
        lin = _Linear(self.in_features, self.out_features, self.bias is not None)
        lin.weight = Parameter(self.weight.data.copy())
        if self.bias is not None:
            lin.bias = Parameter(self.bias.data.copy())
        lin.train(self.training)
        return lin
