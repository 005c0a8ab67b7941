"""Loss modules: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``, ``L1Loss``."""
import numpy as np

from .. import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss"]


class CrossEntropyLoss(Module):
    r"""Cross entropy of logits and class indices (see
    :func:`qlearn.nn.functional.cross_entropy`):
    :math:`\ell = \frac{1}{\sum_i w_{t_i}} \sum_i -w_{t_i}\log\mathrm{softmax}(x_i)_{t_i}`.

    ``weight`` is registered as a buffer, as in PyTorch.

    >>> from qlearn import nn
    >>> round(nn.CrossEntropyLoss()(np.zeros((2, 4)), np.array([0, 3])).item(), 4)  # log 4
    1.3863
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__()
        F._check_reduction(reduction)
        self.register_buffer("weight", None if weight is None
                             else np.asarray(weight, np.float32))
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index,
                               self.reduction, self.label_smoothing)


class NLLLoss(Module):
    r"""Negative log likelihood of log-probabilities: :math:`\ell_i = -w_{t_i} x_{i,t_i}`.

    >>> from qlearn import nn
    >>> round(nn.NLLLoss()(np.log([[0.25, 0.75]]), np.array([1])).item(), 4)  # -log 0.75
    0.2877
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        F._check_reduction(reduction)
        self.register_buffer("weight", None if weight is None
                             else np.asarray(weight, np.float32))
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    r"""Mean squared error :math:`\ell = \frac1n\sum_i (x_i - y_i)^2`.

    >>> from qlearn import nn
    >>> nn.MSELoss()(np.array([0.0, 2.0]), np.array([0.0, 0.0])).item()
    2.0
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        F._check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class L1Loss(MSELoss):
    r"""Mean absolute error :math:`\ell = \frac1n\sum_i |x_i - y_i|`.

    >>> from qlearn import nn
    >>> nn.L1Loss()(np.array([0.0, 2.0]), np.array([1.0, 1.0])).item()
    1.0
    """

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)
