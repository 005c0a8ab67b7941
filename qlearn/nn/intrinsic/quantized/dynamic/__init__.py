"""Dynamically quantized fused modules: ``qlearn.nn.intrinsic.quantized.dynamic``
mirrors ``torch.ao.nn.intrinsic.quantized.dynamic`` (see
:mod:`~qlearn.nn.intrinsic.quantized.dynamic.modules.linear_relu`)."""
from .modules import LinearReLU

__all__ = ["LinearReLU"]
