"""The primitive differentiable operations, each forward with its backward beneath it.

Every ``forward`` computes in the dtype of its inputs (float32 in normal use; the
gradient checks in the tests call the same functions on float64 arrays), and no
``backward`` writes into the gradient it receives.

Gradients of broadcast operands are summed back to the operand's shape
(:func:`unbroadcast`): if ``a`` of shape (3, 1) was broadcast against (3, 4), each of
its elements was used four times, and its gradient is the sum of those four.
"""
import numpy as np

from .._validation import index_error
from .function import Function


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast.

    >>> import numpy as np
    >>> from qlearn.autograd.ops import unbroadcast
    >>> unbroadcast(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _norm_axis(axis, ndim):
    """``axis`` (None, int or tuple; negatives allowed) as a sorted tuple, or None."""
    if axis is None:
        return None
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"`dim` must be in [{-ndim}, {ndim - 1}], got {a}")
        out.append(a % max(ndim, 1))
    return tuple(sorted(set(out)))


# -- arithmetic --------------------------------------------------------------------------
class Add(Function):
    """y = a + b"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.add(a, b)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


class Sub(Function):
    """y = a - b"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


class Mul(Function):
    """y = a b;  da = g b,  db = g a"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (unbroadcast(g * b, np.shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(g * a, np.shape(b)) if ctx.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b;  da = g / b,  db = -g a / b^2"""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):   # x/0 is inf or nan, quietly
            return np.divide(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (unbroadcast(g / b, np.shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g * a / (b * b), np.shape(b)) if ctx.needs_input_grad[1] else None)


class Neg(Function):
    """y = -a"""

    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """y = a ** p for a constant exponent p: da = g p a^(p-1)."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        return np.power(a, np.asarray(p, a.dtype))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        p = np.asarray(ctx.p, a.dtype)
        return g * p * np.power(a, p - 1), None


class MatMul(Function):
    """y = a @ b;  da = g b^T,  db = a^T g  (1-d operands are promoted, as NumPy does)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a          # (k,) -> (1, k)
        b2 = b[:, None] if b.ndim == 1 else b          # (k,) -> (k, 1)
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape)
            ga = ga.reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


class Exp(Function):
    """y = e^a;  da = g y"""

    @staticmethod
    def forward(ctx, a):
        y = np.exp(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Log(Function):
    """y = ln a;  da = g / a"""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class Log10(Function):
    """y = log10 a;  da = g / (a ln 10)"""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            # via float64: log10(1000) is exactly 3, as in PyTorch (float32 log10 is not)
            return np.log10(a.astype(np.float64)).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / (a * np.asarray(np.log(10.0), a.dtype))


class Round(Function):
    """y = round(a), halves to even (``decimals`` d: round(a 10^d) / 10^d);  da = 0"""

    @staticmethod
    def forward(ctx, a, decimals=0):
        ctx.shape = a.shape
        if decimals == 0:
            return np.rint(a)
        ten = np.asarray(10.0 ** decimals, a.dtype)
        return np.rint(a * ten) / ten

    @staticmethod
    def backward(ctx, g):
        return np.zeros(ctx.shape, g.dtype), None


class Cast(Function):
    """y = a converted to another floating dtype;  da = g converted back."""

    output_dtype_is_exact = True   # the caller asked for this dtype: keep it

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype), None


