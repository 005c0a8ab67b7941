r"""Transposed convolutions (``torch.nn.functional.conv_transpose1d`` / ``conv_transpose2d``
/ ``conv_transpose3d``).

A transposed convolution is the adjoint of a convolution with the same geometry: every
input element spreads its value, weighted by the kernel, over the output positions
a convolution would have read it from,

.. math::

   y_{n,o,\mathbf q} = b_o + \sum_{c} \sum_{\mathbf p, \mathbf k:\
   \mathbf p S + \mathbf k D - P = \mathbf q} x_{n,c,\mathbf p}\, W_{c,\, o - g(c) O/G,\,
   \mathbf k}, \qquad
   O_i = (L_i - 1) S_i - 2 P_i + D_i (K_i - 1) + P^{out}_i + 1

with ``weight`` :math:`W` of shape (C, O/G, \*K) and :math:`P^{out}` the
``output_padding`` (which only lengthens the output at its end: it chooses among the
input lengths a strided convolution maps to the same size).  :class:`ConvTransposeNdFunction`
computes it as the products :math:`\mathrm{cols}_g = W_g^\top x_g` per group, then adds
each column back where a convolution would have read it ("col2im"); its backward pass
gathers the gradient's patches (im2col) and multiplies by :math:`W_g` and :math:`x_g`.
"""
import itertools
import math

import numpy as np

from ..autograd import Function
from .functional import _optional, _tensor
from .functional_conv_nd import _batched, _ntuple, _window

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "ConvTransposeNdFunction",
           "transposed_output_size", "transposed_array"]


def transposed_output_size(size, kernel, stride, padding, dilation, output_padding):
    r""":math:`(L - 1) S - 2P + D (K - 1) + P^{out} + 1` per spatial axis.

    >>> from qlearn.nn.functional_conv_transpose import transposed_output_size
    >>> transposed_output_size((5,), (3,), (2,), (1,), (1,), (1,))
    (10,)
    """
    return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, d, op in
                 zip(size, kernel, stride, padding, dilation, output_padding))


