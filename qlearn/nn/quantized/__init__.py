"""Quantized modules: ``qlearn.nn.quantized`` mirrors ``torch.ao.nn.quantized``.

Each takes quint8 :class:`qlearn.QTensor` inputs and returns QTensors whose integers are
PyTorch's x86 (FBGEMM) backend's for the same inputs (see ``docs/int8.rst``).
"""
from . import functional
from .modules import (
                      AdaptiveAvgPool2d,
                      Conv2d,
                      DeQuantize,
                      FloatFunctional,
                      Linear,
                      MaxPool2d,
                      QFunctional,
                      Quantize,
                      ReLU,
                      ReLU6,
)

__all__ = [
                      "AdaptiveAvgPool2d",
                      "Conv2d",
                      "DeQuantize",
                      "FloatFunctional",
                      "Linear",
                      "MaxPool2d",
                      "QFunctional",
                      "Quantize",
                      "ReLU",
                      "ReLU6",
                      "functional",
]
