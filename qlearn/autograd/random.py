"""The random generator behind parameter initialisation and dropout.

``qlearn.manual_seed(s)`` makes them reproducible, as ``torch.manual_seed`` does (the
numbers differ from PyTorch's: it is a NumPy ``Generator``).
"""
import numpy as np

__all__ = ["manual_seed", "get_generator"]

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed the generator used by ``nn.init``, module constructors and dropout.

    >>> import qlearn as ql
    >>> from qlearn import nn
    >>> _ = ql.autograd.manual_seed(0); a = nn.Linear(3, 2).weight.numpy().copy()
    >>> _ = ql.autograd.manual_seed(0); b = nn.Linear(3, 2).weight.numpy()
    >>> bool((a == b).all())
    True
    """
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_generator():
    """The current ``numpy.random.Generator``.

    >>> from qlearn.autograd.random import get_generator, manual_seed
    >>> _ = manual_seed(1); a = get_generator().random()
    >>> _ = manual_seed(1); a == get_generator().random()
    True
    """
    return _generator
