"""``Proxy``: the stand-in value that flows through ``forward`` during tracing.

Every operation on a proxy (an operator, a method call, indexing, an attribute) records
a :class:`~qlearn.fx.Node` in the tracer's graph and returns a new proxy for its result;
no data is ever computed.  What a proxy cannot do is decide anything: ``bool(proxy)``
(an ``if`` or ``while`` on a traced value) raises :class:`TraceError` naming the line,
because the branch taken would depend on data the tracer does not have.
"""
import dis
import inspect
import linecache
import operator
import os

__all__ = ["Proxy", "Attribute", "TraceError"]

_FX_DIR = os.path.dirname(os.path.abspath(__file__))


class TraceError(ValueError):
    """A model cannot be traced symbolically (e.g. data-dependent control flow)."""


def _user_frame():
    """The innermost frame outside qlearn.fx: the line of the model that was running."""
    frame = inspect.currentframe()
    while frame is not None and os.path.dirname(
            os.path.abspath(frame.f_code.co_filename)) == _FX_DIR:
        frame = frame.f_back
    return frame


def _where():
    frame = _user_frame()
    if frame is None:
        return ""
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    line = linecache.getline(filename, lineno).strip()
    return f" (at {filename}:{lineno}: `{line}`)" if line else f" (at {filename}:{lineno})"


class Proxy:
    """The traced value of one :class:`~qlearn.fx.Node` (``torch.fx.Proxy``).

    ``proxy.node`` is the node; ``proxy.tracer`` the tracer recording.  Arithmetic
    (``+ - * / // % ** @``, unary ``-``), comparisons, indexing, attributes (``x.shape``)
    and method calls (``x.view(n, -1)``) are recorded; :func:`qlearn.nn.functional`
    functions and ``qlearn.cat`` record themselves when a proxy is among their arguments.
    Unpacking (``a, b = proxy``) records one ``getitem`` per target.
    """

    __array_ufunc__ = None        # NumPy scalars and arrays defer to our reflected ops
    __array_priority__ = 1000

    def __init__(self, node, tracer):
        self.node = node
        self.tracer = tracer

    def __repr__(self):
        return f"Proxy({self.node.name})"

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Attribute(self, name)

    def __call__(self, *args, **kwargs):
        return self.tracer.create_proxy("call_method", "__call__", (self,) + args, kwargs)

    def __getitem__(self, key):
        return self.tracer.create_proxy("call_function", operator.getitem, (self, key), {})

    def __iter__(self):
        # `a, b = proxy` compiles to UNPACK_SEQUENCE n: n getitem nodes are the answer
        frame = _user_frame()
        if frame is not None:
            for inst in dis.get_instructions(frame.f_code):
                if inst.offset == frame.f_lasti:
                    if inst.opname == "UNPACK_SEQUENCE":
                        return iter([self[i] for i in range(inst.argval)])
                    break
        raise TraceError("a Proxy object cannot be iterated (only unpacked into a fixed "
                         "number of names)" + _where())

    def __bool__(self):
        raise TraceError("symbolically traced variables cannot be used as inputs to "
                         "control flow" + _where())

    def __len__(self):
        raise TraceError("len() is not supported on a traced value; use .size(dim) or "
                         ".shape" + _where())

    def _concrete(self, kind):
        raise TraceError(f"{kind}() of a traced value needs its data, which tracing does "
                         f"not have" + _where())

    def __int__(self):
        self._concrete("int")

    def __float__(self):
        self._concrete("float")

    def __index__(self):
        self._concrete("index")

    def __array__(self, *args, **kwargs):
        raise TraceError("a function read the data of a traced value (numpy.asarray); if "
                         "it is a qlearn function captured before tracing (a closure or "
                         "a default argument), call it through its module (F.relu, "
                         "ql.cat), or record it with Tracer(autowrap_functions=...)"
                         + _where())

    __hash__ = object.__hash__


def _binary(op):
    def forward(self, other):
        return self.tracer.create_proxy("call_function", op, (self, other), {})

    def reflected(self, other):
        return self.tracer.create_proxy("call_function", op, (other, self), {})

    return forward, reflected


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_",
              "or_", "xor"):
    _op = getattr(operator, _name)
    _dunder = _name.rstrip("_")
    _fwd, _ref = _binary(_op)
    setattr(Proxy, f"__{_dunder}__", _fwd)
    setattr(Proxy, f"__r{_dunder}__", _ref)

for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(Proxy, f"__{_name}__", _binary(getattr(operator, _name))[0])

def _unary(op):
    def method(self):
        return self.tracer.create_proxy("call_function", op, (self,), {})
    return method


for _name in ("neg", "pos", "invert"):
    setattr(Proxy, f"__{_name}__", _unary(getattr(operator, _name)))

Proxy.__hash__ = object.__hash__   # __eq__ above would otherwise make proxies unhashable


class Attribute(Proxy):
    """``proxy.name``: a method call when called (``call_method`` node), otherwise a
    ``getattr`` value (``call_function`` on :func:`getattr`), made only when used."""

    def __init__(self, root, attr):
        self.root = root
        self.attr = attr
        self.tracer = root.tracer
        self._node = None

    @property
    def node(self):
        if self._node is None:
            self._node = self.tracer.create_proxy("call_function", getattr,
                                                  (self.root, self.attr), {}).node
        return self._node

    def __call__(self, *args, **kwargs):
        return self.tracer.create_proxy("call_method", self.attr, (self.root,) + args,
                                        kwargs)
