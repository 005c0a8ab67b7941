r"""``nnq.Embedding`` and ``nnq.EmbeddingBag``: lookup tables stored as quint8 (or 4-bit
quint4x2) with one float scale and one float zero point per row
(``per_channel_affine_float_qparams``).

Embedding tables are quantized weight-only: a row :math:`W_i` is stored as integers
:math:`q_{ij}` with

.. math::

   S_i = \frac{\max_j W_{ij} - \min_j W_{ij}}{255}, \qquad Z_i = -\min_j W_{ij} / S_i,
   \qquad W_{ij} \approx (q_{ij} - Z_i)\, S_i

(4x smaller than float32), and the lookup returns float values, evaluated as PyTorch's
packed kernels do: :math:`\operatorname{fma}(S_i, q_{ij}, -Z_i S_i)` in float32
(:func:`qlearn.float_qparams.embedding_bag_byte`).  The workflow reaches them with
``module.qconfig = float_qparams_weight_only_qconfig``, ``prepare``, ``convert``.

With ``dtype=qlearn.quint4x2`` (``float_qparams_weight_only_qconfig_4bit``) the rows
hold 4-bit values, :math:`S_i = (\max_j W_{ij} - \min_j W_{ij}) / 15`, packed two a
byte (8x smaller than float32), and the lookup uses float16 copies of :math:`S_i` and
:math:`-Z_i S_i`, as PyTorch's 4-bit kernels
(:func:`qlearn.float_qparams.embedding_bag_4bit`).
"""
import numbers

import numpy as np

from ....autograd import Tensor
from ....dtypes import DTYPES, per_channel_affine_float_qparams, quint4x2, quint8
from ....float_qparams import PackedEmbeddingWeight, embedding_bag_4bit, embedding_bag_byte
from ....qtensor import QTensor, quantize_per_channel
from ... import functional_embedding as FE
from ...modules.module import Module
from .utils import check_float_module

__all__ = ["Embedding", "EmbeddingBag"]


def _check_dtype(dtype):
    if dtype is not quint8 and dtype is not quint4x2:
        raise ValueError(f"`dtype` must be qlearn.quint8 or qlearn.quint4x2 (the embedding "
                         f"dtypes), got {dtype!r}")


def _empty_weight(num_embeddings, embedding_dim, dtype=quint8):
    """PyTorch's placeholder table: integers 0, scales 1, zero points 0."""
    return QTensor(np.zeros((num_embeddings, embedding_dim), np.uint8), dtype,
                   per_channel_affine_float_qparams, scales=np.ones(num_embeddings),
                   zero_points=np.zeros(num_embeddings, np.float32), axis=0)


def _observed_weight(mod, who):
    """The float-qparams quint8 weight of float ``mod``, through its qconfig's weight
    observer (PyTorch's ``from_float``: ``float_qparams_weight_only_qconfig`` when the
    module has a qconfig of None), or the trained ``weight_fake_quant`` of a QAT one."""
    from ....quantization.qconfig import float_qparams_weight_only_qconfig
    if hasattr(mod, "weight_fake_quant"):
        obs = mod.weight_fake_quant
    elif not hasattr(mod, "qconfig"):
        raise ValueError(f"{who}.from_float: the float module has no `qconfig`; set "
                         f"`qconfig = float_qparams_weight_only_qconfig` on it first")
    elif mod.qconfig is not None and mod.qconfig.weight is not None:
        obs = mod.qconfig.weight()
    else:
        obs = float_qparams_weight_only_qconfig.weight()
    if getattr(obs, "qscheme", None) is not per_channel_affine_float_qparams:
        raise ValueError(f"{who} quantization is only supported with "
                         f"float_qparams_weight_only_qconfig (a weight observer with "
                         f"qscheme=qlearn.per_channel_affine_float_qparams), got "
                         f"qscheme={getattr(obs, 'qscheme', None)!r}")
    _check_dtype(obs.dtype)
    w = np.asarray(mod.weight.data, np.float32)
    obs(w)                 # a fake quantizer also observes (and returns a Tensor)
    scale, zero_point = obs.calculate_qparams()
    return quantize_per_channel(w, np.asarray(scale, np.float32),
                                np.asarray(zero_point, np.float32), obs.ch_axis, obs.dtype)


