"""PyTorch's ``manual_seed`` for qlearn's generator.

It lives apart from :mod:`qlearn.autograd.random` because the docs show that module's
source next to :func:`~qlearn.autograd.random.get_generator` and keep PyTorch's name out
of the rendered pages (they start the generator from a NumPy Generator's state instead).
"""
import numpy as np

from . import random as _random

__all__ = ["manual_seed"]


def manual_seed(seed):
    """Restart the generator used by ``nn.init``, module constructors and dropout from an
    integer, as ``torch.manual_seed`` does; returns the new generator.

    >>> import qlearn as ql
    >>> from qlearn import nn
    >>> _ = ql.autograd.manual_seed(0); a = nn.Linear(3, 2).weight.numpy().copy()
    >>> _ = ql.autograd.manual_seed(0); b = nn.Linear(3, 2).weight.numpy()
    >>> bool((a == b).all())
    True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    _random._generator = np.random.default_rng(int(seed))
    return _random._generator
