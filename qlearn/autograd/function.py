"""The autograd engine: Function, its context, the graph and the backward pass.

A :class:`Function` subclass defines ``forward(ctx, *args)`` and
``backward(ctx, *grad_outputs)`` as static methods and is called as
``MyFn.apply(*args)``.  ``apply`` unwraps :class:`~qlearn.Tensor` arguments to their
ndarrays, runs ``forward`` on plain NumPy, wraps the result (float32, unless an input
tensor had the result's dtype), and (when any input
requires a gradient and grad mode is on) records a :class:`Node` that links the output
to the nodes (or leaf tensors) its inputs came from.  ``Tensor.backward()`` then walks
the nodes in reverse topological order, calling each ``backward`` with the gradient of
its output(s) and handing the returned gradients on.

Unlike PyTorch, ``forward`` and ``backward`` receive and return NumPy arrays rather
than tensors: inside them no graph is built anyway, and the kernels they call take
arrays.  Everything else (``ctx.save_for_backward``, ``ctx.saved_tensors``,
``ctx.needs_input_grad``, ``None`` for inputs without a gradient) is PyTorch's.

The graph keeps no intermediate tensor alive: a node refers to the *node* that produced
each input (or, for a leaf such as a parameter, to the leaf tensor itself), and what
``forward`` saved in ``ctx`` is released by the backward pass.
"""
import contextlib
import threading

import numpy as np

__all__ = ["Function", "Context", "Node", "no_grad", "enable_grad", "is_grad_enabled",
           "set_grad_enabled"]

_state = threading.local()


def is_grad_enabled():
    """True unless inside :func:`no_grad` (or ``set_grad_enabled(False)``).

    >>> import qlearn as ql
    >>> with ql.no_grad():
    ...     ql.autograd.is_grad_enabled()
    False
    """
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def set_grad_enabled(mode):
    """Context manager that turns graph recording on (``mode=True``) or off.

    >>> import qlearn as ql
    >>> with ql.autograd.set_grad_enabled(False):
    ...     (ql.tensor([1.0], requires_grad=True) * 2).requires_grad
    False
    """
    before = is_grad_enabled()
    _state.enabled = bool(mode)
    try:
        yield
    finally:
        _state.enabled = before


def no_grad():
    """Context manager: operations inside record no graph (inference, optimiser steps).

    >>> import qlearn as ql
    >>> w = ql.tensor([1.0, 2.0], requires_grad=True)
    >>> with ql.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    return set_grad_enabled(False)


def enable_grad():
    """Context manager that turns graph recording back on inside :func:`no_grad`.

    >>> import qlearn as ql
    >>> w = ql.tensor([1.0], requires_grad=True)
    >>> with ql.no_grad():
    ...     with ql.enable_grad():
    ...         y = w * 2
    >>> y.requires_grad
    True
    """
    return set_grad_enabled(True)


class Context:
    """What ``forward`` leaves for ``backward``.

    ``ctx.save_for_backward(*arrays)`` keeps arrays, read back as ``ctx.saved_tensors``;
    ``ctx.needs_input_grad[i]`` tells whether input ``i`` wants a gradient (so backward
    can skip work); any other attribute (``ctx.axis = 1``) may be set freely.

    >>> import numpy as np, qlearn as ql
    >>> class Square(ql.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * g
    >>> x = ql.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).backward(); x.grad.numpy()
    array([6.], dtype=float32)
    """

    __slots__ = ("_saved", "needs_input_grad", "_freed", "__dict__")

    def __init__(self, needs_input_grad):
        self._saved = ()
        self._freed = False
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for ``backward`` (released once backward has run)."""
        self._saved = arrays

    @property
    def saved_tensors(self):
        """The arrays given to :meth:`save_for_backward`; an error once backward has
        freed them (unless it ran with ``retain_graph=True``)."""
        if self._freed:
            raise RuntimeError("Trying to backward through the graph a second time: its "
                               "saved arrays were freed after the first backward (pass "
                               "retain_graph=True to the first backward to keep them)")
        return self._saved

    def _free(self):
        self._saved = ()
        self.__dict__.clear()
        self._freed = True


class Node:
    """One recorded call: the Function, its context, and where each input came from.

    ``edges[i]`` is ``None`` (input ``i`` needs no gradient), the leaf Tensor itself
    (its ``.grad`` receives the gradient) or ``(node, k)``: output ``k`` of another node.

    >>> import qlearn as ql
    >>> x = ql.tensor([1.0], requires_grad=True)
    >>> y = (x * 2).exp()
    >>> y.grad_fn, y.grad_fn.next_functions
    (<ExpBackward>, (<MulBackward>,))
    """

    __slots__ = ("fn", "ctx", "edges", "in_shapes", "out_shapes", "retained", "__weakref__")

    def __init__(self, fn, ctx, edges, in_shapes, out_shapes):
        self.fn, self.ctx, self.edges = fn, ctx, edges
        self.in_shapes, self.out_shapes = in_shapes, out_shapes
        self.retained = None   # {output index: weakref to a Tensor} after retain_grad()

    @property
    def next_functions(self):
        """The nodes this one feeds gradients to (``None`` for leaves and constants)."""
        return tuple(e[0] if isinstance(e, tuple) else None for e in self.edges)

    def __repr__(self):
        return f"<{self.fn.__name__}Backward>"


