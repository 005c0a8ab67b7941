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
from .fx.convert_reference import convert_reference_graph_module
from .fx.custom_config import ConvertCustomConfig, FuseCustomConfig, PrepareCustomConfig
from .qconfig_mapping import QConfigMapping
from .quant_type import QuantType
from .stubs import DeQuantStub, QuantStub

__all__ = ["fuse_fx", "prepare_fx", "prepare_qat_fx", "convert_fx", "QuantizationTracer",
           "PrepareCustomConfig", "ConvertCustomConfig", "FuseCustomConfig",
           "attach_preserved_attrs_to_model", "convert_to_reference_fx"]


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


def _prepare_config(config):
    if config is None:
        return PrepareCustomConfig()
    if isinstance(config, PrepareCustomConfig):
        return config
    if isinstance(config, dict):
        return PrepareCustomConfig.from_dict(config)
    raise TypeError(f"`prepare_custom_config` must be a PrepareCustomConfig or a dict, got "
                    f"{type(config).__name__}")


def _convert_config(config):
    if config is None:
        return ConvertCustomConfig()
    if isinstance(config, ConvertCustomConfig):
        return config
    if isinstance(config, dict):
        return ConvertCustomConfig.from_dict(config)
    raise TypeError(f"`convert_custom_config` must be a ConvertCustomConfig or a dict, got "
                    f"{type(config).__name__}")


_NON_TRACEABLE_KEYS = ("non_traceable_module_name", "non_traceable_module_class")


def _fuse_config(config):
    """``(FuseCustomConfig, non-traceable names, classes)``; the dict form may also name
    non-traceable modules (qlearn's extension: PyTorch's fuse_fx ignores those keys)."""
    if config is None:
        return FuseCustomConfig(), [], []
    if isinstance(config, FuseCustomConfig):
        return config, [], []
    if isinstance(config, dict):
        rest = {k: v for k, v in config.items() if k not in _NON_TRACEABLE_KEYS}
        return (FuseCustomConfig.from_dict(rest),
                list(config.get(_NON_TRACEABLE_KEYS[0], [])),
                list(config.get(_NON_TRACEABLE_KEYS[1], [])))
    raise TypeError(f"`fuse_custom_config` must be a FuseCustomConfig or a dict, got "
                    f"{type(config).__name__}")


def _trace(model, names=(), classes=()):
    if not isinstance(model, Module):
        raise TypeError(f"`model` must be a qlearn nn.Module, got {type(model).__name__}")
    tracer = QuantizationTracer(names, classes)
    model = copy.deepcopy(model)
    graph = tracer.trace(model)
    # "GraphModule" as PyTorch's prepare_fx names it (symbolic_trace uses the class name)
    return GraphModule(model, graph, "GraphModule", constants=tracer.constants)


_USER_PRESERVED_ATTRIBUTES_KEY = "_user_preserved_attributes"


