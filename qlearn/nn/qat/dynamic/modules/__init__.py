"""The modules of ``qlearn.nn.qat.dynamic``."""
from .linear import Linear

__all__ = ["Linear"]
