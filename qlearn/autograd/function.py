"""The autograd engine: Function, its context, the graph and the backward pass.

A :class:`Function` subclass defines ``forward(ctx, *args)`` and
``backward(ctx, *grad_outputs)`` as static methods and is called as
``MyFn.apply(*args)``.  ``apply`` unwraps :class:`~qlearn.Tensor` arguments to their
float32 ndarrays, runs ``forward`` on plain NumPy, wraps the result, and (when any input
requires a gradient and grad mode is on) records a :class:`Node` that links the output
to its inputs.  ``Tensor.backward()`` then walks the nodes in reverse topological order,
calling each ``backward`` with the gradient of its output(s) and handing the returned
gradients to the inputs.

Unlike PyTorch, ``forward`` and ``backward`` receive and return NumPy arrays rather
than tensors: inside them no graph is built anyway, and the kernels they call take
arrays.  Everything else (``ctx.save_for_backward``, ``ctx.saved_tensors``,
``ctx.needs_input_grad``, ``None`` for inputs without a gradient) is PyTorch's.
"""
import contextlib
import threading

import numpy as np

__all__ = ["Function", "Context", "no_grad", "enable_grad", "is_grad_enabled",
           "set_grad_enabled"]

_state = threading.local()


def is_grad_enabled():
    """True unless inside :func:`no_grad`."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def set_grad_enabled(mode):
    """Context manager that turns graph recording on or off."""
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
    """Context manager that turns graph recording back on inside :func:`no_grad`."""
    return set_grad_enabled(True)


class Context:
    """What ``forward`` leaves for ``backward``: saved arrays and which inputs need grads."""

    __slots__ = ("saved_tensors", "needs_input_grad", "__dict__")

    def __init__(self, needs_input_grad):
        self.saved_tensors = ()
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for ``backward`` (released once backward has run)."""
        self.saved_tensors = arrays


class Node:
    """One recorded call: the Function, its context and its inputs (Tensor or None)."""

    __slots__ = ("fn", "ctx", "inputs", "out_shapes")

    def __init__(self, fn, ctx, inputs, out_shapes):
        self.fn, self.ctx, self.inputs, self.out_shapes = fn, ctx, inputs, out_shapes

    @property
    def n_outputs(self):
        return len(self.out_shapes)

    def __repr__(self):
        return f"<{self.fn.__name__}Backward>"


class Function:
    """Base class of differentiable operations (see the module docstring).

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
        from .tensor import Tensor
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = Context(needs)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        record = any(needs) and is_grad_enabled()
        outputs = out if isinstance(out, tuple) else (out,)
        node = None
        if record:
            inputs = tuple(a if isinstance(a, Tensor) and a.requires_grad else None
                           for a in args)
            node = Node(cls, ctx, inputs, [np.shape(o) for o in outputs])
        wrapped = tuple(Tensor._from_op(o, node, i) for i, o in enumerate(outputs))
        return wrapped if isinstance(out, tuple) else wrapped[0]


def _toposort(root_node):
    """Nodes reachable from ``root_node``, each after every node that consumes it."""
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
        for t in node.inputs:
            if t is not None and t.grad_fn is not None and id(t.grad_fn) not in seen:
                stack.append((t.grad_fn, False))
    return order[::-1]


def backward(root, grad):
    """Accumulate d root / d leaf into ``leaf.grad`` for every leaf that requires grad."""
    from .tensor import Tensor
    grads = {id(root.grad_fn): [None] * root.grad_fn.n_outputs}
    grads[id(root.grad_fn)][root._output_index] = grad
    for node in _toposort(root.grad_fn):
        outs = grads.pop(id(node), None)
        if outs is None:
            continue
        outs = [np.zeros(shape, np.float32) if g is None else g
                for g, shape in zip(outs, node.out_shapes)]
        if node.ctx.saved_tensors is None:
            raise RuntimeError("Trying to backward through the graph a second time: its "
                               "saved arrays were freed after the first backward")
        in_grads = node.fn.backward(node.ctx, *outs)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) < len(node.inputs):
            in_grads = in_grads + (None,) * (len(node.inputs) - len(in_grads))
        node.ctx.saved_tensors = None  # free what forward kept: the graph is spent
        for t, g in zip(node.inputs, in_grads):
            if t is None or g is None:
                continue
            g = np.asarray(g, dtype=np.float32)
            if g.shape != t.shape:
                g = np.broadcast_to(g, t.shape)
            if t.grad_fn is None:  # a leaf: accumulate, as PyTorch does
                if t.grad is None:
                    t.grad = Tensor(np.array(g, dtype=np.float32, copy=True))
                else:
                    t.grad.data += g
            else:
                slot = grads.setdefault(id(t.grad_fn), [None] * t.grad_fn.n_outputs)
                i = t._output_index
                slot[i] = g if slot[i] is None else slot[i] + g
