"""``qlearn.Tensor``: an ndarray that remembers how it was computed.

Floating-point tensors (float32 by default) take part in autograd; integer and bool
tensors (``ql.int8``, ``ql.int64``, ``ql.bool`` ...) hold data such as quantized values,
counts and masks, never require gradients, and follow PyTorch's rules for the dtype of
mixed operations (:mod:`qlearn.autograd.promotion`).
"""
import math
import numbers

import numpy as np

from .. import _validation as V
from .._printing import tensor_repr
from ..dtypes import PLAIN_DTYPES, float32
from . import ops
from .function import backward as _run_backward
from .function import is_grad_enabled
from .promotion import as_dtype, result_type

__all__ = ["Tensor", "Size", "tensor", "cat", "stack", "where", "maximum", "minimum"]


def _array(value):
    """The ndarray behind a Tensor, or the value itself."""
    if isinstance(value, Tensor):
        return value.data
    return value


def _operand(value):
    """A Tensor stays a Tensor (its gradient is tracked); anything else becomes float32."""
    return value if isinstance(value, Tensor) else np.asarray(value, dtype=np.float32)


def _cast(value, dtype):
    """``value`` (a Tensor, array or number) as a Tensor of ``dtype`` (a DType).

    A tensor that requires a gradient is cast by a recorded operation, so the gradient
    reaches it; any other value is converted directly.
    """
    target = dtype.numpy_dtype
    if isinstance(value, Tensor):
        if value.data.dtype == target:
            return value
        if value.requires_grad and is_grad_enabled() and dtype.is_floating_point:
            return ops.Cast.apply(value, target)
        with np.errstate(invalid="ignore"):   # nan/inf to int: what the CPU gives
            return Tensor._wrap(value.data.astype(target))
    return Tensor._wrap(np.asarray(value).astype(target, copy=False))


def _is_f32(x):
    return isinstance(x, Tensor) and x.data.dtype == np.float32


def _is_number(x):
    """A Python or NumPy number, or a float32 array: with a float32 tensor, float32."""
    return (isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, bool)
            or isinstance(x, np.ndarray) and x.dtype == np.float32)


def _both(a, b, floating=False):
    """``a`` and ``b`` cast to the dtype PyTorch gives ``a (op) b``; ``floating`` turns
    an integer result into float32 (true division)."""
    if isinstance(a, (Tensor, np.ndarray)) and isinstance(b, (Tensor, np.ndarray)) \
            and a.shape != b.shape:
        V.check_broadcast(a.shape, b.shape, "", "input", "other")
    if _is_f32(a) and (_is_f32(b) or _is_number(b)) or _is_number(a) and _is_f32(b):
        # the common float32 case, without the general dtype rules
        return (a if isinstance(a, Tensor) else np.asarray(a, np.float32),
                b if isinstance(b, Tensor) else np.asarray(b, np.float32))
    dt = result_type(a, b)
    if floating and not dt.is_floating_point:
        dt = float32
    return _cast(a, dt), _cast(b, dt)


