"""Activation modules: ``ReLU``, ``ReLU6``, ``Hardtanh``, ``LeakyReLU``, ``Sigmoid``,
``Tanh``, ``Softmax``, ``LogSoftmax``."""
from .. import functional as F
from .module import Module

__all__ = ["ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax"]


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
