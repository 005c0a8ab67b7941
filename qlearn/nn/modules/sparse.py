r"""``Embedding`` and ``EmbeddingBag``: lookup tables of learned vectors (PyTorch's
``torch/nn/modules/sparse.py``).

``weight`` :math:`W` is ``(num_embeddings, embedding_dim)``, initialised from
:math:`\mathcal N(0, 1)` with the ``padding_idx`` row zeroed, as PyTorch does.  Their
quantized versions (:class:`qlearn.nn.quantized.Embedding`, ``EmbeddingBag``) store
:math:`W` as quint8 with a float scale and zero point per row.
"""
import numbers

import numpy as np

from .. import functional_embedding as FE
from .. import init
from ..parameter import Parameter
from ._utils import check_factory_kwargs
from .module import Module

__all__ = ["Embedding", "EmbeddingBag"]


def _check_sizes(num_embeddings, embedding_dim):
    for name, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"`{name}` must be a non-negative int, got {v!r}")
    return int(num_embeddings), int(embedding_dim)


def _initial_weight(num_embeddings, embedding_dim, _weight):
    if _weight is None:
        return Parameter(np.empty((num_embeddings, embedding_dim), np.float32)), True
    w = np.asarray(getattr(_weight, "data", _weight), np.float32)
    if w.shape != (num_embeddings, embedding_dim):
        raise ValueError(f"`_weight` must have shape ({num_embeddings}, {embedding_dim}) "
                         f"(num_embeddings, embedding_dim), got {w.shape}")
    return Parameter(w.copy()), False


class Embedding(Module):
    r"""A table of ``num_embeddings`` vectors of size ``embedding_dim``, read by index:
    :math:`y_{\dots} = W_{i_{\dots}}` (see :func:`qlearn.nn.functional.embedding`).

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        The table's shape.
    padding_idx : int, optional
        A row kept at zero at initialisation that receives no gradient.
    max_norm : float, optional
        Rows read with a larger ``norm_type``-norm are renormalised in place.
    norm_type : float
        Default 2.
    scale_grad_by_freq : bool
        Scale gradients by the inverse frequency of each index in the batch.
    sparse : bool
        Must be False (sparse gradients are not implemented).
    _weight : array_like, optional
        An initial table (copied).
    _freeze : bool
        Make ``weight`` not require a gradient.

    Examples
    --------
    >>> import qlearn as ql
    >>> from qlearn import nn
    >>> emb = nn.Embedding(10, 3, padding_idx=0)
    >>> emb
    Embedding(10, 3, padding_idx=0)
    >>> emb([[1, 2, 4, 5], [4, 3, 2, 9]]).shape
    (2, 4, 3)
    >>> emb.weight.data[0]
    array([0., 0., 0.], dtype=float32)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        FE._check_sparse(sparse)
        FE._check_max_norm(max_norm, norm_type)
        self.num_embeddings, self.embedding_dim = _check_sizes(num_embeddings,
                                                               embedding_dim)
        self.padding_idx = FE.check_padding_idx(padding_idx, self.num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), False
        self.weight, fresh = _initial_weight(self.num_embeddings, self.embedding_dim,
                                             _weight)
        if fresh:
            self.reset_parameters()
        if _freeze:
            self.weight.requires_grad = False

    def reset_parameters(self):
        """Draw ``weight`` from :math:`\\mathcal N(0, 1)` and zero the padding row."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return FE.embedding(input, self.weight, self.padding_idx, self.max_norm,
                            self.norm_type, self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding a copy of the 2-d ``embeddings`` (frozen by default).

        >>> import numpy as np
        >>> from qlearn import nn
        >>> e = nn.Embedding.from_pretrained(np.eye(3, dtype=np.float32))
        >>> e([2]).numpy(), e.weight.requires_grad
        (array([[0., 0., 1.]], dtype=float32), False)
        """
        w = np.asarray(getattr(embeddings, "data", embeddings), np.float32)
        if w.ndim != 2:
            raise ValueError(f"`embeddings` must be 2-d, got shape {w.shape}")
        return cls(w.shape[0], w.shape[1], padding_idx, max_norm, norm_type,
                   scale_grad_by_freq, sparse, _weight=w, _freeze=freeze)


class EmbeddingBag(Module):
    r"""Sums, means or maxima of bags of embedding rows, without materialising the rows
    (see :func:`qlearn.nn.functional.embedding_bag`):

    .. math::

       y_b = \sum_{p \in b} w_p\, W_{i_p}, \qquad
       y_b = \frac{1}{|b|}\sum_{p \in b} W_{i_p}, \qquad
       y_{b,d} = \max_{p \in b} W_{i_p, d}

    Parameters
    ----------
    num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq, sparse
        As in :class:`Embedding`.
    _weight, padding_idx
        As in :class:`Embedding` (``padding_idx`` entries are left out of their bag).
    mode : {"sum", "mean", "max"}
        Default ``"mean"``.
    include_last_offset : bool
        ``offsets`` given to ``forward`` has one more entry, ending the last bag.

    Examples
    --------
    >>> import numpy as np
    >>> from qlearn import nn
    >>> bag = nn.EmbeddingBag(10, 3, mode="sum")
    >>> bag
    EmbeddingBag(10, 3, mode='sum')
    >>> out = bag([1, 2, 4, 5, 4, 3, 2, 9], offsets=[0, 4])
    >>> out.shape
    (2, 3)
    >>> np.allclose(out.numpy()[0], bag.weight.data[[1, 2, 4, 5]].sum(0))
    True
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        FE._check_sparse(sparse)
        FE._check_max_norm(max_norm, norm_type)
        if mode not in FE._MODES:
            raise ValueError(f"`mode` must be one of 'sum', 'mean' or 'max', got {mode!r}")
        self.num_embeddings, self.embedding_dim = _check_sizes(num_embeddings,
                                                               embedding_dim)
        self.padding_idx = FE.check_padding_idx(padding_idx, self.num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), False
        self.mode, self.include_last_offset = mode, bool(include_last_offset)
        self.weight, fresh = _initial_weight(self.num_embeddings, self.embedding_dim,
                                             _weight)
        if fresh:
            self.reset_parameters()

    reset_parameters = Embedding.reset_parameters

    def forward(self, input, offsets=None, per_sample_weights=None):
        return FE.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                                self.scale_grad_by_freq, self.mode, self.sparse,
                                per_sample_weights, self.include_last_offset,
                                self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, mode="mean", sparse=False,
                        include_last_offset=False, padding_idx=None):
        """An EmbeddingBag holding a copy of the 2-d ``embeddings`` (frozen by default)."""
        w = np.asarray(getattr(embeddings, "data", embeddings), np.float32)
        if w.ndim != 2:
            raise ValueError(f"`embeddings` must be 2-d, got shape {w.shape}")
        bag = cls(w.shape[0], w.shape[1], max_norm, norm_type, scale_grad_by_freq, mode,
                  sparse, w, include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag
