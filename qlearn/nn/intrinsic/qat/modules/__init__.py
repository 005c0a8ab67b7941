"""The modules of ``qlearn.nn.intrinsic.qat``."""
from .conv_fused import ConvBn2d, ConvBnReLU2d, ConvReLU2d, freeze_bn_stats, update_bn_stats
from .conv_fused_nd import (ConvBn1d, ConvBn3d, ConvBnReLU1d, ConvBnReLU3d, ConvReLU1d,
                            ConvReLU3d)
from .linear_fused import LinearBn1d
from .linear_relu import LinearReLU

__all__ = ["ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "LinearBn1d", "LinearReLU",
           "freeze_bn_stats", "update_bn_stats", "ConvBn1d", "ConvBnReLU1d", "ConvReLU1d",
           "ConvBn3d", "ConvBnReLU3d", "ConvReLU3d"]
