"""The walk: the operators of a converted model, in the order they run on an example.

Two sources give the same list of :class:`Call` records:

* an eager model (a module tree, e.g. ``Sequential(Quantize, ConvReLU2d, ...)``): forward
  hooks on its leaf modules record each call, with the objects it received and returned,
  while the model runs once on the example input; the methods of ``QFunctional`` /
  ``FloatFunctional`` (``add``, ``cat`` ...) are wrapped for that run, so residual adds
  are seen too;
* a ``GraphModule`` (``qlearn.fx``): its graph is run node by node, as
  ``torch.fx.Interpreter`` does, and each ``call_module`` / ``call_function`` /
  ``call_method`` node becomes a record.

Which record consumes which value is known from the objects themselves: a record's
argument *is* the array another record returned (identity, not equality).  An argument no
record produced was made by code the walk cannot see (arithmetic in an eager
``forward``); :func:`qlearn.onnx.export` reports it and suggests ``qlearn.fx``.
"""
from dataclasses import dataclass, field

import numpy as np

from ..autograd import Tensor, no_grad
from ..nn.modules.module import Module
from ..qtensor import QTensor

__all__ = ["Call", "Recording", "is_graph_module", "is_tensor", "module_names", "record"]

#: The ``*Functional`` methods that are operators (wrapped during the eager run).
FUNCTIONAL_METHODS = ("add", "add_relu", "add_scalar", "mul", "mul_scalar", "cat")


def is_tensor(x):
    """Whether ``x`` is a value of the graph (rather than a Python constant).

    >>> from qlearn.onnx.walk import is_tensor
    >>> is_tensor(np.zeros(2)), is_tensor(0.5)
    (True, False)
    """
    return isinstance(x, (QTensor, Tensor, np.ndarray))


@dataclass
class Call:
    """One operator call: ``op`` is ``"call_module"`` (``target`` the module; ``method``
    a ``*Functional`` method name or None for ``forward``), ``"call_function"``
    (``target`` the function) or ``"call_method"`` (``target`` the method name, called
    on ``args[0]``).  ``name`` is the module's qualified name or the graph node's name.

    >>> from qlearn.onnx.walk import Call
    >>> Call("fc", "call_module", None, (), {}, None).op
    'call_module'
    """

    name: str
    op: str
    target: object
    args: tuple
    kwargs: dict
    out: object
    method: str = None
    type_name: str = ""


@dataclass
class Recording:
    """The calls of one run, with the example inputs and the model's output.

    >>> from qlearn.onnx.walk import Recording
    >>> Recording([], [], None).calls
    []
    """

    inputs: list
    calls: list
    output: object
    constants: dict = field(default_factory=dict)   # id -> object from get_attr nodes


def _map(a, fn):
    if isinstance(a, tuple):
        return tuple(_map(x, fn) for x in a)
    if isinstance(a, list):
        return [_map(x, fn) for x in a]
    if isinstance(a, dict):
        return {k: _map(v, fn) for k, v in a.items()}
    if isinstance(a, slice):
        return slice(_map(a.start, fn), _map(a.stop, fn), _map(a.step, fn))
    return fn(a)


def is_graph_module(model):
    """A ``qlearn.fx.GraphModule`` (or anything with a torch.fx-like ``graph``).

    >>> from qlearn import nn
    >>> from qlearn.onnx.walk import is_graph_module
    >>> is_graph_module(nn.ReLU())
    False
    """
    graph = getattr(model, "graph", None)
    return graph is not None and hasattr(graph, "nodes")


def record(model, inputs, handled):
    """Run ``model`` once on ``inputs`` (a tuple) and return a :class:`Recording`.

    ``handled(module)`` says whether a module is converted as a whole (its children,
    if any, are not walked into).  The model runs in eval mode (its modes are restored
    after) and without autograd.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.onnx.walk import record
    >>> model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))
    >>> rec = record(model, (np.ones((1, 3), np.float32),), lambda m: False)
    >>> [(c.name, c.type_name) for c in rec.calls]
    [('0', 'Linear'), ('1.0', 'ReLU'), ('1.1', 'Linear')]
    """
    was_training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            if is_graph_module(model):
                return _record_graph(model, inputs)
            return _record_eager(model, inputs, handled)
    finally:
        for m, mode in was_training:
            m.training = mode


