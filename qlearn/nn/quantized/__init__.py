"""Quantized modules: ``qlearn.nn.quantized`` mirrors ``torch.ao.nn.quantized``.

Each takes quint8 :class:`qlearn.QTensor` inputs and returns QTensors whose integers are
PyTorch's x86 (FBGEMM) backend's for the same inputs (see ``docs/int8.rst``).
"""
from . import functional
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all

__all__ = [*_modules_all, "functional"]
