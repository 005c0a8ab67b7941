"""The float fused modules of ``qlearn.nn.intrinsic``."""
from .fused import (BNReLU2d, ConvBn2d, ConvBnReLU2d, ConvReLU2d, LinearBn1d, LinearReLU,
                    _FusedModule)
from .linear_act import LinearLeakyReLU, LinearTanh

__all__ = ["ConvReLU2d", "ConvBn2d", "ConvBnReLU2d", "LinearReLU", "LinearBn1d",
           "BNReLU2d", "LinearLeakyReLU", "LinearTanh"]
