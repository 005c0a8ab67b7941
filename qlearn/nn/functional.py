r"""Functional forms of the float layers (``torch.nn.functional``).

Every function accepts a :class:`qlearn.Tensor` or a NumPy array (float32 or float64,
converted to float32) and returns a Tensor.  The layers with a hand-written gradient
(linear, conv2d, batch_norm, pooling, nll_loss) are :class:`~qlearn.autograd.Function`
subclasses defined here, each ``forward`` followed by its ``backward``; they compute in
the dtype of their inputs, so the tests check them in float64 against finite
differences.  Conv2d and pooling call the typed Cython kernels through their wrapper,
:mod:`qlearn.kernels.float_conv`; this module validates every argument first.
"""
import numbers

import numpy as np

from ..autograd import Function, Tensor, ops
from ..autograd.random import get_generator
from ..kernels import float_conv as _kernels
from ..qtensor import QTensor

__all__ = ["linear", "conv2d", "batch_norm", "relu", "relu6", "hardtanh", "leaky_relu",
           "sigmoid", "tanh", "softmax", "log_softmax", "max_pool2d", "avg_pool2d",
           "adaptive_avg_pool2d", "flatten", "dropout", "nll_loss", "cross_entropy",
           "mse_loss", "l1_loss"]


# -- argument checks ---------------------------------------------------------------------
def _tensor(x, name="input"):
    """``x`` as a Tensor: Tensors pass through, float arrays are converted to float32."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, QTensor):
        raise TypeError(f"`{name}` is a QTensor, but float layers and functions take float "
                        f"arrays: dequantize it first (a DeQuantStub before this layer)")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:     # a ragged nested list, an odd object
        raise TypeError(f"`{name}` must be a qlearn.Tensor or a float array, got "
                        f"{type(x).__name__}: {exc}") from None
    if arr.dtype.kind != "f":
        raise TypeError(f"`{name}` must be a qlearn.Tensor or a float array, got "
                        f"{type(x).__name__} of dtype {arr.dtype}")
    return Tensor(arr.astype(np.float32, copy=False))


def _optional(x, name):
    return None if x is None else _tensor(x, name)


def _pair(value, name, minimum):
    """An int or a pair of ints, each >= ``minimum``, as a tuple of two ints."""
    vals = (value, value) if isinstance(value, numbers.Integral) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if vals is None or len(vals) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in vals):
        raise TypeError(f"`{name}` must be an int or a pair of ints, got {value!r}")
    if min(vals) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return int(vals[0]), int(vals[1])


def _check_ndim(x, ndims, name="input"):
    if x.ndim not in ndims:
        raise ValueError(f"`{name}` must have {' or '.join(map(str, ndims))} dimensions, "
                         f"got shape {x.shape}")


def _out_size(size, k, s, p, d, ceil_mode=False):
    """floor((size + 2p - d(k - 1) - 1) / s) + 1 (ceil with ``ceil_mode``, as PyTorch)."""
    span = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:  # the last window must start inside the input
            out -= 1
        return out
    return span // s + 1


# -- linear ------------------------------------------------------------------------------
class LinearFunction(Function):
    r"""y = x W^T + b;  dx = g W,  dW = g^T x,  db = sum_rows g"""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        y = np.matmul(x, w.T)
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = np.matmul(g, w)
        g2 = g.reshape(-1, g.shape[-1])
        if ctx.needs_input_grad[1]:
            dw = g2.T @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = g2.sum(axis=0)
        return dx, dw, db


def linear(input, weight, bias=None):
    r"""Affine map :math:`y = x W^\top + b` (``torch.nn.functional.linear``).

    ``input`` is (\*, in_features), ``weight`` (out_features, in_features) and ``bias``
    (out_features,) or None.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.linear(np.ones((1, 2)), np.array([[1.0, 2.0]]), np.array([0.5])).numpy()
    array([[3.5]], dtype=float32)
    """
    x, w, b = _tensor(input), _tensor(weight, "weight"), _optional(bias, "bias")
    if w.ndim != 2:
        raise ValueError(f"`weight` must be 2-d (out_features, in_features), got shape "
                         f"{w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"`input` must end in in_features={w.shape[1]}, got shape {x.shape}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"`bias` must have shape ({w.shape[0]},), got {b.shape}")
    return LinearFunction.apply(x, w, b)


# -- convolution -------------------------------------------------------------------------
class Conv2dFunction(Function):
    r"""Convolution as im2col + GEMM, per group g:

    Y_g = W_g cols_g + b_g,  dW_g = G_g cols_g^T,  dcols_g = W_g^T G_g,  dx = col2im(dcols)
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        N, C, H, W = x.shape
        Cout, Cg, KH, KW = w.shape
        (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
        OH = _out_size(H, KH, SH, PH, DH)
        OW = _out_size(W, KW, SW, PW, DW)
        R, Og = Cg * KH * KW, Cout // groups
        cols = np.empty((C * KH * KW, N * OH * OW), x.dtype)
        _kernels.im2col(x, cols, KH, KW, SH, SW, PH, PW, DH, DW)
        w2 = w.reshape(Cout, R)
        y2 = np.empty((Cout, N * OH * OW), np.result_type(x, w))
        for g in range(groups):
            np.matmul(w2[g * Og:(g + 1) * Og], cols[g * R:(g + 1) * R],
                      out=y2[g * Og:(g + 1) * Og])
        if b is not None:
            y2 += b[:, None]
        ctx.save_for_backward(cols if ctx.needs_input_grad[1] else None, w)
        ctx.geom = (x.shape, KH, KW, SH, SW, PH, PW, DH, DW, groups, OH, OW)
        ctx.has_bias = b is not None
        return y2.reshape(Cout, N, OH, OW).transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, g):
        cols, w = ctx.saved_tensors
        xshape, KH, KW, SH, SW, PH, PW, DH, DW, groups, OH, OW = ctx.geom
        N, C, H, W = xshape
        Cout = w.shape[0]
        R, Og = w.shape[1] * KH * KW, Cout // groups
        g2 = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(Cout, N * OH * OW)
        dx = dw = db = None
        if ctx.needs_input_grad[1]:
            dw = np.empty((Cout, R), g2.dtype)
            for k in range(groups):
                np.matmul(g2[k * Og:(k + 1) * Og], cols[k * R:(k + 1) * R].T,
                          out=dw[k * Og:(k + 1) * Og])
            dw = dw.reshape(w.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = g2.sum(axis=1)
        if ctx.needs_input_grad[0]:
            w2 = w.reshape(Cout, R)
            dcols = np.empty((C * KH * KW, N * OH * OW), g2.dtype)
            for k in range(groups):
                np.matmul(w2[k * Og:(k + 1) * Og].T, g2[k * Og:(k + 1) * Og],
                          out=dcols[k * R:(k + 1) * R])
            dx = np.empty(xshape, g2.dtype)
            _kernels.col2im(dcols, dx, KH, KW, SH, SW, PH, PW, DH, DW)
        return dx, dw, db, None, None, None, None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    r"""2-d cross-correlation (``torch.nn.functional.conv2d``).

    .. math::
        y_{n,o,p,q} = b_o + \sum_{c,i,j} W_{o,c,i,j}\,
        x_{n,\,g(o)C_g + c,\; pS_H - P_H + iD_H,\; qS_W - P_W + jD_W}

    computed as one matrix product per group, :math:`Y = W\,\mathrm{im2col}(x) + b`.
    ``input`` is (N, C, H, W), ``weight`` (Cout, C/groups, KH, KW); ``stride``,
    ``padding`` and ``dilation`` are ints or pairs (``padding`` may be ``"valid"`` or
    ``"same"`` for stride 1).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> F.conv2d(x, np.ones((1, 1, 2, 2))).numpy()
    array([[[[ 8., 12.],
             [20., 24.]]]], dtype=float32)
    """
    x, w, b = _tensor(input), _tensor(weight, "weight"), _optional(bias, "bias")
    _check_ndim(x, (4,))
    _check_ndim(w, (4,), "weight")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"`groups` must be a positive int, got {groups!r}")
    Cout, Cg, KH, KW = w.shape
    C = x.shape[1]
    if C % groups or Cout % groups or Cg * groups != C:
        raise ValueError(f"`weight` of shape {w.shape} with groups={groups} expects "
                         f"{Cg * groups} input channels, got input of shape {x.shape} "
                         f"(channels must divide by groups)")
    if b is not None and b.shape != (Cout,):
        raise ValueError(f"`bias` must have shape ({Cout},), got {b.shape}")
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            spans = (dilation[0] * (KH - 1), dilation[1] * (KW - 1))
            if stride != (1, 1) or spans[0] % 2 or spans[1] % 2:
                raise ValueError("padding='same' needs stride 1 and an odd effective "
                                 f"kernel size, got stride {stride} and kernel {(KH, KW)}")
            padding = (spans[0] // 2, spans[1] // 2)
        else:
            raise ValueError(f"`padding` must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
    padding = _pair(padding, "padding", 0)
    for axis, size, k, i in (("height", x.shape[2], KH, 0), ("width", x.shape[3], KW, 1)):
        if _out_size(size, k, stride[i], padding[i], dilation[i]) < 1:
            raise ValueError(f"input {axis} {size} (padded by {padding[i]}) is smaller than "
                             f"the dilated kernel {dilation[i] * (k - 1) + 1}")
    return Conv2dFunction.apply(x, w, b, stride, padding, dilation, int(groups))


# -- batch norm --------------------------------------------------------------------------
class BatchNormFunction(Function):
    r"""y = \hat x \gamma + \beta,  \hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}

    With ``batch_stats`` the batch's own mean and biased variance are used (computed
    here when ``mean`` and ``var`` are None; the caller may pass them when it has them
    already) and the backward pass is
    dx = (\gamma / \sqrt{\sigma^2+\epsilon}) (g - mean(g) - \hat x mean(g \hat x));
    with given (running) statistics it is dx = g \gamma / \sqrt{\sigma^2+\epsilon}.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, axes, batch_stats):
        if batch_stats and mean is None:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = (x - mean.reshape(shape).astype(x.dtype)) * invstd.reshape(shape)
        y = xhat if weight is None else xhat * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.axes, ctx.shape, ctx.batch_stats = axes, shape, batch_stats
        return y

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, weight = ctx.saved_tensors
        axes, shape = ctx.axes, ctx.shape
        dw = (g * xhat).sum(axis=axes) if ctx.needs_input_grad[1] else None
        db = g.sum(axis=axes) if ctx.needs_input_grad[2] else None
        dx = None
        if ctx.needs_input_grad[0]:
            scale = invstd if weight is None else invstd * weight
            if ctx.batch_stats:
                gm = g.mean(axis=axes, keepdims=True)
                gxm = (g * xhat).mean(axis=axes, keepdims=True)
                dx = (g - gm - xhat * gxm) * scale.reshape(shape)
            else:
                dx = g * scale.reshape(shape)
        return dx, dw, db, None, None, None, None, None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    r"""Batch normalisation (``torch.nn.functional.batch_norm``).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}}\,\gamma + \beta

    per channel (axis 1).  With ``training=True`` the batch statistics (biased
    variance) normalise, and the running ones are updated in place:
    :math:`\hat\mu \leftarrow (1-m)\hat\mu + m\mu`,
    :math:`\hat\sigma^2 \leftarrow (1-m)\hat\sigma^2 + m\,\sigma^2 \frac{n}{n-1}`
    (unbiased), with :math:`m` = ``momentum``.  Otherwise ``running_mean`` and
    ``running_var`` normalise.  :math:`\gamma` is ``weight``, :math:`\beta` ``bias``.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> x = np.array([[1.0], [3.0]])
    >>> rm, rv = np.zeros(1, np.float32), np.ones(1, np.float32)
    >>> F.batch_norm(x, rm, rv, training=True).numpy().round(3)
    array([[-1.],
           [ 1.]], dtype=float32)
    >>> rm, rv
    (array([0.2], dtype=float32), array([1.1], dtype=float32))
    """
    x = _tensor(input)
    _check_ndim(x, (2, 3, 4, 5))
    C = x.shape[1]
    w, b = _optional(weight, "weight"), _optional(bias, "bias")
    for t, name in ((w, "weight"), (b, "bias")):
        if t is not None and t.shape != (C,):
            raise ValueError(f"`{name}` must have shape ({C},), got {t.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        n = x.data.size // C
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got "
                             f"input of shape {x.shape}")
        mean, var = x.data.mean(axis=axes), x.data.var(axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += (momentum * n / (n - 1)) * var       # unbiased
        return BatchNormFunction.apply(x, w, b, mean, var, float(eps), axes, True)
    if running_mean is None or running_var is None:
        raise ValueError("`running_mean` and `running_var` are needed when training=False")
    rm = np.asarray(running_mean, np.float32)
    rv = np.asarray(running_var, np.float32)
    return BatchNormFunction.apply(x, w, b, rm, rv, float(eps), axes, False)


# -- activations -------------------------------------------------------------------------
def relu(input, inplace=False):
    r"""Rectifier :math:`y = \max(x, 0)`; the gradient is 1 where :math:`x > 0`.

    >>> from qlearn.nn import functional as F
    >>> F.relu(np.array([-1.0, 2.0])).numpy()
    array([0., 2.], dtype=float32)
    """
    return ops.ReLU.apply(_tensor(input))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    r""":math:`y = \min(\max(x, a), b)` with :math:`a` = ``min_val``, :math:`b` =
    ``max_val``; the gradient is 1 where :math:`a < x < b` (as PyTorch).

    >>> from qlearn.nn import functional as F
    >>> F.hardtanh(np.array([-3.0, 0.5, 3.0])).numpy()
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    if not min_val < max_val:
        raise ValueError(f"`min_val` must be below `max_val`, got {min_val} and {max_val}")
    return ops.Hardtanh.apply(_tensor(input), float(min_val), float(max_val))


