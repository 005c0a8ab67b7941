r"""Float fused containers of a ``Linear`` and a ``LeakyReLU`` or ``Tanh``
(``torch.ao.nn.intrinsic.LinearLeakyReLU`` / ``LinearTanh``).

PyTorch fuses these two patterns only for its oneDNN backend (its x86 / fbgemm fusion
table, the one :func:`~qlearn.quantization.fuse_modules` uses, has neither), so they
are built by hand; ``convert`` turns them into
:class:`qlearn.nn.intrinsic.quantized.LinearLeakyReLU` / ``LinearTanh``.
"""
from ...modules.activation import LeakyReLU, Tanh
from ...modules.linear import Linear
from .fused import _FusedModule

__all__ = ["LinearLeakyReLU", "LinearTanh"]


class LinearLeakyReLU(_FusedModule):
    r""":math:`y = \operatorname{LeakyReLU}_\alpha(x W^\top + b)`: a ``Linear`` then a
    ``LeakyReLU`` (:math:`\alpha` its ``negative_slope``).

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> m = nni.LinearLeakyReLU(nn.Linear(4, 3), nn.LeakyReLU(0.1))
    >>> m(np.ones((2, 4))).shape, m[1].negative_slope
    ((2, 3), 0.1)
    """

    _TYPES = (Linear, LeakyReLU)

    def __init__(self, linear, leaky_relu):
        super().__init__(linear, leaky_relu)


class LinearTanh(_FusedModule):
    r""":math:`y = \tanh(x W^\top + b)`: a ``Linear`` then a ``Tanh``.

    >>> from qlearn import nn
    >>> import qlearn.nn.intrinsic as nni
    >>> nni.LinearTanh(nn.Linear(4, 3), nn.Tanh())(np.ones((2, 4))).shape
    (2, 3)
    """

    _TYPES = (Linear, Tanh)

    def __init__(self, linear, tanh):
        super().__init__(linear, tanh)
