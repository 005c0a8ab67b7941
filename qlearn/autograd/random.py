"""The one random generator behind parameter initialisation, dropout, the random
factories (``ql.rand``, ``ql.randn``) and the distributions.

It is a ``numpy.random.Generator`` (so the numbers differ from PyTorch's).  A run is
reproducible once its state is set, for instance from a NumPy generator of one's own:

>>> import numpy as np
>>> from qlearn.autograd.random import get_generator
>>> get_generator().bit_generator.state = np.random.default_rng(0).bit_generator.state
>>> a = get_generator().random()
>>> get_generator().bit_generator.state = np.random.default_rng(0).bit_generator.state
>>> bool(a == get_generator().random())
True
"""
import numpy as np

__all__ = ["manual_seed", "get_generator"]

_generator = np.random.default_rng()


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
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_generator():
    """The current ``numpy.random.Generator``.

    >>> from qlearn.autograd.random import get_generator
    >>> state = get_generator().bit_generator.state
    >>> a = get_generator().random()
    >>> get_generator().bit_generator.state = state      # back to where it was
    >>> a == get_generator().random()
    True
    """
    return _generator
