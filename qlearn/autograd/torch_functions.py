"""The tensor functions of the ``torch`` namespace (``torch.round(x)``,
``torch.max(a, b)``, ...), each the method of the same name, so code written as
``torch.abs(dq - t)`` runs as ``ql.abs(dq - t)``.

They accept a Tensor (or anything ``ql.tensor`` accepts) and follow the methods'
gradients and dtype rules.
"""
import numbers

import numpy as np

from .tensor import Tensor, _floor_divide, _remainder, maximum, minimum
from .tensor import tensor as _tensor

__all__ = ["abs", "round", "clamp", "clip", "max", "min", "pow", "norm", "log10", "sqrt",
           "exp", "log", "mean", "sum", "amax", "amin", "argmax", "argmin", "floor_divide",
           "remainder", "eq", "ne", "lt", "le", "gt", "ge", "numel", "is_tensor",
           "is_floating_point", "flatten", "reshape", "isfinite"]


def _t(x):
    return x if isinstance(x, Tensor) else _tensor(x)


def _is_qtensor(x):
    # a QTensor reshapes in integers (``torch.flatten`` of a quantized tensor is
    # quantized); through ``_t`` it would come back dequantized
    return getattr(x, "is_quantized", False) is True


def abs(input):  # noqa: A001 (torch.abs)
    r"""Elementwise :math:`|x|` (``torch.abs``).

    >>> import qlearn as ql
    >>> ql.abs(ql.tensor([-1.5, 2.0]))
    tensor([1.5000, 2.0000])
    """
    return _t(input).abs()


def round(input, decimals=0):  # noqa: A001 (torch.round)
    """Round halves to even (``torch.round``), see :meth:`qlearn.Tensor.round`.

    >>> import qlearn as ql
    >>> ql.round(ql.tensor([0.5, 1.5, 2.5]))
    tensor([0., 2., 2.])
    """
    return _t(input).round(decimals)


def clamp(input, min=None, max=None):  # noqa: A002 (torch's argument names)
    r""":math:`\min(\max(x, min), max)` elementwise (``torch.clamp``).

    >>> import qlearn as ql
    >>> ql.clamp(ql.tensor([-200, 5, 300]), -128, 127)
    tensor([-128,    5,  127])
    """
    return _t(input).clamp(min, max)


clip = clamp


def max(input, dim=None, keepdim=False):  # noqa: A001 (torch.max)
    """``torch.max``: the largest element; with an int ``dim`` the pair
    ``(values, indices)`` along it; with a tensor second argument the elementwise
    maximum (``torch.maximum``).

    >>> import qlearn as ql
    >>> x = ql.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> ql.max(x), ql.max(x, 1).values, ql.max(ql.tensor(2.0), ql.tensor(3.0))
    (tensor(7.), tensor([5., 7.]), tensor(3.))
    """
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    return _t(input).max(dim, keepdim) if dim is not None else _t(input).max()


def min(input, dim=None, keepdim=False):  # noqa: A001 (torch.min)
    """``torch.min``: as :func:`max`, for the smallest.

    >>> import qlearn as ql
    >>> ql.min(ql.tensor([3, -1, 2]))
    tensor(-1)
    """
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    return _t(input).min(dim, keepdim) if dim is not None else _t(input).min()


def amax(input, dim=None, keepdim=False):
    """Largest values over ``dim`` (``torch.amax``).

    >>> import qlearn as ql
    >>> ql.amax(ql.tensor([[1.0, 5.0], [7.0, 2.0]]), 0)
    tensor([7., 5.])
    """
    return _t(input).amax(dim, keepdim)


def amin(input, dim=None, keepdim=False):
    """Smallest values over ``dim`` (``torch.amin``).

    >>> import qlearn as ql
    >>> ql.amin(ql.tensor([[1.0, 5.0], [7.0, 2.0]]), 0)
    tensor([1., 2.])
    """
    return _t(input).min(axis=dim, keepdims=keepdim) if dim is not None else _t(input).min()


