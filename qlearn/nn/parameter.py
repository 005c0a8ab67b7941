"""``nn.Parameter``: a Tensor that a Module registers as one of its parameters."""
from ..autograd import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` by default; assigning one to a Module
    attribute registers it (it then appears in ``parameters()`` and ``state_dict()``).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> p = nn.Parameter(np.zeros(2))
    >>> p.requires_grad, p.is_leaf, p.dtype
    (True, True, qlearn.float32)
    """

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
