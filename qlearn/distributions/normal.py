"""``Normal(loc, scale)``: the Gaussian distribution."""
import math

import numpy as np

from ..autograd import Tensor
from .distribution import Distribution, _param

__all__ = ["Normal"]


class Normal(Distribution):
    r"""The normal distribution :math:`\mathcal{N}(\mu, \sigma^2)` with mean ``loc``
    (:math:`\mu`) and standard deviation ``scale`` (:math:`\sigma > 0`), as
    ``torch.distributions.normal.Normal``.

    Its density is :math:`p(x) = \frac{1}{\sigma\sqrt{2\pi}}
    e^{-(x - \mu)^2 / (2\sigma^2)}`.

    >>> import qlearn as ql
    >>> d = ql.distributions.normal.Normal(0, 0.12)
    >>> x = d.sample((3, 64, 7, 7))
    >>> x.shape, round(float(x.numpy().std()), 1)
    ((3, 64, 7, 7), 0.1)
    >>> d.log_prob(ql.tensor(0.0))
    tensor(1.2013)
    """

    def __init__(self, loc, scale):
        self.loc, self.scale = np.broadcast_arrays(_param(loc, "loc"), _param(scale, "scale"))
        if np.any(self.scale <= 0):
            raise ValueError(f"`scale` must be positive, got {scale!r}")
        super().__init__(self.loc.shape)

    @property
    def mean(self):
        """The mean :math:`\\mu`."""
        return Tensor._wrap(self.loc.copy())

    @property
    def stddev(self):
        """The standard deviation :math:`\\sigma`."""
        return Tensor._wrap(self.scale.copy())

    def _draw(self, rng, shape):
        return self.loc + self.scale * rng.standard_normal(shape)

    def log_prob(self, value):
        r""":math:`\log p(x) = -\frac{(x - \mu)^2}{2\sigma^2} - \log\sigma -
        \frac{1}{2}\log 2\pi` (differentiable in ``value``)."""
        x = value if isinstance(value, Tensor) else Tensor(np.asarray(value, np.float32))
        z = (x - self.loc) / self.scale
        return z * z * -0.5 - (np.log(self.scale) + np.float32(0.5 * math.log(2 * math.pi)))

    def _params(self):
        return {"loc": self.loc, "scale": self.scale}