def _record_eager(model, inputs, handled):
    calls, handles, patched = [], [], []
    depth = [0]
    leaves, skip = [], set()
    for qname, mod in model.named_modules():
        if any(qname == p or qname.startswith(p + ".") for p in skip if p):
            continue
        if handled(mod):
            leaves.append((qname, mod))
            if qname:
                skip.add(qname)
            else:
                break               # the model itself is one operator
        elif not mod._modules:
            leaves.append((qname, mod))

    def pre_hook(mod, args):
        depth[0] += 1

    def make_hook(qname):
        def hook(mod, args, out):
            depth[0] -= 1
            if depth[0] == 0:
                calls.append(Call(qname or type(mod).__name__, "call_module", mod,
                                  tuple(args), {}, out, None, type(mod).__name__))
        return hook

    def wrap(qname, mod, meth):
        bound = getattr(mod, meth)

        def call(*args, **kwargs):
            out = bound(*args, **kwargs)
            if depth[0] == 0:
                calls.append(Call(f"{qname}.{meth}" if qname else meth, "call_module", mod,
                                  args, kwargs, out, meth, type(mod).__name__))
            return out
        return call

    try:
        for qname, mod in leaves:
            handles.append(mod.register_forward_pre_hook(pre_hook))
            handles.append(mod.register_forward_hook(make_hook(qname)))
            if type(mod).__name__ in ("QFunctional", "FloatFunctional"):
                for meth in FUNCTIONAL_METHODS:
                    if hasattr(mod, meth):
                        object.__setattr__(mod, meth, wrap(qname, mod, meth))
                        patched.append((mod, meth))
        out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for mod, meth in patched:
            mod.__dict__.pop(meth, None)
    return Recording(list(inputs), calls, out)


def _fetch_attr(gm, target):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _record_graph(gm, inputs):
    env, calls, constants = {}, [], {}
    it = iter(inputs)
    out = None

    def load(a):
        return env[id(a)] if type(a).__name__ == "Node" and id(a) in env else a

    for node in gm.graph.nodes:
        args = _map(tuple(node.args), load)
        kwargs = _map(dict(node.kwargs), load)
        if node.op == "placeholder":
            try:
                value = next(it)
            except StopIteration:
                if not node.args:
                    raise ValueError(f"qlearn.onnx.export: the graph has more inputs than "
                                     f"the {len(inputs)} example input(s) given (no value "
                                     f"for {node.name!r})") from None
                value = node.args[0]
        elif node.op == "get_attr":
            value = _fetch_attr(gm, node.target)
            constants[id(value)] = value
        elif node.op == "call_module":
            mod = gm.get_submodule(node.target)
            value = mod(*args, **kwargs)
            calls.append(Call(node.target, node.op, mod, args, kwargs, value, None,
                              type(mod).__name__))
        elif node.op == "call_function":
            value = node.target(*args, **kwargs)
            calls.append(Call(node.name, node.op, node.target, args, kwargs, value, None,
                              getattr(node.target, "__name__", str(node.target))))
        elif node.op == "call_method":
            value = getattr(args[0], node.target)(*args[1:], **kwargs)
            calls.append(Call(node.name, node.op, node.target, args, kwargs, value, None,
                              f".{node.target}()"))
        elif node.op == "output":
            out = args[0]
            break
        else:
            raise ValueError(f"qlearn.onnx.export: unknown graph node op {node.op!r} "
                             f"(node {node.name!r})")
        env[id(node)] = value
    return Recording(list(inputs), calls, out, constants)


def module_names(model):
    """``id(module) -> qualified name`` for every module of ``model``.

    >>> from qlearn import nn
    >>> from qlearn.onnx.walk import module_names
    >>> sorted(module_names(nn.Sequential(nn.ReLU())).values())
    ['', '0']
    """
    if not isinstance(model, Module):
        return {}
    return {id(m): n for n, m in model.named_modules()}
