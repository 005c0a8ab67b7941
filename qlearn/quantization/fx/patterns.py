"""How graph-mode quantization treats each kind of node: the tables, in one place.

Every node of a traced model falls in one of these kinds (:func:`node_kind`), after
PyTorch's x86 backend configuration:

``"observed"``
    a module with its own int8 replacement in the static mapping (Linear, Conv2d, the
    fused and QAT modules, BatchNorm2d): its input is observed (if not already) and its
    output gets its own observer; convert swaps it through the mapping (``from_float``).
``"binary"``
    ``a + b`` / ``a * b`` of two tensors, optionally followed by a ReLU (fused):
    observed inputs, an output observer (after the ReLU when fused); convert writes
    :func:`qlearn.nn.quantized.functional.add` / ``add_relu`` / ``mul``.
``"binary_scalar"``
    ``a + c`` / ``a * c`` with a number ``c``: the output shares ``a``'s observer;
    convert writes ``qF.add_scalar`` / ``qF.mul_scalar``, which keep the integers and
    move the zero point / scale, as PyTorch's.
``"cat"``
    ``qlearn.cat``: the inputs share one observer (the first input's), so the
    concatenation is a copy of integers; the output shares it too.
``"share"``
    operators whose quantized output keeps the input's scale and zero point (ReLU,
    max pooling, ``ql.flatten`` / ``F.flatten``, the ``reshape`` / ``view`` methods,
    ...): the output observer *is* the input observer (the same module under a second
    name), as in PyTorch.
``"default"``
    operators with their own output observer, computed in float between a dequantize
    and a quantize (leaky ReLU; sigmoid, tanh and softmax, whose default qconfig has
    fixed qparams), except ``nn.Dropout``, which converts to its quantized module, and
    hardsigmoid (:data:`FIXED_QPARAMS_OPS`), which runs ``qF.hardsigmoid`` on the
    integers when its observer has the operator's fixed qparams :math:`(1/256, 0)`;
    also ``nn.GroupNorm``, which PyTorch's graph mode leaves in float
    (:data:`GRAPH_FLOAT_MODULES`) although eager ``convert`` swaps it.
``"functional"``
    a function with a quantized operator that takes the output's qparams
    (:data:`QUANTIZED_FUNCTIONS`: ``F.layer_norm``, ``F.instance_norm``,
    ``F.hardswish``, ``F.elu``): observed input, an output observer; convert calls the
    quantized operator (``qF.layer_norm`` ..., float weight and bias kept) with the
    observer's scale and zero point, as PyTorch lowers them to ``quantized::layer_norm``,
    ``quantized::instance_norm``, ``quantized::hardswish`` and ``quantized::elu``.
``"weight_only"``
    a module of the static mapping whose qconfig leaves activations in float (its
    activation observer is a float ``PlaceholderObserver``, as in
    :data:`~qlearn.quantization.qconfig.float_qparams_weight_only_qconfig` for
    ``nn.Embedding`` / ``nn.EmbeddingBag``): no observer on its input or output; convert
    swaps it (``nnq.Embedding``, whose output is float) and a quantized user observes
    its output with its own qconfig, as in PyTorch.
``"dynamic"``
    a module of the dynamic mapping (Linear, LSTM) under a dynamic qconfig: inputs get
    a placeholder observer only, convert swaps it to its ``nnqd`` class.
``"passthrough"``
    reads only metadata (``x.shape``, ``x.size(0)``) and works on a QTensor as is.
``"float"``
    everything else, and every node whose qconfig is None: computed in float, with a
    dequantize in front of any quantized input.

Where qlearn differs from PyTorch: PyTorch runs every share operator (``mean``,
``squeeze``, ``unsqueeze``, ``clamp``, ``hardtanh``, ``avg_pool2d`` ...) directly on
quantized tensors; qlearn's QTensor has kernels for only some of them
(:func:`runs_quantized`).  The others still share their input's observer, and convert
computes them in float between a dequantize and a quantize at those same qparams,
which gives PyTorch's integers.
"""
import inspect
import operator

from ... import autograd, nn
from ...nn import functional as F
from ...nn import intrinsic as nni
from ...nn import qat as nnqat
from ...nn import quantized as nnq
from ...nn.intrinsic import qat as nniqat
from ...nn.quantized import functional as qF
from ..quantization_mappings import (
    get_default_dynamic_quant_module_mappings,
    get_default_float_to_quantized_operator_mappings,
    get_default_static_quant_module_mappings,
)
from ..stubs import DeQuantStub, QuantStub

__all__ = ["node_kind", "RELU_TYPES", "SHARE_MODULES", "SHARE_FUNCTIONS", "SHARE_METHODS",
           "QTENSOR_MODULES", "QTENSOR_METHODS", "QTENSOR_TWINS", "runs_quantized",
           "quantized_call", "quantized_operator",
           "BINARY_OPS", "CAT_FUNCTIONS", "DEFAULT_MODULES", "DEFAULT_FUNCTIONS",
           "DEFAULT_METHODS", "GRAPH_FLOAT_MODULES", "QUANTIZED_FUNCTIONS", "is_relu",
           "FIXED_QPARAMS_OPS",
           "FX_EXTRA_QAT_MODULE_MAPPINGS"]

