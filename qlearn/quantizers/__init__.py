"""Distiller's quantizers: DoReFa, PACT, WRPN and range-based linear quantization.

Functions take ``(x, num_bits[, alpha])`` and return a fake-quantized
:class:`qlearn.Tensor` whose gradient follows the straight-through estimator; the
``*Quantizer`` classes rewrite a model as Distiller's do (see
:mod:`qlearn.quantizers.quantizer`).  One convention throughout: ``r = S (q - Z)``.
"""
from .dorefa import dorefa_quantize_activation, dorefa_quantize_weight
from .pact import PACTReLU, pact_quantize
from .quantizer import (
                        ClippedLinearQuantization,
                        DorefaQuantizer,
                        PACTQuantizer,
                        Quantizer,
                        WRPNQuantizer,
)
from .range_linear import (
                        linear_dequantize,
                        linear_quantization_params,
                        linear_quantize,
                        range_linear_quantize,
)
from .wrpn import wrpn_quantize_activation, wrpn_quantize_weight, wrpn_width

__all__ = ["dorefa_quantize_activation", "dorefa_quantize_weight", "pact_quantize",
           "PACTReLU", "wrpn_quantize_activation", "wrpn_quantize_weight", "wrpn_width",
           "range_linear_quantize", "linear_quantization_params", "linear_quantize",
           "linear_dequantize", "Quantizer", "DorefaQuantizer", "PACTQuantizer",
           "WRPNQuantizer", "ClippedLinearQuantization"]
