"""Reference quantized modules: ``qlearn.nn.quantized.reference`` mirrors
``torch.ao.nn.quantized.reference``.

A reference module is the float layer with its weight passed through quantize and
dequantize, so it computes in float exactly what the int8 module's weight represents;
:func:`qlearn.quantization.quantize_fx.convert_to_reference_fx` builds graphs of them
between quantize/dequantize pairs.
"""
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all

__all__ = list(_modules_all)
