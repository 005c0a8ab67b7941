"""``qlearn.Tensor``: a float32 ndarray that remembers how it was computed."""
import numpy as np

from . import ops
from .function import backward as _run_backward

__all__ = ["Tensor", "tensor", "cat", "stack", "where", "maximum", "minimum"]


def _array(value):
    """The ndarray behind a Tensor, or the value itself."""
    if isinstance(value, Tensor):
        return value.data
    return value


def _operand(value):
    """A Tensor stays a Tensor (its gradient is tracked); anything else becomes float32."""
    return value if isinstance(value, Tensor) else np.asarray(value, dtype=np.float32)


class Tensor:
    """A float32 array with an optional gradient.

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
    def _from_op(cls, data, node, index):
        t = cls.__new__(Tensor)
        t.data = np.asarray(data, dtype=np.float32)
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
        """The NumPy dtype of ``data`` (always float32)."""
        return self.data.dtype

    @property
    def is_leaf(self):
        """True when no recorded operation produced this tensor (``grad_fn`` is None)."""
        return self.grad_fn is None

    def size(self, dim=None):
        """The shape, or its length along ``dim`` when given (``torch.Tensor.size``)."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        """Number of dimensions (as ``torch.Tensor.dim``)."""
        return self.data.ndim

    def numel(self):
        """Number of elements (as ``torch.Tensor.numel``)."""
        return self.data.size

    def __len__(self):
        return len(self.data)

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
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def detach(self):
        """A tensor sharing ``data`` but cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return ``self``; only a leaf may turn it
        off (use :meth:`detach` otherwise)."""
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; "
                               "use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_(self):
        """Fill ``data`` with zeros in place (not recorded in the graph); returns ``self``."""
        self.data[...] = 0
        return self

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.grad_fn is not None:
            extra = f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        return f"tensor({body}{extra})"

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
    def __add__(self, other):
        return ops.Add.apply(self, _operand(other))

    def __radd__(self, other):
        return ops.Add.apply(_operand(other), self)

    def __sub__(self, other):
        return ops.Sub.apply(self, _operand(other))

    def __rsub__(self, other):
        return ops.Sub.apply(_operand(other), self)

    def __mul__(self, other):
        return ops.Mul.apply(self, _operand(other))

    def __rmul__(self, other):
        return ops.Mul.apply(_operand(other), self)

    def __truediv__(self, other):
        return ops.Div.apply(self, _operand(other))

    def __rtruediv__(self, other):
        return ops.Div.apply(_operand(other), self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pow__(self, p):
        if isinstance(p, Tensor):
            raise TypeError("a Tensor exponent is not supported; use exp(log(a) * p)")
        return ops.Pow.apply(self, p)

    def __matmul__(self, other):
        return ops.MatMul.apply(self, _operand(other))

    def __rmatmul__(self, other):
        return ops.MatMul.apply(_operand(other), self)

    def __getitem__(self, key):
        if isinstance(key, Tensor):
            key = key.data.astype(np.intp)
        return ops.GetItem.apply(self, key)

    # comparisons give plain boolean arrays: they have no gradient
    def __lt__(self, other):
        return self.data < _array(other)

    def __le__(self, other):
        return self.data <= _array(other)

    def __gt__(self, other):
        return self.data > _array(other)

    def __ge__(self, other):
        return self.data >= _array(other)

    __hash__ = object.__hash__

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

    def clamp(self, min=None, max=None):
        """``torch.clamp``: the gradient passes where ``min <= x <= max``."""
        if min is None and max is None:
            raise ValueError("clamp needs at least one of `min` and `max`")
        return ops.Clamp.apply(self, lo=min, hi=max)

    clip = clamp

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

    def float(self):
        """Returns ``self`` (a Tensor is always float32); kept for PyTorch compatibility."""
        return self

    # -- reductions ------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all); ``axis``/``keepdims``
        are accepted as NumPy spellings."""
        dim, keepdim = _pick(dim, axis, keepdim, keepdims)
        return ops.Sum.apply(self, axis=dim, keepdims=keepdim)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        r"""Mean over ``dim`` (an int, a tuple, or None for all): :math:`y = \frac{1}{n}\sum_i x_i`;
        gradient :math:`g / n` to each element.  ``axis``/``keepdims`` are NumPy spellings."""
        dim, keepdim = _pick(dim, axis, keepdim, keepdims)
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
            return -(-self).amax(axis, bool(keepdims))
        if dim is None:
            return -ops.Amax.apply(-self)
        dim = _dim(dim, self.ndim)
        idx = np.argmin(self.data, axis=dim)
        return MaxResult(ops.MaxDim.apply(self, idx, dim, keepdim), idx)

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
        return ops.Reshape.apply(self, shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims ``start_dim`` to ``end_dim`` into one (``torch.Tensor.flatten``); a 0-d
        tensor becomes shape ``(1,)``."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape[:start] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

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
        lead = len(shape) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return ops.Expand.apply(self, shape)

    def permute(self, *axes):
        """Reorder the dims as ``axes`` (``torch.Tensor.permute``); the gradient is permuted
        back."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Permute.apply(self, tuple(_dim(a, self.ndim) for a in axes))

    def transpose(self, dim0, dim1):
        """Swap dims ``dim0`` and ``dim1`` (``torch.Tensor.transpose``)."""
        axes = list(range(self.ndim))
        dim0, dim1 = _dim(dim0, self.ndim), _dim(dim1, self.ndim)
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


def _dim(dim, ndim):
    """``dim`` as a non-negative axis, or a clear error."""
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"`dim` must be an int, got {type(dim).__name__}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"`dim` must be in [{-max(ndim, 1)}, {max(ndim, 1) - 1}], got {dim}")
    return int(dim) % max(ndim, 1)


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
    tensors = [_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("`tensors` must not be empty")
    return ops.Cat.apply(_dim(dim, np.ndim(tensors[0])), *tensors)


def stack(tensors, dim=0):
    """Stack equally shaped tensors along a new axis ``dim`` (``torch.stack``).

    >>> import qlearn as ql
    >>> ql.autograd.stack([ql.tensor([1.0, 2.0]), ql.tensor([3.0, 4.0])], dim=1).shape
    (2, 2)
    """
    tensors = [_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("`tensors` must not be empty")
    return ops.Stack.apply(_dim(dim, np.ndim(tensors[0]) + 1), *tensors)


def where(condition, input, other):
    r"""Elementwise :math:`y = c \,?\, a : b` (``torch.where``); the gradient of ``a``
    is ``g`` where ``condition`` holds and 0 elsewhere, and conversely for ``b``.

    >>> import qlearn as ql
    >>> ql.autograd.where([True, False], ql.tensor([1.0, 2.0]), 0.0).numpy()
    array([1., 0.], dtype=float32)
    """
    return ops.Where.apply(np.asarray(_array(condition), bool), _operand(input),
                           _operand(other))


def maximum(input, other):
    r"""Elementwise :math:`\max(a, b)` (``torch.maximum``); ties split the gradient.

    >>> import qlearn as ql
    >>> ql.autograd.maximum(ql.tensor([1.0, 5.0]), 2.0).numpy()
    array([2., 5.], dtype=float32)
    """
    return ops.Maximum.apply(_operand(input), _operand(other))


def minimum(input, other):
    r"""Elementwise :math:`\min(a, b)` (``torch.minimum``); ties split the gradient.

    >>> import qlearn as ql
    >>> ql.autograd.minimum(ql.tensor([1.0, 5.0]), 2.0).numpy()
    array([1., 2.], dtype=float32)
    """
    return ops.Minimum.apply(_operand(input), _operand(other))


def tensor(data, requires_grad=False):
    """Make a :class:`Tensor` (float32; float64 and integer data are converted).

    >>> import qlearn as ql
    >>> x = ql.tensor([[1.0, 2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([[2., 4.]], dtype=float32)
    """
    arr = np.array(_array(data), copy=True)
    return Tensor(arr, requires_grad=requires_grad)