def attach_preserved_attrs_to_model(model, preserved_attrs):
    """Set each ``name: value`` of ``preserved_attrs`` as an attribute of ``model`` and
    record them in ``model.meta["_user_preserved_attributes"]`` (PyTorch's key).

    ``prepare_fx`` / ``convert_fx`` / ``fuse_fx`` call it with the attributes named by
    ``set_preserved_attributes``: tracing keeps only what ``forward`` uses, so an
    attribute read elsewhere (a version string, a method's constant) is carried over
    this way.

    Parameters
    ----------
    model : nn.Module
    preserved_attrs : dict
        ``{attribute name: value}``.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization.quantize_fx import attach_preserved_attrs_to_model
    >>> m = nn.Linear(2, 2)
    >>> attach_preserved_attrs_to_model(m, {"version": 3})
    >>> m.version, m.meta
    (3, {'_user_preserved_attributes': {'version': 3}})
    """
    if not isinstance(model, Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    if not isinstance(preserved_attrs, dict):
        raise TypeError(f"`preserved_attrs` must be a dict, got "
                        f"{type(preserved_attrs).__name__}")
    meta = getattr(model, "meta", None)
    if not isinstance(meta, dict):
        meta = {}
        model.meta = meta
    meta[_USER_PRESERVED_ATTRIBUTES_KEY] = copy.copy(preserved_attrs)
    for name, value in meta[_USER_PRESERVED_ATTRIBUTES_KEY].items():
        setattr(model, name, value)


def _preserve(source, target, names):
    """Give ``target`` the attributes ``names`` of ``source`` (those it has), and only
    those: as in PyTorch, each step keeps what its own custom config lists (an
    attribute preserved by prepare_fx is listed again for convert_fx to keep it)."""
    meta = getattr(target, "meta", None)
    if isinstance(meta, dict):      # carried over by the deep copy of a prepared model
        for old in meta.pop(_USER_PRESERVED_ATTRIBUTES_KEY, {}):
            if old not in names and old in target.__dict__:
                delattr(target, old)
    attrs = {n: getattr(source, n) for n in names if hasattr(source, n)}
    attach_preserved_attrs_to_model(target, attrs)
    return target


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
    fuse_custom_config : FuseCustomConfig or dict, optional
        Its preserved attributes are copied to the result; the dict form may also name
        ``"non_traceable_module_name"`` / ``"non_traceable_module_class"`` (recorded as
        one node; PyTorch ignores these two keys here).
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
    conf, names, classes = _fuse_config(fuse_custom_config)
    gm = _trace(model, names, classes)
    return _preserve(model, fuse_graph_module(gm, is_qat=model.training),
                     conf.preserved_attributes)


def _check_backend_config(backend_config):
    if backend_config is not None:
        raise ValueError("`backend_config`: qlearn has one backend configuration (x86 / "
                         "fbgemm, PyTorch's default); pass None")


def _prepare(model, qconfig_mapping, is_qat, prepare_custom_config, backend_config):
    _check_backend_config(backend_config)
    qmap = _mapping(qconfig_mapping)
    conf = _prepare_config(prepare_custom_config)
    if conf.standalone_module_names or conf.standalone_module_classes:
        raise ValueError("`prepare_custom_config`: qlearn's prepare_fx does not support "
                         "standalone modules (set_standalone_module_name / _class); "
                         "prepare the submodule with its own prepare_fx call instead")
    custom = conf.float_to_observed_mapping.get(QuantType.STATIC, {})
    gm = _trace(model, conf.non_traceable_module_names,
                [*conf.non_traceable_module_classes, *custom])
    fuse_graph_module(gm, is_qat=is_qat)
    assign_qconfigs(gm, qmap)
    if is_qat:
        swap_qat_modules(gm)
    _swap_custom_modules(gm, custom)
    insert_observers(gm)
    gm._qconfig_mapping = qmap
    gm._prepare_custom_config = conf
    return _preserve(model, gm, conf.preserved_attributes)


def _swap_custom_modules(gm, float_to_observed):
    """Replace each custom float module that has a qconfig by
    ``observed_class.from_float(mod)`` and mark its node, so its input and output are
    observed as a quantized module's are."""
    if not float_to_observed:
        return
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.meta.get("qconfig") is None:
            continue
        cls = float_to_observed.get(type(modules[node.target]))
        if cls is not None:
            mod = modules[node.target]
            mod.qconfig = node.meta["qconfig"]
            observed = cls.from_float(mod)
            observed.qconfig = node.meta["qconfig"]
            gm.add_submodule(node.target, observed)
            node.meta["custom_module"] = True


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
    prepare_custom_config : PrepareCustomConfig or dict, optional
        Non-traceable modules (recorded as one float node), custom modules (swapped to
        their observed class), quantized graph inputs / outputs and preserved
        attributes (see :mod:`qlearn.quantization.fx.custom_config`).
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


def _check_convert_args(who, prepared_by, graph_module, qconfig_mapping, backend_config):
    """The checks ``convert_fx`` and ``convert_to_reference_fx`` share: a prepared
    ``graph_module`` (one with observer nodes) and no mapping or backend config."""
    if not isinstance(graph_module, GraphModule) or not any(
            n.meta.get("fx_kind") for n in graph_module.graph.nodes):
        raise TypeError(f"`graph_module` must be the GraphModule returned by {prepared_by}, "
                        f"got {type(graph_module).__name__}")
    for name, value in (("qconfig_mapping", qconfig_mapping),
                        ("backend_config", backend_config)):
        if value is not None:
            raise ValueError(f"`{name}` is not supported by qlearn's {who}; pass None")


def convert_fx(graph_module, convert_custom_config=None, _remove_qconfig=True,
               qconfig_mapping=None, backend_config=None, keep_original_weights=False):
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
    convert_custom_config : ConvertCustomConfig or dict, optional
        The quantized classes of observed custom modules and the preserved attributes.
    qconfig_mapping, backend_config : None
        Accepted for PyTorch compatibility; only None is supported.
    keep_original_weights : bool
        Only False (PyTorch's default) is supported.

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
    _check_convert_args("convert_fx", "prepare_fx or prepare_qat_fx", graph_module,
                        qconfig_mapping, backend_config)
    if keep_original_weights:
        raise ValueError("`keep_original_weights=True` is not supported by qlearn's "
                         "convert_fx; pass False")
    conf = _convert_config(convert_custom_config)
    prep = getattr(graph_module, "_prepare_custom_config", None) or PrepareCustomConfig()
    gm = copy.deepcopy(graph_module)
    gm.eval()
    gm = convert_graph_module(
        gm, conf.observed_to_quantized_mapping.get(QuantType.STATIC, {}),
        prep.input_quantized_indexes, prep.output_quantized_indexes)
    return _preserve(graph_module, gm, conf.preserved_attributes)


def convert_to_reference_fx(graph_module, convert_custom_config=None, _remove_qconfig=True,
                            qconfig_mapping=None, backend_config=None):
    r"""Convert a prepared and calibrated graph module to a *reference* quantized model
    (the argument is copied, not changed).

    Every observer becomes ``quantize_per_tensor`` followed by ``dequantize`` with the
    observed :math:`(S, Z)`, and every ``Linear`` / ``Conv2d`` (alone or first in a
    fused container) its :mod:`qlearn.nn.quantized.reference` twin, whose weight is
    quantized and dequantized in forward: the model runs in float and rounds exactly
    where the int8 model does (:mod:`qlearn.quantization.fx.convert_reference`).

    Parameters
    ----------
    graph_module : GraphModule
        From :func:`prepare_fx` (post-training, static).
    convert_custom_config : ConvertCustomConfig or dict, optional
        Its preserved attributes are kept (custom modules stay as they are).
    qconfig_mapping, backend_config : None

    Returns
    -------
    GraphModule

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization import quantize_fx
    >>> m = nn.Sequential(nn.Linear(4, 4)).eval()
    >>> p = quantize_fx.prepare_fx(m, {"": tq.get_default_qconfig("x86")})
    >>> _ = p(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    >>> ref = quantize_fx.convert_to_reference_fx(p)
    >>> [n.name for n in ref.graph.nodes if n.op in ("call_function", "call_module")]
    ['quantize_per_tensor_0', 'dequantize_0', '_0', 'quantize_per_tensor_1', 'dequantize_1']
    >>> getattr(ref, "0")
    QuantizedLinear(Reference)(in_features=4, out_features=4, bias=True)
    """
    _check_convert_args("convert_to_reference_fx", "prepare_fx", graph_module,
                        qconfig_mapping, backend_config)
    conf = _convert_config(convert_custom_config)
    gm = copy.deepcopy(graph_module)
    gm.eval()
    gm = convert_reference_graph_module(gm, _remove_qconfig)
    return _preserve(graph_module, gm, conf.preserved_attributes)