class Sqrt(Function):
    """y = sqrt(a);  da = g / (2 y)"""

    @staticmethod
    def forward(ctx, a):
        y = np.sqrt(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g / (2 * y)


class Abs(Function):
    """y = abs(a);  da = g sign(a)  (0 at a = 0, as PyTorch)"""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * np.sign(a)


class Tanh(Function):
    """y = tanh a;  da = g (1 - y^2)"""

    @staticmethod
    def forward(ctx, a):
        y = np.tanh(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


def _sigmoid(a):
    """1 / (1 + e^-a) without overflow for large |a|."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


class Sigmoid(Function):
    """y = 1 / (1 + e^-a);  da = g y (1 - y)"""

    @staticmethod
    def forward(ctx, a):
        y = _sigmoid(a)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class ReLU(Function):
    """y = max(a, 0);  da = g [y > 0]  (0 at a = 0, as PyTorch)"""

    @staticmethod
    def forward(ctx, a):
        y = np.maximum(a, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y > 0)


class Clamp(Function):
    """y = min(max(a, lo), hi);  da = g [lo <= a <= hi]  (inclusive, as ``torch.clamp``)."""

    @staticmethod
    def forward(ctx, a, lo=None, hi=None):
        mask = np.ones(a.shape, bool)
        y = a
        if lo is not None:
            mask &= a >= lo
            y = np.maximum(y, np.asarray(lo, a.dtype))
        if hi is not None:
            mask &= a <= hi
            y = np.minimum(y, np.asarray(hi, a.dtype))
        ctx.save_for_backward(mask)
        return np.array(y, copy=True) if y is a else y

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


class Hardtanh(Function):
    """y = min(max(a, lo), hi);  da = g [lo < a < hi]  (strict, as ``F.hardtanh``)."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward((a > lo) & (a < hi))
        return np.clip(a, np.asarray(lo, a.dtype), np.asarray(hi, a.dtype))

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


class Maximum(Function):
    """y = max(a, b) elementwise; at ties the gradient is split in half (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = (a > b) + 0.5 * (a == b)
        return unbroadcast(g * wa, np.shape(a)), unbroadcast(g * (1 - wa), np.shape(b))


class Minimum(Function):
    """y = min(a, b) elementwise; at ties the gradient is split in half (as PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = (a < b) + 0.5 * (a == b)
        return unbroadcast(g * wa, np.shape(a)), unbroadcast(g * (1 - wa), np.shape(b))


class Where(Function):
    """y = cond ? a : b;  da = g [cond],  db = g [not cond]"""

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = np.asarray(cond, bool)
        ctx.cond, ctx.shapes = cond, (np.shape(a), np.shape(b))
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        zero = np.zeros((), g.dtype)
        return (None, unbroadcast(np.where(ctx.cond, g, zero), ctx.shapes[0]),
                unbroadcast(np.where(ctx.cond, zero, g), ctx.shapes[1]))


# -- reductions ----------------------------------------------------------------------------
class Sum(Function):
    """y = sum of a over ``axis``;  da = g broadcast back."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        axis = _norm_axis(axis, a.ndim)
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.asarray(np.sum(a, axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        if ctx.axis is not None and not ctx.keepdims:
            g = np.expand_dims(g, ctx.axis)
        return np.broadcast_to(g, ctx.shape)


class Amax(Function):
    """y = max of a over ``axis`` (all axes when None); the gradient is shared evenly
    among tied maxima, as ``torch.amax`` and the full ``torch.max()`` do."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        axis = _norm_axis(axis, a.ndim)
        y = np.max(a, axis=axis, keepdims=True)
        mask = a == y
        ctx.save_for_backward(mask / mask.sum(axis=axis, keepdims=True, dtype=a.dtype))
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.asarray(np.squeeze(y, axis=axis))

    @staticmethod
    def backward(ctx, g):
        (share,) = ctx.saved_tensors
        if ctx.axis is not None and not ctx.keepdims:
            g = np.expand_dims(g, ctx.axis)
        return g * share


class Amin(Function):
    """y = min of a over ``axis``; the gradient is shared evenly among tied minima."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        axis = _norm_axis(axis, a.ndim)
        y = np.min(a, axis=axis, keepdims=True)
        mask = a == y
        ctx.save_for_backward(mask / mask.sum(axis=axis, keepdims=True))
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.asarray(np.squeeze(y, axis=axis))

    @staticmethod
    def backward(ctx, g):
        (share,) = ctx.saved_tensors
        if ctx.axis is not None and not ctx.keepdims:
            g = np.expand_dims(g, ctx.axis)
        return (g * share).astype(g.dtype, copy=False)


class MaxDim(Function):
    """max of ``a`` along one ``axis`` at precomputed arg-max ``idx``; the gradient
    goes to that index only (``torch.max(x, dim)``)."""

    @staticmethod
    def forward(ctx, a, idx, axis, keepdims=False):
        idx_k = np.expand_dims(idx, axis)
        ctx.shape, ctx.axis, ctx.keepdims, ctx.idx = a.shape, axis, keepdims, idx_k
        y = np.take_along_axis(a, idx_k, axis)
        return y if keepdims else np.squeeze(y, axis)

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, g.dtype)
        if not ctx.keepdims:
            g = np.expand_dims(g, ctx.axis)
        np.put_along_axis(grad, ctx.idx, g, ctx.axis)
        return grad, None


class Softmax(Function):
    """y_i = e^{a_i} / sum_j e^{a_j} along ``axis``;  da = y (g - sum(g y))"""

    @staticmethod
    def forward(ctx, a, axis):
        e = np.exp(a - np.max(a, axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """y_i = a_i - log sum_j e^{a_j} along ``axis``;  da = g - e^y sum(g)"""

    @staticmethod
    def forward(ctx, a, axis):
        shifted = a - np.max(a, axis=axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g - np.exp(y) * g.sum(axis=ctx.axis, keepdims=True)


# -- shape ---------------------------------------------------------------------------------
class Reshape(Function):
    """y = a viewed with another shape; da = g reshaped back."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    """y = a with its axes reordered; da = g with the inverse order."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, np.argsort(ctx.axes)), None


class Expand(Function):
    """y = a broadcast to ``shape``; da = g summed over the broadcast axes."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape), None


class Clone(Function):
    """y = a copy of a; da = g."""

    @staticmethod
    def forward(ctx, a):
        return np.array(a, copy=True)

    @staticmethod
    def backward(ctx, g):
        return g


def _is_basic_index(key):
    """True when ``key`` uses only ints, slices, None and Ellipsis (no repeats)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) or k is None or k is Ellipsis
               or (isinstance(k, np.ndarray) and k.dtype == np.bool_)   # a mask: no repeats
               for k in parts)


class GetItem(Function):
    """y = a[key]; the gradient scatters back, adding where an index repeats."""

    @staticmethod
    def forward(ctx, a, key):
        ctx.shape, ctx.key = a.shape, key
        try:
            return np.array(a[key], copy=True)
        except (OverflowError, IndexError) as err:
            mine = index_error(err, key, a.shape)        # torch's words for it
            if mine is None:
                raise
            raise mine from None

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, g.dtype)
        if _is_basic_index(ctx.key):
            grad[ctx.key] = g
        else:
            np.add.at(grad, ctx.key, g)
        return grad, None


class Cat(Function):
    """y = the arrays joined along ``axis``; each input gets its slice of g."""

    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        ctx.bounds = np.cumsum([np.shape(a)[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return (None,) + tuple(np.split(g, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    """y = the arrays stacked along a new ``axis``; each input gets its slice of g."""

    @staticmethod
    def forward(ctx, axis, *arrays):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        n = g.shape[ctx.axis]
        return (None,) + tuple(np.take(g, i, axis=ctx.axis) for i in range(n))
