"""Symbolic tracing: run ``forward`` on :class:`~qlearn.fx.Proxy` inputs and record a graph.

How calls are intercepted (qlearn has no ``__torch_function__``; the tracer patches a
few names for the duration of :meth:`Tracer.trace` only, and restores them after):

* ``Module.__call__``: a call of a leaf module (:meth:`Tracer.is_leaf_module`; all
  qlearn modules) becomes one ``call_module`` node; other modules run their ``forward``
  on the proxies, so their contents are traced.
* ``Module.__getattr__``: reading a parameter or an array buffer of the model
  (``self.weight``) gives a proxy of a ``get_attr`` node.
* The functions of :mod:`qlearn.nn.functional` and the tensor functions of
  :mod:`qlearn` (``cat``, ``stack``, ``where``, ...) are replaced, in their modules and
  in the globals of every traced ``forward`` (``from qlearn.nn.functional import relu``
  works too), by wrappers that record a ``call_function`` node with the original
  function as target when a proxy is among the arguments and call the original
  otherwise.  ``Tracer(autowrap_functions=(f,))`` treats a user function ``f`` the same.
* ``Tensor``'s arithmetic operators return ``NotImplemented`` for a proxy operand, so
  ``self.bias + x`` reaches the proxy's reflected operator.
"""
import contextlib
import functools
import inspect

import numpy as np

from ..autograd.tensor import Tensor
from ..nn.modules.container import ModuleList, Sequential
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from .graph import Graph
from .node import Node, map_aggregate
from .proxy import Proxy, TraceError

__all__ = ["Tracer", "symbolic_trace", "wrapped_functions"]

_TENSOR_OPS = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
               "__truediv__", "__rtruediv__", "__matmul__", "__rmatmul__", "__pow__",
               "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__lt__", "__le__",
               "__gt__", "__ge__")
_QLEARN_FUNCTIONS = ("cat", "stack", "where", "quantize_per_tensor", "quantize_per_channel",
                     "dequantize", "fake_quantize_per_tensor_affine",
                     "fake_quantize_per_channel_affine")


def wrapped_functions():
    """``{module: [names]}``: the functions the tracer records as ``call_function``
    nodes (besides the Python operators)."""
    import qlearn
    from qlearn import autograd
    from qlearn.autograd import tensor as tensor_mod
    from qlearn.nn import functional as F
    return {F: list(F.__all__), qlearn: list(_QLEARN_FUNCTIONS),
            autograd: ["cat", "stack", "where", "maximum", "minimum"],
            tensor_mod: ["cat", "stack", "where", "maximum", "minimum"]}


def _has_proxy(args, kwargs):
    found = []
    map_aggregate((args, kwargs), lambda v: found.append(v) if isinstance(v, Proxy) else v)
    return bool(found)


