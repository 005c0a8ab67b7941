"""``Uniform(low, high)``: the continuous uniform distribution."""
import numpy as np

from .distribution import Distribution, _param

__all__ = ["Uniform"]


class Uniform(Distribution):
    r"""Uniform on :math:`[low, high)` (``torch.distributions.uniform.Uniform``).

    >>> import qlearn as ql
    >>> x = ql.distributions.uniform.Uniform(-1.0, 1.0).sample((100,))
    >>> bool(((x >= -1) & (x < 1)).all())
    True
    """

    def __init__(self, low, high):
        self.low, self.high = np.broadcast_arrays(_param(low, "low"), _param(high, "high"))
        if np.any(self.high <= self.low):
            raise ValueError(f"`high` must be greater than `low`, got low={low!r}, "
                             f"high={high!r}")
        super().__init__(self.low.shape)

    def _draw(self, rng, shape):
        return self.low + (self.high - self.low) * rng.random(shape)

    def _params(self):
        return {"low": self.low, "high": self.high}
