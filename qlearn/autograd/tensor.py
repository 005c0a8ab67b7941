"""``qlearn.Tensor``: a float32 ndarray that remembers how it was computed."""
import numpy as np

from . import ops
from .function import backward as _run_backward

__all__ = ["Tensor", "tensor"]


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
    ``mean``, ``reshape``, indexing ... build the graph as they compute.
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
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The data as an ndarray (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self):
        return self.data.item()

    def detach(self):
        """A tensor sharing ``data`` but cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad=True):
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; "
                               "use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_(self):
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
    def backward(self, gradient=None):
        r"""Compute :math:`\partial\,\mathrm{self} / \partial x` for every leaf ``x`` with
        ``requires_grad`` and add it to ``x.grad``.

        ``gradient`` defaults to 1 for a one-element tensor (a loss).  The graph is freed
        afterwards.
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
            self.grad = Tensor(gradient.copy()) if self.grad is None else self.grad + gradient
            return
        _run_backward(self, gradient)

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

    # -- reductions and shape ------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, dim=None):
        return ops.Sum.apply(self, axis=dim if dim is not None else axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, dim=None):
        axis = dim if dim is not None else axis
        n = self.data.size if axis is None else np.prod(
            [self.shape[a] for a in np.atleast_1d(axis)])
        return self.sum(axis=axis, keepdims=keepdims) * np.float32(1.0 / max(int(n), 1))

    def max(self, axis=None, keepdims=False, dim=None):
        return ops.Max.apply(self, axis=dim if dim is not None else axis, keepdims=keepdims)

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        end = end_dim % self.ndim if self.ndim else 0
        shape = self.shape[:start_dim] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

    def permute(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Permute.apply(self, tuple(axes))

    def transpose(self, dim0, dim1):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops.Permute.apply(self, tuple(axes))

    @property
    def T(self):
        return ops.Permute.apply(self, tuple(range(self.ndim - 1, -1, -1)))


def tensor(data, requires_grad=False):
    """Make a :class:`Tensor` (float32; float64 and integer data are converted).

    >>> import qlearn as ql
    >>> x = ql.tensor([[1.0, 2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([[2., 4.]], dtype=float32)
    """
    return Tensor(np.array(_array(data), dtype=np.float32, copy=True),
                  requires_grad=requires_grad)