class Tracer:
    """Turns a module's ``forward`` into a :class:`~qlearn.fx.Graph` (``torch.fx.Tracer``).

    Subclass it and override :meth:`is_leaf_module` to choose which modules stay
    opaque ``call_module`` nodes.

    Parameters
    ----------
    autowrap_functions : tuple of callables
        Plain Python functions, called from the traced ``forward``, to record as one
        ``call_function`` node each instead of tracing through them.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.fx import Tracer
    >>> graph = Tracer().trace(nn.Sequential(nn.Linear(4, 2), nn.ReLU()))
    >>> [(n.op, n.target) for n in graph.nodes]
    [('placeholder', 'input'), ('call_module', '0'), ('call_module', '1'), ('output', 'output')]
    """

    def __init__(self, autowrap_functions=()):
        for f in autowrap_functions:
            if not callable(f):
                raise TypeError(f"`autowrap_functions` must hold callables, got {f!r}")
        self.autowrap_functions = tuple(autowrap_functions)

    # -- the hooks a subclass overrides ----------------------------------------------------
    def is_leaf_module(self, m, module_qualified_name):
        """True for the modules recorded as one ``call_module`` node: every module defined
        in qlearn (``qlearn.nn``, its quantized / fused / QAT modules, observers, fake
        quantizers, stubs), except the plain containers ``Sequential`` and
        ``ModuleList``, whose contents are traced.  User-defined modules are traced
        through.  (The fused modules, ``nni.ConvReLU2d`` ..., subclass ``Sequential``
        but are leaves: they are one operation.)"""
        module = type(m).__module__ or ""
        return (module.startswith("qlearn.") and not module.startswith("qlearn.fx")
                and type(m) not in (Sequential, ModuleList))

    def path_of_module(self, mod):
        """The dotted path of ``mod`` inside the traced root (``"layer1.0.conv1"``)."""
        path = self._module_paths.get(id(mod))
        if path is None:
            raise NameError(f"module {type(mod).__name__} is not a submodule of the traced "
                            f"model (assign it as an attribute so it has a name)")
        return path

    def call_module(self, m, forward, args, kwargs):
        """A leaf becomes a ``call_module`` node; any other module runs ``forward``."""
        path = self.path_of_module(m)
        saved, self._scope = self._scope, (path, type(m))
        try:
            if self.is_leaf_module(m, path):
                return self.create_proxy("call_module", path, args, kwargs)
            return forward(*args, **kwargs)
        finally:
            self._scope = saved

    # -- building nodes -------------------------------------------------------------------
    def create_arg(self, a):
        """An argument as it is stored in a node: proxies become their nodes, parameters of
        the model ``get_attr`` nodes, other arrays constants on the traced module."""
        if isinstance(a, Proxy):
            return a.node
        if isinstance(a, Node):
            return a
        if isinstance(a, (tuple, list, dict, slice)):
            return map_aggregate(a, self.create_arg)
        if isinstance(a, Parameter):
            path = self._param_paths.get(id(a))
            if path is not None:
                return self._get_attr_proxy(path).node
        if isinstance(a, np.generic):
            return a.item()
        if isinstance(a, (Tensor, np.ndarray)) or type(a).__name__ == "QTensor":
            name = f"_tensor_constant{len(self.constants)}"
            self.constants[name] = a
            return self.graph.get_attr(name)
        if isinstance(a, Module):
            raise TraceError(f"a module ({type(a).__name__}) cannot be an argument of a "
                             f"traced call")
        return a

    def create_node(self, kind, target, args, kwargs, name=None):
        """Add a node of kind ``kind`` to the graph being built.  Its
        ``meta["scope"]`` is ``(module path, module class)`` of the module whose
        ``forward`` made the call (for a ``call_module`` node: the called module), which
        graph-mode quantization uses to find a node's qconfig."""
        node = self.graph.create_node(kind, target, args, kwargs, name)
        node.meta["scope"] = self._scope
        return node

    def create_proxy(self, kind, target, args, kwargs, name=None):
        """Add a node (arguments through :meth:`create_arg`) and return its proxy."""
        args = tuple(self.create_arg(a) for a in args)
        kwargs = {k: self.create_arg(v) for k, v in kwargs.items()}
        return Proxy(self.create_node(kind, target, args, kwargs, name), self)

    def _get_attr_proxy(self, path):
        proxy = self._attr_cache.get(path)
        if proxy is None:
            proxy = self._attr_cache[path] = Proxy(self.graph.get_attr(path), self)
        return proxy

    # -- tracing --------------------------------------------------------------------------
    def trace(self, root, concrete_args=None):
        """Record ``root.forward`` (or the function ``root``) as a :class:`Graph`.

        ``concrete_args`` maps argument names to fixed values that are not traced
        (``{"training": False}``).  Arrays created during the trace (constants) are
        left in ``self.constants`` for :func:`symbolic_trace` to give the module.
        """
        concrete_args = dict(concrete_args or {})
        if isinstance(root, Module):
            self.root = root
            fn = getattr(root, "_forward_fn", None) or type(root).forward
            bound = [root]
        elif callable(root):
            self.root = Module()
            fn, bound = root, []
        else:
            raise TypeError(f"`root` must be a qlearn nn.Module or a function, got "
                            f"{type(root).__name__}")
        self.graph = Graph()
        self._scope = ("", type(self.root))
        self.constants = {}
        self._attr_cache = {}
        self._module_paths = {id(m): name for name, m in self.root.named_modules()}
        self._param_paths = {id(p): name for name, p in self.root.named_parameters()}
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())[len(bound):]
        args = []
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TraceError(f"cannot trace forward(*args / **kwargs) ({p.name}); give "
                                 f"forward named arguments")
            if p.name in concrete_args:
                args.append(concrete_args.pop(p.name))
                continue
            has_default = p.default is not inspect.Parameter.empty
            node = self.graph.placeholder(p.name, p.default if has_default else None,
                                          has_default=has_default)
            args.append(Proxy(node, self))
        if concrete_args:
            raise ValueError(f"`concrete_args` names {sorted(concrete_args)}, which are not "
                             f"arguments of forward")
        with self._patched(fn):
            result = fn(*bound, *args)
        self.graph.output(self.create_arg(result))
        return self.graph

    @contextlib.contextmanager
    def _patched(self, fn):
        """Install the interceptions listed in the module docstring; always undo them."""
        tracer, saved = self, []

        def patch(owner, name, value):
            saved.append((owner, name, owner.__dict__[name] if isinstance(owner, type)
                          else getattr(owner, name)))
            setattr(owner, name, value)

        orig_call, orig_getattr = Module.__call__, Module.__getattr__

        originals = {}

        def patch_globals(f):
            fn_globals = getattr(f, "__globals__", None)
            if fn_globals is None or id(fn_globals) in patched_globals:
                return
            patched_globals.add(id(fn_globals))
            for name, value in list(fn_globals.items()):
                hit = originals.get(id(value)) if callable(value) else None
                if hit is not None and hit[0] is value:
                    saved.append((fn_globals, name, value))
                    fn_globals[name] = hit[1]

        patched_globals = set()

        def module_call(mod, *args, **kwargs):
            def forward(*a, **k):
                patch_globals(type(mod).forward)
                return orig_call(mod, *a, **k)
            return tracer.call_module(mod, forward, args, kwargs)

        def module_getattr(mod, name):
            value = orig_getattr(mod, name)
            path = tracer._module_paths.get(id(mod))
            if path is not None and (isinstance(value, Parameter) or (
                    name in mod.__dict__.get("_buffers", {})
                    and isinstance(value, (np.ndarray, Tensor)))):
                return tracer._get_attr_proxy(f"{path}.{name}" if path else name)
            return value

        def recording(orig):
            @functools.wraps(orig)
            def wrapper(*args, **kwargs):
                if _has_proxy(args, kwargs):
                    return tracer.create_proxy("call_function", orig, args, kwargs)
                return orig(*args, **kwargs)
            wrapper.__qlearn_fx_original__ = orig
            return wrapper

        def deferring(orig):
            @functools.wraps(orig)
            def op(self, other, *rest):
                if isinstance(other, Proxy):
                    return NotImplemented
                return orig(self, other, *rest)
            return op

        try:
            patch(Module, "__call__", module_call)
            patch(Module, "__getattr__", module_getattr)
            for name in _TENSOR_OPS:
                if name in Tensor.__dict__:
                    patch(Tensor, name, deferring(Tensor.__dict__[name]))
            for module, names in wrapped_functions().items():
                for name in names:
                    orig = getattr(module, name, None)
                    if orig is None:
                        continue
                    orig = getattr(orig, "__qlearn_fx_original__", orig)
                    wrapper = originals.setdefault(id(orig), (orig, recording(orig)))[1]
                    patch(module, name, wrapper)
            for f in self.autowrap_functions:
                originals.setdefault(id(f), (f, recording(f)))
            patch_globals(fn)
            yield
        finally:
            for owner, name, value in reversed(saved):
                if isinstance(owner, dict):
                    owner[name] = value
                else:
                    setattr(owner, name, value)


