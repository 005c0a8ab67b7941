r"""Graph-mode quantization: ``prepare_fx`` / ``convert_fx`` (as torch.ao.quantization.quantize_fx).

Eager mode needs the model edited by hand: ``QuantStub`` / ``DeQuantStub`` placed,
fusions listed, every residual ``+`` turned into a ``FloatFunctional``.  Graph mode
reads all of that off the model's graph (:func:`qlearn.fx.symbolic_trace`):

1. :func:`fuse_fx` finds the fusion table's patterns (conv-bn-relu, conv-relu,
   linear-relu, linear-bn, bn-relu) in the graph and fuses them;
2. :func:`prepare_fx` gives every node its qconfig from a
   :class:`~qlearn.quantization.QConfigMapping` and inserts observers as graph nodes
   (``activation_post_process_<k>`` modules) where values will be quantized;
3. run calibration data through the prepared model;
4. :func:`convert_fx` turns each observer of a float value into
   ``quantize_per_tensor`` with the observed :math:`(S, Z)`, swaps modules through the
   same mappings and ``from_float`` as eager :func:`~qlearn.quantization.convert`,
   writes ``+`` / ``*`` / ``cat`` as quantized functions, and dequantizes in front of
   every node left in float.

The affine map is the eager one, :math:`q = \operatorname{clamp}(\operatorname{round}(x/S
+ Z), q_{min}, q_{max})`, :math:`x \approx S (q - Z)`; a node whose qconfig is None
stays float, with a dequantize before and a quantize after it when its neighbours are
quantized.  With the same weights and calibration data the integers are PyTorch's FX
flow's (tests/test_quantize_fx.py).

Differences from PyTorch: the model passed to ``prepare_fx`` is copied, never
modified (PyTorch's prepared model shares its submodules); ``example_inputs`` may be
omitted (qlearn's tracer needs no data); quantized modules replace ``nn.ReLU`` /
``nn.MaxPool2d`` in the converted graph (qlearn's float modules take float input
only); the operators PyTorch runs on quantized tensors but qlearn's QTensor has no
kernel for (``mean``, ``squeeze``, ``clamp`` ...) share their input's observer as in
PyTorch and run in float between a dequantize and a quantize at those qparams (see
:mod:`qlearn.quantization.fx.patterns`); the dequantize nodes call
:func:`qlearn.quantization.fx.convert.dequantize`, a float :class:`qlearn.Tensor`, where
PyTorch's call ``x.dequantize()`` (:meth:`QTensor.dequantize` gives an ndarray);
``F.linear`` / ``F.conv2d`` called with parameters stay float (use the modules).
"""
import copy

from ..fx import GraphModule, Tracer
from ..nn.modules.module import Module
from ..nn.quantized import FloatFunctional
from .fx import (
    assign_qconfigs,
    convert_graph_module,
    fuse_graph_module,
    insert_observers,
    swap_qat_modules,
)
from .qconfig_mapping import QConfigMapping
from .stubs import DeQuantStub, QuantStub

__all__ = ["fuse_fx", "prepare_fx", "prepare_qat_fx", "convert_fx", "QuantizationTracer"]


class QuantizationTracer(Tracer):
    """The tracer of graph-mode quantization: :class:`qlearn.fx.Tracer` with extra leaf
    modules (the ``"non_traceable_module_name"`` / ``"non_traceable_module_class"``
    entries of ``prepare_custom_config``), which stay float.

    A model written for eager mode traces as PyTorch's FX flow sees it: ``QuantStub`` /
    ``DeQuantStub`` leave no node (graph mode places the quantize and dequantize
    itself), and ``FloatFunctional.add(x, y)`` records ``x + y`` (its
    ``activation_post_process`` placeholder leaves no node either), so residual adds
    written either way quantize the same.
    """

    def __init__(self, skipped_module_names=(), skipped_module_classes=()):
        super().__init__()
        self.skipped_module_names = list(skipped_module_names)
        self.skipped_module_classes = tuple(skipped_module_classes)

    def call_module(self, m, forward, args, kwargs):
        if isinstance(m, (QuantStub, DeQuantStub)) and len(args) == 1 and not kwargs:
            return args[0]
        path = self.path_of_module(m)
        if path.endswith("activation_post_process") and len(args) == 1:
            parent = self.root.get_submodule(path.rpartition(".")[0])
            if isinstance(parent, FloatFunctional):
                return args[0]
        return super().call_module(m, forward, args, kwargs)

    def is_leaf_module(self, m, module_qualified_name):
        return (super().is_leaf_module(m, module_qualified_name)
                or module_qualified_name in self.skipped_module_names
                or (bool(self.skipped_module_classes)
                    and isinstance(m, self.skipped_module_classes)))


