r"""One- and three-dimensional convolutions (``torch.nn.functional.conv1d`` / ``conv3d``).

A convolution over :math:`d` spatial axes is the 2-d one with more (or fewer) window
indices.  With :math:`\mathbf p` an output position, :math:`\mathbf k` a kernel offset
and :math:`S, P, D` the per-axis stride, padding and dilation,

.. math::

   y_{n,o,\mathbf p} = b_o + \sum_{c < C/G} \sum_{\mathbf k} W_{o,c,\mathbf k}\,
   x_{n,\, g(o) C/G + c,\; \mathbf p S - P + \mathbf k D}, \qquad
   O_i = \Big\lfloor \frac{L_i + P_i^{lo} + P_i^{hi} - D_i (K_i - 1) - 1}{S_i}
   \Big\rfloor + 1

for output channel :math:`o` in group :math:`g(o)`.  :class:`ConvNdFunction` computes it
for any :math:`d` as one matrix product per group over a patch matrix ("im2col"),
gathered with one strided slice per kernel offset :math:`\mathbf k`; the backward pass
is the same three products as :class:`~qlearn.nn.functional.Conv2dFunction`'s
(:math:`dW_g = G_g\,\mathrm{cols}_g^\top`, :math:`d\mathrm{cols}_g = W_g^\top G_g`,
then the patches added back where they were read).  ``padding_mode`` other than
``"zeros"`` is an index map of each padded axis onto the input (reflect, replicate,
circular), so its gradient is a scatter-add through the same map.

The 2-d convolution keeps its Cython im2col (:func:`qlearn.nn.functional.conv2d`).
"""
import itertools
import math
import numbers

import numpy as np

from ..autograd import Function
from .functional import _optional, _tensor

