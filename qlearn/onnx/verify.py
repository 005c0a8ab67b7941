r"""Run an exported model in onnxruntime and count where its integers differ from qlearn's.

Every quantized tensor of the export (the output of each quantized operator) is made a
graph output, the model runs in onnxruntime on the example input, and each tensor's
integers are compared with the ones qlearn computed for the same input:

.. math::  d = |q^{\mathrm{ort}} - q^{\mathrm{qlearn}}|

counted as equal (:math:`d = 0`), off by one (:math:`d = 1`, one LSB: a rounding tie or a
bias rounded to int32) and worse.  A float tensor (a dequantized or dynamic-linear
output) is compared in units of its input's scale where it has one.
"""
from dataclasses import dataclass

import numpy as np

from ..dtypes import per_channel_affine, per_channel_symmetric
from ..nn.modules.module import Module
from ..nn.quantized import dynamic as nnqd
from ..nn.quantized.packed_params import choose_qparams_dynamic
from ..qtensor import QTensor
from .export import DEFAULT_OPSET, _build
from .walk import is_tensor

__all__ = ["OperatorMismatch", "Verification", "verify"]


@dataclass
class OperatorMismatch:
    """One tensor's comparison: ``size`` elements, ``equal`` / ``off_by_one`` / ``worse``
    counts and the largest difference ``max_diff`` (in LSBs; for a float tensor
    without a scale, in its own units).

    >>> from qlearn.onnx.verify import OperatorMismatch
    >>> OperatorMismatch("conv1", "Conv2d", "conv1", 10, 9, 1, 0, 1.0).off_by_one
    1
    """

    name: str
    type_name: str
    tensor: str
    size: int
    equal: int
    off_by_one: int
    worse: int
    max_diff: float


@dataclass
class Verification:
    """What :func:`verify` returns: one :class:`OperatorMismatch` per operator output, the
    onnxruntime outputs and the ONNX model.

    >>> from qlearn.onnx import Verification
    >>> Verification("qdq", [], [], None).off_by_one
    0
    """

    format: str
    rows: list
    outputs: list
    model: object

    @property
    def off_by_one(self):
        """Elements off by one LSB, summed over the quantized tensors."""
        return sum(r.off_by_one for r in self.rows if r.type_name != "float")

    @property
    def worse(self):
        """Elements off by more than one LSB, summed over the quantized tensors."""
        return sum(r.worse for r in self.rows if r.type_name != "float")

    def __str__(self):
        head = (f"{'operator':<22} {'type':<22} {'elements':>8} {'equal':>8} {'off by 1':>8} "
                f"{'worse':>6} {'max diff':>8}")
        lines = [f"qlearn vs onnxruntime ({self.format})", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.name[:22]:<22} {r.type_name[:22]:<22} {r.size:>8} "
                         f"{r.equal:>8} {r.off_by_one:>8} {r.worse:>6} {r.max_diff:>8.3g}")
        return "\n".join(lines)


def _session(proto, optimize):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError("qlearn.onnx.verify needs onnxruntime: pip install onnxruntime "
                          "(or pip install 'qlearn[export]')") from exc
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _feed(x):
    if isinstance(x, QTensor):
        return x.int_repr()
    return np.asarray(getattr(x, "data", x), np.float32)


def verify(model, example_input, format="qdq", opset_version=DEFAULT_OPSET, optimize=True,
           isolated=False):
    """Export ``model``, run it in onnxruntime and compare every operator's output.

    Parameters
    ----------
    model, example_input, format, opset_version
        As for :func:`qlearn.onnx.export`.
    optimize : bool
        Let onnxruntime optimize the graph (the default, as deployed: QDQ groups are
        fused into integer kernels); False runs every node as written.
    isolated : bool
        Run each operator alone on the inputs *qlearn* gave it, so a row counts the
        differences that operator makes by itself (by default the whole model runs and
        a difference made early is carried on by the operators after it).

    Returns
    -------
    Verification
        ``print()`` it for the table; ``.off_by_one`` and ``.worse`` are the totals.

    Examples
    --------
    >>> import qlearn.nn.quantized as nnq
    >>> from qlearn import nn, onnx as qonnx
    >>> model = nn.Sequential(nnq.Quantize(0.1, 3, ql.quint8), nnq.ReLU(), nnq.DeQuantize())
    >>> report = qonnx.verify(model, np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    >>> report.off_by_one, report.worse
    (0, 0)
    """
    proto, trace = _build(model, example_input, format, opset_version, None, None)
    graph = proto.graph
    n_model = len(graph.output)
    have = {o.name for o in graph.output} | {i.name for i in graph.input}
    inputs = [i.name for i in graph.input]
    seen, rows_src = set(), []
    for call, v in trace:
        if id(v) in seen:
            continue                      # a pass-through: the same tensor again
        seen.add(id(v))
        rows_src.append((call, v))
        if v.name not in have:
            graph.output.append(_value_info(proto, v))
            have.add(v.name)
    sess = _session(proto, optimize)
    feeds = {name: _feed(x) for name, x in zip(inputs, _inputs(example_input))}
    names = [o.name for o in sess.get_outputs()]
    results = dict(zip(names, sess.run(None, feeds)))
    rows = []
    for call, v in rows_src:
        theirs = results[v.name]
        if isolated:
            theirs = _run_alone(call, format, opset_version, optimize, theirs)
        rows.append(_compare(call, v, call.out, theirs))
    del graph.output[n_model:]          # the returned model is the exported one
    outs = [results[o.name] for o in graph.output]
    return Verification(format, rows, outs, proto)


