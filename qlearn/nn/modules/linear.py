"""``Identity`` and ``Linear``."""
import math

import numpy as np

from ...qtensor import QTensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._utils import check_factory_kwargs
from .module import Module

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """:math:`y = x`; accepts and ignores constructor arguments, as PyTorch's does.

    >>> from qlearn import nn
    >>> nn.Identity()(np.ones(2)).shape
    (2,)
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        if isinstance(input, QTensor):   # fusion leaves Identity between int8 modules
            return input
        return F._tensor(input)


class Linear(Module):
    r"""Affine layer :math:`y = x W^\top + b`.

    ``weight`` :math:`W` is (out_features, in_features), initialised by
    ``kaiming_uniform_(a=sqrt(5))``, i.e. :math:`\mathcal U(-1/\sqrt{k}, 1/\sqrt{k})`
    with :math:`k` = in_features; ``bias`` :math:`b` is drawn from the same
    :math:`\mathcal U(-1/\sqrt k, 1/\sqrt k)` (PyTorch's defaults).

    >>> from qlearn import nn
    >>> m = nn.Linear(20, 30)
    >>> m(np.zeros((128, 20), np.float32)).shape
    (128, 30)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        for v, name in ((in_features, "in_features"), (out_features, "out_features")):
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"`{name}` must be a non-negative int, got {v!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_features, np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        r"""Re-initialise as PyTorch: ``weight`` by ``kaiming_uniform_(a=sqrt(5))``, ``bias``
        from :math:`\mathcal U(-1/\sqrt{k}, 1/\sqrt{k})`, :math:`k` = in_features."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