def _custom(config):
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TypeError(f"`prepare_custom_config` must be a dict, got "
                        f"{type(config).__name__}")
    known = ("non_traceable_module_name", "non_traceable_module_class")
    unknown = [k for k in config if k not in known]
    if unknown:
        raise ValueError(f"`prepare_custom_config` has unsupported keys {unknown}; qlearn "
                         f"supports {list(known)}")
    return config


def _trace(model, custom):
    if not isinstance(model, Module):
        raise TypeError(f"`model` must be a qlearn nn.Module, got {type(model).__name__}")
    names = custom.get("non_traceable_module_name", [])
    classes = custom.get("non_traceable_module_class", [])
    tracer = QuantizationTracer(names, classes)
    model = copy.deepcopy(model)
    graph = tracer.trace(model)
    # "GraphModule" as PyTorch's prepare_fx names it (symbolic_trace uses the class name)
    return GraphModule(model, graph, "GraphModule", constants=tracer.constants)


def _mapping(qconfig_mapping):
    if isinstance(qconfig_mapping, QConfigMapping):
        return qconfig_mapping
    if isinstance(qconfig_mapping, dict):
        return QConfigMapping.from_dict(qconfig_mapping)
    raise TypeError(f"`qconfig_mapping` must be a QConfigMapping or a qconfig dict, got "
                    f"{type(qconfig_mapping).__name__}")


def fuse_fx(model, fuse_custom_config=None, backend_config=None):
    """Trace ``model`` and fuse the fusion table's patterns in its graph (``model`` is
    copied, not changed).

    In eval mode batch norms are folded into the layer before them (conv-bn ->
    ``Conv2d``, conv-bn-relu -> ``ConvReLU2d``); in training mode they are kept in the
    fused QAT-ready containers (``ConvBnReLU2d`` ...).

    Parameters
    ----------
    model : nn.Module
    fuse_custom_config : dict, optional
        ``{"non_traceable_module_name": [...], "non_traceable_module_class": [...]}``.
    backend_config : None
        Only the default (x86) configuration exists; anything else is an error.

    Returns
    -------
    GraphModule

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization import quantize_fx
    >>> m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> fused = quantize_fx.fuse_fx(m)
    >>> [(n.op, n.target) for n in fused.graph.nodes][1], type(getattr(fused, "0")).__name__
    (('call_module', '0'), 'ConvReLU2d')
    """
    _check_backend_config(backend_config)
    gm = _trace(model, _custom(fuse_custom_config))
    return fuse_graph_module(gm, is_qat=model.training)


def _check_backend_config(backend_config):
    if backend_config is not None:
        raise ValueError("`backend_config`: qlearn has one backend configuration (x86 / "
                         "fbgemm, PyTorch's default); pass None")


def _prepare(model, qconfig_mapping, is_qat, prepare_custom_config, backend_config):
    _check_backend_config(backend_config)
    qmap = _mapping(qconfig_mapping)
    gm = _trace(model, _custom(prepare_custom_config))
    fuse_graph_module(gm, is_qat=is_qat)
    assign_qconfigs(gm, qmap)
    if is_qat:
        swap_qat_modules(gm)
    insert_observers(gm)
    gm._qconfig_mapping = qmap
    return gm


