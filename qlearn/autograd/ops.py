"""The primitive differentiable operations, each forward with its backward beneath it.

Gradients of broadcast operands are summed back to the operand's shape
(:func:`unbroadcast`): if ``a`` of shape (3, 1) was broadcast against (3, 4), each of
its elements was used four times, and its gradient is the sum of those four.
"""
import numpy as np

from .function import Function


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.add(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.subtract(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.multiply(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (unbroadcast(g * b, np.shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(g * a, np.shape(b)) if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.divide(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (unbroadcast(g / b, np.shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g * a / (b * b), np.shape(b)) if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** p for a constant exponent p: d/da = p a^(p-1)."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        return np.power(a, p, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * ctx.p * np.power(a, ctx.p - 1, dtype=np.float32), None


class MatMul(Function):
    """a @ b; for 2-d operands dA = G B^T and dB = A^T G."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(np.matmul(g, np.swapaxes(b, -1, -2)) if b.ndim > 1
                             else np.multiply.outer(g, b), a.shape)
        if ctx.needs_input_grad[1]:
            if a.ndim == 1:
                gb = np.multiply.outer(a, g)
            else:
                gb = unbroadcast(np.matmul(np.swapaxes(a, -1, -2), g), b.shape)
        return ga, gb


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        return np.sum(a, axis=axis, keepdims=keepdims, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        if ctx.axis is not None and not ctx.keepdims:
            g = np.expand_dims(g, ctx.axis)
        return np.broadcast_to(g, ctx.shape)


class Max(Function):
    """max along ``axis``; the gradient goes to the (first) arg-max, as in PyTorch."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        flat = a.reshape(-1) if axis is None else a
        idx = np.argmax(flat, axis=0 if axis is None else axis)
        ctx.shape, ctx.axis, ctx.keepdims = a.shape, axis, keepdims
        ctx.save_for_backward(idx)
        out = np.max(a, axis=axis, keepdims=keepdims)
        return np.asarray(out, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        grad = np.zeros(ctx.shape, np.float32)
        if ctx.axis is None:
            grad.reshape(-1)[idx] = g
            return grad
        axis = ctx.axis % len(ctx.shape)
        if ctx.keepdims:
            g = np.squeeze(g, axis)
        np.put_along_axis(grad, np.expand_dims(idx, axis), np.expand_dims(g, axis), axis)
        return grad


class Exp(Function):
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
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, np.argsort(ctx.axes)), None


class GetItem(Function):
    """a[key]; the gradient scatters back, adding where an index repeats."""

    @staticmethod
    def forward(ctx, a, key):
        ctx.shape, ctx.key = a.shape, key
        return np.asarray(a[key], dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, np.float32)
        np.add.at(grad, ctx.key, g)
        return grad, None
