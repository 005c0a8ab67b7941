r"""Embedding lookups (``torch.nn.functional.embedding`` and ``embedding_bag``).

An embedding is a table :math:`W \in \mathbb R^{N \times D}` read by integer index:
``embedding`` returns the rows :math:`y_{\dots} = W_{i_{\dots}}`; ``embedding_bag``
reduces the rows of each *bag* (a run of indices) to one vector,

.. math::

   y_b = \sum_{p \in b} w_p\, W_{i_p} \quad (\text{sum}), \qquad
   y_b = \frac{1}{|b|} \sum_{p \in b} W_{i_p} \quad (\text{mean}), \qquad
   y_{b,d} = \max_{p \in b} W_{i_p, d} \quad (\text{max})

with :math:`w_p` the optional ``per_sample_weights`` (sum only) and entries equal to
``padding_idx`` left out of the bag (and of :math:`|b|`); an empty bag gives zeros.  The
sums run in index order, each step one float32 rounding (a fused multiply-add when
weighted), as PyTorch's CPU kernels accumulate; the gradients are the usual scatters
(``padding_idx`` rows get none; max sends each output's gradient to the first row that
attained it).  Both functions accept a :class:`qlearn.Tensor` or an integer array of
indices and return a Tensor.
"""
import numbers

import numpy as np

from ..autograd import Function, Tensor, no_grad
from ..kernels import embedding as _kernels
from .functional import _tensor

__all__ = ["embedding", "embedding_bag"]

_MODES = ("sum", "mean", "max")


# -- argument checks ---------------------------------------------------------------------
def check_indices(input, num_embeddings, name="input"):
    """``input`` as an int64 array of indices in ``[0, num_embeddings)``."""
    data = input.data if isinstance(input, Tensor) else input
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be an array of integer indices, got "
                        f"{type(input).__name__}: {exc}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integer indices (int32 or int64, as PyTorch "
                        f"requires), got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= num_embeddings)
    if bad.any():
        v = arr.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise IndexError(f"`{name}` must be in [0, {num_embeddings}), got {v}")
    return arr.astype(np.int64)