def relu6(input, inplace=False):
    r""":math:`y = \min(\max(x, 0), 6)`, i.e. ``hardtanh(x, 0, 6)``.

    >>> from qlearn.nn import functional as F
    >>> F.relu6(np.array([-1.0, 7.0])).numpy()
    array([0., 6.], dtype=float32)
    """
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    r""":math:`y = x` for :math:`x > 0`, else :math:`\alpha x` (``negative_slope``).

    >>> from qlearn.nn import functional as F
    >>> F.leaky_relu(np.array([-1.0, 2.0]), 0.1).numpy()
    array([-0.1,  2. ], dtype=float32)
    """
    x = _tensor(input)
    return ops.Where.apply(x.data > 0, x, x * np.float32(negative_slope))


def sigmoid(input):
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`.

    >>> from qlearn.nn import functional as F
    >>> F.sigmoid(np.array([0.0])).numpy()
    array([0.5], dtype=float32)
    """
    return ops.Sigmoid.apply(_tensor(input))


def tanh(input):
    r""":math:`\tanh x`.

    >>> from qlearn.nn import functional as F
    >>> F.tanh(np.array([0.0])).numpy()
    array([0.], dtype=float32)
    """
    return ops.Tanh.apply(_tensor(input))


def softmax(input, dim):
    r""":math:`y_i = e^{x_i} / \sum_j e^{x_j}` along ``dim``.

    >>> from qlearn.nn import functional as F
    >>> F.softmax(np.array([0.0, 0.0]), dim=0).numpy()
    array([0.5, 0.5], dtype=float32)
    """
    return _tensor(input).softmax(dim)


def log_softmax(input, dim):
    r""":math:`y_i = x_i - \log \sum_j e^{x_j}` along ``dim`` (computed stably).

    >>> from qlearn.nn import functional as F
    >>> F.log_softmax(np.array([0.0, 0.0]), dim=0).numpy().round(4)
    array([-0.6931, -0.6931], dtype=float32)
    """
    return _tensor(input).log_softmax(dim)


def flatten(input, start_dim=1, end_dim=-1):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one (``torch.flatten``).

    >>> from qlearn.nn import functional as F
    >>> F.flatten(np.zeros((2, 3, 4))).shape
    (2, 12)

    A QTensor is reshaped as it is (the integers keep their scale and zero point).
    """
    if isinstance(input, QTensor):
        shape = input.shape
        end = end_dim % len(shape) if shape else 0
        start = start_dim % len(shape) if shape else 0
        merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
        return input.reshape(tuple(shape[:start]) + (merged,) + tuple(shape[end + 1:]))
    return _tensor(input).flatten(start_dim, end_dim)


def dropout(input, p=0.5, training=True, inplace=False):
    r"""Zero each element with probability ``p`` and scale the rest by
    :math:`1/(1-p)` (inverted dropout), when ``training``; identity otherwise.

    >>> from qlearn.nn import functional as F
    >>> F.dropout(np.ones(3), p=0.5, training=False).numpy()
    array([1., 1., 1.], dtype=float32)
    """
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}")
    x = _tensor(input)
    if not training or p == 0:
        return x
    if p == 1:
        return x * np.zeros(x.shape, np.float32)
    keep = get_generator().random(x.shape, dtype=np.float32) >= p
    return x * (keep * np.float32(1.0 / (1.0 - p)))


# -- pooling -----------------------------------------------------------------------------
def _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode):
    _check_ndim(x, (3, 4))
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    d = _pair(dilation, "dilation", 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"`padding` must be at most half of kernel_size {k}, got {p}")
    H, W = x.shape[-2:]
    out = (_out_size(H, k[0], s[0], p[0], d[0], ceil_mode),
           _out_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    if min(out) < 1:
        raise ValueError(f"input of shape {x.shape} is too small for kernel_size {k} "
                         f"with padding {p} and dilation {d}")
    return k, s, p, d, out


def _as4d(x):
    return x if x.ndim == 4 else x[None]


class MaxPool2dFunction(Function):
    """y = max over each window; the gradient goes to the window's (first) arg-max."""

    @staticmethod
    def forward(ctx, x, k, s, p, d, out):
        x4 = np.ascontiguousarray(_as4d(x))
        N, C = x4.shape[:2]
        y = np.empty((N, C) + out, x.dtype)
        idx = np.empty((N, C) + out, np.int64)
        _kernels.max_pool2d_forward(x4, y, idx, *k, *s, *p, *d)
        ctx.save_for_backward(idx)
        ctx.xshape = x.shape
        return y.reshape(x.shape[:-2] + out)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        N, C = idx.shape[:2]
        H, W = ctx.xshape[-2:]
        dx = np.empty((N, C, H * W), g.dtype)
        _kernels.max_pool2d_backward(np.ascontiguousarray(g.reshape(idx.shape)), idx, dx)
        return dx.reshape(ctx.xshape), None, None, None, None, None


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""2-d max pooling (``torch.nn.functional.max_pool2d``).

    .. math:: y_{n,c,p,q} = \max_{i<K_H,\,j<K_W} x_{n,c,\,pS_H-P_H+iD_H,\,qS_W-P_W+jD_W}

    (padding counts as :math:`-\infty`).  ``stride`` defaults to ``kernel_size``.  With
    ``return_indices`` also returns the flat index :math:`h W + w` of each maximum.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2).numpy()
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    """
    x = _tensor(input)
    k, s, p, d, out = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
    fn_out = MaxPool2dFunction.apply(x, k, s, p, d, out)
    if return_indices:
        idx = np.empty(x.shape[:-2] + out, np.int64)
        x4 = np.ascontiguousarray(_as4d(x.data))
        _kernels.max_pool2d_forward(x4, np.empty(_as4d(idx).shape, np.float32),
                                 idx.reshape(_as4d(idx).shape), *k, *s, *p, *d)
        return fn_out, idx
    return fn_out


class AvgPool2dFunction(Function):
    """y = mean over each window (or adaptive windows); the gradient is spread evenly."""

    @staticmethod
    def forward(ctx, x, k, s, p, count_include_pad, divisor, adaptive, out):
        x4 = np.ascontiguousarray(_as4d(x))
        N, C = x4.shape[:2]
        y = np.empty((N, C) + out, x.dtype)
        _kernels.avg_pool2d(x4, y, y, x4, False, *k, *s, *p, count_include_pad, divisor,
                         adaptive)
        ctx.args = (k, s, p, count_include_pad, divisor, adaptive)
        ctx.xshape = x.shape
        return y.reshape(x.shape[:-2] + out)

    @staticmethod
    def backward(ctx, g):
        k, s, p, count_include_pad, divisor, adaptive = ctx.args
        g4 = np.ascontiguousarray(_as4d(g))
        dx = np.empty(g4.shape[:2] + ctx.xshape[-2:], g.dtype)
        _kernels.avg_pool2d(dx, g4, g4, dx, True, *k, *s, *p, count_include_pad, divisor,
                         adaptive)
        return (dx.reshape(ctx.xshape),) + (None,) * 7


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    r"""2-d average pooling (``torch.nn.functional.avg_pool2d``).

    .. math:: y_{n,c,p,q} = \frac{1}{d} \sum_{i<K_H,\,j<K_W} x_{n,c,\,pS_H-P_H+i,\,qS_W-P_W+j}

    where :math:`d` is ``divisor_override`` if given, else the window size (counting
    padded positions when ``count_include_pad``).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2).numpy()
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]], dtype=float32)
    """
    x = _tensor(input)
    k, s, p, _, out = _pool_args(x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, numbers.Integral)
                                         or divisor_override < 1):
        raise ValueError(f"`divisor_override` must be a positive int, got "
                         f"{divisor_override!r}")
    return AvgPool2dFunction.apply(x, k, s, p, bool(count_include_pad),
                                   int(divisor_override or 0), False, out)


def adaptive_avg_pool2d(input, output_size):
    r"""Average over windows chosen to give ``output_size`` (``adaptive_avg_pool2d``).

    Output cell :math:`p` averages rows :math:`\lfloor pH/O_H \rfloor` to
    :math:`\lceil (p+1)H/O_H \rceil - 1` (likewise columns).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.adaptive_avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 1).numpy()
    array([[[[7.5]]]], dtype=float32)
    """
    x = _tensor(input)
    _check_ndim(x, (3, 4))
    if isinstance(output_size, (tuple, list)):
        output_size = tuple(x.shape[-2 + i] if v is None else v
                            for i, v in enumerate(output_size))
    out = _pair(output_size, "output_size", 1)
    return AvgPool2dFunction.apply(x, (1, 1), (1, 1), (0, 0), False, 0, True, out)


# -- losses ------------------------------------------------------------------------------
_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"`reduction` must be one of 'mean', 'sum', 'none', got "
                         f"{reduction!r}")


class NLLLossFunction(Function):
    r"""loss_i = -w_{t_i} x_{i, t_i};  mean divides by \sum_i w_{t_i}."""

    @staticmethod
    def forward(ctx, logp, target, weight, ignore_index, reduction):
        # logp (M, C) with the class axis last, target (M,) ints
        valid = target != ignore_index
        t = np.where(valid, target, 0)
        w = (weight[t] if weight is not None else np.ones(t.shape, logp.dtype)) * valid
        picked = np.take_along_axis(logp, t[:, None], 1)[:, 0]
        losses = -w * picked
        ctx.t, ctx.w, ctx.shape, ctx.reduction = t, w, logp.shape, reduction
        if reduction == "none":
            return losses
        total = losses.sum()
        if reduction == "sum":
            return total
        ctx.denom = w.sum()
        return total / ctx.denom

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, g.dtype)
        coef = -ctx.w * g
        if ctx.reduction == "mean":
            coef = coef / ctx.denom
        np.put_along_axis(grad, ctx.t[:, None], coef[:, None].astype(g.dtype), 1)
        return grad, None, None, None, None


def _class_last(x):
    """(N, C, d1, ...) -> (N*d1*..., C) so that classes are the last axis."""
    if x.ndim == 2:
        return x
    return x.permute((0,) + tuple(range(2, x.ndim)) + (1,)).reshape(-1, x.shape[1])


def _target(target, input_shape):
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "f" and np.all(t == np.round(t)):
            t = t.astype(np.int64)
        else:
            raise TypeError(f"`target` must hold class indices (ints), got dtype {t.dtype}")
    want = (input_shape[0],) + tuple(input_shape[2:])
    if t.shape != want:
        raise ValueError(f"`target` must have shape {want} for input of shape "
                         f"{input_shape}, got {t.shape}")
    return t.reshape(-1).astype(np.int64)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log likelihood :math:`\ell_i = -w_{t_i} x_{i,t_i}` of log-probabilities
    ``input`` (N, C) or (N, C, d1, ...), class indices ``target``; ``mean`` divides by
    :math:`\sum_i w_{t_i}` (the count of non-ignored targets when ``weight`` is None).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> round(F.nll_loss(np.log([[0.5, 0.5]]), np.array([1])).item(), 4)
    0.6931
    """
    _check_reduction(reduction)
    x = _tensor(input)
    _check_ndim(x, tuple(range(2, 9)))
    C = x.shape[1]
    t = _target(target, x.shape)
    ok = (t != ignore_index)
    if np.any((t[ok] < 0) | (t[ok] >= C)):
        bad = t[ok][(t[ok] < 0) | (t[ok] >= C)][0]
        raise ValueError(f"`target` values must be in [0, {C - 1}] (or ignore_index), "
                         f"got {bad}")
    w = None
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, np.float32)
        if w.shape != (C,):
            raise ValueError(f"`weight` must have shape ({C},), got {w.shape}")
    out = NLLLossFunction.apply(_class_last(x), t, w, ignore_index, reduction)
    if reduction == "none" and x.ndim > 2:
        out = out.reshape((x.shape[0],) + x.shape[2:])
    return out


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    r"""Cross entropy of logits ``input`` (N, C) with class indices ``target``:

    .. math:: \ell_i = -w_{t_i} \log \frac{e^{x_{i,t_i}}}{\sum_c e^{x_{i,c}}}

    i.e. ``nll_loss(log_softmax(input, 1), target)``.  ``target`` may instead hold class
    probabilities of the input's shape: :math:`\ell_i = -\sum_c w_c p_{i,c} \log
    \mathrm{softmax}(x_i)_c`.  ``label_smoothing`` :math:`\varepsilon` mixes the one-hot
    target with the uniform distribution, as PyTorch does.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> round(F.cross_entropy(np.array([[2.0, 0.0]]), np.array([0])).item(), 4)
    0.1269
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1], got {label_smoothing}")
    x = _tensor(input)
    _check_ndim(x, tuple(range(2, 9)))
    logp = log_softmax(x, 1)
    C = x.shape[1]
    w = None if weight is None else np.asarray(
        weight.data if isinstance(weight, Tensor) else weight, np.float32)
    tarr = np.asarray(target.data if isinstance(target, Tensor) else target)
    if tarr.dtype.kind == "f" and tarr.shape == x.shape:   # class probabilities
        p = tarr.astype(np.float32)
        if label_smoothing:
            p = p * (1 - label_smoothing) + label_smoothing / C
        wp = p if w is None else p * w.reshape((1, C) + (1,) * (x.ndim - 2))
        losses = -(logp * wp).sum(1)
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    t = _target(target, x.shape)
    valid = (t != ignore_index).astype(np.float32)
    lp = _class_last(logp)
    wc = np.ones(C, np.float32) if w is None else w
    smooth = -(lp * wc).sum(1) * valid        # -sum_c w_c log p_c per sample
    if reduction == "none":
        smooth = smooth.reshape((x.shape[0],) + x.shape[2:]) if x.ndim > 2 else smooth
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        denom = valid.sum() if w is None else (w[np.where(t != ignore_index, t, 0)]
                                               * valid).sum()
        smooth = smooth.sum() * np.float32(1.0 / denom)
    return nll * np.float32(1 - label_smoothing) + smooth * np.float32(label_smoothing / C)


def mse_loss(input, target, reduction="mean"):
    r"""Mean squared error :math:`\ell = \frac1n \sum_i (x_i - y_i)^2` (or the sum, or
    the elementwise terms, by ``reduction``).

    >>> from qlearn.nn import functional as F
    >>> F.mse_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0])).item()
    2.0
    """
    _check_reduction(reduction)
    x = _tensor(input)
    y = target if isinstance(target, Tensor) else _tensor(target, "target")
    if np.broadcast_shapes(x.shape, y.shape) != x.shape:
        raise ValueError(f"`target` of shape {y.shape} does not match input {x.shape}")
    d = x - y
    sq = d * d
    return sq if reduction == "none" else (sq.sum() if reduction == "sum" else sq.mean())


def l1_loss(input, target, reduction="mean"):
    r"""Mean absolute error :math:`\ell = \frac1n \sum_i |x_i - y_i|`.

    >>> from qlearn.nn import functional as F
    >>> F.l1_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0])).item()
    1.0
    """
    _check_reduction(reduction)
    x = _tensor(input)
    y = target if isinstance(target, Tensor) else _tensor(target, "target")
    a = (x - y).abs()
    return a if reduction == "none" else (a.sum() if reduction == "sum" else a.mean())


# the embedding lookups live in their own module (they use this one's checks)
from .functional_embedding import embedding, embedding_bag  # noqa: E402

__all__ += ["embedding", "embedding_bag"]

# the 1-d and 3-d convolutions live in their own module (they use this one's checks)
from .functional_conv_nd import conv1d, conv3d  # noqa: E402
from .functional_conv_transpose import (  # noqa: E402
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from .functional_pool_1d import adaptive_avg_pool1d, avg_pool1d, max_pool1d  # noqa: E402

__all__ += ["conv1d", "conv3d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d",
            "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

from .functional_interpolate import interpolate  # noqa: E402

__all__ += ["interpolate"]

# likewise the normalisations and the smooth / piecewise activations
from .functional_activation import elu, gelu, hardsigmoid, hardswish, prelu, silu  # noqa: E402
from .functional_norm import group_norm, instance_norm, layer_norm  # noqa: E402

__all__ += ["layer_norm", "group_norm", "instance_norm", "hardswish", "hardsigmoid", "elu",
            "silu", "gelu", "prelu"]