#: modules, functions and methods whose output keeps the input's qparams (that qlearn
#: can run on a QTensor: the modules are swapped through the static mapping, the
#: functions through the operator mapping, the methods are QTensor's)
SHARE_MODULES = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Identity,
                 nn.AvgPool2d, nn.Hardtanh, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d)
SHARE_FUNCTIONS = {F.relu, F.relu6, F.max_pool2d, F.adaptive_avg_pool2d, F.avg_pool2d,
                   F.hardtanh, F.flatten, autograd.flatten, autograd.clamp, autograd.mean,
                   F.max_pool1d, F.avg_pool1d, F.adaptive_avg_pool1d,
                   F.interpolate}
SHARE_METHODS = {"reshape", "view", "permute", "transpose", "contiguous", "relu", "clamp",
                 "mean", "squeeze", "unsqueeze", "detach"}

#: the share nodes that compute on a QTensor as they are (modules: those of the static
#: mapping, swapped, and ``nn.Identity``; functions: those of the operator mapping and
#: :data:`QTENSOR_TWINS`; methods: QTensor's).  The others (``ql.clamp``, ``x.mean()``,
#: ``nn.AvgPool2d`` ...) run in float between a dequantize and a quantize *with the
#: input's scale and zero point* (the shared observer), which gives PyTorch's integers
#: for these ops: a clamp or a squeeze of the integers is the same either way.
QTENSOR_MODULES = (nn.Identity,)
QTENSOR_METHODS = {"reshape", "view", "permute", "transpose", "contiguous", "relu"}

#: ``a op b`` -> (quantized op, the same fused with a ReLU after it or None, the
#: quantized op with a number ``b``)
BINARY_OPS = {operator.add: (qF.add, qF.add_relu, qF.add_scalar),
              operator.mul: (qF.mul, None, qF.mul_scalar)}
CAT_FUNCTIONS = {autograd.cat}

#: modules of the static mapping that PyTorch's graph mode observes but does not lower
#: (its x86 backend configuration has no quantized GroupNorm): float in a converted graph
GRAPH_FLOAT_MODULES = (nn.GroupNorm,)

#: float between a dequantize and a quantize, own output observer
DEFAULT_MODULES = (nn.Dropout, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax,
                   nn.Hardsigmoid) + GRAPH_FLOAT_MODULES
DEFAULT_FUNCTIONS = {F.dropout, F.leaky_relu, F.sigmoid, F.tanh, F.softmax, F.group_norm,
                     F.hardsigmoid}

#: default nodes with a quantized operator whose output has fixed qparams: float op (or
#: module type) -> (quantized function, its output's scale and zero point). With an
#: output observer of those qparams (the default qconfig mapping's fixed-qparams
#: observer) PyTorch lowers dequantize -> op -> quantize to the quantized operator on
#: the integers (``quantized::hardsigmoid``); convert does the same
FIXED_QPARAMS_OPS = {nn.Hardsigmoid: (qF.hardsigmoid, 1.0 / 256, 0),
                     F.hardsigmoid: (qF.hardsigmoid, 1.0 / 256, 0)}
DEFAULT_METHODS = {"sigmoid", "tanh", "softmax"}

#: QAT swaps graph mode makes on top of the eager QAT mapping: PyTorch's FX backend
#: configuration gives every convolution a QAT module, while its eager QAT mapping
#: leaves ``Conv1d`` and ``ConvReLU1d`` float; each workflow here does what PyTorch's does
FX_EXTRA_QAT_MODULE_MAPPINGS = {nn.Conv1d: nnqat.Conv1d, nni.ConvReLU1d: nniqat.ConvReLU1d}

#: float function -> (quantized operator, the float arguments it takes, the names of its
#: output scale and zero point arguments); the other float arguments (``inplace``,
#: ``instance_norm``'s running statistics) are dropped, as in PyTorch's lowering
QUANTIZED_FUNCTIONS = {
    F.layer_norm: (qF.layer_norm, ("normalized_shape", "weight", "bias", "eps"),
                   ("output_scale", "output_zero_point")),
    F.instance_norm: (qF.instance_norm, ("weight", "bias", "eps"),
                      ("output_scale", "output_zero_point")),
    F.hardswish: (qF.hardswish, (), ("scale", "zero_point")),
    F.elu: (qF.elu, ("alpha",), ("scale", "zero_point")),
}

PASSTHROUGH_METHODS = {"size", "dim", "numel"}
RELU_TYPES = (nn.ReLU,)

_NOT_OBSERVED = (QuantStub, DeQuantStub, nnq.FloatFunctional) + SHARE_MODULES \
    + DEFAULT_MODULES


