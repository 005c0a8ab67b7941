"""The reference modules (see :mod:`qlearn.nn.quantized.reference`)."""
from .conv import Conv2d
from .linear import Linear

__all__ = ["Linear", "Conv2d"]
