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

__all__ = ["get_generator"]

_generator = np.random.default_rng()


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