__all__ = ["conv1d", "conv3d", "ConvNdFunction", "conv_padding"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n, name, minimum):
    """An int or a tuple of ``n`` ints, each >= ``minimum``, as a tuple of ``n`` ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        vals = (value,) * n
    elif isinstance(value, (tuple, list)):
        vals = tuple(value)
    else:
        vals = None
    if vals is None or len(vals) != n or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in vals):
        what = "an int" if n == 1 else f"an int or a tuple of {n} ints"
        raise TypeError(f"`{name}` must be {what}, got {value!r}")
    if min(vals) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in vals)


def conv_padding(padding, kernel_size, stride, dilation):
    r"""Per-axis ``(lo, hi)`` padding from an int, a tuple, ``"valid"`` or ``"same"``.

    ``"same"`` pads a total of :math:`D (K - 1)` per axis, :math:`\lfloor D(K-1)/2
    \rfloor` before and the rest after (PyTorch's split for even kernels); it needs
    stride 1, as PyTorch's.

    >>> from qlearn.nn.functional_conv_nd import conv_padding
    >>> conv_padding("same", (4,), (1,), (1,))
    ((1, 2),)
    >>> conv_padding(2, (3, 3), (1, 1), (1, 1))
    ((2, 2), (2, 2))
    """
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' is not supported for strided "
                                 f"convolutions, got `stride` {stride}")
            spans = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
            return tuple((s // 2, s - s // 2) for s in spans)
        raise ValueError(f"`padding` must be an int, a tuple of {n} ints, 'valid' or "
                         f"'same', got {padding!r}")
    p = _ntuple(padding, n, "padding", 0)
    return tuple((v, v) for v in p)


def _pad_index(size, lo, hi, mode):
    """Indices into an axis of length ``size`` for each position of the padded axis."""
    i = np.arange(-lo, size + hi)
    if mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= size, 2 * (size - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, size - 1)
    else:                                  # circular
        i = np.mod(i, size)
    return i


class ConvNdFunction(Function):
    r"""Convolution over the last ``d`` axes as patch matrix + one GEMM per group:

    Y_g = W_g cols_g + b_g,  dW_g = G_g cols_g^T,  dcols_g = W_g^T G_g,
    dx = the patches of dcols added back where they were read (and through the
    padding's index map).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, pads, dilation, groups, padding_mode):
        d = w.ndim - 2
        Cout, Cg = w.shape[:2]
        K = w.shape[2:]
        N, C = x.shape[:2]
        if padding_mode == "zeros":
            xp = np.pad(x, ((0, 0), (0, 0)) + pads) if any(map(any, pads)) else x
            index = None
        else:
            index = [_pad_index(x.shape[2 + i], lo, hi, padding_mode)
                     for i, (lo, hi) in enumerate(pads)]
            xp = x[np.ix_(np.arange(N), np.arange(C), *index)]
        out = tuple((xp.shape[2 + i] - dilation[i] * (K[i] - 1) - 1) // stride[i] + 1
                    for i in range(d))
        M = N * math.prod(out)
        kprod = math.prod(K)
        cols = np.empty((C, kprod, N) + out, x.dtype)
        for j, offs in enumerate(itertools.product(*map(range, K))):
            cols[:, j] = xp[_window(offs, out, stride, dilation)].swapaxes(0, 1)
        cols_g = cols.reshape(groups, Cg * kprod, M)
        w_g = w.reshape(groups, Cout // groups, Cg * kprod)
        y = np.matmul(w_g, cols_g).reshape((Cout, N) + out)
        if b is not None:
            y += b.reshape((Cout, 1) + (1,) * d)
        ctx.save_for_backward(cols_g if ctx.needs_input_grad[1] else None, w)
        ctx.geom = (x.shape, xp.shape, out, stride, pads, dilation, groups, index)
        ctx.has_bias = b is not None
        return np.moveaxis(y, 0, 1)

    @staticmethod
    def backward(ctx, g):
        cols_g, w = ctx.saved_tensors
        xshape, xpshape, out, stride, pads, dilation, groups, index = ctx.geom
        Cout = w.shape[0]
        K = w.shape[2:]
        g2 = np.ascontiguousarray(np.moveaxis(g, 1, 0)).reshape(groups, Cout // groups, -1)
        dx = dw = db = None
        if ctx.needs_input_grad[1]:
            dw = np.matmul(g2, cols_g.transpose(0, 2, 1)).reshape(w.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = g2.reshape(Cout, -1).sum(axis=1)
        if ctx.needs_input_grad[0]:
            w_g = w.reshape(groups, Cout // groups, -1)
            N, C = xshape[:2]
            dcols = np.matmul(w_g.transpose(0, 2, 1), g2).reshape(
                (C, math.prod(K), N) + out)
            dxp = np.zeros(xpshape, g2.dtype)
            for j, offs in enumerate(itertools.product(*map(range, K))):
                dxp[_window(offs, out, stride, dilation)] += dcols[:, j].swapaxes(0, 1)
            if index is None:
                dx = dxp[(slice(None), slice(None)) + tuple(
                    slice(lo, lo + xshape[2 + i]) for i, (lo, _) in enumerate(pads))]
            else:     # the adjoint of the gather: scatter-add along each padded axis
                dx = dxp
                for i, idx in enumerate(index):
                    axis = 2 + i
                    acc = np.zeros(dx.shape[:axis] + (xshape[axis],) + dx.shape[axis + 1:],
                                   dx.dtype)
                    np.add.at(np.moveaxis(acc, axis, 0), idx, np.moveaxis(dx, axis, 0))
                    dx = acc
        return dx, dw, db, None, None, None, None, None


def _window(offs, out, stride, dilation):
    """The slice of the padded input read by kernel offset ``offs`` at every output."""
    return (slice(None), slice(None)) + tuple(
        slice(k * dl, k * dl + s * (o - 1) + 1, s)
        for k, o, s, dl in zip(offs, out, stride, dilation))


def _batched(x, d, who):
    """``(x, unbatched)``: a ``d``-spatial-axis input with its batch axis (one added to
    an unbatched (C, ...) input), for the direct and the transposed convolutions."""
    if x.ndim not in (d + 1, d + 2):
        raise ValueError(f"{who}: `input` must be {d + 2}-d (N, C, ...) or {d + 1}-d "
                         f"(unbatched), got shape {x.shape}")
    unbatched = x.ndim == d + 1
    return (x.unsqueeze(0) if unbatched else x), unbatched


def _convnd(x, weight, bias, stride, padding, dilation, groups, padding_mode, d, who):
    x, w, b = _tensor(x), _tensor(weight, "weight"), _optional(bias, "bias")
    if w.ndim != d + 2:
        raise ValueError(f"{who}: `weight` must be {d + 2}-d (out_channels, "
                         f"in_channels/groups, *kernel_size), got shape {w.shape}")
    x, unbatched = _batched(x, d, who)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{who}: `groups` must be a positive int, got {groups!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{who}: `padding_mode` must be one of {_PADDING_MODES}, got "
                         f"{padding_mode!r}")
    Cout, Cg = w.shape[:2]
    K = tuple(w.shape[2:])
    C = x.shape[1]
    if Cout % groups or Cg * groups != C:
        raise ValueError(f"{who}: `weight` of shape {w.shape} with groups={groups} expects "
                         f"{Cg * groups} input channels and out_channels divisible by "
                         f"groups, got input of shape {x.shape}")
    if b is not None and b.shape != (Cout,):
        raise ValueError(f"{who}: `bias` must have shape ({Cout},), got {b.shape}")
    stride = _ntuple(stride, d, "stride", 1)
    dilation = _ntuple(dilation, d, "dilation", 1)
    pads = conv_padding(padding, K, stride, dilation)
    for i, (lo, hi) in enumerate(pads):
        size = x.shape[2 + i]
        if padding_mode in ("reflect", "circular") and max(lo, hi) > size - (
                padding_mode == "reflect"):
            limit = "smaller than" if padding_mode == "reflect" else "at most"
            raise ValueError(f"{who}: {padding_mode} padding {max(lo, hi)} must be {limit} "
                             f"the input size {size} of spatial axis {i}")
        if size + lo + hi - dilation[i] * (K[i] - 1) - 1 < 0:
            raise ValueError(f"{who}: input size {size} of spatial axis {i} (padded by "
                             f"{lo}+{hi}) is smaller than the dilated kernel "
                             f"{dilation[i] * (K[i] - 1) + 1}")
    y = ConvNdFunction.apply(x, w, b, stride, pads, dilation, int(groups), padding_mode)
    return y.squeeze(0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    r"""1-d cross-correlation (``torch.nn.functional.conv1d``).

    .. math::
        y_{n,o,p} = b_o + \sum_{c < C/G} \sum_{k < K} W_{o,c,k}\,
        x_{n,\, g(o) C/G + c,\; pS - P + kD}

    ``input`` is (N, C, L) or unbatched (C, L), ``weight`` (Cout, C/groups, K), ``bias``
    (Cout,) or None; ``stride``, ``padding`` and ``dilation`` are ints or 1-tuples
    (``padding`` may be ``"valid"`` or ``"same"``, which for an even kernel pads one
    more on the right, as PyTorch).  :math:`S` is ``stride``, :math:`P` ``padding``,
    :math:`D` ``dilation``, :math:`G` ``groups``.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.conv1d(np.arange(5.0).reshape(1, 1, 5), np.ones((1, 1, 2))).numpy()
    array([[[1., 3., 5., 7.]]], dtype=float32)
    >>> F.conv1d(np.ones((1, 1, 4)), np.ones((1, 1, 2)), padding="same").numpy()
    array([[[2., 2., 2., 1.]]], dtype=float32)
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, "zeros", 1,
                   "conv1d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    r"""3-d cross-correlation (``torch.nn.functional.conv3d``).

    .. math::
        y_{n,o,t,p,q} = b_o + \sum_{c,\,i,\,j,\,k} W_{o,c,i,j,k}\,
        x_{n,\, g(o) C/G + c,\; tS_D - P_D + iD_D,\; pS_H - P_H + jD_H,\;
        qS_W - P_W + kD_W}

    ``input`` is (N, C, D, H, W) or unbatched (C, D, H, W), ``weight``
    (Cout, C/groups, KD, KH, KW); ``stride``, ``padding`` and ``dilation`` are ints or
    triples (``padding`` may be ``"valid"`` or ``"same"``).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.conv3d(np.ones((1, 2, 3, 3, 3)), np.ones((4, 2, 2, 2, 2))).shape
    (1, 4, 2, 2, 2)
    >>> float(F.conv3d(np.ones((1, 1, 2, 2, 2)), np.ones((1, 1, 2, 2, 2))).numpy().item())
    8.0
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, "zeros", 3,
                   "conv3d")
