"""Tensors made from a shape or a range: ``ql.zeros``, ``ql.ones``, ``ql.full``,
``ql.arange``, ``ql.linspace``, ``ql.rand``, ``ql.randn`` and their ``*_like`` forms,
with PyTorch's arguments and default dtypes (float32, or int64 for integer ranges).

The random ones draw from qlearn's generator
(:func:`~qlearn.autograd.random.get_generator`): the same distributions as PyTorch,
not the same numbers.
"""
import math
import numbers

import numpy as np

from ..dtypes import float32
from .promotion import as_dtype
from .random import get_generator
from .tensor import Tensor

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like",
           "rand", "randn", "rand_like", "randn_like", "randint", "arange", "linspace"]


def _shape(size):
    """``zeros(2, 3)``, ``zeros((2, 3))`` and ``zeros([2, 3])`` all mean shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, (numbers.Integral, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"`size` must be non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


def _make(arr, dtype, requires_grad, device=None):
    if device is not None and str(device) != "cpu":
        raise ValueError(f"`device` must be 'cpu' (qlearn runs on the CPU), got {device!r}")
    if dtype is not None:
        arr = arr.astype(as_dtype(dtype).numpy_dtype, copy=False)
    return Tensor._wrap(arr, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros of shape ``size`` (``torch.zeros``); float32 unless ``dtype``.

    >>> import qlearn as ql
    >>> ql.zeros(2, 3).shape, ql.zeros(3, dtype=ql.int32)
    ((2, 3), tensor([0, 0, 0], dtype=qlearn.int32))
    """
    return _make(np.zeros(_shape(size), np.float32), dtype, requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones of shape ``size`` (``torch.ones``); float32 unless ``dtype``.

    >>> import qlearn as ql
    >>> ql.ones(2)
    tensor([1., 1.])
    """
    return _make(np.ones(_shape(size), np.float32), dtype, requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of shape ``size`` whose values are not set (``torch.empty``); qlearn
    fills it with zeros.

    >>> import qlearn as ql
    >>> ql.empty(2, 2).shape
    (2, 2)
    """
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, (bool, np.bool_)):
        return np.bool_
    if isinstance(fill_value, (numbers.Integral, np.integer)):
        return np.int64
    return np.float32


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of shape ``size`` filled with ``fill_value`` (``torch.full``); the dtype
    follows the value (int64 for an int, bool for a bool, float32 otherwise).

    >>> import qlearn as ql
    >>> ql.full((2,), 7), ql.full((2,), 0.5)
    (tensor([7, 7]), tensor([0.5000, 0.5000]))
    """
    size = _shape((size,) if isinstance(size, numbers.Integral) else (size,))
    return _make(np.full(size, fill_value, _fill_dtype(fill_value)), dtype, requires_grad,
                 device)


def _like(t, fn, dtype, requires_grad):
    arr = np.asarray(t.data if isinstance(t, Tensor) else t)
    out = fn(arr.shape, arr.dtype if dtype is None else as_dtype(dtype).numpy_dtype)
    return Tensor._wrap(out, requires_grad=requires_grad)


def zeros_like(input, dtype=None, requires_grad=False):
    """Zeros with the shape and dtype of ``input`` (``torch.zeros_like``).

    >>> import qlearn as ql
    >>> ql.zeros_like(ql.tensor([1, 2]))
    tensor([0, 0])
    """
    return _like(input, np.zeros, dtype, requires_grad)


def ones_like(input, dtype=None, requires_grad=False):
    """Ones with the shape and dtype of ``input`` (``torch.ones_like``).

    >>> import qlearn as ql
    >>> ql.ones_like(ql.tensor([[1.0, 2.0]]))
    tensor([[1., 1.]])
    """
    return _like(input, np.ones, dtype, requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False):
    """``fill_value`` with the shape and dtype of ``input`` (``torch.full_like``).

    >>> import qlearn as ql
    >>> ql.full_like(ql.tensor([1.0, 2.0]), 3)
    tensor([3., 3.])
    """
    return _like(input, lambda shape, dt: np.full(shape, fill_value).astype(dt),
                 dtype, requires_grad)


def _float_dtype(dtype):
    dt = float32 if dtype is None else as_dtype(dtype)
    if not dt.is_floating_point:
        raise TypeError(f"`dtype` must be a floating-point dtype, got {dt!r}")
    return dt.numpy_dtype


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform samples on :math:`[0, 1)` of shape ``size`` (``torch.rand``).

    >>> import qlearn as ql
    >>> x = ql.rand(2, 3)
    >>> x.shape, bool(((x >= 0) & (x < 1)).all())
    ((2, 3), True)
    """
    arr = get_generator().random(_shape(size), dtype=np.float32).astype(_float_dtype(dtype))
    return _make(arr, None, requires_grad, device)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal samples :math:`\\mathcal{N}(0, 1)` of shape ``size``
    (``torch.randn``).

    >>> import qlearn as ql
    >>> ql.randn(4, 2).shape
    (4, 2)
    """
    arr = get_generator().standard_normal(_shape(size), dtype=np.float32)
    return _make(arr.astype(_float_dtype(dtype)), None, requires_grad, device)


def rand_like(input, dtype=None, requires_grad=False):
    """Uniform samples on :math:`[0, 1)` with the shape and (float) dtype of ``input``
    (``torch.rand_like``).

    >>> import qlearn as ql
    >>> ql.rand_like(ql.zeros(3)).shape
    (3,)
    """
    dt = input.dtype if dtype is None and isinstance(input, Tensor) else dtype
    return rand(*np.shape(_data(input)), dtype=dt, requires_grad=requires_grad)


def randn_like(input, dtype=None, requires_grad=False):
    """Standard normal samples with the shape and (float) dtype of ``input``
    (``torch.randn_like``).

    >>> import qlearn as ql
    >>> ql.randn_like(ql.zeros(2, 2)).shape
    (2, 2)
    """
    dt = input.dtype if dtype is None and isinstance(input, Tensor) else dtype
    return randn(*np.shape(_data(input)), dtype=dt, requires_grad=requires_grad)


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def randint(low, high=None, size=None, dtype=None):
    """Integers drawn uniformly from ``[low, high)`` (``torch.randint(low, high, size)``,
    or ``randint(high, size)``); int64 unless ``dtype``.

    >>> import qlearn as ql
    >>> x = ql.randint(0, 10, (5,))
    >>> x.dtype, bool(((x >= 0) & (x < 10)).all())
    (qlearn.int64, True)
    """
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint needs a `size` tuple: randint(low, high, size)")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"`high` must be greater than `low`, got low={low}, high={high}")
    arr = get_generator().integers(low, high, size=_shape((size,)), dtype=np.int64)
    return _make(arr, dtype, False)


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) or (
        isinstance(v, Tensor) and v.data.dtype.kind in "biu")


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    r"""Values :math:`start + i \cdot step` for :math:`0 \le i < \lceil (end - start) /
    step \rceil` (``torch.arange``); int64 when every argument is an int, else float32.

    >>> import qlearn as ql
    >>> ql.arange(5), ql.arange(0, 1, 0.25)
    (tensor([0, 1, 2, 3, 4]), tensor([0.0000, 0.2500, 0.5000, 0.7500]))
    """
    if end is None:
        start, end = 0, start
    start, end, step = (float(v) if not _is_int(v) else int(v) for v in (start, end, step))
    if step == 0:
        raise ValueError("`step` must be non-zero, got 0")
    n = max(0, math.ceil((end - start) / step))
    if all(isinstance(v, int) for v in (start, end, step)):
        arr = start + step * np.arange(n, dtype=np.int64)
    else:   # computed in double, then rounded to the tensor's dtype
        arr = (start + step * np.arange(n, dtype=np.float64)).astype(np.float32)
    return _make(arr, dtype, requires_grad, device)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    r"""``steps`` evenly spaced values from ``start`` to ``end`` inclusive
    (``torch.linspace``), :math:`start + i\,(end - start) / (steps - 1)`; the second half
    is counted back from ``end`` so both ends are exact.

    >>> import qlearn as ql
    >>> ql.linspace(0, 1, 5)
    tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000])
    """
    if not isinstance(steps, (numbers.Integral, np.integer)) or steps < 0:
        raise ValueError(f"`steps` must be a non-negative int, got {steps!r}")
    dt = np.float32 if dtype is None else as_dtype(dtype).numpy_dtype
    work = np.float64 if dt == np.float64 else np.float32
    if steps == 1:
        arr = np.full(1, start, work)
    else:
        i = np.arange(steps)
        step = (work(end) - work(start)) / work(max(steps - 1, 1))
        # PyTorch's kernel multiplies and adds in one fused step (one rounding); for
        # float32 the float64 product and sum, rounded once, are that result
        step64 = np.float64(step)
        arr = np.where(i < steps // 2, np.float64(work(start)) + step64 * i,
                       np.float64(work(end)) - step64 * (steps - 1 - i)).astype(work)
    return _make(arr.astype(dt), None, requires_grad, device)
