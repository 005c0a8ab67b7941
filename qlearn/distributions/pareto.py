"""``Pareto(scale, alpha)``: a heavy-tailed distribution (a model of activations)."""
import numpy as np

from .distribution import Distribution, _param

__all__ = ["Pareto"]


class Pareto(Distribution):
    r"""The Pareto (type I) distribution with minimum ``scale`` (:math:`x_m`) and tail
    index ``alpha`` (:math:`\alpha`), as ``torch.distributions.pareto.Pareto``: density
    :math:`\alpha x_m^\alpha / x^{\alpha + 1}` for :math:`x \ge x_m`.

    A sample is :math:`x_m e^{E}` with :math:`E` exponential of rate :math:`\alpha`.

    >>> import qlearn as ql
    >>> act = ql.distributions.pareto.Pareto(1, 10).sample((1, 1024))
    >>> act.shape, bool((act >= 1).all())
    ((1, 1024), True)
    """

    def __init__(self, scale, alpha):
        self.scale, self.alpha = np.broadcast_arrays(_param(scale, "scale"),
                                                     _param(alpha, "alpha"))
        if np.any(self.scale <= 0) or np.any(self.alpha <= 0):
            raise ValueError(f"`scale` and `alpha` must be positive, got scale={scale!r}, "
                             f"alpha={alpha!r}")
        super().__init__(self.scale.shape)

    def _draw(self, rng, shape):
        return self.scale * np.exp(rng.standard_exponential(shape) / self.alpha)

    def _params(self):
        return {"scale": self.scale, "alpha": self.alpha}
