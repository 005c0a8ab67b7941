"""The base class: parameters broadcast to a ``batch_shape``, ``sample(sample_shape)``."""
import numbers

import numpy as np

from ..autograd import Tensor, no_grad
from ..autograd.random import get_generator

__all__ = ["Distribution"]


def _param(value, name):
    """A parameter as a float32 array (numbers, arrays and tensors are accepted)."""
    arr = np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    return arr


def _sample_shape(sample_shape):
    if isinstance(sample_shape, numbers.Integral):
        sample_shape = (sample_shape,)
    shape = tuple(sample_shape)
    if not all(isinstance(n, numbers.Integral) and n >= 0 for n in shape):
        raise ValueError(f"`sample_shape` must be a tuple of non-negative ints, got "
                         f"{sample_shape!r}")
    return tuple(int(n) for n in shape)


class Distribution:
    """A distribution whose parameters broadcast to ``batch_shape``.

    Subclasses implement ``_draw(rng, shape)`` (NumPy float64 samples of ``shape``).

    >>> import qlearn as ql
    >>> d = ql.distributions.Uniform(ql.tensor([0.0, 1.0]), 2.0)
    >>> d.batch_shape, d.sample((5,)).shape
    ((2,), (5, 2))
    """

    def __init__(self, batch_shape):
        self.batch_shape = tuple(batch_shape)

    def sample(self, sample_shape=()):
        """A float32 tensor of samples, of shape ``sample_shape + batch_shape`` (no
        gradient)."""
        shape = _sample_shape(sample_shape) + self.batch_shape
        with no_grad():
            draws = self._draw(get_generator(), shape)
        return Tensor._wrap(np.asarray(draws, dtype=np.float32))

    def _draw(self, rng, shape):
        raise NotImplementedError

    def __repr__(self):
        params = ", ".join(f"{k}: {Tensor._wrap(v)!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self):
        return {}
