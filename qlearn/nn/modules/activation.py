"""Activation modules: ``ReLU``, ``ReLU6``, ``Hardtanh``, ``LeakyReLU``, ``Sigmoid``,
``Tanh``, ``Softmax``, ``LogSoftmax``, ``Hardswish``, ``Hardsigmoid``, ``ELU``, ``SiLU``,
``GELU``, ``PReLU``."""
import numbers

import numpy as np

from .. import functional as F
from ..parameter import Parameter
from ._utils import check_factory_kwargs
from .module import Module

__all__ = ["ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax", "Hardswish", "Hardsigmoid", "ELU", "SiLU", "GELU", "PReLU"]


class ReLU(Module):
    r""":math:`y = \max(x, 0)` (``inplace`` is accepted and ignored).

    >>> from qlearn import nn
    >>> nn.ReLU()(np.array([-1.0, 1.0])).numpy()
    array([0., 1.], dtype=float32)
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)


class Hardtanh(Module):
    r""":math:`y = \min(\max(x, a), b)`, :math:`a` = ``min_val``, :math:`b` = ``max_val``.

    >>> from qlearn import nn
    >>> nn.Hardtanh(-2.0, 2.0)(np.array([-3.0, 3.0])).numpy()
    array([-2.,  2.], dtype=float32)
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if not min_val < max_val:
            raise ValueError(f"`min_val` must be below `max_val`, got {min_val}, {max_val}")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Hardtanh):
    r""":math:`y = \min(\max(x, 0), 6)`.

    >>> from qlearn import nn
    >>> nn.ReLU6()(np.array([-1.0, 9.0])).numpy()
    array([0., 6.], dtype=float32)
    """

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return ""


class LeakyReLU(Module):
    r""":math:`y = x` for :math:`x > 0`, :math:`\alpha x` otherwise (``negative_slope``).

    >>> from qlearn import nn
    >>> nn.LeakyReLU(0.1)(np.array([-2.0, 3.0])).numpy()
    array([-0.2,  3. ], dtype=float32)
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    r""":math:`y = 1/(1 + e^{-x})`.

    >>> from qlearn import nn
    >>> nn.Sigmoid()(np.array([0.0])).numpy()
    array([0.5], dtype=float32)
    """

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    r""":math:`y = \tanh x`.

    >>> from qlearn import nn
    >>> nn.Tanh()(np.array([0.0])).numpy()
    array([0.], dtype=float32)
    """

    def forward(self, input):
        return F.tanh(input)


class Softmax(Module):
    r""":math:`y_i = e^{x_i}/\sum_j e^{x_j}` along ``dim``.

    >>> from qlearn import nn
    >>> nn.Softmax(dim=1)(np.zeros((1, 4))).numpy()
    array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, -1 if self.dim is None else self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    r""":math:`y_i = x_i - \log\sum_j e^{x_j}` along ``dim``.

    >>> from qlearn import nn
    >>> nn.LogSoftmax(dim=1)(np.zeros((1, 2))).numpy().round(4)
    array([[-0.6931, -0.6931]], dtype=float32)
    """

    def forward(self, input):
        return F.log_softmax(input, -1 if self.dim is None else self.dim)


class Hardswish(Module):
    r""":math:`y = x \cdot \operatorname{ReLU6}(x + 3) / 6`
    (:func:`qlearn.nn.functional.hardswish`).

    >>> from qlearn import nn
    >>> nn.Hardswish()(np.array([-4.0, 1.0, 4.0])).numpy().round(4)
    array([-0.    ,  0.6667,  4.    ], dtype=float32)
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input)


class Hardsigmoid(Module):
    r""":math:`y = \operatorname{ReLU6}(x + 3) / 6`
    (:func:`qlearn.nn.functional.hardsigmoid`).

    On a QTensor (a converted model: PyTorch's eager and graph mode keep the float
    module, which runs ``quantized::hardsigmoid``) it computes
    :func:`qlearn.nn.quantized.functional.hardsigmoid`, whose output has the fixed
    :math:`S = 1/256, Z = 0`.

    >>> from qlearn import nn
    >>> nn.Hardsigmoid()(np.array([-4.0, 0.0, 4.0])).numpy()
    array([0. , 0.5, 1. ], dtype=float32)
    >>> q = ql.quantize_per_tensor([-4.0, 0.0, 4.0], 0.05, 100, ql.quint8)
    >>> nn.Hardsigmoid()(q).int_repr()
    array([  0, 128, 255], dtype=uint8)
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        if getattr(input, "is_quantized", False) is True:
            # (imported here: nn.quantized imports nn)
            from ..quantized import functional as qF
            return qF.hardsigmoid(input)
        return F.hardsigmoid(input)


class ELU(Module):
    r""":math:`y = x` for :math:`x > 0`, :math:`\alpha (e^x - 1)` otherwise
    (``alpha``; :func:`qlearn.nn.functional.elu`).

    >>> from qlearn import nn
    >>> nn.ELU(alpha=0.5)(np.array([-1.0, 2.0])).numpy().round(4)
    array([-0.3161,  2.    ], dtype=float32)
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SiLU(Module):
    r""":math:`y = x\,\sigma(x)` (:func:`qlearn.nn.functional.silu`).

    >>> from qlearn import nn
    >>> nn.SiLU()(np.array([0.0, 1.0])).numpy().round(4)
    array([0.    , 0.7311], dtype=float32)
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input)


class GELU(Module):
    r""":math:`y = x\,\Phi(x)`, or its tanh approximation with ``approximate="tanh"``
    (:func:`qlearn.nn.functional.gelu`).

    >>> from qlearn import nn
    >>> nn.GELU()(np.array([1.0])).numpy().round(4)
    array([0.8413], dtype=float32)
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class PReLU(Module):
    r""":math:`y = x` for :math:`x > 0`, :math:`a x` otherwise, with the learnt ``weight``
    :math:`a` (``num_parameters`` values, 1 or one per channel, each ``init``;
    :func:`qlearn.nn.functional.prelu`).

    >>> from qlearn import nn
    >>> m = nn.PReLU()
    >>> m
    PReLU(num_parameters=1)
    >>> m(np.array([-2.0, 2.0])).numpy()
    array([-0.5,  2. ], dtype=float32)
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        if isinstance(num_parameters, bool) or not isinstance(
                num_parameters, numbers.Integral) or num_parameters < 1:
            raise ValueError(f"`num_parameters` must be a positive int, got "
                             f"{num_parameters!r}")
        self.num_parameters, self.init = int(num_parameters), init
        self.weight = Parameter(np.full(self.num_parameters, init, np.float32))

    def reset_parameters(self):
        """``weight`` back to ``init``."""
        self.weight.data[...] = self.init

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"