def check_padding_idx(padding_idx, num_embeddings):
    """``padding_idx`` normalised to ``[0, num_embeddings)``, or None (negative counts
    from the end, as in PyTorch)."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
        raise TypeError(f"`padding_idx` must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"`padding_idx` must be in [{-num_embeddings}, "
                         f"{num_embeddings - 1}] (within num_embeddings), got "
                         f"{padding_idx}")
    return int(padding_idx) % num_embeddings


def _check_weight(weight):
    w = _tensor(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"`weight` must be 2-d (num_embeddings, embedding_dim), got "
                         f"shape {w.shape}")
    return w


def _check_sparse(sparse):
    if sparse:
        raise NotImplementedError("`sparse=True` (sparse gradients) is not implemented: "
                                  "qlearn's gradients are dense; use sparse=False")


def _check_max_norm(max_norm, norm_type):
    if max_norm is None:
        return
    for name, v in (("max_norm", max_norm), ("norm_type", norm_type)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0 \
                or not np.isfinite(v):
            raise ValueError(f"`{name}` must be a positive finite number, got {v!r}")


def renorm_(weight, indices, max_norm, norm_type=2.0):
    r"""Scale in place each row of ``weight`` read by ``indices`` whose norm exceeds
    ``max_norm``: :math:`W_i \leftarrow W_i \cdot \text{max\_norm} / (\lVert W_i
    \rVert_p + 10^{-7})` (PyTorch's ``embedding_renorm_``; no gradient).

    >>> import numpy as np
    >>> from qlearn.nn.functional_embedding import renorm_
    >>> w = np.array([[3.0, 4.0], [0.3, 0.4]], np.float32)
    >>> renorm_(w, np.array([0, 1]), 1.0)
    >>> np.round(w, 4)
    array([[0.6, 0.8],
           [0.3, 0.4]], dtype=float32)
    """
    rows = np.unique(np.asarray(indices).reshape(-1))
    if rows.size == 0:
        return
    w = weight[rows].astype(np.float64)
    norms = np.sum(np.abs(w) ** norm_type, axis=1) ** (1.0 / norm_type)
    over = norms > max_norm
    scale = max_norm / (norms[over] + 1e-7)
    weight[rows[over]] = (weight[rows[over]] * scale[:, None].astype(np.float32))


# -- embedding -------------------------------------------------------------------------------
class EmbeddingFunction(Function):
    """``weight[indices]``; the gradient scatters back into the rows read."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, scale_grad_by_freq):
        ctx.indices, ctx.n = indices, weight.shape[0]
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        idx = ctx.indices.reshape(-1)
        g = np.asarray(grad, np.float32).reshape(idx.size, -1)
        if ctx.scale_grad_by_freq:
            g = g / np.bincount(idx, minlength=ctx.n)[idx, None].astype(np.float32)
        out = np.zeros((ctx.n, g.shape[1]), np.float32)
        np.add.at(out, idx, g)
        if ctx.padding_idx is not None:
            out[ctx.padding_idx] = 0
        return out, None, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    r"""The rows of ``weight`` at ``input``: :math:`y_{\dots} = W_{i_{\dots}}`.

    Parameters
    ----------
    input : Tensor or array_like of int
        Indices in ``[0, num_embeddings)``, any shape.
    weight : Tensor or array_like of float, shape (num_embeddings, embedding_dim)
    padding_idx : int, optional
        This row gets no gradient (negative counts from the end).
    max_norm : float, optional
        Rows read whose ``norm_type``-norm exceeds it are scaled down to it, in place,
        before the lookup (see :func:`renorm_`).
    norm_type : float
        The ``p`` of the norm for ``max_norm`` (default 2).
    scale_grad_by_freq : bool
        Divide each row's gradient by how often it occurs in ``input``.
    sparse : bool
        Must be False (sparse gradients are not implemented).

    Returns
    -------
    Tensor of shape ``input.shape + (embedding_dim,)``

    Raises
    ------
    TypeError
        If ``input`` does not hold integers.
    IndexError
        If an index is outside ``[0, num_embeddings)`` (as PyTorch raises).

    Examples
    --------
    >>> import numpy as np, qlearn.nn.functional as F
    >>> w = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> F.embedding([[2, 0], [1, 1]], w).numpy()
    array([[[4., 5.],
            [0., 1.]],
    <BLANKLINE>
           [[2., 3.],
            [2., 3.]]], dtype=float32)
    """
    _check_sparse(sparse)
    w = _check_weight(weight)
    idx = check_indices(input, w.shape[0])
    padding_idx = check_padding_idx(padding_idx, w.shape[0])
    _check_max_norm(max_norm, norm_type)
    if max_norm is not None:
        with no_grad():
            renorm_(w.data, idx, float(max_norm), float(norm_type))
    return EmbeddingFunction.apply(w, idx, padding_idx, bool(scale_grad_by_freq))


# -- embedding_bag ---------------------------------------------------------------------------
def bag_layout(idx, offsets, include_last_offset, name="input"):
    """``(flat_indices, bag_of_each_index, number_of_bags)`` for PyTorch's two layouts:
    a 2-d ``(B, N)`` input (bags of N, ``offsets`` None) or a 1-d input cut at
    ``offsets`` (``offsets[0] == 0``; with ``include_last_offset`` the last offset ends
    the last bag)."""
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(f"`offsets` must be None when `{name}` is 2-d (each row is "
                             f"a bag), got {type(offsets).__name__}")
        b, n = idx.shape
        return idx.reshape(-1), np.repeat(np.arange(b, dtype=np.int64), n), b
    if idx.ndim != 1:
        raise ValueError(f"`{name}` must be 1-d (with `offsets`) or 2-d, got {idx.ndim}-d")
    if offsets is None:
        raise ValueError(f"`offsets` must be a 1-d array of bag starts when `{name}` is "
                         f"1-d, got None")
    off = np.asarray(offsets.data if isinstance(offsets, Tensor) else offsets)
    if off.size == 0:                 # [] is float64 to NumPy
        off = off.astype(np.int64)
    if off.dtype.kind not in "iu" or off.ndim != 1:
        raise TypeError(f"`offsets` must be a 1-d array of integers, got {off.dtype} "
                        f"array of shape {off.shape}")
    off = off.astype(np.int64)
    if off.size and off[0] != 0:
        raise ValueError(f"`offsets[0]` must be 0 (the first bag starts at position 0), "
                         f"got {off[0]}")
    if off.size and (np.any(np.diff(off) < 0) or off[-1] > idx.size):
        raise ValueError(f"`offsets` must be non-decreasing and at most len({name}) = "
                         f"{idx.size}, got {off.tolist()[:8]}")
    if include_last_offset:
        if off.size == 0:
            raise ValueError("`offsets` must not be empty with include_last_offset=True")
        nbags, ends = off.size - 1, off[1:]
        starts = off[:-1]
    else:
        nbags, starts = off.size, off
        ends = np.append(off[1:], idx.size) if off.size else off
    length = ends - starts
    # bags are contiguous from position 0, so the used entries are a prefix
    flat = idx[:int(ends[-1])] if nbags else idx[:0]
    return flat, np.repeat(np.arange(nbags, dtype=np.int64), length), nbags


def bag_reduce(weight, idx, bag_of, nbags, per_sample_weights=None, mode="sum",
               fused=True):
    """``(out, winner)`` of the bags of ``weight[idx]`` (``winner`` for ``"max"``, else
    None), by the Cython kernel; its NumPy twin is
    :func:`qlearn.reference.embedding_bag_forward_ref`."""
    weight = np.ascontiguousarray(weight, np.float32)
    bounds = np.searchsorted(bag_of, np.arange(nbags + 1), side="left").astype(np.int64)
    out = np.empty((nbags, weight.shape[1]), np.float32)
    winner = np.full((nbags, weight.shape[1]) if mode == "max" else (0, 0), -1, np.int64)
    _kernels.embedding_bag_forward(weight, idx, bounds, per_sample_weights,
                                   2 if mode == "max" else 0, fused, out, winner)
    return out, (winner if mode == "max" else None)


class EmbeddingBagFunction(Function):
    """The bag reductions of :func:`embedding_bag` and their gradients."""

    @staticmethod
    def forward(ctx, weight, per_sample_weights, idx, bag_of, nbags, mode, freq, fused):
        # the typed kernel computes what reference.embedding_bag_forward_ref spells out
        out, winner = bag_reduce(weight, idx, bag_of, nbags, per_sample_weights,
                                 "max" if mode == "max" else "sum", fused)
        if mode == "max":
            ctx.winner = winner
        else:
            if mode == "mean":
                count = np.bincount(bag_of, minlength=nbags).astype(np.float32)
                out = out / np.maximum(count, 1)[:, None]
                ctx.count = count
        ctx.shape, ctx.idx, ctx.bag_of, ctx.mode, ctx.freq = weight.shape, idx, bag_of, \
            mode, freq
        ctx.save_for_backward(weight, per_sample_weights)
        return out

    @staticmethod
    def backward(ctx, grad):
        weight, psw = ctx.saved_tensors
        grad = np.asarray(grad, np.float32)
        gw = np.zeros(ctx.shape, np.float32)
        idx, bag_of = ctx.idx, ctx.bag_of
        if ctx.mode == "max":
            b, d = np.nonzero(ctx.winner >= 0)
            np.add.at(gw, (idx[ctx.winner[b, d]], d), grad[b, d])
            return gw, None, None, None, None, None, None, None
        g = grad[bag_of]
        if ctx.mode == "mean":
            g = g / np.maximum(ctx.count, 1)[bag_of, None]
        gpsw = None
        if psw is not None:      # psw is laid out as idx (see _SelectFunction)
            gpsw = np.sum(g * weight[idx], axis=1)
            g = g * psw[:, None]
        if ctx.freq is not None:
            g = g / ctx.freq[idx, None]
        np.add.at(gw, idx, g)
        return gw, gpsw, None, None, None, None, None, None


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2.0,
                  scale_grad_by_freq=False, mode="mean", sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    r"""Sum, mean or max of the embedding rows of each bag of indices.

    .. math::

       y_b = \sum_{p \in b} w_p\, W_{i_p}, \qquad
       y_b = \frac{1}{|b|}\sum_{p \in b} W_{i_p}, \qquad
       y_{b,d} = \max_{p \in b} W_{i_p, d}

    Parameters
    ----------
    input : Tensor or array_like of int
        1-d indices cut into bags at ``offsets``, or 2-d ``(B, N)``: B bags of N.
    weight : Tensor or array_like of float, shape (num_embeddings, embedding_dim)
    offsets : array_like of int, optional
        Start of each bag in a 1-d ``input`` (``offsets[0] == 0``, non-decreasing).
    max_norm, norm_type
        As in :func:`embedding`.
    scale_grad_by_freq : bool
        Divide each row's gradient by its count in ``input`` (not with ``"max"``).
    mode : {"sum", "mean", "max"}
        The reduction (default ``"mean"``, PyTorch's).
    sparse : bool
        Must be False.
    per_sample_weights : Tensor or array_like of float, optional
        :math:`w_p`, same shape as ``input``; ``mode="sum"`` only.  Gets a gradient.
    include_last_offset : bool
        ``offsets`` has B + 1 entries, the last one ending the last bag.
    padding_idx : int, optional
        Entries equal to it are left out of their bag (and of the mean's count).

    Returns
    -------
    Tensor of shape (B, embedding_dim)

    Raises
    ------
    ValueError
        For an unknown ``mode``, ``per_sample_weights`` with a mode other than sum or
        of the wrong shape, ``offsets`` given with a 2-d input or missing for a 1-d
        one, ``offsets[0] != 0``, decreasing offsets, or ``scale_grad_by_freq`` with
        ``"max"``.
    NotImplementedError
        For ``sparse=True``.

    Examples
    --------
    >>> import numpy as np, qlearn.nn.functional as F
    >>> w = np.arange(8, dtype=np.float32).reshape(4, 2)
    >>> F.embedding_bag([0, 1, 3, 2], w, offsets=[0, 3], mode="sum").numpy()
    array([[ 8., 11.],
           [ 4.,  5.]], dtype=float32)
    >>> F.embedding_bag([[0, 1], [3, 3]], w, mode="max").numpy()
    array([[2., 3.],
           [6., 7.]], dtype=float32)
    """
    _check_sparse(sparse)
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of 'sum', 'mean' or 'max', got {mode!r}")
    w = _check_weight(weight)
    n = w.shape[0]
    idx_in = check_indices(input, n)
    padding_idx = check_padding_idx(padding_idx, n)
    _check_max_norm(max_norm, norm_type)
    if scale_grad_by_freq and mode == "max":
        raise ValueError("`scale_grad_by_freq=True` is not supported with mode='max' "
                         "(as in PyTorch)")
    psw = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError(f"`per_sample_weights` is only supported for mode='sum', "
                             f"got mode={mode!r} (as in PyTorch)")
        psw = _tensor(per_sample_weights, "per_sample_weights")
        if psw.shape != idx_in.shape:
            raise ValueError(f"`per_sample_weights` must have the shape of `input` "
                             f"{idx_in.shape}, got {psw.shape}")
    # positions of the flattened input, laid out bag by bag
    pos, bag_of, nbags = bag_layout(np.arange(idx_in.size).reshape(idx_in.shape), offsets,
                                    include_last_offset)
    if padding_idx is not None:
        keep = idx_in.reshape(-1)[pos] != padding_idx
        pos, bag_of = pos[keep], bag_of[keep]
    idx = idx_in.reshape(-1)[pos]
    if max_norm is not None:
        with no_grad():
            renorm_(w.data, idx, float(max_norm), float(norm_type))
    freq = None
    if scale_grad_by_freq:
        freq = np.bincount(idx_in.reshape(-1), minlength=n).astype(np.float32)
    psw = None if psw is None else _SelectFunction.apply(psw, pos)
    return EmbeddingBagFunction.apply(w, psw, idx, bag_of, nbags, mode, freq,
                                      padding_idx is None)


class _SelectFunction(Function):
    """``x.reshape(-1)[positions]`` (the per-sample weights laid out bag by bag)."""

    @staticmethod
    def forward(ctx, x, positions):
        ctx.shape, ctx.positions = x.shape, positions
        return x.reshape(-1)[positions]

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(int(np.prod(ctx.shape)), np.float32)
        np.add.at(out, ctx.positions, grad)
        return out.reshape(ctx.shape), None
