"""QAT modules for dynamic quantization: ``qlearn.nn.qat.dynamic`` mirrors
``torch.ao.nn.qat.dynamic``."""
from .modules import Linear

__all__ = ["Linear"]
