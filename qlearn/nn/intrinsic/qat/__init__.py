r"""Fused modules for quantization-aware training: ``qlearn.nn.intrinsic.qat`` mirrors
``torch.ao.nn.intrinsic.qat``.

``ConvBn2d`` / ``ConvBnReLU2d`` / ``LinearBn1d`` simulate batch-norm folding during
training (the weight the int8 layer will hold, :math:`W\gamma/\sqrt{\sigma^2+\epsilon}`,
is what gets fake-quantized); ``ConvReLU2d`` / ``LinearReLU`` are the QAT layers with a
ReLU after them.  ``freeze_bn_stats`` / ``update_bn_stats`` are meant for
``model.apply``.
"""
from .modules import (ConvBn1d, ConvBn2d, ConvBn3d, ConvBnReLU1d, ConvBnReLU2d,
                      ConvBnReLU3d, ConvReLU1d, ConvReLU2d, ConvReLU3d, LinearBn1d,
                      LinearReLU, freeze_bn_stats, update_bn_stats)

__all__ = ["ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "LinearBn1d", "LinearReLU",
           "freeze_bn_stats", "update_bn_stats", "ConvBn1d", "ConvBnReLU1d", "ConvReLU1d",
           "ConvBn3d", "ConvBnReLU3d", "ConvReLU3d"]
