r"""``nnqat.Embedding`` and ``nnqat.EmbeddingBag``: embedding tables whose weight is
fake-quantized (quint8 rows, float qparams) in every forward pass.

.. math::  y = \operatorname{lookup}\big(\operatorname{fq}(W)\big)

with :math:`\operatorname{fq}` the ``weight_fake_quant = qconfig.weight()`` of a qconfig
whose weight qscheme is ``per_channel_affine_float_qparams``
(``default_embedding_qat_qconfig``), as ``torch.ao.nn.qat.Embedding``.  As in PyTorch,
the default eager mappings do not include these modules: pass them to ``prepare_qat`` /
``convert`` in ``mapping`` (or build them with ``from_float``).
"""
from ....dtypes import per_channel_affine_float_qparams
from ... import functional_embedding as FE
from ...modules.sparse import Embedding as _Embedding
from ...modules.sparse import EmbeddingBag as _EmbeddingBag
from ...parameter import Parameter
from ._common import check_qconfig, float_qconfig

__all__ = ["Embedding", "EmbeddingBag"]


def _check_float_qparams(qconfig, who):
    check_qconfig(qconfig, who)
    scheme = getattr(qconfig.weight(), "qscheme", None)
    if scheme is not per_channel_affine_float_qparams:
        raise ValueError(f"{who}: embedding weights need a qconfig whose weight qscheme is "
                         f"qlearn.per_channel_affine_float_qparams "
                         f"(default_embedding_qat_qconfig), got {scheme!r}")


class Embedding(_Embedding):
    r"""Embedding for quantization-aware training (``torch.ao.nn.qat.Embedding``):
    :math:`y = \operatorname{fq}(W)_{i}`, the straight-through estimator as gradient.

    Parameters are those of :class:`qlearn.nn.Embedding`, plus ``qconfig`` (required;
    its weight qscheme must be ``per_channel_affine_float_qparams``).

    Examples
    --------
    >>> import qlearn.nn.qat as nnqat
    >>> from qlearn.quantization.qconfig import default_embedding_qat_qconfig
    >>> m = nnqat.Embedding(10, 4, qconfig=default_embedding_qat_qconfig)
    >>> y = m([[1, 2], [3, 3]]); y.sum().backward()
    >>> y.shape, m.weight.grad.shape, m.weight_fake_quant.zero_point.dtype
    ((2, 2, 4), (10, 4), dtype('float32'))
    """

    _FLOAT_MODULE = _Embedding

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 device=None, dtype=None, qconfig=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, device=device, dtype=dtype)
        _check_float_qparams(qconfig, type(self).__name__)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input):
        return FE.embedding(input, self.weight_fake_quant(self.weight), self.padding_idx,
                            self.max_norm, self.norm_type, self.scale_grad_by_freq,
                            self.sparse)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A QAT Embedding sharing the weight of the float ``mod`` (with its qconfig)."""
        qconfig = float_qconfig(mod, (cls._FLOAT_MODULE,), cls.__name__)
        _check_float_qparams(qconfig, cls.__name__)
        qat = cls(mod.num_embeddings, mod.embedding_dim, mod.padding_idx, mod.max_norm,
                  mod.norm_type, mod.scale_grad_by_freq, mod.sparse, qconfig=qconfig)
        qat.weight = mod.weight
        return qat

    def to_float(self):
        """The float ``nn.Embedding`` with this layer's (not fake-quantized) weight."""
        emb = _Embedding(self.num_embeddings, self.embedding_dim, self.padding_idx,
                         self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse)
        emb.weight = Parameter(self.weight.data.copy())
        emb.train(self.training)
        return emb


class EmbeddingBag(_EmbeddingBag):
    r"""EmbeddingBag for quantization-aware training (``torch.ao.nn.qat.EmbeddingBag``):
    the bags of :class:`qlearn.nn.EmbeddingBag` over :math:`\operatorname{fq}(W)`.

    Parameters are those of :class:`qlearn.nn.EmbeddingBag`, plus ``qconfig``.

    Examples
    --------
    >>> import qlearn.nn.qat as nnqat
    >>> from qlearn.quantization.qconfig import default_embedding_qat_qconfig
    >>> m = nnqat.EmbeddingBag(10, 4, mode="sum", qconfig=default_embedding_qat_qconfig)
    >>> m([1, 2, 3, 3], offsets=[0, 2]).shape
    (2, 4)
    """

    _FLOAT_MODULE = _EmbeddingBag

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, qconfig=None, device=None,
                 dtype=None):
        super().__init__(num_embeddings, embedding_dim, max_norm, norm_type,
                         scale_grad_by_freq, mode, sparse, _weight, include_last_offset,
                         padding_idx, device=device, dtype=dtype)
        _check_float_qparams(qconfig, type(self).__name__)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input, offsets=None, per_sample_weights=None):
        return FE.embedding_bag(input, self.weight_fake_quant(self.weight), offsets,
                                self.max_norm, self.norm_type, self.scale_grad_by_freq,
                                self.mode, self.sparse, per_sample_weights,
                                self.include_last_offset, self.padding_idx)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A QAT EmbeddingBag sharing the weight of the float ``mod``."""
        qconfig = float_qconfig(mod, (cls._FLOAT_MODULE,), cls.__name__)
        _check_float_qparams(qconfig, cls.__name__)
        qat = cls(mod.num_embeddings, mod.embedding_dim, mod.max_norm, mod.norm_type,
                  mod.scale_grad_by_freq, mod.mode, mod.sparse, None,
                  mod.include_last_offset, mod.padding_idx, qconfig=qconfig)
        qat.weight = mod.weight
        return qat

    def to_float(self):
        """The float ``nn.EmbeddingBag`` with this layer's weight."""
        bag = _EmbeddingBag(self.num_embeddings, self.embedding_dim, self.max_norm,
                            self.norm_type, self.scale_grad_by_freq, self.mode, self.sparse,
                            None, self.include_last_offset, self.padding_idx)
        bag.weight = Parameter(self.weight.data.copy())
        bag.train(self.training)
        return bag
