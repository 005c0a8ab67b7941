"""``Graph``: the ordered list of :class:`~qlearn.fx.Node` objects of one ``forward``.

The graph is kept as a plain Python list in execution order (``graph.nodes``): every
node comes after the nodes it reads, placeholders first, one ``output`` last.  Passes
edit it with :meth:`Graph.create_node` (at the insertion point set by
:meth:`Graph.inserting_before` / :meth:`Graph.inserting_after`),
:meth:`Node.replace_all_uses_with`, :meth:`Graph.erase_node` and
:meth:`Graph.eliminate_dead_code`, then check it with :meth:`Graph.lint`.
:meth:`Graph.python_code` turns it back into the source of a ``forward`` method.
"""
import builtins
import contextlib
import keyword
import math
import operator
import re

from .node import Node, _qualified_name, map_arg

__all__ = ["Graph", "PythonCode"]

# operator functions written as Python syntax in the generated code
_BINARY = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
           operator.floordiv: "//", operator.mod: "%", operator.pow: "**",
           operator.matmul: "@", operator.and_: "&", operator.or_: "|", operator.xor: "^",
           operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=",
           operator.eq: "==", operator.ne: "!="}
_UNARY = {operator.neg: "-", operator.pos: "+", operator.invert: "~"}

# functions the quantizer and the tracer record; the code names them by these aliases
_MODULE_ALIASES = (("qlearn.nn.quantized.functional", "qF"), ("qlearn.nn.functional", "F"))


class _Namespace:
    """Hands out unique Python identifiers: ``add``, ``add_1``, ``add_2`` ...; names that
    would shadow a builtin or a keyword get a suffix (``input`` -> ``input_1``)."""

    def __init__(self):
        self._used = set()
        self._counts = {}

    def create_name(self, candidate):
        name = re.sub(r"[^0-9a-zA-Z_]+", "_", str(candidate)) or "_"
        if name[0].isdigit():
            name = "_" + name
        match = re.fullmatch(r"(.*)_(\d+)", name)
        base = match.group(1) if match else name
        if name in self._used or keyword.iskeyword(name) or hasattr(builtins, name) \
                or name == "self":
            n = self._counts.get(base, 0)
            while True:
                n += 1
                name = f"{base}_{n}"
                if name not in self._used:
                    break
            self._counts[base] = n
        self._used.add(name)
        return name

    def release(self, name):
        self._used.discard(name)


class PythonCode:
    """The generated ``forward``: ``src`` (Python source of one ``def``) and the
    ``globals`` it needs (the functions and constants it names)."""

    def __init__(self, src, globals_):
        self.src = src
        self.globals = globals_


