"""Fused modules (``qlearn.nn.intrinsic`` mirrors ``torch.ao.nn.intrinsic``).

The float containers live here; their quantization-aware-training forms are in
``qlearn.nn.intrinsic.qat`` and their int8 forms in ``qlearn.nn.intrinsic.quantized``
(loaded on first use, as PyTorch's subpackages: they import layers that import this).
"""
import importlib

from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all
from .modules.fused import _FusedModule  # noqa: F401  (the marker prepare/convert test for)

__all__ = list(_modules_all)

_SUBPACKAGES = ("qat", "quantized")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