class Embedding(Module):
    r"""Quantized embedding (the API of ``torch.ao.nn.quantized.Embedding``).

    .. math::

       y_{\dots} = \operatorname{fma}\big(S_i,\ q_{i,:},\ -Z_i S_i\big), \qquad
       i = \text{indices}_{\dots}

    Returns float32 Tensors of shape ``indices.shape + (embedding_dim,)``, equal to
    PyTorch's ``nnq.Embedding`` output bit for bit for the same weight (quint8, and
    quint4x2 through ``torch.ops.quantized.embedding_4bit``: float16 row scales and
    biases).  ``padding_idx``,
    ``max_norm``, ``norm_type``, ``scale_grad_by_freq`` and ``sparse`` are kept as
    attributes and do not change the lookup (as in PyTorch: they concern training).

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    dtype : QDType
        :data:`qlearn.quint8` or :data:`qlearn.quint4x2` (4-bit rows).
    _weight : QTensor, optional
        The table, of ``dtype``, ``per_channel_affine_float_qparams`` along axis 0.

    Notes
    -----
    PyTorch 2.13's ``nnq.Embedding.from_float`` with a 4-bit qconfig builds a quint8
    module around the 4-bit table and fails at the first lookup; qlearn keeps the
    observer's dtype.  PyTorch's 4-bit kernels also need an even ``embedding_dim`` (with
    an odd one they read rows at the wrong offsets); qlearn packs each row on its own
    bytes and accepts any ``embedding_dim``.

    Examples
    --------
    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> w = np.array([[0.0, 1.0], [-1.0, 1.0], [2.0, 4.0]], np.float32)
    >>> lo, hi = w.min(1), w.max(1)
    >>> s = (hi - lo) / np.float32(255)
    >>> m = nnq.Embedding(3, 2)
    >>> m.set_weight(ql.quantize_per_channel(w, s, -lo / s, 0, ql.quint8))
    >>> m   # doctest: +NORMALIZE_WHITESPACE
    QuantizedEmbedding(num_embeddings=3, embedding_dim=2, dtype=qlearn.quint8,
                       qscheme=qlearn.per_channel_affine_float_qparams)
    >>> m([2, 0]).numpy()
    array([[2., 4.],
           [0., 1.]], dtype=float32)
    """

    _NAME = "QuantizedEmbedding"
    _FLOAT = "Embedding"

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 dtype=quint8):
        super().__init__()
        for name, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"`{name}` must be a non-negative int, got {v!r}")
        _check_dtype(dtype)
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.dtype = dtype
        self.padding_idx = FE.check_padding_idx(padding_idx, self.num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.set_weight(_empty_weight(self.num_embeddings, self.embedding_dim, dtype)
                        if _weight is None else _weight)

    def set_weight(self, w):
        """Use the QTensor ``w`` (of the module's dtype, ``per_channel_affine_float_qparams``,
        axis 0, shape ``(num_embeddings, embedding_dim)``) as the table."""
        if not isinstance(w, QTensor) or w.dtype is not self.dtype \
                or w.qscheme() is not per_channel_affine_float_qparams \
                or w.ndim != 2 or w.q_per_channel_axis() != 0:
            raise TypeError(f"`w` must be a 2-d {self.dtype!r} QTensor quantized per row "
                            f"(axis 0) with qlearn.per_channel_affine_float_qparams, got "
                            f"{_describe(w)}")
        if w.shape != (self.num_embeddings, self.embedding_dim):
            raise ValueError(f"`w` must have shape ({self.num_embeddings}, "
                             f"{self.embedding_dim}) (num_embeddings, embedding_dim), got "
                             f"{w.shape}")
        self._qweight = w
        self._packed = PackedEmbeddingWeight(w)      # packed once, read by every lookup

    def weight(self):
        """The table, a quint8 or quint4x2 QTensor with float per-row scales and zero
        points."""
        return self._qweight

    def _lookup(self, indices, bounds, per_sample_weights=None, mode="sum"):
        bag = embedding_bag_4bit if self._packed.bits == 4 else embedding_bag_byte
        return bag(self._packed, indices, bounds, per_sample_weights, mode)

    def forward(self, indices):
        idx = FE.check_indices(indices, self.num_embeddings, "indices")
        flat = idx.reshape(-1)
        out = self._lookup(flat, np.arange(flat.size + 1, dtype=np.int64))
        return Tensor(out.reshape(idx.shape + (self.embedding_dim,)))

    def extra_repr(self):
        return (f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, "
                f"dtype={self.dtype!r}, qscheme={self._qweight.qscheme()!r}")

    def __repr__(self):
        return f"{self._NAME}({self.extra_repr()})"

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "_packed_params.dtype"] = self.dtype.name
        destination[prefix + "_packed_params._packed_weight"] = self._qweight

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)
        keys = [prefix + "_packed_params.dtype", prefix + "_packed_params._packed_weight"]
        missing.extend(k for k in keys if k not in state_dict)
        if keys[0] in state_dict:       # the table's dtype comes with it, as in PyTorch
            name = state_dict[keys[0]]
            name = name.item() if isinstance(name, np.ndarray) else name
            dtype = DTYPES.get(str(name))
            if dtype is None:
                errors.append(f"{keys[0]}: unknown dtype {name!r}")
                return
            _check_dtype(dtype)
            self.dtype = dtype
        if keys[1] in state_dict:
            self.set_weight(state_dict[keys[1]])

    def _extra_state_keys(self, prefix):
        return (prefix + "_packed_params.dtype", prefix + "_packed_params._packed_weight")

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Quantize a float ``nn.Embedding`` with its qconfig's weight observer, which
        must use ``per_channel_affine_float_qparams`` (``float_qparams_weight_only_qconfig``;
        a qconfig of None means that one), as PyTorch's ``from_float`` requires.

        >>> import qlearn.quantization as tq
        >>> from qlearn import nn
        >>> import qlearn.nn.quantized as nnq
        >>> emb = nn.Embedding(10, 4)
        >>> emb.qconfig = tq.float_qparams_weight_only_qconfig
        >>> q = nnq.Embedding.from_float(emb)
        >>> q.weight().qscheme()
        qlearn.per_channel_affine_float_qparams
        >>> bool(abs(q([3]).numpy() - emb.weight.data[3]).max() < 0.02)
        True
        """
        from ...modules.sparse import Embedding as FloatEmbedding
        from ...qat import Embedding as QATEmbedding
        check_float_module(mod, (FloatEmbedding, QATEmbedding), cls.__name__)
        qweight = _observed_weight(mod, "Embedding")
        q = cls(mod.num_embeddings, mod.embedding_dim, mod.padding_idx, mod.max_norm,
                mod.norm_type, mod.scale_grad_by_freq, mod.sparse, dtype=qweight.dtype)
        q.set_weight(qweight)
        return q


class EmbeddingBag(Embedding):
    r"""Quantized embedding bag (the API of ``torch.ao.nn.quantized.EmbeddingBag``).

    .. math::

       y_b = \sum_{p \in b} w_p\, \hat W_{i_p}, \qquad
       y_b = \frac{1}{|b|}\sum_{p \in b} \hat W_{i_p}, \qquad
       y_{b,d} = \max_{p \in b} \hat W_{i_p, d}

    with :math:`\hat W_{ij} = \operatorname{fma}(S_i, q_{ij}, -Z_i S_i)`; the sums
    accumulate as PyTorch's FBGEMM kernel does, so ``mode="sum"`` equals PyTorch's
    output bit for bit.

    Where qlearn differs: PyTorch 2.13's ``nnq.EmbeddingBag.forward`` hands its kernel
    mode 0 whatever ``mode`` says, so its ``"mean"`` and ``"max"`` bags are *sums*;
    qlearn reduces as ``mode`` says (as the float module does).  PyTorch's quantized bag
    has no ``padding_idx`` (its ``from_float`` drops it, and padding rows are summed);
    qlearn keeps the float module's ``padding_idx`` and leaves those entries out.

    Parameters
    ----------
    num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq, sparse
        As in :class:`Embedding`.
    _weight, dtype
        As in :class:`Embedding` (``dtype=qlearn.quint4x2`` for 4-bit rows, PyTorch's
        ``embedding_bag_4bit``).
    mode : {"sum", "mean", "max"}
        Default ``"sum"`` (PyTorch's for this module).
    include_last_offset : bool
        As in :class:`qlearn.nn.EmbeddingBag`.
    padding_idx : int, optional
        Entries equal to it are left out of their bag.

    Examples
    --------
    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> w = np.array([[0.0, 1.0], [-1.0, 1.0], [2.0, 4.0]], np.float32)
    >>> s = (w.max(1) - w.min(1)) / np.float32(255)
    >>> m = nnq.EmbeddingBag(3, 2, mode="sum")
    >>> m.set_weight(ql.quantize_per_channel(w, s, -w.min(1) / s, 0, ql.quint8))
    >>> m([0, 2, 2], offsets=[0, 1]).numpy()
    array([[0., 1.],
           [4., 8.]], dtype=float32)
    """

    _NAME = "QuantizedEmbeddingBag"

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="sum", sparse=False, _weight=None,
                 include_last_offset=False, dtype=quint8, padding_idx=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, dtype)
        if mode not in FE._MODES:
            raise ValueError(f"`mode` must be one of 'sum', 'mean' or 'max', got {mode!r}")
        self.mode, self.include_last_offset = mode, bool(include_last_offset)
        self.pruned_weights = False

    def forward(self, indices, offsets=None, per_sample_weights=None,
                compressed_indices_mapping=None):
        if compressed_indices_mapping is not None:
            raise NotImplementedError("`compressed_indices_mapping` (pruned tables) is not "
                                      "implemented")
        idx = FE.check_indices(indices, self.num_embeddings, "indices")
        psw = None
        if per_sample_weights is not None:
            if self.mode != "sum":
                raise ValueError(f"`per_sample_weights` is only supported for mode='sum', "
                                 f"got mode={self.mode!r}")
            psw = np.asarray(getattr(per_sample_weights, "data", per_sample_weights))
            if psw.dtype.kind != "f" or psw.shape != idx.shape:
                raise ValueError(f"`per_sample_weights` must be floats of the shape of "
                                 f"`indices` {idx.shape}, got {psw.dtype} {psw.shape}")
        pos, bag_of, nbags = FE.bag_layout(np.arange(idx.size).reshape(idx.shape), offsets,
                                           self.include_last_offset, "indices")
        if self.padding_idx is not None:
            keep = idx.reshape(-1)[pos] != self.padding_idx
            pos, bag_of = pos[keep], bag_of[keep]
        bounds = np.searchsorted(bag_of, np.arange(nbags + 1), side="left")
        out = self._lookup(idx.reshape(-1)[pos], bounds,
                           None if psw is None else psw.reshape(-1)[pos], self.mode)
        return Tensor(out)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Quantize a float ``nn.EmbeddingBag`` (see :meth:`Embedding.from_float`),
        keeping its mode, ``include_last_offset`` and ``padding_idx``."""
        from ...modules.sparse import EmbeddingBag as FloatEmbeddingBag
        from ...qat import EmbeddingBag as QATEmbeddingBag
        check_float_module(mod, (FloatEmbeddingBag, QATEmbeddingBag), cls.__name__)
        qweight = _observed_weight(mod, "EmbeddingBag")
        q = cls(mod.num_embeddings, mod.embedding_dim, mod.max_norm, mod.norm_type,
                mod.scale_grad_by_freq, mod.mode, mod.sparse,
                include_last_offset=mod.include_last_offset, dtype=qweight.dtype,
                padding_idx=mod.padding_idx)
        q.set_weight(qweight)
        return q


def _describe(w):
    if isinstance(w, QTensor):
        return f"a {w.ndim}-d {w.dtype!r} QTensor of qscheme {w.qscheme()!r}"
    return type(w).__name__
