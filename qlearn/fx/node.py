"""``Node``: one operation of a :class:`~qlearn.fx.Graph` (as ``torch.fx.Node``).

A node is a plain record, read the same way by every pass (quantization, export):

``op``
    what kind of operation, one of :data:`OPS`:

    ============== ==================================== ==============================
    ``op``         ``target``                           ``args`` / ``kwargs``
    ============== ==================================== ==============================
    placeholder    the input's name (a str)             ``()`` or ``(default,)``
    get_attr       dotted path of a parameter, buffer   ``()``
                   or constant on the root module
    call_module    dotted path of a child module        the module's call arguments
    call_function  the Python callable (``operator.add``, the callable's arguments
                   ``qlearn.nn.functional.relu`` ...)
    call_method    a method name (``"view"``)           ``args[0]`` is ``self``
    output         ``"output"``                         ``(value,)``: what forward returns
    ============== ==================================== ==============================

``args``, ``kwargs``
    the arguments; other nodes appear in them directly, possibly inside tuples, lists,
    dicts and slices; everything else is a constant.
``name``
    a unique Python identifier (the variable in the generated code).
``users``
    the nodes that read this node's value (a dict used as an ordered set), kept up to
    date when ``args``/``kwargs`` are assigned.
``meta``
    a free dict for passes (the quantizer stores the qconfig there).
"""
import builtins
import operator

__all__ = ["Node", "map_arg", "map_aggregate", "OPS"]

OPS = ("placeholder", "get_attr", "call_module", "call_function", "call_method", "output")


def map_aggregate(a, fn):
    """Apply ``fn`` to every leaf of the nested tuples / lists / dicts / slices ``a``.

    >>> map_aggregate((1, [2, {"k": 3}]), lambda v: v * 10)
    (10, [20, {'k': 30}])
    """
    if isinstance(a, tuple):
        mapped = tuple(map_aggregate(v, fn) for v in a)
        return type(a)(*mapped) if hasattr(a, "_fields") else mapped
    if isinstance(a, list):
        return [map_aggregate(v, fn) for v in a]
    if isinstance(a, dict):
        return {k: map_aggregate(v, fn) for k, v in a.items()}
    if isinstance(a, slice):
        return slice(map_aggregate(a.start, fn), map_aggregate(a.stop, fn),
                     map_aggregate(a.step, fn))
    return fn(a)


def map_arg(a, fn):
    """Apply ``fn`` to every :class:`Node` inside the nested argument structure ``a``."""
    return map_aggregate(a, lambda v: fn(v) if isinstance(v, Node) else v)


def _qualified_name(fn):
    """``operator.add``, ``qlearn.nn.functional.relu``: how a function target prints."""
    if getattr(builtins, getattr(fn, "__name__", ""), None) is fn:
        return f"builtins.{fn.__name__}"
    if getattr(operator, getattr(fn, "__name__", ""), None) is fn:
        return f"operator.{fn.__name__}"
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


