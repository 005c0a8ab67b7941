"""Probability distributions to draw test data from, as ``torch.distributions``:
``Normal(loc, scale).sample((3, 4))``.

The same distributions and arguments as PyTorch; the numbers come from qlearn's
generator (:func:`~qlearn.autograd.random.get_generator`), so they differ from PyTorch's draws.
Samples are float32 tensors of shape ``sample_shape + batch_shape``.

>>> import qlearn as ql
>>> ql.distributions.normal.Normal(0, 1).sample((3, 4)).shape
(3, 4)
"""
from . import exponential, normal, pareto, uniform
from .distribution import Distribution
from .exponential import Exponential
from .normal import Normal
from .pareto import Pareto
from .uniform import Uniform

__all__ = ["Distribution", "Exponential", "Normal", "Pareto", "Uniform", "exponential",
           "normal", "pareto", "uniform"]
