"""The modules of ``qlearn.nn.qat``."""
from .conv import Conv2d
from .linear import Linear

__all__ = ["Conv2d", "Linear"]
