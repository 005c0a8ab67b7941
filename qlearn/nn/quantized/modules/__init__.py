"""The quantized modules of ``qlearn.nn.quantized``."""
from .activation import ELU, Hardswish, LeakyReLU, Sigmoid
from .batchnorm import BatchNorm2d
from .conv import Conv2d
from .linear import Linear
from .misc import (AdaptiveAvgPool2d, DeQuantize, Dropout, FloatFunctional, MaxPool2d, QFunctional,
                   Quantize, ReLU, ReLU6)

__all__ = ["AdaptiveAvgPool2d", "BatchNorm2d", "Conv2d", "DeQuantize", "Dropout", "ELU",
           "FloatFunctional", "Hardswish", "LeakyReLU", "Linear", "Sigmoid",
           "MaxPool2d", "QFunctional", "Quantize", "ReLU", "ReLU6"]