class Function:
    """Base class of differentiable operations (see the module docstring).

    ``forward(ctx, *inputs)`` computes the output from NumPy arrays;
    ``backward(ctx, *grads)`` receives :math:`\\partial L/\\partial y` for each output and
    returns :math:`\\partial L/\\partial x_i = \\sum_j (\\partial L/\\partial y_j)
    (\\partial y_j/\\partial x_i)` for each input (``None`` for inputs that are not
    differentiable, such as shapes or flags).

    Example: the straight-through estimator of rounding, in full.

    >>> import numpy as np, qlearn as ql
    >>> class RoundSTE(ql.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         return np.rint(x)
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         return grad            # d round(x)/dx taken as 1
    >>> x = ql.tensor([0.4, 1.6], requires_grad=True)
    >>> RoundSTE.apply(x).sum().backward()
    >>> x.grad.numpy()
    array([1., 1.], dtype=float32)
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the arrays behind ``args`` and record the call.

        Tensor arguments are unwrapped to their ``.data``; everything else (numbers,
        arrays, shapes, keyword arguments) is passed as is.  Tensors must be passed
        positionally: only those get gradients.
        """
        from .tensor import Tensor
        record = is_grad_enabled()
        needs = tuple(record and isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = Context(needs)
        for k, v in kwargs.items():
            if isinstance(v, Tensor):
                raise TypeError(f"{cls.__name__}.apply: pass tensors positionally (keyword "
                                f"argument {k!r} is a Tensor, and would get no gradient)")
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        outputs = out if isinstance(out, tuple) else (out,)
        node = None
        if any(needs):
            edges = tuple(None if not n else
                          (a if a.grad_fn is None else (a.grad_fn, a._output_index))
                          for a, n in zip(args, needs))
            in_shapes = tuple(np.shape(r) if n else None for r, n in zip(raw, needs))
            node = Node(cls, ctx, edges, in_shapes, [np.shape(o) for o in outputs])
        # an output keeps its dtype when an input tensor had it (int8 + int8 is int8);
        # anything else is float32, qlearn's default (an op on int64 data that NumPy
        # computes in float64, such as sqrt, gives float32 as in PyTorch)
        keep = None if getattr(cls, "output_dtype_is_exact", False) else \
            {a.data.dtype for a in args if isinstance(a, Tensor)}
        wrapped = tuple(Tensor._from_op(o, node, i, keep) for i, o in enumerate(outputs))
        return wrapped if isinstance(out, tuple) else wrapped[0]


def _toposort(root_node):
    """Nodes reachable from ``root_node``, each before every node it feeds."""
    order, seen, stack = [], set(), [(root_node, False)]
    while stack:  # iterative DFS: deep graphs (long RNN unrolls) must not overflow
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for e in node.edges:
            if isinstance(e, tuple) and id(e[0]) not in seen:
                stack.append((e[0], False))
    return order[::-1]


def _fit_grad(g, shape, node, i):
    """Check a gradient returned by ``backward`` against its input's shape.

    A gradient of a broadcast shape is summed back (as PyTorch does); anything else
    is a bug in the Function and is reported as one.
    """
    g = np.asarray(g)
    if g.dtype != np.float32:
        g = g.astype(np.float32)
    if g.shape == shape:
        return g
    try:   # the input's shape must broadcast to the gradient's
        ok = np.broadcast_shapes(shape, g.shape) == g.shape
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"{node.fn.__name__}.backward returned a gradient of shape "
                           f"{g.shape} for input {i} of shape {shape}")
    from .ops import unbroadcast
    return unbroadcast(g, shape)


def backward(root, grad, retain_graph=False):
    """Accumulate d root / d leaf into ``leaf.grad`` for every leaf that requires grad.

    Gradients flowing into one node output from several consumers are summed before
    that node's ``backward`` runs (the topological order guarantees they all arrived).
    """
    from .tensor import Tensor
    grads = {id(root.grad_fn): [None] * len(root.grad_fn.out_shapes)}
    grads[id(root.grad_fn)][root._output_index] = grad
    for node in _toposort(root.grad_fn):
        outs = grads.pop(id(node), None)
        if outs is None:
            continue
        if node.ctx._freed:
            raise RuntimeError("Trying to backward through the graph a second time: the "
                               "first backward freed it (pass retain_graph=True to the "
                               "first backward to keep it)")
        outs = [np.zeros(shape, np.float32) if g is None else g
                for g, shape in zip(outs, node.out_shapes)]
        if node.retained:   # non-leaf tensors that asked for their gradient
            for k, ref in node.retained.items():
                t = ref()
                if t is not None:
                    g = np.asarray(outs[k], np.float32)
                    t.grad = Tensor(g.copy()) if t.grad is None else t.grad + g
        in_grads = node.fn.backward(node.ctx, *outs)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) < len(node.edges):
            in_grads = in_grads + (None,) * (len(node.edges) - len(in_grads))
        if not retain_graph:
            node.ctx._free()  # release what forward kept: the graph is spent
        for i, (edge, g) in enumerate(zip(node.edges, in_grads)):
            if edge is None or g is None:
                continue
            g = _fit_grad(g, node.in_shapes[i], node, i)
            if isinstance(edge, Tensor):  # a leaf: accumulate, as PyTorch does
                if edge.grad is None:
                    edge.grad = Tensor._wrap(np.array(g, dtype=edge.data.dtype, copy=True))
                else:
                    edge.grad.data += g
            else:
                prev, k = edge
                slot = grads.setdefault(id(prev), [None] * len(prev.out_shapes))
                slot[k] = g if slot[k] is None else slot[k] + g
