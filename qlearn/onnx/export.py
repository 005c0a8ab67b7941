r"""``qlearn.onnx.export``: write a converted (quantized) model as an ONNX model."""
import os
import warnings

import numpy as np

from ..autograd import Tensor
from ..qtensor import QTensor
from .graph import GraphBuilder, import_onnx
from .ops import (
    FUNCTION_CONVERSIONS,
    METHOD_CONVERSIONS,
    Converter,
    UnsupportedModuleError,
    _functional,
    module_conversion,
)
from .walk import is_tensor, record

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export"]

#: The default ONNX opset.  13 is the first with per-channel (``axis``)
#: QuantizeLinear / DequantizeLinear, which per-channel weights need; 17 is supported by
#: every onnxruntime of the last years and by the other engines that read QDQ models.
DEFAULT_OPSET = 17
#: The oldest opset accepted.
MIN_OPSET = 13

_FORMATS = ("qdq", "qoperator")


def _type_path(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unsupported(call):
    if call.op == "call_module":
        mod = call.target
        hint = ""
        cls = type(mod).__name__
        if cls in ("QuantStub", "DeQuantStub") or cls.endswith(("Observer", "FakeQuantize")) \
                or hasattr(mod, "activation_post_process") or hasattr(mod, "weight_fake_quant"):
            hint = ("; it looks prepared but not converted: run "
                    "qlearn.quantization.convert (or convert_fx) first")
        return UnsupportedModuleError(
            f"qlearn.onnx.export: module {call.name!r} of type {_type_path(mod)} has no "
            f"ONNX conversion{hint}")
    what = (f"function {getattr(call.target, '__module__', '')}."
            f"{getattr(call.target, '__qualname__', call.target)}"
            if call.op == "call_function" else f"method .{call.target}()")
    return UnsupportedModuleError(f"qlearn.onnx.export: graph node {call.name!r} calls "
                                  f"{what}, which has no ONNX conversion")


def _conversion(call):
    if call.op == "call_module":
        if call.method is not None:
            return _functional
        return module_conversion(call.target)
    if call.op == "call_function":
        try:
            return FUNCTION_CONVERSIONS.get(call.target)
        except TypeError:           # an unhashable target
            return None
    return METHOD_CONVERSIONS.get(call.target)


def _as_input(x, i):
    if isinstance(x, (QTensor, Tensor)):
        return x
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(f"`example_input` must be an array (or a tuple of arrays), got "
                        f"{type(x).__name__} at position {i}") from None
    return np.array(a, dtype=np.float32, copy=True)


def _map(a, fn):
    if isinstance(a, (tuple, list)):
        return type(a)(_map(x, fn) for x in a)
    if isinstance(a, dict):
        return {k: _map(v, fn) for k, v in a.items()}
    return fn(a)


def export(model, example_input, path=None, format="qdq", opset_version=DEFAULT_OPSET,
           input_names=None, output_names=None, dynamic_axes=None, check=True):
    r"""Export a converted (quantized) model to ONNX.

    The model runs once on ``example_input``; the operators it calls (leaf modules of a
    module tree, in call order, or the nodes of a ``qlearn.fx`` ``GraphModule``) are
    written as ONNX nodes with the scales and zero points they hold.

    In ``"qdq"`` format every quantized operator is its float operator between
    ``DequantizeLinear`` and ``QuantizeLinear``:

    .. math::

       \mathrm{DQ}(q) = S\,(q - Z), \qquad
       \mathrm{Q}(r) = \operatorname{sat}\big(\operatorname{round}(r / S) + Z\big)

    with weights stored as int8 initializers (per-channel scales on ``axis`` 0) and the
    bias as int32 at scale :math:`S_a S_{w,j}`.  In ``"qoperator"`` format the tensors
    stay integers: ``QLinearConv``, ``MatMulInteger`` with qlearn's float epilogue,
    ``QLinearAdd`` / ``QLinearMul`` / ``QLinearConcat`` / ``QLinearGlobalAveragePool``
    (onnxruntime's ``com.microsoft`` domain), ``MaxPool``, ``Flatten`` and ``Clip`` on
    uint8 (see :mod:`qlearn.onnx.ops` for the whole table, and the Export page of the
    docs for where the integers can differ from qlearn's by one).

    Parameters
    ----------
    model : qlearn.nn.Module
        A converted model (``convert`` / ``convert_fx`` output, or quantized modules
        assembled by hand), or a ``qlearn.fx.GraphModule``.
    example_input : array_like or tuple
        The input (or a tuple of inputs) the model is run on; it fixes the shapes.
    path : str or os.PathLike or file-like, optional
        Where to write the ``.onnx`` file; nothing is written when None.
    format : {"qdq", "qoperator"}
    opset_version : int
        The ONNX opset, at least 13 (per-channel QuantizeLinear / DequantizeLinear);
        default :data:`DEFAULT_OPSET` (17).
    input_names, output_names : list of str, optional
        Graph input / output names (default ``input``, ``input_1`` ... and ``output`` ...).
    dynamic_axes : dict, optional
        As ``torch.onnx.export``'s: ``{name: {axis: dim_name}}`` or ``{name: [axis, ...]}``
        for the graph inputs and outputs whose sizes are left open, typically the batch
        axis (``{"input": {0: "batch"}, "output": {0: "batch"}}``).  Other shapes are
        those of the example input.
    check : bool
        Run ``onnx.checker.check_model`` on the result (default True).

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    UnsupportedModuleError
        A module or graph operator has no ONNX conversion; the message names it (its
        qualified name and type).

    Examples
    --------
    >>> import qlearn.nn.quantized as nnq
    >>> from qlearn import nn, onnx as qonnx
    >>> lin = nnq.Linear(4, 3)
    >>> lin.set_weight_bias(ql.quantize_per_tensor(np.ones((3, 4)), 0.1, 0, ql.qint8),
    ...                     np.zeros(3, np.float32))
    >>> lin.scale, lin.zero_point = 0.05, 10
    >>> model = nn.Sequential(nnq.Quantize(0.1, 0, ql.quint8), lin, nnq.DeQuantize())
    >>> proto = qonnx.export(model, np.ones((2, 4), np.float32), format="qdq")
    >>> [n.op_type for n in proto.graph.node]   # doctest: +NORMALIZE_WHITESPACE
    ['QuantizeLinear', 'DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear', 'Gemm',
     'QuantizeLinear', 'DequantizeLinear']
    """
    onnx = import_onnx()
    proto, _ = _build(model, example_input, format, opset_version, input_names,
                      output_names, dynamic_axes)
    if check:
        onnx.checker.check_model(proto)
    if path is not None:
        if isinstance(path, (str, os.PathLike)):
            onnx.save(proto, os.fspath(path))
        else:
            path.write(proto.SerializeToString())
    return proto


def _dims(name, shape, dynamic_axes):
    """``shape`` with the axes ``dynamic_axes`` opens for ``name`` as symbolic names."""
    axes = (dynamic_axes or {}).get(name)
    if axes is None:
        return list(shape)
    if not isinstance(axes, dict):
        axes = {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
    dims = list(shape)
    for a, dim_name in axes.items():
        if not -len(dims) <= int(a) < len(dims):
            raise ValueError(f"`dynamic_axes`: axis {a} of {name!r} is out of range for "
                             f"its {len(dims)} dimensions")
        dims[int(a)] = str(dim_name)
    return dims


def _check_names(value, arg):
    """``input_names`` / ``output_names``: None or a list (tuple) of distinct strings."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"`{arg}` must be a list of str, got {type(value).__name__} "
                        f"{value!r}")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name:
            raise TypeError(f"`{arg}` must be a list of non-empty str, got {value!r} "
                            f"(element {i} is {type(name).__name__} {name!r})")
    dup = sorted({n for n in value if list(value).count(n) > 1})
    if dup:
        raise ValueError(f"`{arg}` must be distinct (an ONNX graph names each value "
                         f"once), got {value!r}: {dup} repeated")
    return list(value)


def _check_count(names, n, arg, what):
    # torch.onnx.export's message (it raises RuntimeError; qlearn's policy: ValueError)
    if len(names) > n:
        raise ValueError(f"`{arg}`: number of {what} names provided ({len(names)}) "
                         f"exceeded number of {what}s ({n}), got {names!r}")


def _build(model, example_input, format, opset_version, input_names, output_names,
           dynamic_axes=None):
    """The ONNX model and ``[(call, Value)]``: which tensor holds each call's output."""
    onnx = import_onnx()
    from ..nn.modules.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"`model` must be a qlearn.nn.Module (a converted model or a "
                        f"GraphModule), got {type(model).__name__}")
    input_names = _check_names(input_names, "input_names")
    output_names = _check_names(output_names, "output_names")
    both = sorted(set(input_names) & set(output_names))
    if both:
        raise ValueError(f"`input_names` and `output_names` must not share a name (an "
                         f"ONNX graph names each value once), got {both} in both")
    if format not in _FORMATS:
        raise ValueError(f"`format` must be one of {_FORMATS}, got {format!r}")
    max_opset = onnx.defs.onnx_opset_version()
    if (isinstance(opset_version, bool) or not isinstance(opset_version, (int, np.integer))
            or not MIN_OPSET <= opset_version <= max_opset):
        raise ValueError(f"`opset_version` must be an int in [{MIN_OPSET}, {max_opset}] "
                         f"(13 is the first with per-channel QuantizeLinear), got "
                         f"{opset_version!r}")
    if dynamic_axes is not None and not isinstance(dynamic_axes, dict):
        raise TypeError(f"`dynamic_axes` must be a dict {{name: axes}}, got "
                        f"{type(dynamic_axes).__name__}")
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    inputs = tuple(_as_input(x, i) for i, x in enumerate(inputs))
    _check_count(input_names, len(inputs), "input_names", "input")
    rec = record(model, inputs, lambda m: module_conversion(m) is not None)

    g = GraphBuilder(int(opset_version))
    cv = Converter(g, format)
    cv.constants = rec.constants
    names = input_names
    for i, x in enumerate(inputs):
        name = names[i] if i < len(names) else ("input" if i == 0 else f"input_{i}")
        g.fresh(name)
        v = cv.bind(x, name)
        g.inputs.append(g.value_info(name, v.elem, _dims(name, v.shape, dynamic_axes)))

    trace = []
    for call in rec.calls:
        convert = _conversion(call)
        if convert is None:
            raise _unsupported(call)
        def look(a, call=call):
            return cv.lookup(a, call)
        args, kwargs = _map(call.args, look), _map(call.kwargs, look)
        result = convert(cv, call, *args, **kwargs)
        if result is None:          # a Python constant (a shape), not a graph value
            continue
        if isinstance(call.out, tuple):
            raise UnsupportedModuleError(f"qlearn.onnx.export: {call.name!r} "
                                         f"({call.type_name}) returns a tuple")
        trace.append((call, cv.bind(call.out, result)))

    outs = rec.output if isinstance(rec.output, (tuple, list)) else (rec.output,)
    names = list(output_names)
    _check_count(names, len(outs), "output_names", "output")
    valid = {vi.name for vi in g.inputs} | {
        names[i] if i < len(names) else ("output" if i == 0 else f"output_{i}")
        for i in range(len(outs))}
    for key in dynamic_axes or {}:
        if key not in valid:        # torch.onnx.export warns the same way
            warnings.warn(f"qlearn.onnx.export: provided key {key!r} for dynamic axes is "
                          f"not a valid input/output name (the graph has "
                          f"{sorted(valid)})", UserWarning, stacklevel=3)
    graph_inputs = {vi.name for vi in g.inputs}
    used = set()
    for i, obj in enumerate(outs):
        if not is_tensor(obj) or id(obj) not in cv.env:
            raise ValueError(f"qlearn.onnx.export: output {i} of the model "
                             f"({type(obj).__name__}) was not produced by an operator the "
                             f"export saw")
        v = cv.env[id(obj)]
        name = names[i] if i < len(names) else ("output" if i == 0 else f"output_{i}")
        src = v.name
        if src in graph_inputs or src in used:
            src = g.node("Identity", [src], name + "_identity", name=f"{name}/Identity")
        g.rename_output(src, name)
        if src == v.name:
            v.name = name
        used.add(name)
        g.outputs.append(g.value_info(name, v.elem, _dims(name, v.shape, dynamic_axes)))

    proto = g.model(type(model).__name__,
                    doc_string=f"exported by qlearn.onnx.export (format={format!r})")
    return proto, trace