class Node:
    """One operation of a :class:`~qlearn.fx.Graph`; see the module docstring for
    what ``op``, ``target``, ``args`` and ``kwargs`` hold for each kind.

    Nodes are made by the graph (:meth:`Graph.create_node` and its shorthands), never
    directly.

    >>> import operator
    >>> from qlearn.fx import Graph
    >>> g = Graph()
    >>> x = g.placeholder("x")
    >>> y = g.call_function(operator.add, (x, 1))
    >>> _ = g.output(y)
    >>> y.op, y.target is operator.add, y.args, list(x.users)
    ('call_function', True, (x, 1), [add])
    """

    def __init__(self, graph, name, op, target, args, kwargs):
        if op not in OPS:
            raise ValueError(f"`op` must be one of {OPS}, got {op!r}")
        if op in ("call_module", "get_attr", "call_method", "placeholder", "output") \
                and not isinstance(target, str):
            raise TypeError(f"a {op} node needs a str `target`, got {type(target).__name__}")
        if op == "call_function" and not callable(target):
            raise TypeError(f"a call_function node needs a callable `target`, got "
                            f"{target!r}")
        self.graph = graph
        self.name = name
        self.op = op
        self.target = target
        self.users = {}
        self.meta = {}
        self._args, self._kwargs = (), {}
        self._input_nodes = {}
        self._update_args(tuple(args), dict(kwargs))

    # -- arguments -------------------------------------------------------------------
    @property
    def args(self):
        """The positional arguments (a tuple); assigning updates the users of inputs."""
        return self._args

    @args.setter
    def args(self, value):
        self._update_args(tuple(value), self._kwargs)

    @property
    def kwargs(self):
        """The keyword arguments (a dict); assigning updates the users of inputs."""
        return self._kwargs

    @kwargs.setter
    def kwargs(self, value):
        self._update_args(self._args, dict(value))

    def _update_args(self, args, kwargs):
        for old in self._input_nodes:
            old.users.pop(self, None)
        self._args, self._kwargs = args, kwargs
        found = {}
        map_arg((args, kwargs), lambda n: found.setdefault(n, None))
        self._input_nodes = found
        for n in found:
            n.users.setdefault(self, None)

    @property
    def all_input_nodes(self):
        """The distinct nodes this node reads, in the order they appear in its arguments."""
        return list(self._input_nodes)

    def replace_input_with(self, old_input, new_input):
        """Read ``new_input`` wherever this node read ``old_input``."""
        swap = lambda n: new_input if n is old_input else n  # noqa: E731
        self._update_args(map_arg(self._args, swap), map_arg(self._kwargs, swap))

    def replace_all_uses_with(self, replace_with):
        """Make every user of this node read ``replace_with`` instead; returns the users
        that were changed (this node is left without users; erase it afterwards)."""
        users = list(self.users)
        for user in users:
            user.replace_input_with(self, replace_with)
        return users

    # -- position ------------------------------------------------------------------------
    @property
    def next(self):
        """The node after this one in the graph (None after ``output``)."""
        nodes = self.graph._nodes
        i = nodes.index(self)
        return nodes[i + 1] if i + 1 < len(nodes) else None

    @property
    def prev(self):
        """The node before this one (None for the first)."""
        nodes = self.graph._nodes
        i = nodes.index(self)
        return nodes[i - 1] if i > 0 else None

    def append(self, x):
        """Move node ``x`` to just after this node."""
        nodes = self.graph._nodes
        nodes.remove(x)
        nodes.insert(nodes.index(self) + 1, x)

    def prepend(self, x):
        """Move node ``x`` to just before this node."""
        nodes = self.graph._nodes
        nodes.remove(x)
        nodes.insert(nodes.index(self), x)

    # -- printing ------------------------------------------------------------------------
    def _pretty_target(self):
        if self.op == "call_function":
            return _qualified_name(self.target)
        return self.target

    def format_node(self):
        """One line as ``print(graph)`` shows it: ``%name : [num_users=N] =
        op[target=...](args = (...), kwargs = {...})``."""
        head = f"%{self.name} : [num_users={len(self.users)}] = "
        if self.op == "placeholder":
            default = f"(default={self.args[0]!r})" if self.args else ""
            return f"{head}placeholder[target={self.target}]{default}"
        if self.op == "get_attr":
            return f"{head}get_attr[target={self.target}]"
        if self.op == "output":
            return f"return {_format_arg(self.args[0], pct=False)}"
        kw = ", ".join(f"{k}: {_format_arg(v)}" for k, v in self.kwargs.items())
        return (f"{head}{self.op}[target={self._pretty_target()}]"
                f"(args = {_format_arg(self.args)}, kwargs = {{{kw}}})")

    def __repr__(self):
        return self.name


def _format_arg(a, pct=True):
    """Nodes as ``%name`` (or ``name`` with ``pct=False``), containers recursively,
    constants by repr."""
    if isinstance(a, Node):
        return f"%{a.name}" if pct else a.name
    if isinstance(a, tuple):
        items = ", ".join(_format_arg(v, pct) for v in a)
        return f"({items},)" if len(a) == 1 else f"({items})"
    if isinstance(a, list):
        return "[" + ", ".join(_format_arg(v, pct) for v in a) + "]"
    if isinstance(a, dict):
        return "{" + ", ".join(f"{k!r}: {_format_arg(v, pct)}" for k, v in a.items()) + "}"
    return repr(a)