def symbolic_trace(root, concrete_args=None):
    """Trace ``root`` (a qlearn ``nn.Module`` or a function) into a
    :class:`~qlearn.fx.GraphModule` (``torch.fx.symbolic_trace``).

    No data runs: the inputs are :class:`~qlearn.fx.Proxy` objects that record what is
    done to them.  Leaf modules (every qlearn module) become ``call_module`` nodes;
    Python operators, :mod:`qlearn.nn.functional` functions and ``qlearn.cat`` become
    ``call_function`` nodes, tensor methods ``call_method`` nodes.  Control flow that
    depends on a traced value raises :class:`~qlearn.fx.TraceError` naming the line.

    Parameters
    ----------
    root : nn.Module or callable
    concrete_args : dict, optional
        Arguments of ``forward`` fixed to a value instead of traced.

    Returns
    -------
    GraphModule
        Same parameters and submodules as ``root`` (shared, not copied); calling it
        gives exactly ``root``'s output.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.functional as F
    >>> from qlearn.fx import symbolic_trace
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return F.relu(self.fc(x)) + x
    >>> gm = symbolic_trace(Net())
    >>> print(gm.code.strip())
    def forward(self, x):
        fc = self.fc(x)
        relu = F.relu(fc)
        add = relu + x
        return add
    """
    from .graph_module import GraphModule
    tracer = Tracer()
    graph = tracer.trace(root, concrete_args)
    name = type(root).__name__ if isinstance(root, Module) else getattr(
        root, "__name__", "GraphModule")
    return GraphModule(tracer.root, graph, name, constants=tracer.constants)
