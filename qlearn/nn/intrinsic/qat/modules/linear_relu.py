"""``nniqat.LinearReLU``: the QAT Linear followed by a ReLU."""
from .... import functional as F
from ....modules.activation import ReLU
from ....qat.modules.linear import Linear as _QATLinear
from ...modules import fused as nni
from ...modules.fused import _FusedModule

__all__ = ["LinearReLU"]


class LinearReLU(_QATLinear, _FusedModule):
    r"""``Linear`` + ``ReLU`` for QAT: :math:`y = \max(x\,\operatorname{fq}(W)^\top + b,
    0)` (``torch.ao.nn.intrinsic.qat.LinearReLU``).

    >>> import qlearn.nn.intrinsic.qat as nniqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nniqat.LinearReLU(4, 3, qconfig=get_default_qat_qconfig("x86"))
    >>> bool((m(np.random.default_rng(0).normal(size=(5, 4))).numpy() >= 0).all())
    True
    """

    _FLOAT_MODULE = nni.LinearReLU

    def forward(self, input):
        return F.relu(F.linear(input, self.weight_fake_quant(self.weight), self.bias))

    def to_float(self):
        """The float ``nni.LinearReLU(Linear, ReLU)`` with this layer's weights."""
        lin = super().to_float()
        fused = nni.LinearReLU(lin, ReLU())
        fused.train(self.training)
        return fused