def prepare_fx(model, qconfig_mapping, example_inputs=None, prepare_custom_config=None,
               _equalization_config=None, backend_config=None):
    """Trace, fuse and insert observers: graph mode's first step of post-training
    quantization (static or dynamic).

    Parameters
    ----------
    model : nn.Module
        A float model in eval mode (copied; the original is not changed).
    qconfig_mapping : QConfigMapping or dict
        Which qconfig each node gets; the dict form ``{"": qconfig, "object_type":
        [...], "module_name": [...]}`` is accepted.  A qconfig of None keeps a node in
        float; :data:`~qlearn.quantization.qconfig.default_dynamic_qconfig` quantizes
        ``Linear`` / ``LSTM`` dynamically.
    example_inputs : tuple, optional
        Accepted for PyTorch compatibility (PyTorch requires it); the tracer needs no
        data.
    prepare_custom_config : dict, optional
        ``"non_traceable_module_name"`` / ``"non_traceable_module_class"``: modules
        recorded as one node (not traced through).
    backend_config : None

    Returns
    -------
    GraphModule
        With ``activation_post_process_<k>`` observer nodes; run calibration data
        through it, then :func:`convert_fx`.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization import quantize_fx
    >>> m = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    >>> prepared = quantize_fx.prepare_fx(m, {"": tq.get_default_qconfig("x86")})
    >>> print(prepared.code.strip())
    def forward(self, input_1):
        activation_post_process_0 = self.activation_post_process_0(input_1)
        _0 = getattr(self, "0")(activation_post_process_0)
        activation_post_process_1 = self.activation_post_process_1(_0)
        return activation_post_process_1
    """
    del example_inputs, _equalization_config
    return _prepare(model, qconfig_mapping, False, prepare_custom_config, backend_config)


def prepare_qat_fx(model, qconfig_mapping, example_inputs=None, prepare_custom_config=None,
                   backend_config=None):
    """As :func:`prepare_fx` for quantization-aware training: ``model`` is in training
    mode, batch norms stay (simulated folding), modules are swapped to their QAT twins
    through the QAT mapping and the inserted "observers" are the qconfig's fake
    quantizers (use :func:`~qlearn.quantization.get_default_qat_qconfig_mapping`).

    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization import quantize_fx
    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    >>> p = quantize_fx.prepare_qat_fx(m, tq.get_default_qat_qconfig_mapping())
    >>> type(getattr(p, "0")).__name__, type(p.activation_post_process_1).__name__
    ('ConvBnReLU2d', 'FusedMovingAvgObsFakeQuantize')
    """
    del example_inputs
    return _prepare(model, qconfig_mapping, True, prepare_custom_config, backend_config)


def convert_fx(graph_module, convert_custom_config=None, _remove_qconfig=True,
               qconfig_mapping=None, backend_config=None):
    """Convert a prepared and calibrated (or QAT-trained) graph module to int8.

    The argument is copied, not changed.  Each observer of a float value becomes
    ``quantize_per_tensor`` with the observed scale and zero point; quantized modules
    come from the mappings' ``from_float`` (as in eager
    :func:`~qlearn.quantization.convert`); residual adds, products and concatenations
    become :mod:`qlearn.nn.quantized.functional` calls; float nodes get dequantized
    inputs.

    Parameters
    ----------
    graph_module : GraphModule
        From :func:`prepare_fx` or :func:`prepare_qat_fx`.
    convert_custom_config, qconfig_mapping, backend_config : None
        Accepted for PyTorch compatibility; only None is supported.

    Returns
    -------
    GraphModule

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization import quantize_fx
    >>> m = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval()
    >>> p = quantize_fx.prepare_fx(m, {"": tq.get_default_qconfig("x86")})
    >>> _ = p(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    >>> q = quantize_fx.convert_fx(p)
    >>> type(getattr(q, "0")).__name__, q(np.ones((1, 4), np.float32)).shape
    ('LinearReLU', (1, 4))
    """
    if not isinstance(graph_module, GraphModule) or not any(
            n.meta.get("fx_kind") for n in graph_module.graph.nodes):
        raise TypeError(f"`graph_module` must be the GraphModule returned by prepare_fx or "
                        f"prepare_qat_fx, got {type(graph_module).__name__}")
    for name, value in (("convert_custom_config", convert_custom_config),
                        ("qconfig_mapping", qconfig_mapping),
                        ("backend_config", backend_config)):
        if value is not None:
            raise ValueError(f"`{name}` is not supported by qlearn's convert_fx; pass None")
    gm = copy.deepcopy(graph_module)
    gm.eval()
    return convert_graph_module(gm)
