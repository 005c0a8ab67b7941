r"""The reference quantized ``Embedding`` and ``EmbeddingBag``: the float lookups on the
quantized-dequantized table :math:`\hat W` (usually row-wise,
``per_channel_affine_float_qparams`` with ``axis=0``, whose zero points are floats),
as ``torch.ao.nn.quantized.reference``'s.  Activations (the looked-up rows) stay
float."""
from .... import functional_embedding as FE
from ....modules.sparse import Embedding as _FloatEmbedding
from ....modules.sparse import EmbeddingBag as _FloatEmbeddingBag
from .utils import ReferenceQuantizedModule

__all__ = ["Embedding", "EmbeddingBag"]


def _check(mod, cls):
    if type(mod) is not cls:
        raise TypeError(f"`mod` must be an nn.{cls.__name__}, got {type(mod).__name__}")


class Embedding(ReferenceQuantizedModule, _FloatEmbedding):
    r"""Reference quantized embedding (``torch.ao.nn.quantized.reference.Embedding``):
    row :math:`i` of :math:`\hat W` for each index :math:`i`.

    Parameters are ``nn.Embedding``'s, then ``weight_qparams``.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> emb = nn.Embedding(3, 2)
    >>> emb.weight.data[...] = [[0.0, 1.0], [0.5, 0.26], [-1.0, 1.0]]
    >>> ref = nnqr.Embedding.from_float(emb, {"qscheme": ql.per_channel_affine_float_qparams,
    ...     "dtype": ql.quint8, "scale": np.full(3, 0.1, np.float32),
    ...     "zero_point": np.zeros(3, np.float32), "axis": 0})
    >>> ref
    QuantizedEmbedding(Reference)(3, 2)
    >>> ref(np.array([1])).numpy()
    array([[0.5, 0.3]], dtype=float32)
    """

    _NAME = "QuantizedEmbedding(Reference)"

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 device=None, dtype=None, weight_qparams=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, device=device, dtype=dtype)
        self._init_weight_qparams(weight_qparams)

    def forward(self, input):
        return FE.embedding(input, self.get_weight(), self.padding_idx, self.max_norm,
                            self.norm_type, self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_float(cls, mod, weight_qparams):
        """A reference ``Embedding`` with ``mod``'s table (copied) and arguments."""
        _check(mod, _FloatEmbedding)
        ref = cls(mod.num_embeddings, mod.embedding_dim, mod.padding_idx, mod.max_norm,
                  mod.norm_type, mod.scale_grad_by_freq, mod.sparse,
                  weight_qparams=weight_qparams)
        ref.weight.data[...] = mod.weight.data
        return ref


class EmbeddingBag(ReferenceQuantizedModule, _FloatEmbeddingBag):
    r"""Reference quantized embedding bag (``torch.ao.nn.quantized.reference.EmbeddingBag``):
    the sum / mean / max of rows of :math:`\hat W` per bag.  (PyTorch prints it as
    ``QuantizedEmbedding(Reference)``, a name shared with :class:`Embedding`; qlearn
    prints the same.)

    >>> import numpy as np
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> ref = nnqr.EmbeddingBag.from_float(nn.EmbeddingBag(4, 2, mode="sum"), None)
    >>> ref(np.array([0, 1, 2, 3]), np.array([0, 2])).shape
    (2, 2)
    """

    _NAME = "QuantizedEmbedding(Reference)"

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None,
                 weight_qparams=None):
        super().__init__(num_embeddings, embedding_dim, max_norm, norm_type,
                         scale_grad_by_freq, mode, sparse, _weight, include_last_offset,
                         padding_idx, device, dtype)
        self._init_weight_qparams(weight_qparams)

    def forward(self, input, offsets=None, per_sample_weights=None):
        return FE.embedding_bag(input, self.get_weight(), offsets, self.max_norm,
                                self.norm_type, self.scale_grad_by_freq, self.mode,
                                self.sparse, per_sample_weights, self.include_last_offset,
                                self.padding_idx)

    @classmethod
    def from_float(cls, mod, weight_qparams, use_precomputed_fake_quant=False):
        """A reference ``EmbeddingBag`` with ``mod``'s table (copied) and arguments."""
        _check(mod, _FloatEmbeddingBag)
        ref = cls(mod.num_embeddings, mod.embedding_dim, mod.max_norm, mod.norm_type,
                  mod.scale_grad_by_freq, mod.mode, mod.sparse, None,
                  mod.include_last_offset, mod.padding_idx, weight_qparams=weight_qparams)
        ref.weight.data[...] = mod.weight.data
        return ref