class Graph:
    """A ``forward`` as a list of :class:`Node` (``torch.fx.Graph``).

    Build one by tracing (:func:`qlearn.fx.symbolic_trace`) or by hand:

    >>> import operator
    >>> from qlearn import nn
    >>> from qlearn.fx import Graph, GraphModule
    >>> g = Graph()
    >>> x = g.placeholder("x")
    >>> r = g.call_module("relu", (x,))
    >>> _ = g.output(g.call_function(operator.mul, (r, 2.0)))
    >>> print(g)
    graph():
        %x : [num_users=1] = placeholder[target=x]
        %relu : [num_users=1] = call_module[target=relu](args = (%x,), kwargs = {})
        %mul : [num_users=1] = call_function[target=operator.mul](args = (%relu, 2.0), kwargs = {})
        return mul
    >>> m = nn.Module(); m.relu = nn.ReLU()
    >>> GraphModule(m, g)(np.array([-1.0, 3.0])).numpy()
    array([0., 6.], dtype=float32)
    """

    def __init__(self, owning_module=None):
        self._nodes = []
        self._namespace = _Namespace()
        self._insert = None          # (anchor node, "before" | "after") or None: append
        self.owning_module = owning_module

    # -- reading -------------------------------------------------------------------------
    @property
    def nodes(self):
        """The nodes in execution order (a copy of the list: editing the graph while
        iterating over it is safe)."""
        return list(self._nodes)

    def find_nodes(self, *, op, target=None):
        """The nodes with this ``op`` (and ``target``, when given)."""
        return [n for n in self._nodes
                if n.op == op and (target is None or n.target == target)]

    def __str__(self):
        lines = ["graph():"] + ["    " + n.format_node() for n in self._nodes]
        return "\n".join(lines)

    def __repr__(self):
        return f"<qlearn.fx.Graph with {len(self._nodes)} nodes>"

    # -- building ------------------------------------------------------------------------
    def create_node(self, op, target, args=(), kwargs=None, name=None):
        """Make a node and put it at the insertion point (the end of the graph, or where
        :meth:`inserting_before` / :meth:`inserting_after` say).  ``name`` defaults to
        one derived from ``target``."""
        for n in map_arg_nodes((args, kwargs or {})):
            if n.graph is not self:
                raise ValueError(f"argument node {n.name!r} belongs to another graph")
        if name is None:
            name = _candidate_name(op, target)
        node = Node(self, self._namespace.create_name(name), op, target, args, kwargs or {})
        if self._insert is None:
            out = self._nodes[-1] if self._nodes and self._nodes[-1].op == "output" \
                else None
            if out is not None and op != "output":
                self._nodes.insert(len(self._nodes) - 1, node)
            else:
                self._nodes.append(node)
        else:
            anchor, where = self._insert
            i = self._nodes.index(anchor) + (where == "after")
            self._nodes.insert(i, node)
            if where == "after":
                self._insert = (node, "after")   # successive inserts keep their order
        return node

    def placeholder(self, name, default_value=None, *, has_default=False):
        """An input of ``forward`` named ``name`` (with a default when ``has_default``)."""
        args = (default_value,) if has_default else ()
        return self.create_node("placeholder", name, args, name=name)

    def get_attr(self, qualified_name):
        """Read the parameter / buffer / constant ``qualified_name`` of the root module."""
        return self.create_node("get_attr", qualified_name)

    def call_module(self, module_name, args=(), kwargs=None):
        """Call the child module at the dotted path ``module_name``."""
        return self.create_node("call_module", module_name, args, kwargs)

    def call_function(self, the_function, args=(), kwargs=None):
        """Call a Python function (``operator.add``, ``qlearn.nn.functional.relu`` ...)."""
        return self.create_node("call_function", the_function, args, kwargs)

    def call_method(self, method_name, args=(), kwargs=None):
        """Call ``args[0].method_name(*args[1:], **kwargs)``."""
        return self.create_node("call_method", method_name, args, kwargs)

    def output(self, result):
        """The value ``forward`` returns (one per graph)."""
        if self.find_nodes(op="output"):
            raise ValueError("the graph already has an output node")
        with self._at_end():
            return self.create_node("output", "output", (result,))

    def node_copy(self, node, arg_transform=lambda n: n):
        """Copy ``node`` (from any graph) into this one; ``arg_transform`` maps each node
        in its arguments to a node of this graph."""
        args = map_arg(node.args, arg_transform)
        kwargs = map_arg(node.kwargs, arg_transform)
        new = self.create_node(node.op, node.target, args, kwargs, name=node.name)
        new.meta = dict(node.meta)
        return new

    @contextlib.contextmanager
    def inserting_before(self, node):
        """Within the ``with`` block, new nodes go just before ``node``."""
        saved, self._insert = self._insert, (node, "before")
        try:
            yield
        finally:
            self._insert = saved

    @contextlib.contextmanager
    def inserting_after(self, node):
        """Within the ``with`` block, new nodes go after ``node`` (in creation order)."""
        saved, self._insert = self._insert, (node, "after")
        try:
            yield
        finally:
            self._insert = saved

    @contextlib.contextmanager
    def _at_end(self):
        saved, self._insert = self._insert, None
        try:
            yield
        finally:
            self._insert = saved

    # -- editing -------------------------------------------------------------------------
    def erase_node(self, to_erase):
        """Remove a node nobody reads (raise ``RuntimeError`` if it still has users)."""
        if to_erase.users:
            raise RuntimeError(f"cannot erase node {to_erase.name!r}: it still has users "
                               f"{list(to_erase.users)}")
        to_erase._update_args((), {})
        self._nodes.remove(to_erase)
        self._namespace.release(to_erase.name)

    def eliminate_dead_code(self):
        """Erase every node whose value is never used (placeholders and the output stay;
        as in torch.fx, calls are assumed to have no side effects).  Returns True if
        anything was erased."""
        changed = False
        for node in reversed(self._nodes):
            if node.op not in ("placeholder", "output") and not node.users:
                self.erase_node(node)
                changed = True
        return changed

    def lint(self):
        """Check the invariants every pass relies on; raise ``RuntimeError`` naming the
        first broken one: inputs defined before use and in this graph, unique names,
        one output node at the end, targets that exist on the owning module."""
        seen, names = set(), set()
        for i, node in enumerate(self._nodes):
            if node.graph is not self:
                raise RuntimeError(f"node {node.name!r} belongs to another graph")
            if node.name in names:
                raise RuntimeError(f"node name {node.name!r} is used twice")
            names.add(node.name)
            for inp in node.all_input_nodes:
                if inp not in seen:
                    raise RuntimeError(f"node {node.name!r} reads {inp.name!r}, which is "
                                       f"not defined before it in this graph")
                if node not in inp.users:
                    raise RuntimeError(f"{inp.name!r}.users is missing {node.name!r}")
            if node.op == "output" and i != len(self._nodes) - 1:
                raise RuntimeError("the output node must be the last node")
            mod = self.owning_module
            if mod is not None and node.op in ("call_module", "get_attr"):
                try:
                    _fetch_attr(mod, node.target)
                except AttributeError:
                    raise RuntimeError(f"node {node.name!r}: the module has no "
                                       f"{node.target!r}") from None
            seen.add(node)
        if not self._nodes or self._nodes[-1].op != "output":
            raise RuntimeError("the graph has no output node")

    # -- code generation ---------------------------------------------------------------
    def python_code(self, root_module="self"):
        """The source of ``def forward(self, ...)`` running the nodes in order, and the
        globals it names (a :class:`PythonCode`)."""
        gen = _CodeGen(root_module)
        params, body = [], []
        for node in self._nodes:
            if node.op == "placeholder":
                params.append(node.name if not node.args
                              else f"{node.name} = {gen.arg(node.args[0])}")
            elif node.op == "output":
                body.append(f"return {gen.arg(node.args[0])}")
            else:
                body.append(f"{node.name} = {gen.expr(node)}")
        sig = ", ".join([root_module] + params)
        src = f"def forward({sig}):\n" + "".join(f"    {line}\n" for line in body)
        return PythonCode(src, gen.globals)


