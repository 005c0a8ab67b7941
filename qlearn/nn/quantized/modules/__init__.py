"""The quantized modules of ``qlearn.nn.quantized``."""
from .conv import Conv2d
from .linear import Linear
from .misc import (AdaptiveAvgPool2d, DeQuantize, FloatFunctional, MaxPool2d,
                   QFunctional, Quantize, ReLU, ReLU6)

__all__ = ["Linear", "Conv2d", "ReLU", "ReLU6", "Quantize", "DeQuantize", "MaxPool2d",
           "AdaptiveAvgPool2d", "FloatFunctional", "QFunctional"]
