"""The float fused modules of ``qlearn.nn.intrinsic``."""
from .fused import (BNReLU2d, ConvBn2d, ConvBnReLU2d, ConvReLU2d, LinearBn1d, LinearReLU,
                    _FusedModule)
from .fused_nd import (BNReLU3d, ConvBn1d, ConvBn3d, ConvBnReLU1d, ConvBnReLU3d, ConvReLU1d,
                       ConvReLU3d)
from .linear_act import LinearLeakyReLU, LinearTanh

__all__ = ["ConvReLU2d", "ConvBn2d", "ConvBnReLU2d", "LinearReLU", "LinearBn1d",
           "BNReLU2d", "ConvReLU1d", "ConvBn1d", "ConvBnReLU1d", "ConvReLU3d", "ConvBn3d",
           "ConvBnReLU3d", "LinearLeakyReLU", "LinearTanh", "BNReLU3d"]