def map_arg_nodes(a):
    """The nodes inside an argument structure, in order."""
    found = []
    map_arg(a, found.append)
    return found


def _candidate_name(op, target):
    if op in ("call_module", "get_attr", "placeholder", "call_method"):
        return str(target)
    if op == "output":
        return "output"
    return getattr(target, "__name__", "fn")


def _fetch_attr(mod, qualified_name):
    obj = mod
    for atom in qualified_name.split("."):
        obj = getattr(obj, atom)
    return obj


def _attr_chain(base, qualified_name):
    """``self.layer1`` / ``getattr(self.layer1, "0").conv`` for a dotted path."""
    expr = base
    for atom in qualified_name.split("."):
        expr = f"{expr}.{atom}" if atom.isidentifier() and not keyword.iskeyword(atom) \
            else f'getattr({expr}, "{atom}")'
    return expr


class _CodeGen:
    """Writes one node as a Python expression and collects the globals it needs."""

    def __init__(self, root):
        self.root = root
        self.globals = {}

    def _global(self, name, value):
        base, n = name, 0
        while name in self.globals and self.globals[name] is not value:
            n += 1
            name = f"{base}_{n}"
        self.globals[name] = value
        return name

    def function(self, fn):
        """How the code names the function ``fn``."""
        import qlearn
        name = getattr(fn, "__name__", None)
        if name and getattr(builtins, name, None) is fn:
            return name
        if name and getattr(operator, name, None) is fn:
            self._global("operator", operator)
            return f"operator.{name}"
        module = getattr(fn, "__module__", "") or ""
        if name and getattr(qlearn, name, None) is fn:
            self._global("ql", qlearn)
            return f"ql.{name}"
        for mod_name, alias in _MODULE_ALIASES:
            if module == mod_name:
                import importlib
                self._global(alias, importlib.import_module(mod_name))
                return f"{alias}.{name}"
        return self._global(_qualified_name(fn).replace(".", "_").replace("<", "_")
                            .replace(">", "_"), fn)

    def arg(self, a):
        """An argument as Python source: nodes by name, containers recursively."""
        if isinstance(a, Node):
            return a.name
        if isinstance(a, tuple):
            items = ", ".join(self.arg(v) for v in a)
            if hasattr(a, "_fields"):
                return f"{self._global(type(a).__name__, type(a))}({items})"
            return f"({items},)" if len(a) == 1 else f"({items})"
        if isinstance(a, list):
            return "[" + ", ".join(self.arg(v) for v in a) + "]"
        if isinstance(a, dict):
            return "{" + ", ".join(f"{k!r}: {self.arg(v)}" for k, v in a.items()) + "}"
        if isinstance(a, slice):
            return f"slice({self.arg(a.start)}, {self.arg(a.stop)}, {self.arg(a.step)})"
        if a is None or a is Ellipsis or isinstance(a, (bool, str)):
            return repr(a)
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            if isinstance(a, float) and not math.isfinite(a):
                return f"float({str(a)!r})"
            return repr(a)
        import qlearn
        for attr in ("quint8", "qint8", "qint32", "per_tensor_affine",
                     "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric"):
            if getattr(qlearn, attr) is a:
                self._global("ql", qlearn)
                return f"ql.{attr}"
        return self._global("_const", a)

    def _call_args(self, args, kwargs):
        parts = [self.arg(a) for a in args]
        parts += [f"{k}={self.arg(v)}" for k, v in kwargs.items()]
        return ", ".join(parts)

    def expr(self, node):
        op, target, args, kwargs = node.op, node.target, node.args, node.kwargs
        if op == "get_attr":
            return _attr_chain(self.root, target)
        if op == "call_module":
            return f"{_attr_chain(self.root, target)}({self._call_args(args, kwargs)})"
        if op == "call_method":
            return f"{self.arg(args[0])}.{target}({self._call_args(args[1:], kwargs)})"
        # call_function
        if not kwargs and target in _BINARY and len(args) == 2:
            return f"{self.arg(args[0])} {_BINARY[target]} {self.arg(args[1])}"
        if not kwargs and target in _UNARY and len(args) == 1:
            return f"{_UNARY[target]}{self.arg(args[0])}"
        if target is operator.getitem and not kwargs and len(args) == 2:
            return f"{self.arg(args[0])}[{self.arg(args[1])}]"
        if target is builtins.getattr and not kwargs and len(args) == 2 \
                and isinstance(args[1], str) and args[1].isidentifier():
            return f"{self.arg(args[0])}.{args[1]}"
        return f"{self.function(target)}({self._call_args(args, kwargs)})"
