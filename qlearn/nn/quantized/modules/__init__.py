"""The quantized modules of ``qlearn.nn.quantized``."""
from .conv import Conv2d
from .linear import Linear
from .misc import (AdaptiveAvgPool2d, DeQuantize, Dropout, FloatFunctional, MaxPool2d, QFunctional,
                   Quantize, ReLU, ReLU6)

__all__ = ["AdaptiveAvgPool2d", "Conv2d", "DeQuantize", "Dropout", "FloatFunctional", "Linear",
           "MaxPool2d", "QFunctional", "Quantize", "ReLU", "ReLU6"]
