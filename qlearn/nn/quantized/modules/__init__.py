"""The quantized modules of ``qlearn.nn.quantized``."""
from .activation import ELU, Hardswish, LeakyReLU, Sigmoid, Softmax
from .batchnorm import BatchNorm2d, BatchNorm3d
from .conv import Conv2d
from .conv_nd import Conv1d, Conv3d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .embedding_ops import Embedding, EmbeddingBag
from .linear import Linear
from .normalization import GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm
from .prelu import PReLU
from .pooling_1d import AdaptiveAvgPool1d, MaxPool1d
from .misc import (AdaptiveAvgPool2d, DeQuantize, Dropout, FloatFunctional, FXFloatFunctional,
                   MaxPool2d, QFunctional, Quantize, ReLU, ReLU6)

__all__ = ["AdaptiveAvgPool2d", "BatchNorm2d", "Conv2d", "DeQuantize", "Dropout", "ELU",
           "Embedding", "EmbeddingBag", "FloatFunctional", "Hardswish", "LeakyReLU", "Linear",
           "Sigmoid", "Softmax",
           "MaxPool2d", "QFunctional", "Quantize", "ReLU", "ReLU6", "Conv1d", "Conv3d",
           "MaxPool1d", "AdaptiveAvgPool1d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "FXFloatFunctional"]
# normalisation
__all__ += ["BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
            "InstanceNorm3d", "PReLU"]