def argmax(input, dim=None, keepdim=False):
    """Index of the largest value (``torch.argmax``), an int64 tensor.

    >>> import qlearn as ql
    >>> ql.argmax(ql.tensor([1.0, 5.0, 2.0]))
    tensor(1)
    """
    return Tensor._wrap(np.asarray(_t(input).argmax(dim, keepdim), np.int64))


def argmin(input, dim=None, keepdim=False):
    """Index of the smallest value (``torch.argmin``), an int64 tensor.

    >>> import qlearn as ql
    >>> ql.argmin(ql.tensor([1.0, -5.0, 2.0]))
    tensor(1)
    """
    data = _t(input).data
    idx = np.argmin(data) if dim is None else np.argmin(data, axis=dim, keepdims=keepdim)
    return Tensor._wrap(np.asarray(idx, np.int64))


def pow(input, exponent):  # noqa: A001 (torch.pow)
    r"""Elementwise :math:`x^p` (``torch.pow``); ``input`` or ``exponent`` may be a
    number.

    >>> import qlearn as ql
    >>> ql.pow(ql.tensor([1.0, 3.0]), 2), ql.pow(2, ql.tensor([1, 3]))
    (tensor([1., 9.]), tensor([2, 8]))
    """
    if not isinstance(input, Tensor) and isinstance(exponent, Tensor):
        return exponent.__rpow__(input)
    return _t(input) ** exponent


def norm(input, p="fro", dim=None, keepdim=False):
    r"""The :math:`p`-norm of ``input`` (``torch.norm``), by default the Euclidean norm
    :math:`\lVert x \rVert_2 = \sqrt{\sum_i x_i^2}` of all elements.

    >>> import qlearn as ql
    >>> ql.norm(ql.tensor([[3.0, 4.0], [0.0, 12.0]]))
    tensor(13.)
    """
    return _t(input).norm(p, dim, keepdim)


def log10(input):
    r"""Elementwise :math:`\log_{10} x` (``torch.log10``).

    >>> import qlearn as ql
    >>> ql.log10(ql.tensor([1.0, 1000.0]))
    tensor([0., 3.])
    """
    return _t(input).log10()


def sqrt(input):
    r"""Elementwise :math:`\sqrt{x}` (``torch.sqrt``); integers give float32.

    >>> import qlearn as ql
    >>> ql.sqrt(ql.tensor([1, 4]))
    tensor([1., 2.])
    """
    return _t(input).sqrt()


def exp(input):
    r"""Elementwise :math:`e^x` (``torch.exp``).

    >>> import qlearn as ql
    >>> ql.exp(ql.tensor([0.0]))
    tensor([1.])
    """
    return _t(input).exp()


def log(input):
    r"""Elementwise :math:`\ln x` (``torch.log``).

    >>> import qlearn as ql
    >>> ql.log(ql.tensor([1.0]))
    tensor([0.])
    """
    return _t(input).log()


def mean(input, dim=None, keepdim=False):
    r""":math:`\frac{1}{n}\sum_i x_i` over ``dim`` (all when None) (``torch.mean``); a
    floating-point input is required, as in PyTorch.

    >>> import qlearn as ql
    >>> ql.mean(ql.tensor([1.0, 2.0, 4.0]))
    tensor(2.3333)
    """
    return _t(input).mean(dim, keepdim)


def sum(input, dim=None, keepdim=False):  # noqa: A001 (torch.sum)
    r""":math:`\sum_i x_i` over ``dim`` (``torch.sum``); integer and bool inputs sum
    to int64.

    >>> import qlearn as ql
    >>> ql.sum(ql.tensor([True, False, True]))
    tensor(2)
    """
    return _t(input).sum(dim, keepdim)


def floor_divide(input, other):
    """``input // other``, rounded down (``torch.floor_divide``).

    >>> import qlearn as ql
    >>> ql.floor_divide(ql.tensor([-7, 7]), 2)
    tensor([-4,  3])
    """
    return _floor_divide(_t(input), other)


