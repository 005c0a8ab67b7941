"""The reference modules (see :mod:`qlearn.nn.quantized.reference`)."""
from .conv import Conv2d
from .conv_nd import Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .sparse import Embedding, EmbeddingBag

__all__ = ["Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "Embedding", "EmbeddingBag"]
