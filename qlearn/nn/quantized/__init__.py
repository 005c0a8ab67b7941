"""Quantized modules: ``qlearn.nn.quantized`` mirrors ``torch.ao.nn.quantized``."""
from . import functional  # noqa: F401
