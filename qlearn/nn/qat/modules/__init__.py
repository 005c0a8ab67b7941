"""The modules of ``qlearn.nn.qat``."""
from .conv import Conv2d
from .conv_nd import Conv1d, Conv3d
from .embedding_ops import Embedding, EmbeddingBag
from .linear import Linear

__all__ = ["Conv1d", "Conv2d", "Conv3d", "Embedding", "EmbeddingBag", "Linear"]
