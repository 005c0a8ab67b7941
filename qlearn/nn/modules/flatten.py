"""``Flatten`` and ``Dropout``."""
import numbers

from .. import functional as F
from .module import Module

__all__ = ["Flatten", "Dropout"]


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` (by default all but the batch one).

    >>> from qlearn import nn
    >>> nn.Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    r"""In training mode zero each element with probability ``p`` and scale the others
    by :math:`1/(1-p)`; the identity in eval mode.

    >>> from qlearn import nn
    >>> nn.Dropout(0.5).eval()(np.ones(3)).numpy()
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