def is_relu(node, modules):
    """True for ``nn.ReLU()(x)``, ``F.relu(x)`` and ``x.relu()`` nodes."""
    if node.op == "call_module":
        return isinstance(modules.get(node.target), RELU_TYPES)
    if node.op == "call_function":
        return node.target is F.relu
    return node.op == "call_method" and node.target == "relu"


def _is_number(a):
    return isinstance(a, (int, float)) and not isinstance(a, bool)


def node_kind(node, modules, qconfig, is_dynamic):
    """The kind of ``node`` (see the module docstring), given its ``qconfig`` and
    whether that qconfig quantizes activations dynamically."""
    kind = _node_kind(node, modules, qconfig, is_dynamic)
    if kind == "observed" and _keeps_float_activations(qconfig):
        return "weight_only"
    return kind


def _keeps_float_activations(qconfig):
    """Whether ``qconfig``'s activation observer leaves activations in float: a
    placeholder of a float dtype (not a quantized one) that is not dynamic."""
    from ...dtypes import QDType
    from ..observer import PlaceholderObserver
    act = qconfig.activation()
    return (isinstance(act, PlaceholderObserver) and not act.is_dynamic
            and not isinstance(act.dtype, QDType))


def _node_kind(node, modules, qconfig, is_dynamic):
    from ...fx import Node
    op, target = node.op, node.target
    if op in ("placeholder", "get_attr", "output"):
        return op
    if op == "call_function" and target is getattr:
        return "passthrough"
    if op == "call_method" and target in PASSTHROUGH_METHODS:
        return "passthrough"
    if op == "call_function" and target is operator.getitem and isinstance(
            node.args[0], Node) and node.args[0].meta.get("fx_kind") == "passthrough":
        return "passthrough"
    if qconfig is None:
        return "float"
    if op == "call_module":
        mod = modules[target]
        if is_dynamic:
            return "dynamic" if type(mod) in get_default_dynamic_quant_module_mappings() \
                else "float"
        if isinstance(mod, SHARE_MODULES):
            return "share"
        if isinstance(mod, DEFAULT_MODULES):
            return "default"
        if type(mod) in get_default_static_quant_module_mappings() and not isinstance(
                mod, _NOT_OBSERVED):
            return "observed"
        return "float"
    if is_dynamic:
        return "float"
    if op == "call_function":
        if target in BINARY_OPS and len(node.args) == 2 and not node.kwargs:
            a, b = node.args
            if isinstance(a, Node) and isinstance(b, Node):
                return "binary"
            if isinstance(a, Node) and _is_number(b):
                return "binary_scalar"
            return "float"
        if target in CAT_FUNCTIONS:
            return "cat"
        if target in SHARE_FUNCTIONS:
            # the observer shared is the first argument's: a number there has none
            return "share" if node.args and isinstance(node.args[0], Node) else "float"
        if target in DEFAULT_FUNCTIONS:
            return "default"
        if target in QUANTIZED_FUNCTIONS and node.args and isinstance(node.args[0], Node):
            return "functional"
        return "float"
    if op == "call_method":
        if target in SHARE_METHODS:
            return "share"
        if target in DEFAULT_METHODS:
            return "default"
    return "float"


#: share functions of the ``torch`` namespace that compute on a Tensor only (``ql.flatten``
#: of a QTensor would dequantize it): convert calls this twin with the arguments bound
#: to the original's signature (``ql.flatten``'s ``start_dim`` defaults to 0,
#: ``F.flatten``'s to 1), so the integers keep their scale and zero point
QTENSOR_TWINS = {autograd.flatten: F.flatten}


def quantized_operator(fn):
    """The :mod:`qlearn.nn.quantized.functional` twin of a share function, or ``fn``
    itself when it runs on QTensors as it is (``F.flatten``)."""
    return get_default_float_to_quantized_operator_mappings().get(fn, fn)


def runs_quantized(node, modules):
    """True when the share node ``node`` computes on a QTensor (see
    :data:`QTENSOR_MODULES`); False when it runs in float at its input's qparams."""
    if node.op == "call_module":
        mod = modules[node.target]
        return type(mod) in get_default_static_quant_module_mappings() or isinstance(
            mod, QTENSOR_MODULES)
    if node.op == "call_function":
        return (node.target in QTENSOR_TWINS or node.target is F.flatten
                or node.target in get_default_float_to_quantized_operator_mappings())
    return node.target in QTENSOR_METHODS


def quantized_call(node):
    """``(target, args, kwargs)`` computing the share node ``node`` on a QTensor."""
    twin = QTENSOR_TWINS.get(node.target)
    if twin is None:
        return quantized_operator(node.target), node.args, node.kwargs
    bound = inspect.signature(node.target).bind(*node.args, **node.kwargs)
    bound.apply_defaults()
    return twin, tuple(bound.arguments.values()), {}