def transposed_array(x, w, stride, padding, dilation, output_padding, groups):
    r"""The transposed convolution of the arrays ``x`` (N, C, \*L) and ``w``
    (C, O/G, \*K), without bias: ``(y, x_g, full, out)`` with ``x_g`` the grouped input
    matrix and ``full`` / ``out`` the uncropped and cropped output sizes.  Exact for
    integer-valued float64 arrays (the int8 transposed convolution uses it so)."""
    C, Og = w.shape[:2]
    K = w.shape[2:]
    N, L = x.shape[0], x.shape[2:]
    kprod, M = math.prod(K), x.shape[0] * math.prod(L)
    x_g = np.ascontiguousarray(np.moveaxis(x, 1, 0)).reshape(groups, C // groups, M)
    w_g = w.reshape(groups, C // groups, Og * kprod)
    cols = np.matmul(w_g.transpose(0, 2, 1), x_g)              # (G, Og*kprod, M)
    cols = cols.reshape((groups * Og, kprod, N) + tuple(L))
    full = tuple((n - 1) * s + dl * (k - 1) + 1 + op for n, k, s, dl, op in
                 zip(L, K, stride, dilation, output_padding))
    buf = np.zeros((N, groups * Og) + full, cols.dtype)
    for j, offs in enumerate(itertools.product(*map(range, K))):   # col2im
        buf[_window(offs, L, stride, dilation)] += cols[:, j].swapaxes(0, 1)
    out = tuple(f - 2 * p for f, p in zip(full, padding))
    y = buf[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in
                                               zip(padding, out))]
    return y, x_g, full, out


class ConvTransposeNdFunction(Function):
    r"""Transposed convolution over the last ``d`` axes:

    cols_g = W_g^T x_g, y = col2im(cols) cropped by the padding;
    dx_g = W_g im2col(G)_g,  dW_g = x_g im2col(G)_g^T,  db = sum G.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, output_padding, groups):
        y, x_g, full, out = transposed_array(x, w, stride, padding, dilation,
                                             output_padding, groups)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * (w.ndim - 2))
        ctx.save_for_backward(x_g if ctx.needs_input_grad[1] else None, w)
        ctx.geom = (x.shape, full, out, stride, padding, dilation, groups)
        ctx.has_bias = b is not None
        return np.ascontiguousarray(y)

    @staticmethod
    def backward(ctx, g):
        x_g, w = ctx.saved_tensors
        xshape, full, out, stride, padding, dilation, groups = ctx.geom
        C, Og = w.shape[:2]
        K = w.shape[2:]
        N, L = xshape[0], xshape[2:]
        kprod = math.prod(K)
        gp = np.zeros((N, groups * Og) + full, g.dtype)
        gp[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in
                                              zip(padding, out))] = g
        dcols = np.empty((groups * Og, kprod, N) + tuple(L), g.dtype)
        for j, offs in enumerate(itertools.product(*map(range, K))):
            dcols[:, j] = gp[_window(offs, L, stride, dilation)].swapaxes(0, 1)
        dcols = dcols.reshape(groups, Og * kprod, -1)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            w_g = w.reshape(groups, C // groups, Og * kprod)
            dx = np.matmul(w_g, dcols).reshape((C, N) + tuple(L))
            dx = np.moveaxis(dx, 0, 1)
        if ctx.needs_input_grad[1]:
            dw = np.matmul(x_g, dcols.transpose(0, 2, 1)).reshape(w.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
        return dx, dw, db, None, None, None, None, None


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                      dilation, d, who):
    x, w, b = _tensor(input), _tensor(weight, "weight"), _optional(bias, "bias")
    if w.ndim != d + 2:
        raise ValueError(f"{who}: `weight` must be {d + 2}-d (in_channels, "
                         f"out_channels/groups, *kernel_size), got shape {w.shape}")
    x, unbatched = _batched(x, d, who)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{who}: `groups` must be a positive int, got {groups!r}")
    C, Og = w.shape[:2]
    if x.shape[1] != C or C % groups:
        raise ValueError(f"{who}: `weight` of shape {w.shape} expects {C} input channels "
                         f"(divisible by groups={groups}), got input of shape {x.shape}")
    if b is not None and b.shape != (Og * groups,):
        raise ValueError(f"{who}: `bias` must have shape ({Og * groups},), got {b.shape}")
    if isinstance(padding, str):
        raise ValueError(f"{who}: `padding` must be an int or a tuple of ints (string "
                         f"padding is not defined for transposed convolutions), got "
                         f"{padding!r}")
    stride = _ntuple(stride, d, "stride", 1)
    padding = _ntuple(padding, d, "padding", 0)
    dilation = _ntuple(dilation, d, "dilation", 1)
    output_padding = _ntuple(output_padding, d, "output_padding", 0)
    for i in range(d):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"{who}: `output_padding` must be smaller than either "
                             f"stride or dilation, got output_padding {output_padding}, "
                             f"stride {stride}, dilation {dilation}")
    out = transposed_output_size(x.shape[2:], w.shape[2:], stride, padding, dilation,
                                 output_padding)
    if min(out) < 1:
        raise ValueError(f"{who}: the output size {out} for input of shape {x.shape} is "
                         f"not positive (padding {padding} is too large)")
    y = ConvTransposeNdFunction.apply(x, w, b, stride, padding, dilation, output_padding,
                                      int(groups))
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    r"""1-d transposed convolution (``torch.nn.functional.conv_transpose1d``): the
    adjoint of :func:`conv1d`, output length :math:`(L-1)S - 2P + D(K-1) + P^{out} + 1`.
    ``weight`` is (C, O/groups, K).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.ones((1, 1, 3)), stride=2).numpy()
    array([[[1., 1., 3., 2., 2.]]], dtype=float32)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    r"""2-d transposed convolution (``torch.nn.functional.conv_transpose2d``).
    ``weight`` is (C, O/groups, KH, KW).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2))).numpy()[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    r"""3-d transposed convolution (``torch.nn.functional.conv_transpose3d``): per axis
    :math:`O_i = (L_i-1)S_i - 2P_i + D_i(K_i-1) + P^{out}_i + 1`.  ``weight`` is
    (C, O/groups, KD, KH, KW); input (N, C, D, H, W) or unbatched (C, D, H, W).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> y = F.conv_transpose3d(np.ones((1, 1, 2, 2, 2)), np.ones((1, 1, 2, 2, 2)))
    >>> y.shape, float(y.numpy()[0, 0, 1, 1, 1])
    ((1, 1, 3, 3, 3), 8.0)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 3, "conv_transpose3d")