def _index_key(key):
    """An index with Tensors replaced by arrays: bool tensors are masks, integer tensors
    positions (a float tensor of whole numbers is accepted as positions too)."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, Tensor):
        arr = key.data
        if arr.dtype.kind in "bui":
            return arr if arr.dtype.kind == "b" else arr.astype(np.intp)
        if np.all(arr == np.round(arr)):
            return arr.astype(np.intp)
        raise IndexError(f"tensors used as indices must hold integers or bools, got "
                         f"dtype {key.dtype!r}")
    return key


class Tensor:
    """An array with an optional gradient: float32 (``ql.float32``) unless made with
    another dtype (``ql.tensor(data, dtype=...)``, :meth:`to`).

    ``Tensor(data)`` itself always makes float32, as ``torch.Tensor(data)`` does;
    :func:`qlearn.tensor` infers the dtype as ``torch.tensor`` does.
    ``data`` is the ndarray (writable in place, as ``tensor.data`` in PyTorch);
    ``grad`` is a Tensor filled by :meth:`backward`, or None; ``grad_fn`` the node that
    produced this tensor (None for leaves).  Arithmetic operators, ``@``, ``sum``,
    ``mean``, ``reshape``, indexing ... build the graph as they compute.  Gradients of
    broadcast operands are summed back to their shape.

    >>> import qlearn as ql
    >>> w = ql.tensor([[1.0], [2.0]], requires_grad=True)     # (2, 1), broadcast below
    >>> y = (w * ql.tensor([1.0, 2.0, 3.0])).sum()
    >>> y.backward()
    >>> y.item(), w.grad.numpy().ravel().tolist()
    (18.0, [6.0, 6.0])
    """

    __array_priority__ = 100  # ndarray (op) Tensor defers to Tensor's reflected ops

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        arr = np.asarray(data)
        if arr.dtype != np.float32:
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"`data` must be numeric, got dtype {arr.dtype}")
            arr = arr.astype(np.float32)
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self._output_index = 0

    @classmethod
    def _wrap(cls, arr, requires_grad=False):
        """A leaf Tensor around ndarray ``arr``, keeping its dtype (no copy)."""
        t = cls.__new__(Tensor)
        t.data = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
        if t.data.dtype not in PLAIN_DTYPES:
            raise TypeError(f"qlearn has no tensor dtype for NumPy {t.data.dtype}")
        t.grad = None
        t.requires_grad = False
        t.grad_fn = None
        t._output_index = 0
        if requires_grad:
            t.requires_grad_(True)
        return t

    @classmethod
    def _from_op(cls, data, node, index, keep=None):
        """Wrap an operation's output; its dtype is kept when it is in ``keep`` (the
        input tensors' dtypes) or is float32, else it becomes float32."""
        t = cls.__new__(Tensor)
        arr = np.asarray(data)
        if arr.dtype != np.float32 and (keep is None or arr.dtype not in keep):
            arr = arr.astype(np.float32)
        t.data = arr
        t.grad = None
        t.requires_grad = node is not None
        t.grad_fn = node
        t._output_index = index
        return t

    # -- basics -------------------------------------------------------------------------
    @property
    def shape(self):
        """The shape of ``data``, a tuple of ints (as ``torch.Tensor.shape``)."""
        return self.data.shape

    @property
    def ndim(self):
        """Number of dimensions of ``data``."""
        return self.data.ndim

    @property
    def dtype(self):
        """The element type, a qlearn dtype (``qlearn.float32``, ``qlearn.int8`` ...);
        it compares equal to the NumPy dtype of ``data``.

        >>> import qlearn as ql
        >>> ql.tensor([1.0]).dtype, ql.tensor([1, 2]).dtype, (ql.tensor([1]) > 0).dtype
        (qlearn.float32, qlearn.int64, qlearn.bool)
        """
        return PLAIN_DTYPES[self.data.dtype]

    def is_floating_point(self):
        """True for float16/32/64 tensors (``torch.Tensor.is_floating_point``)."""
        return self.data.dtype.kind == "f"

    def element_size(self):
        """Bytes per element (``torch.Tensor.element_size``): 4 for float32, 1 for int8."""
        return self.data.dtype.itemsize

    @property
    def is_leaf(self):
        """True when no recorded operation produced this tensor (``grad_fn`` is None)."""
        return self.grad_fn is None

    def size(self, dim=None):
        """The shape as a :class:`Size`, or its length along ``dim`` when given
        (``torch.Tensor.size``).

        >>> import qlearn as ql
        >>> ql.zeros(3, 2).size(), ql.zeros(3, 2).size(0)
        (qlearn.Size([3, 2]), 3)
        """
        return Size(self.shape) if dim is None else self.shape[dim]

    def dim(self):
        """Number of dimensions (as ``torch.Tensor.dim``)."""
        return self.data.ndim

    def numel(self):
        """Number of elements (as ``torch.Tensor.numel``)."""
        return self.data.size

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def tolist(self):
        """The values as (nested) Python lists of numbers (``torch.Tensor.tolist``); a 0-d
        tensor gives a number.

        >>> import qlearn as ql
        >>> ql.tensor([[1, 2]]).tolist(), ql.tensor(2.5).tolist()
        ([[1, 2]], 2.5)
        """
        return self.data.tolist()

    def numpy(self):
        """The data as an ndarray (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "biu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted "
                            "to an index")
        return int(self.item())

    def __format__(self, spec):
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` during :meth:`backward`
        (leaves always keep theirs).

        >>> import qlearn as ql
        >>> x = ql.tensor([1.0, 2.0], requires_grad=True)
        >>> y = x * 3
        >>> y.retain_grad()
        >>> (y * y).sum().backward()
        >>> y.grad.numpy()
        array([ 6., 12.], dtype=float32)
        """
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("can't retain_grad on a tensor that does not require grad")
            return
        import weakref
        if self.grad_fn.retained is None:
            self.grad_fn.retained = {}
        self.grad_fn.retained[self._output_index] = weakref.ref(self)

    def item(self):
        """The value of a one-element tensor as a Python number (int for integer
        tensors, bool for bool tensors)."""
        if self.data.size != 1:
            raise ValueError(f"only a one-element tensor can be converted to a Python "
                             f"number, got shape {self.shape}")
        return self.data.item()

    def detach(self):
        """A tensor sharing ``data`` but cut from the graph."""
        return Tensor._wrap(self.data)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return ``self``; only a leaf may turn it
        off (use :meth:`detach` otherwise), and only a floating-point tensor may turn it
        on."""
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; "
                               "use detach()")
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got "
                               f"dtype {self.dtype!r}")
        self.requires_grad = bool(requires_grad)
        return self

    # -- dtype conversions -------------------------------------------------------------
    def to(self, *args, dtype=None, copy=False, **kwargs):
        """This tensor converted to ``dtype`` (``torch.Tensor.to``): ``t.to(ql.int8)``,
        ``t.to(other_tensor)`` (its dtype) or ``t.to("cpu")`` (the only device).

        Float to integer conversion truncates toward zero and keeps the low bits of the
        result, as PyTorch does on the CPU (``300.7`` becomes ``44`` in int8).  Between
        floating types the gradient passes through; integer results have none.  The
        tensor itself is returned when nothing changes (unless ``copy=True``).

        >>> import qlearn as ql
        >>> ql.tensor([-1.7, 0.5, 127.9, 300.7]).to(ql.int8)
        tensor([ -1,   0, 127,  44], dtype=qlearn.int8)
        """
        kwargs.pop("non_blocking", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, str):
                device = a
            elif a is not None:
                dtype = a
        if device is not None and str(device) != "cpu":
            raise ValueError(f"`device` must be 'cpu' (qlearn runs on the CPU), got {device!r}")
        if dtype is None:
            return Tensor._wrap(self.data.copy()) if copy else self
        dt = as_dtype(dtype)
        if dt.numpy_dtype == self.data.dtype:
            return self.clone().detach() if copy and not self.requires_grad else \
                (self.clone() if copy else self)
        return _cast(self, dt)

    def float(self):
        """As float32 (``self`` when already float32), as ``torch.Tensor.float``."""
        return self.to(float32)

    def double(self):
        """As float64 (``torch.Tensor.double``)."""
        return self.to(np.float64)

    def half(self):
        """As float16 (``torch.Tensor.half``)."""
        return self.to(np.float16)

    def int(self):
        """As int32 (``torch.Tensor.int``)."""
        return self.to(np.int32)

    def long(self):
        """As int64 (``torch.Tensor.long``)."""
        return self.to(np.int64)

    def short(self):
        """As int16 (``torch.Tensor.short``)."""
        return self.to(np.int16)

    def char(self):
        """As int8 (``torch.Tensor.char``)."""
        return self.to(np.int8)

    def byte(self):
        """As uint8 (``torch.Tensor.byte``)."""
        return self.to(np.uint8)

    def bool(self):
        """As bool: True where non-zero (``torch.Tensor.bool``)."""
        return self.to(np.bool_)

    def zero_(self):
        """Fill ``data`` with zeros in place (not recorded in the graph); returns ``self``."""
        self.data[...] = 0
        return self

    def __repr__(self):
        extra = []
        if self.grad_fn is not None:
            extra.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return tensor_repr(self.data, extra, dtype_name=repr(self.dtype))

    __str__ = __repr__

    # -- autograd ------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        r"""Compute :math:`\partial\,\mathrm{self} / \partial x` for every leaf ``x``
        with ``requires_grad`` and add it to ``x.grad``.

        ``gradient`` (:math:`\partial L/\partial\,\mathrm{self}`) defaults to 1 for a
        one-element tensor (a loss).  The arrays the graph saved are freed afterwards
        unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input had requires_grad=True, or it was computed "
                               "under no_grad())")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without `gradient` needs a one-element "
                                   f"tensor, got shape {self.shape}")
            gradient = np.ones(self.shape, np.float32)
        gradient = np.asarray(_array(gradient), dtype=np.float32)
        if gradient.shape != self.shape:
            raise ValueError(f"`gradient` must have shape {self.shape}, got {gradient.shape}")
        if self.grad_fn is None:  # a leaf: d self / d self
            if self.grad is None:
                self.grad = Tensor(gradient.copy())
            else:
                self.grad.data += gradient
            return
        _run_backward(self, gradient, retain_graph)

    # -- operators -----------------------------------------------------------------------
    # Operands are first cast to the dtype PyTorch's promotion gives the pair
    # (qlearn.autograd.promotion); the operation then runs on arrays of that dtype.
    def __add__(self, other):
        return ops.Add.apply(*_both(self, other))

    def __radd__(self, other):
        return ops.Add.apply(*_both(other, self))

    def __sub__(self, other):
        return ops.Sub.apply(*_both(self, other))

    def __rsub__(self, other):
        return ops.Sub.apply(*_both(other, self))

    def __mul__(self, other):
        return ops.Mul.apply(*_both(self, other))

    def __rmul__(self, other):
        return ops.Mul.apply(*_both(other, self))

    def __truediv__(self, other):
        return ops.Div.apply(*_both(self, other, floating=True))

    def __rtruediv__(self, other):
        return ops.Div.apply(*_both(other, self, floating=True))

    def __floordiv__(self, other):
        return _floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _floor_divide(other, self)

    def __mod__(self, other):
        return _remainder(self, other)

    def __rmod__(self, other):
        return _remainder(other, self)

    def __neg__(self):
        if self.data.dtype == np.bool_:
            raise TypeError("negation of a bool tensor is not supported; use ~ instead")
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __pow__(self, p):
        if isinstance(p, Tensor):
            if p.requires_grad:
                raise TypeError("a Tensor exponent that requires grad is not supported; "
                                "use exp(log(a) * p)")
            base, p = _both(self, p)
            return ops.Pow.apply(base, p.data)
        base = _cast(self, result_type(self, p))
        return ops.Pow.apply(base, p)

    def __rpow__(self, base):
        # base ** t = exp(t ln base), the differentiable form when t requires grad
        if self.requires_grad and is_grad_enabled():
            return (self * float(np.log(base))).exp()
        b, e = _both(base, self)
        return Tensor._wrap(np.asarray(np.power(b.data, e.data)))

    def __matmul__(self, other):
        return ops.MatMul.apply(self, _operand(other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(_operand(other), self)

    def __getitem__(self, key):
        return ops.GetItem.apply(self, _index_key(key))

    def __setitem__(self, key, value):
        """``t[key] = value`` writes into ``data`` (cast to this tensor's dtype); it is
        not recorded, so a tensor that requires a gradient refuses it."""
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("a tensor that requires grad cannot be written in place "
                               "(use ql.where, or write under no_grad())")
        self.data[_index_key(key)] = np.asarray(_array(value)).astype(self.data.dtype)

    # comparisons give bool tensors (masks); they have no gradient
    def _compare(self, other, fn):
        try:
            a, b = _both(self, other)
        except TypeError:
            return NotImplemented
        return Tensor._wrap(np.asarray(fn(_array(a), _array(b))))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        if other is None:
            return False
        return self._compare(other, np.equal)

    def __ne__(self, other):
        if other is None:
            return True
        return self._compare(other, np.not_equal)

    __hash__ = object.__hash__

    def eq(self, other):
        """Elementwise ``self == other``, a bool tensor (``torch.Tensor.eq``)."""
        return self == other

    def ne(self, other):
        """Elementwise ``self != other``, a bool tensor (``torch.Tensor.ne``)."""
        return self != other

    # logical / bitwise operators, for bool and integer tensors
    def _bitwise(self, other, fn):
        a, b = _both(self, other)
        if a.data.dtype.kind == "f":
            raise TypeError(f"{fn.__name__} needs bool or integer tensors, got {a.dtype!r}")
        return Tensor._wrap(np.asarray(fn(a.data, b.data)))

    def __and__(self, other):
        return self._bitwise(other, np.bitwise_and)

    __rand__ = __and__

    def __or__(self, other):
        return self._bitwise(other, np.bitwise_or)

    __ror__ = __or__

    def __xor__(self, other):
        return self._bitwise(other, np.bitwise_xor)

    __rxor__ = __xor__

    def __invert__(self):
        if self.data.dtype.kind == "f":
            raise TypeError(f"~ needs a bool or integer tensor, got {self.dtype!r}")
        return Tensor._wrap(np.invert(self.data))

    # -- elementwise functions ---------------------------------------------------------
    def exp(self):
        r"""Elementwise :math:`y = e^x`; gradient :math:`g\,e^x`."""
        return ops.Exp.apply(self)

    def log(self):
        r"""Elementwise natural logarithm :math:`y = \ln x`; gradient :math:`g / x`."""
        return ops.Log.apply(self)

    def sqrt(self):
        r"""Elementwise :math:`y = \sqrt{x}`; gradient :math:`g / (2\sqrt{x})`."""
        return ops.Sqrt.apply(self)

    def abs(self):
        r"""Elementwise :math:`y = |x|`; gradient :math:`g\,\operatorname{sign}(x)` (0 at
        :math:`x = 0`, as PyTorch)."""
        return ops.Abs.apply(self)

    def tanh(self):
        r"""Elementwise :math:`y = \tanh x`; gradient :math:`g\,(1 - y^2)`."""
        return ops.Tanh.apply(self)

    def sigmoid(self):
        r"""Elementwise :math:`y = \sigma(x) = 1 / (1 + e^{-x})`; gradient
        :math:`g\,y\,(1 - y)`."""
        return ops.Sigmoid.apply(self)

    def relu(self):
        r"""Elementwise :math:`y = \max(x, 0)`; gradient :math:`g\,[x > 0]` (0 at :math:`x = 0`,
        as PyTorch)."""
        return ops.ReLU.apply(self)

    def pow(self, p):
        r"""Elementwise :math:`y = x^p` for a constant exponent ``p`` (same as ``x ** p``);
        gradient :math:`g\,p\,x^{p-1}`."""
        return self ** p

    def log10(self):
        r"""Elementwise :math:`y = \log_{10} x`; gradient :math:`g / (x \ln 10)`."""
        return ops.Log10.apply(self)

    def round(self, decimals=0):
        r"""Round to the nearest integer, halves to even (``torch.round``; ``2.5 -> 2``).

        With ``decimals`` it computes :math:`\mathrm{round}(x \cdot 10^d) / 10^d`.
        The gradient is zero (rounding is flat almost everywhere); quantizers that
        train through rounding use a straight-through estimator instead.

        >>> import qlearn as ql
        >>> ql.tensor([0.5, 1.5, 2.5, -0.5]).round()
        tensor([0., 2., 2., -0.])
        """
        if self.data.dtype.kind != "f":
            return self.clone()
        return ops.Round.apply(self, int(decimals))

    def clamp(self, min=None, max=None):
        r"""``torch.clamp``: :math:`\min(\max(x, min), max)`; the gradient passes where
        ``min <= x <= max``.  An integer tensor with integer bounds stays integer."""
        if min is None and max is None:
            raise ValueError("clamp needs at least one of `min` and `max`")
        bounds = [b for b in (min, max) if b is not None]
        dt = result_type(self, *bounds)
        x = _cast(self, dt)
        lo = None if min is None else np.asarray(_array(min)).astype(dt.numpy_dtype)
        hi = None if max is None else np.asarray(_array(max)).astype(dt.numpy_dtype)
        return ops.Clamp.apply(x, lo=lo, hi=hi)

    clip = clamp

    def norm(self, p="fro", dim=None, keepdim=False):
        r"""The :math:`p`-norm :math:`(\sum_i |x_i|^p)^{1/p}` over ``dim`` (all elements
        when None); ``"fro"`` and 2 are the Euclidean norm :math:`\sqrt{\sum_i x_i^2}`,
        ``inf`` the largest magnitude (``torch.norm``).

        >>> import qlearn as ql
        >>> ql.tensor([3.0, 4.0]).norm()
        tensor(5.)
        """
        if self.data.dtype.kind != "f":
            raise TypeError(f"norm needs a floating-point tensor, got {self.dtype!r}")
        if p in ("fro", 2, 2.0):
            return (self * self).sum(dim, keepdim).sqrt()
        if p in (float("inf"), "inf"):
            return self.abs().amax(dim, keepdim)
        if p in (1, 1.0):
            return self.abs().sum(dim, keepdim)
        if isinstance(p, numbers.Real) and p > 0:
            return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)
        raise ValueError(f"`p` must be 'fro', inf or a positive number, got {p!r}")

    def softmax(self, dim):
        r"""Softmax along ``dim``: :math:`y_i = e^{x_i} / \sum_j e^{x_j}`; gradient
        :math:`y_i\,(g_i - \sum_j g_j y_j)` (``torch.Tensor.softmax``)."""
        return ops.Softmax.apply(self, _dim(dim, self.ndim))

    def log_softmax(self, dim):
        r"""Log-softmax along ``dim``: :math:`y_i = x_i - \log \sum_j e^{x_j}`; gradient
        :math:`g_i - e^{y_i} \sum_j g_j` (``torch.Tensor.log_softmax``)."""
        return ops.LogSoftmax.apply(self, _dim(dim, self.ndim))

    def clone(self):
        """A copy of ``data`` that stays in the graph (the gradient passes through), as
        ``torch.Tensor.clone``."""
        return ops.Clone.apply(self)

    # -- reductions ------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all); ``axis``/``keepdims``
        are accepted as NumPy spellings."""
        dim, keepdim = _pick(dim, axis, keepdim, keepdims)
        if self.data.dtype.kind != "f":   # integers and bools sum to int64, as in PyTorch
            axes = ops._norm_axis(dim, self.ndim)
            return Tensor._wrap(np.asarray(np.sum(self.data, axis=axes, keepdims=keepdim,
                                                  dtype=np.int64)))
        return ops.Sum.apply(self, axis=dim, keepdims=keepdim)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        r"""Mean over ``dim`` (an int, a tuple, or None for all): :math:`y = \frac{1}{n}\sum_i x_i`;
        gradient :math:`g / n` to each element.  ``axis``/``keepdims`` are NumPy spellings."""
        dim, keepdim = _pick(dim, axis, keepdim, keepdims)
        if self.data.dtype.kind != "f":
            raise TypeError(f"mean() needs a floating-point tensor, got {self.dtype!r} "
                            f"(convert it first: t.float().mean())")
        axes = ops._norm_axis(dim, self.ndim)
        n = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        return self.sum(dim, keepdim) * np.float32(1.0 / max(n, 1))

    def var(self, dim=None, unbiased=True, keepdim=False):
        """Variance over ``dim``, with Bessel's correction unless ``unbiased=False``."""
        axes = ops._norm_axis(dim, self.ndim)
        n = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        d = self - self.mean(dim, keepdim=True)
        return (d * d).sum(dim, keepdim) * np.float32(1.0 / max(n - int(unbiased), 1))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As ``torch.max``: the largest value, or with ``dim`` the pair
        ``(values, indices)`` (indices an int64 ndarray; the gradient goes to them).

        The NumPy spelling ``max(axis=..., keepdims=...)`` returns the values only, as
        ``ndarray.max`` does (see :meth:`amax`).

        >>> import qlearn as ql
        >>> x = ql.tensor([[1.0, 5.0, 2.0]])
        >>> x.max().item(), x.max(1).indices.tolist(), x.max(axis=1).numpy()
        (5.0, [1], array([5.], dtype=float32))
        """
        if axis is not None or keepdims is not None:
            if dim is not None:
                raise TypeError("give `dim` or `axis`, not both")
            return self.amax(axis, bool(keepdims))
        if dim is None:
            return ops.Amax.apply(self)
        dim = _dim(dim, self.ndim)
        idx = np.argmax(self.data, axis=dim)
        return MaxResult(ops.MaxDim.apply(self, idx, dim, keepdim), idx)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As ``torch.min``: see :meth:`max`."""
        if axis is not None or keepdims is not None:
            if dim is not None:
                raise TypeError("give `dim` or `axis`, not both")
            return ops.Amin.apply(self, axis=axis, keepdims=bool(keepdims))
        if dim is None:
            return ops.Amin.apply(self)
        dim = _dim(dim, self.ndim)
        idx = np.argmin(self.data, axis=dim)
        return MaxResult(ops.MaxDim.apply(self, idx, dim, keepdim), idx)

    def all(self, dim=None, keepdim=False):
        """True where every element (over ``dim``) is non-zero, a bool tensor
        (``torch.Tensor.all``)."""
        axes = ops._norm_axis(dim, self.ndim)
        return Tensor._wrap(np.asarray(np.all(self.data, axis=axes, keepdims=keepdim)))

    def any(self, dim=None, keepdim=False):
        """True where some element (over ``dim``) is non-zero, a bool tensor
        (``torch.Tensor.any``)."""
        axes = ops._norm_axis(dim, self.ndim)
        return Tensor._wrap(np.asarray(np.any(self.data, axis=axes, keepdims=keepdim)))

    def amax(self, dim=None, keepdim=False):
        """Largest values over ``dim``; tied maxima share the gradient equally."""
        return ops.Amax.apply(self, axis=dim, keepdims=keepdim)

    def argmax(self, dim=None, keepdim=False):
        """Index of the largest value (an int64 ndarray; no gradient)."""
        if dim is None:
            return np.asarray(np.argmax(self.data))
        return np.argmax(self.data, axis=dim, keepdims=keepdim)

    # -- shape -----------------------------------------------------------------------------
    def reshape(self, *shape):
        """The same data in shape ``shape`` (ints or one tuple; one -1 is inferred), as
        ``torch.Tensor.reshape``; ``view`` is an alias."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, V.check_shape(shape, self.data.size))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims ``start_dim`` to ``end_dim`` into one (``torch.Tensor.flatten``); a 0-d
        tensor becomes shape ``(1,)``."""
        start, end = _dim(start_dim, self.ndim, "start_dim"), _dim(end_dim, self.ndim, "end_dim")
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"`start_dim` must not come after `end_dim`, got "
                             f"start_dim={start_dim} (axis {start}) and end_dim={end_dim} "
                             f"(axis {end})")
        # the merged length itself, not -1: a tensor with a zero-size axis has no -1
        merged = math.prod(self.shape[start:end + 1])
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    # -- slices along one dim (each a GetItem, so the gradient scatters back) -----------
    def _along(self, d, key):
        return self[(slice(None),) * d + (key,)]

    def select(self, dim, index):
        """The slice ``index`` along ``dim``, that dim removed (``torch.Tensor.select``);
        ``index`` in ``[-size, size - 1]``."""
        if self.ndim == 0:
            raise ValueError("select() cannot be applied to a 0-d tensor")
        d = _dim(dim, self.ndim)
        size = self.shape[d]
        i = _int(index, "index")
        if not -size <= i < size:   # torch: IndexError
            raise IndexError(f"`index` must be in [{-size}, {size - 1}] for dimension {d} "
                             f"of length {size}, got {index}")
        return self._along(d, i)

    def narrow(self, dim, start, length):
        """The ``length`` slices from ``start`` along ``dim`` (``torch.Tensor.narrow``);
        a negative ``start`` counts from the end, and ``start + length`` must not pass it."""
        if self.ndim == 0:
            raise ValueError("narrow() cannot be applied to a 0-d tensor")
        d = _dim(dim, self.ndim)
        size = self.shape[d]
        s, n = _int(start, "start"), _int(length, "length")
        if not -size <= s <= size:
            raise IndexError(f"`start` must be in [{-size}, {size}] for dimension {d} of "
                             f"length {size}, got {start}")
        if s < 0:
            s += size
        if n < 0 or s + n > size:
            raise ValueError(f"`start` + `length` must be at most {size} (dimension {d}) "
                             f"with a non-negative `length`, got start={start}, "
                             f"length={length}")
        return self._along(d, slice(s, s + n))

    def index_select(self, dim, index):
        """The slices ``index`` (a 0-d or 1-d integer index) along ``dim``, as a copy
        (``torch.Tensor.index_select``); indices in ``[0, size)``, repeats allowed (their
        gradients add)."""
        d = _dim(dim, self.ndim)
        raw = index.data if isinstance(index, Tensor) else index
        idx = V.check_index_vector(raw, self.shape[d] if self.ndim else 1, d)
        if self.ndim == 0:
            return self.reshape(1)[idx].reshape(idx.shape if np.ndim(raw) else ())
        return self._along(d, idx)

    def unbind(self, dim=0):
        """The slices along ``dim``, a tuple of :meth:`select` results
        (``torch.Tensor.unbind``)."""
        if self.ndim == 0:
            raise ValueError("unbind() cannot be applied to a 0-d tensor")
        d = _dim(dim, self.ndim)
        return tuple(self._along(d, i) for i in range(self.shape[d]))

    def split(self, split_size_or_sections, dim=0):
        """Pieces along ``dim`` (``torch.Tensor.split``): of ``split_size`` each (the last
        one shorter), or of the listed sizes, which must add up to the dim's length."""
        if self.ndim == 0:
            raise ValueError("split() cannot be applied to a 0-d tensor")
        d = _dim(dim, self.ndim)
        size = self.shape[d]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = [_int(n, "split_size_or_sections") for n in split_size_or_sections]
            if any(n < 0 for n in sizes) or sum(sizes) != size:
                raise ValueError(f"`split_size_or_sections` must be non-negative sizes "
                                 f"adding up to {size} (dimension {d}), got {sizes}")
        else:
            step = _int(split_size_or_sections, "split_size_or_sections")
            if step < 0 or (step == 0 and size):
                raise ValueError(f"`split_size_or_sections` must be positive, got {step}")
            sizes = [min(step, size - i) for i in range(0, size, step)] if size else [0]
        starts = np.cumsum([0] + sizes[:-1])
        return tuple(self._along(d, slice(int(a), int(a) + n))
                     for a, n in zip(starts, sizes))

    def chunk(self, chunks, dim=0):
        """At most ``chunks`` pieces along ``dim``, each of ``ceil(size / chunks)`` (the
        last shorter; ``torch.Tensor.chunk``); an empty dim gives ``chunks`` empty pieces,
        as torch."""
        n = _int(chunks, "chunks")
        if n <= 0:
            raise ValueError(f"`chunks` must be positive, got {chunks}")
        if self.ndim == 0:
            raise ValueError("chunk() cannot be applied to a 0-d tensor")
        d = _dim(dim, self.ndim)
        size = self.shape[d]
        return self.split(-(-size // n), d) if size else self.split([0] * n, d)

    def squeeze(self, dim=None):
        """Drop size-1 dims: all of them, or only ``dim`` if given and of size 1
        (``torch.Tensor.squeeze``)."""
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            dim = _dim(dim, self.ndim)
            shape = self.shape if self.shape[dim] != 1 else \
                self.shape[:dim] + self.shape[dim + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim):
        """Insert a size-1 dim at position ``dim`` (``torch.Tensor.unsqueeze``)."""
        dim = _dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        """Broadcast to ``shape`` (-1 keeps a dim's size), as ``torch.Tensor.expand``; the
        gradient is summed over the broadcast dims."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Expand.apply(self, V.check_expand(shape, self.shape))

    def permute(self, *axes):
        """Reorder the dims as ``axes`` (``torch.Tensor.permute``); the gradient is permuted
        back."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        dims = tuple(_dim(a, self.ndim, "dims") for a in axes)
        if len(dims) != self.ndim or len(set(dims)) != len(dims):
            raise ValueError(f"`dims` must be a permutation of the {self.ndim} axes, got "
                             f"{axes}")
        return ops.Permute.apply(self, dims)

    def transpose(self, dim0, dim1):
        """Swap dims ``dim0`` and ``dim1`` (``torch.Tensor.transpose``)."""
        axes = list(range(self.ndim))
        dim0, dim1 = _dim(dim0, self.ndim, "dim0"), _dim(dim1, self.ndim, "dim1")
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops.Permute.apply(self, tuple(axes))

    def t(self):
        """The transpose of a 2-d tensor (``torch.Tensor.t``); any other tensor is returned
        as is."""
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def T(self):
        """The tensor with all dims reversed (``torch.Tensor.T``)."""
        return ops.Permute.apply(self, tuple(range(self.ndim - 1, -1, -1)))


class Size(tuple):
    """A shape returned by :meth:`Tensor.size`: a tuple of ints that prints as
    ``torch.Size`` does (``Tensor.shape`` is a plain tuple).

    >>> from qlearn.autograd.tensor import Size
    >>> Size((3, 2)) == (3, 2), Size((3, 2))
    (True, qlearn.Size([3, 2]))
    """

    def __repr__(self):
        return f"qlearn.Size({list(self)})"

    def numel(self):
        """The number of elements of a tensor of this shape."""
        return int(np.prod(self, dtype=np.int64))


class MaxResult(tuple):
    """``(values, indices)`` as returned by ``Tensor.max(dim)``, like torch's named tuple."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        """The largest (or smallest) values along ``dim``, a Tensor."""
        return self[0]

    @property
    def indices(self):
        """Their positions along ``dim``, an int64 ndarray."""
        return self[1]


def _dim(dim, ndim, name="dim"):
    """``dim`` as a non-negative axis, or a clear error."""
    dim = _int(dim, name)
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"`{name}` must be in [{-max(ndim, 1)}, {max(ndim, 1) - 1}], "
                         f"got {dim}")
    return dim % max(ndim, 1)


def _int(value, name):
    """``value`` as a Python int (a NumPy integer too), or a TypeError naming it."""
    if not V.is_int(value):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    return int(value)


def _pick(dim, axis, keepdim, keepdims):
    """Merge PyTorch (dim, keepdim) and NumPy (axis, keepdims) spellings."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give `dim` or `axis`, not both")
        dim = axis
    return dim, bool(keepdim if keepdims is None else keepdims)


def cat(tensors, dim=0):
    """Join tensors along an existing axis ``dim`` (``torch.cat``).

    >>> import qlearn as ql
    >>> ql.autograd.cat([ql.tensor([1.0]), ql.tensor([2.0, 3.0])]).numpy()
    array([1., 2., 3.], dtype=float32)
    """
    tensors = _common(tensors)
    if np.ndim(tensors[0]):
        V.check_cat_shapes([np.shape(t) for t in tensors], dim, "cat")
    return ops.Cat.apply(_dim(dim, np.ndim(tensors[0])), *tensors)


def stack(tensors, dim=0):
    """Stack equally shaped tensors along a new axis ``dim`` (``torch.stack``).

    >>> import qlearn as ql
    >>> ql.autograd.stack([ql.tensor([1.0, 2.0]), ql.tensor([3.0, 4.0])], dim=1).shape
    (2, 2)
    """
    tensors = _common(tensors)
    for i, t in enumerate(tensors[1:], 1):
        if np.shape(t) != np.shape(tensors[0]):
            raise ValueError(f"stack: `tensors[{i}]` must have the shape of `tensors[0]`, "
                             f"{np.shape(tensors[0])}, got {np.shape(t)}")
    return ops.Stack.apply(_dim(dim, np.ndim(tensors[0]) + 1), *tensors)


def where(condition, input, other):
    r"""Elementwise :math:`y = c \,?\, a : b` (``torch.where``); the gradient of ``a``
    is ``g`` where ``condition`` holds and 0 elsewhere, and conversely for ``b``.

    >>> import qlearn as ql
    >>> ql.autograd.where([True, False], ql.tensor([1.0, 2.0]), 0.0).numpy()
    array([1., 0.], dtype=float32)
    """
    a, b = _both(input, other)
    return ops.Where.apply(np.asarray(_array(condition), bool), a, b)


def maximum(input, other):
    r"""Elementwise :math:`\max(a, b)` (``torch.maximum``); ties split the gradient.

    >>> import qlearn as ql
    >>> ql.autograd.maximum(ql.tensor([1.0, 5.0]), 2.0).numpy()
    array([2., 5.], dtype=float32)
    """
    return ops.Maximum.apply(*_both(input, other))


def minimum(input, other):
    r"""Elementwise :math:`\min(a, b)` (``torch.minimum``); ties split the gradient.

    >>> import qlearn as ql
    >>> ql.autograd.minimum(ql.tensor([1.0, 5.0]), 2.0).numpy()
    array([1., 2.], dtype=float32)
    """
    return ops.Minimum.apply(*_both(input, other))


def _common(tensors):
    """The sequence's tensors cast to their common dtype (for cat and stack)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("`tensors` must not be empty")
    if all(_is_f32(t) for t in tensors):
        return tensors
    dt = result_type(*[t if isinstance(t, Tensor) else np.asarray(t) for t in tensors])
    return [_cast(t, dt) for t in tensors]


def _infer(data):
    """``data`` as an ndarray of the dtype ``torch.tensor`` would choose: Python floats
    give float32, Python ints int64, bools bool; NumPy integer and bool arrays keep
    their dtype.  NumPy float64 data gives float32 (qlearn's default float; pass
    ``dtype=ql.float64`` to keep it)."""
    if isinstance(data, Tensor):
        return data.data.copy()
    if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in data):
        data = [_infer(v) for v in data]
    arr = np.array(data, copy=True)
    if arr.dtype.kind == "f":
        return arr if arr.dtype in (np.float32, np.float16) else arr.astype(np.float32)
    if arr.dtype.kind in "biu":
        if arr.dtype not in PLAIN_DTYPES:   # uint16, uint32, uint64
            return arr.astype(np.int64)
        return arr
    if arr.size == 0 and arr.dtype == np.float64:
        return arr.astype(np.float32)
    raise TypeError(f"`data` must be numeric, got dtype {arr.dtype}")


def tensor(data, dtype=None, device=None, requires_grad=False):
    """Make a :class:`Tensor` from a number, a (nested) list, an ndarray or a Tensor
    (always a copy), as ``torch.tensor``.

    The dtype is ``dtype`` when given, else inferred: float32 for floats (NumPy float64
    arrays included: qlearn's default float), int64 for Python ints, bool for bools,
    and the array's own dtype for NumPy integer arrays.  Only floating-point tensors may
    have ``requires_grad=True``.

    >>> import qlearn as ql
    >>> x = ql.tensor([[1.0, 2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([[2., 4.]], dtype=float32)
    >>> ql.tensor([0, 1, 1000]), ql.tensor([1.5], dtype=ql.float64)
    (tensor([   0,    1, 1000]), tensor([1.5000], dtype=qlearn.float64))
    """
    if device is not None and str(device) != "cpu":
        raise ValueError(f"`device` must be 'cpu' (qlearn runs on the CPU), got {device!r}")
    try:
        return _tensor(data, dtype, requires_grad)
    except ValueError as exc:   # NumPy's "inhomogeneous shape" names no argument
        if "sequence" not in str(exc):
            raise
        raise ValueError(f"`data` must be a rectangular nested sequence of numbers: "
                         f"{exc}") from None


def _tensor(data, dtype, requires_grad):
    if dtype is None:
        arr = _infer(data)
    else:   # straight from the given data, so float64 input keeps its precision
        target = as_dtype(dtype).numpy_dtype
        if isinstance(data, (list, tuple)) and any(isinstance(v, Tensor) for v in data):
            data = [_array(v) for v in data]
        arr = np.array(_array(data), copy=True)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"`data` must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(target, copy=False)
    return Tensor._wrap(arr, requires_grad=requires_grad)


def _integer_op(a, b, fn):
    """``fn`` (floor_divide or remainder) on the promoted operands, without a gradient;
    integer division by zero is an error, as in PyTorch."""
    a, b = _both(a, b)
    x, y = np.asarray(_array(a)), np.asarray(_array(b))
    if x.dtype.kind in "biu" and np.any(y == 0):
        raise ZeroDivisionError("integer division by zero")
    with np.errstate(divide="ignore", invalid="ignore"):
        return Tensor._wrap(np.asarray(fn(x, y)))


def _floor_divide(a, b):
    """``a // b``: the quotient rounded down (``torch.floor_divide``: ``-7 // 2 == -4``)."""
    return _integer_op(a, b, np.floor_divide)


def _remainder(a, b):
    """``a % b`` with the sign of ``b`` (``torch.remainder``, Python's ``%``)."""
    return _integer_op(a, b, np.remainder)


# ``type(t)`` shows ``qlearn.Tensor``, the public name (as ``torch.Tensor``)
Tensor.__module__ = "qlearn"