def remainder(input, other):
    """``input % other`` with the sign of ``other`` (``torch.remainder``).

    >>> import qlearn as ql
    >>> ql.remainder(ql.tensor([-7, 7]), 3)
    tensor([2, 1])
    """
    return _remainder(_t(input), other)


def eq(input, other):
    """Elementwise ``input == other``, a bool tensor (``torch.eq``).

    >>> import qlearn as ql
    >>> ql.eq(ql.tensor([0, 1]), 0)
    tensor([ True, False])
    """
    return _t(input) == other


def ne(input, other):
    """Elementwise ``input != other`` (``torch.ne``).

    >>> import qlearn as ql
    >>> ql.ne(ql.tensor([0, 1]), 0)
    tensor([False,  True])
    """
    return _t(input) != other


def lt(input, other):
    """Elementwise ``input < other`` (``torch.lt``).

    >>> import qlearn as ql
    >>> ql.lt(ql.tensor([0, 1]), 1)
    tensor([ True, False])
    """
    return _t(input) < other


def le(input, other):
    """Elementwise ``input <= other`` (``torch.le``).

    >>> import qlearn as ql
    >>> ql.le(ql.tensor([0, 1]), 0)
    tensor([ True, False])
    """
    return _t(input) <= other


def gt(input, other):
    """Elementwise ``input > other`` (``torch.gt``).

    >>> import qlearn as ql
    >>> ql.gt(ql.tensor([0, 1]), 0)
    tensor([False,  True])
    """
    return _t(input) > other


def ge(input, other):
    """Elementwise ``input >= other`` (``torch.ge``).

    >>> import qlearn as ql
    >>> ql.ge(ql.tensor([0, 1]), 1)
    tensor([False,  True])
    """
    return _t(input) >= other


def isfinite(input):
    """True where ``input`` is neither infinite nor NaN (``torch.isfinite``).

    >>> import qlearn as ql
    >>> ql.isfinite(ql.tensor([1.0, float("inf")]))
    tensor([ True, False])
    """
    return Tensor._wrap(np.isfinite(_t(input).data))


def numel(input):
    """Number of elements (``torch.numel``).

    >>> import qlearn as ql
    >>> ql.numel(ql.zeros(2, 3))
    6
    """
    return _t(input).numel()


def is_tensor(obj):
    """True if ``obj`` is a :class:`qlearn.Tensor` (``torch.is_tensor``).

    >>> import qlearn as ql
    >>> ql.is_tensor(ql.zeros(1)), ql.is_tensor([1.0])
    (True, False)
    """
    return isinstance(obj, Tensor)


def is_floating_point(input):
    """True for a float16/32/64 tensor (``torch.is_floating_point``).

    >>> import qlearn as ql
    >>> ql.is_floating_point(ql.tensor([1])), ql.is_floating_point(ql.tensor([1.0]))
    (False, True)
    """
    return _t(input).is_floating_point()


def flatten(input, start_dim=0, end_dim=-1):
    """``input`` with dims ``start_dim`` to ``end_dim`` merged (``torch.flatten``).

    >>> import qlearn as ql
    >>> ql.flatten(ql.zeros(2, 3, 4), 1).shape
    (2, 12)
    >>> q = ql.quantize_per_tensor(ql.zeros(2, 3, 1, 1), 0.1, 0, ql.quint8)
    >>> ql.flatten(q, 1).shape, ql.flatten(q, 1).is_quantized
    ((2, 3), True)
    """
    if _is_qtensor(input):
        return input.flatten(start_dim, end_dim)
    return _t(input).flatten(start_dim, end_dim)


def reshape(input, shape):
    """``input`` in shape ``shape`` (``torch.reshape``).

    >>> import qlearn as ql
    >>> ql.reshape(ql.arange(6), (2, 3)).shape
    (2, 3)
    """
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    if _is_qtensor(input):
        return input.reshape(tuple(shape))
    return _t(input).reshape(tuple(shape))
