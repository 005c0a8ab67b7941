"""``Exponential(rate)``."""
import numpy as np

from .distribution import Distribution, _param

__all__ = ["Exponential"]


class Exponential(Distribution):
    r"""The exponential distribution with density :math:`\lambda e^{-\lambda x}`,
    :math:`x \ge 0`, where :math:`\lambda` is ``rate``
    (``torch.distributions.exponential.Exponential``).

    >>> import qlearn as ql
    >>> bool((ql.distributions.Exponential(2.0).sample((50,)) >= 0).all())
    True
    """

    def __init__(self, rate):
        self.rate = _param(rate, "rate")
        if np.any(self.rate <= 0):
            raise ValueError(f"`rate` must be positive, got {rate!r}")
        super().__init__(self.rate.shape)

    def _draw(self, rng, shape):
        return rng.standard_exponential(shape) / self.rate

    def _params(self):
        return {"rate": self.rate}
