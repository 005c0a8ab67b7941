"""The modules of ``qlearn.nn.qat``."""
from .conv import Conv2d
from .embedding_ops import Embedding, EmbeddingBag
from .linear import Linear

__all__ = ["Conv2d", "Embedding", "EmbeddingBag", "Linear"]
