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
    max pooling, flatten, reshape, view, ...): the output observer *is* the input
    observer (the same module under a second name), as in PyTorch.
``"default"``
    operators with their own output observer, computed in float between a dequantize
    and a quantize (leaky ReLU; sigmoid, tanh and softmax, whose default qconfig has
    fixed qparams), except ``nn.Dropout``, which converts to its quantized module.
``"dynamic"``
    a module of the dynamic mapping (Linear, LSTM) under a dynamic qconfig: inputs get
    a placeholder observer only, convert swaps it to its ``nnqd`` class.
``"passthrough"``
    reads only metadata (``x.shape``, ``x.size(0)``) and works on a QTensor as is.
``"float"``
    everything else, and every node whose qconfig is None: computed in float, with a
    dequantize in front of any quantized input.

Where qlearn differs from PyTorch: PyTorch also runs ``mean``, ``squeeze``,
``unsqueeze``, ``clamp``, ``hardtanh``, ``avg_pool2d`` modules ... directly on quantized
tensors; qlearn's QTensor has no such methods, so these are ``"float"`` here (a
dequantize before, a quantize after when the next node is quantized).
"""
import operator

from ... import autograd, nn
from ...nn import functional as F
from ...nn import quantized as nnq
from ...nn.quantized import functional as qF
from ..quantization_mappings import (
    get_default_dynamic_quant_module_mappings,
    get_default_float_to_quantized_operator_mappings,
    get_default_static_quant_module_mappings,
)
from ..stubs import DeQuantStub, QuantStub

__all__ = ["node_kind", "RELU_TYPES", "SHARE_MODULES", "SHARE_FUNCTIONS", "SHARE_METHODS",
           "BINARY_OPS", "CAT_FUNCTIONS", "DEFAULT_MODULES", "DEFAULT_FUNCTIONS",
           "DEFAULT_METHODS", "is_relu"]

#: modules, functions and methods whose output keeps the input's qparams (that qlearn
#: can run on a QTensor: the modules are swapped through the static mapping, the
#: functions through the operator mapping, the methods are QTensor's)
SHARE_MODULES = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Identity)
SHARE_FUNCTIONS = {F.relu, F.relu6, F.max_pool2d, F.adaptive_avg_pool2d, F.flatten}
SHARE_METHODS = {"reshape", "view", "permute", "transpose", "contiguous", "relu"}

#: ``a op b`` -> (quantized op, the same fused with a ReLU after it or None, the
#: quantized op with a number ``b``)
BINARY_OPS = {operator.add: (qF.add, qF.add_relu, qF.add_scalar),
              operator.mul: (qF.mul, None, qF.mul_scalar)}
CAT_FUNCTIONS = {autograd.cat}

#: float between a dequantize and a quantize, own output observer
DEFAULT_MODULES = (nn.Dropout, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax)
DEFAULT_FUNCTIONS = {F.dropout, F.leaky_relu, F.sigmoid, F.tanh, F.softmax}
DEFAULT_METHODS = {"sigmoid", "tanh", "softmax"}

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
            return "share"
        if target in DEFAULT_FUNCTIONS:
            return "default"
        return "float"
    if op == "call_method":
        if target in SHARE_METHODS:
            return "share"
        if target in DEFAULT_METHODS:
            return "default"
    return "float"


def quantized_operator(fn):
    """The :mod:`qlearn.nn.quantized.functional` twin of a share function, or ``fn``
    itself when it runs on QTensors as it is (``F.flatten``)."""
    return get_default_float_to_quantized_operator_mappings().get(fn, fn)