def _compare(call, v, ours, theirs):
    if isinstance(ours, QTensor):
        d = np.abs(ours.int_repr().astype(np.int64) - theirs.astype(np.int64))
        type_name = call.type_name
    else:
        ours = np.asarray(getattr(ours, "data", ours), np.float32)
        d = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
        unit = _lsb(call)
        type_name = call.type_name if unit else "float"
        d = d / unit if unit else d
    return OperatorMismatch(call.name, type_name, v.name, int(d.size), int((d < 0.5).sum()),
                            int(((d >= 0.5) & (d < 1.5)).sum()), int((d >= 1.5).sum()),
                            float(d.max()) if d.size else 0.0)


class _MethodCall(Module):
    """``mod.<method>(*inputs)`` as a module, to export one ``QFunctional`` call alone."""

    def __init__(self, mod, method, extra):
        super().__init__()
        self.f = mod
        self.method, self.extra = method, extra

    def forward(self, *xs):
        if self.method == "cat":
            return self.f.cat(list(xs), *self.extra)
        return getattr(self.f, self.method)(*xs, *self.extra)


def _tensors_in(a, found):
    if isinstance(a, (tuple, list)):
        for x in a:
            _tensors_in(x, found)
    elif isinstance(a, dict):
        for x in a.values():
            _tensors_in(x, found)
    elif is_tensor(a) and all(a is not f for f in found):
        found.append(a)
    return found


def _replace(a, table):
    if isinstance(a, (tuple, list)):
        return type(a)(_replace(x, table) for x in a)
    if isinstance(a, dict):
        return {k: _replace(v, table) for k, v in a.items()}
    return table.get(id(a), a)


def _one_node_graph(call, ins):
    """A ``qlearn.fx`` GraphModule holding only ``call`` (a function or method node)."""
    from ..fx import Graph, GraphModule
    graph = Graph()
    table = {id(t): graph.placeholder(f"x{i}") for i, t in enumerate(ins)}
    args, kwargs = _replace(call.args, table), _replace(call.kwargs, table)
    make = graph.call_function if call.op == "call_function" else graph.call_method
    graph.output(make(call.target, tuple(args), dict(kwargs)))
    return GraphModule(Module(), graph)


def _run_alone(call, format, opset_version, optimize, fallback):
    """onnxruntime's output of ``call``'s operator run alone on qlearn's inputs of it."""
    if call.op in ("call_function", "call_method"):
        ins = tuple(_tensors_in(call.args, []) + _tensors_in(call.kwargs, []))
        if not ins:
            return fallback
        sub = _one_node_graph(call, ins)
    else:
        if call.kwargs:
            return fallback
        args = list(call.args)
        if call.method == "cat":
            ins, extra = tuple(args[0]), tuple(args[1:])
        else:
            k = 0
            while k < len(args) and is_tensor(args[k]):
                k += 1
            ins, extra = tuple(args[:k]), tuple(args[k:])
        if not ins or not all(is_tensor(a) for a in ins):
            return fallback
        if call.method is None:
            if extra:
                return fallback
            sub = call.target
        else:
            sub = _MethodCall(call.target, call.method, extra)
    proto, _ = _build(sub, ins, format, opset_version, None, None)
    sess = _session(proto, optimize)
    feeds = {i.name: _feed(x) for i, x in zip(proto.graph.input, ins)}
    return sess.run(None, feeds)[0]


def _inputs(example_input):
    return example_input if isinstance(example_input, tuple) else (example_input,)


def _lsb(call):
    """The value of one LSB of a float output: the input's scale for a DeQuantize,
    :math:`S_a \\min_j S_{w,j}` (one unit of the int32 accumulator) for a dynamic
    linear; else None."""
    for a in call.args:
        if isinstance(a, QTensor):
            return float(a.q_scale())
    if call.op == "call_module" and isinstance(call.target, nnqd.Linear) and call.args:
        x = np.asarray(getattr(call.args[0], "data", call.args[0]), np.float32)
        sa, _ = choose_qparams_dynamic(x, getattr(call.target, "reduce_range", True))
        qw = call.target.weight()
        sw = (qw.q_per_channel_scales() if qw.qscheme() in (per_channel_affine,
                                                             per_channel_symmetric)
              else np.asarray([qw.q_scale()]))
        return float(sa) * float(np.min(sw))
    return None


def _value_info(proto, v):
    import onnx
    return onnx.helper.make_tensor_value_info(
        v.name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(v.elem)), list(v.shape))
