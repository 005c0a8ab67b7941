r"""The eager workflow: ``prepare`` -> calibrate (or train) -> ``convert``.

The nouns come first (observers, fake quantize, qconfig, the mappings of
:mod:`~qlearn.quantization.quantization_mappings`); these functions are the verbs,
with PyTorch's names, arguments and defaults (``torch.ao.quantization.quantize``):

1. :func:`propagate_qconfig_` gives every module a ``qconfig``: its own if it has one,
   otherwise the entry for its qualified name or type in ``qconfig_dict``, otherwise its
   parent's.  ``qconfig = None`` keeps a module (and what inherits from it) float.
2. :func:`prepare` attaches to each quantizable leaf an observer, the child
   ``activation_post_process``, which a forward hook runs on the leaf's output.
3. The user runs calibration data through the model (or trains it, for QAT); each
   observer records the range :math:`[\alpha, \beta]` of what it sees.
4. :func:`convert` replaces each leaf by ``mapping[type(leaf)].from_float(leaf)``: the
   weight is quantized with ``qconfig.weight()`` and the output's
   :math:`S = (\beta - \alpha) / (Q_\max - Q_\min)`,
   :math:`Z = Q_\min - \operatorname{round}(\alpha / S)` come from the observer.

``quantize`` chains the three for post-training quantization, ``quantize_dynamic``
swaps ``Linear`` / ``LSTM`` / ``GRU`` for modules that quantize activations per call,
``prepare_qat`` / ``quantize_qat`` do the same with fake quantization during training.

What qlearn adds to PyTorch's behaviour: errors instead of silently wrong models.  A
converted model checks what reaches each module (a float array at an int8 module, a
QTensor at a float one) and names the module by its qualified name; a module run twice
in one forward pass during calibration, an observer that saw no data and an observed
module with no quantized class are reported at the step that can fix them.
"""
import copy
import warnings

import numpy as np

from ..dtypes import QDType, qint8
from ..nn import quantized as nnq
from ..nn.intrinsic import _FusedModule
from ..nn.modules.activation import Hardsigmoid, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from ..nn.modules.container import ModuleList, Sequential
from ..nn.modules.flatten import Dropout, Flatten
from ..nn.modules.linear import Identity
from ..nn.modules.module import Module
from ..nn.modules.upsampling import Upsample
from ..nn.quantized.reference.modules.utils import reference_from_float
from ..qtensor import QTensor
from .fake_quantize import (
    FakeQuantizeBase,
    default_fixed_qparams_range_0to1_fake_quant,
    default_fixed_qparams_range_neg1to1_fake_quant,
)
from .observer import ObserverBase
from .qconfig import default_dynamic_qconfig, float16_dynamic_qconfig
from .quantization_mappings import (
    _INCLUDE_QCONFIG_PROPAGATE_LIST,
    _class_name,
    get_default_dynamic_quant_module_mappings,
    get_default_qat_module_mappings,
    get_default_qconfig_propagation_list,
    get_default_static_quant_module_mappings,
    get_default_static_quant_reference_module_mappings,
    no_observer_set,
)
from .stubs import DeQuantStub, QuantStub, QuantWrapper

__all__ = [
    "propagate_qconfig_",
    "add_quant_dequant",
    "prepare",
    "convert",
    "quantize",
    "quantize_dynamic",
    "prepare_qat",
    "quantize_qat",
    "swap_module",
    "get_observer_dict",
    "default_eval_fn",
    "get_default_custom_config_dict",
]


def get_default_custom_config_dict():
    """The custom-module configuration eager ``prepare`` / ``convert`` use when given
    none: ``{"float_to_observed_custom_module_class": {...},
    "observed_to_quantized_custom_module_class": {...}}``.

    PyTorch's maps ``nn.LSTM`` and ``nn.MultiheadAttention`` to its "quantizable"
    (observed) forms and those to statically quantized ones; qlearn has neither
    (its ``nn.LSTM`` is quantized dynamically, :class:`qlearn.nn.quantized.dynamic.LSTM`),
    so both mappings are empty.  A new dict each call.

    >>> import qlearn.quantization as tq
    >>> tq.get_default_custom_config_dict()
    {'float_to_observed_custom_module_class': {}, 'observed_to_quantized_custom_module_class': {}}
    """
    return {"float_to_observed_custom_module_class": {},
            "observed_to_quantized_custom_module_class": {}}


# -- small helpers -------------------------------------------------------------------------
def _where(name, mod):
    """"`features.3` (nnq.Conv2d)" -- how every message names a module."""
    return f"`{name}` ({_class_name(type(mod))})" if name else \
        f"the model ({_class_name(type(mod))})"


def _is_activation_post_process(m):
    return isinstance(m, (ObserverBase, FakeQuantizeBase))


def _is_leaf(m):
    return not m._modules


def _check_module(model, who):
    if not isinstance(model, Module):
        raise TypeError(f"{who}: `model` must be an nn.Module, got {type(model).__name__}")


def _check_qconfig(qconfig, name, mod):
    if qconfig is None:
        return
    if not (hasattr(qconfig, "activation") and hasattr(qconfig, "weight")):
        raise TypeError(f"the qconfig of {_where(name, mod)} must be a QConfig (or None), "
                        f"got {type(qconfig).__name__}")


def _is_float16(dtype):
    if isinstance(dtype, QDType):
        return False
    try:
        return np.dtype(getattr(dtype, "numpy_dtype", dtype)) == np.float16
    except TypeError:
        return False


# -- 1. qconfig ----------------------------------------------------------------------------
def propagate_qconfig_(module, qconfig_dict=None, prepare_custom_config_dict=None):
    r"""Give every module of ``module`` a ``qconfig`` attribute, in place.

    A module keeps the ``qconfig`` it already has; otherwise it takes the entry for its
    qualified name in ``qconfig_dict``, then the entry for its type, then its parent's.
    ``None`` (given or inherited) marks a module to stay float.

    Parameters
    ----------
    module : Module
    qconfig_dict : dict, optional
        Keys are qualified names (``"features.3"``, ``""`` for the whole model) or module
        classes (``nn.Linear``); values are QConfigs or None.
    prepare_custom_config_dict : dict, optional
        ``"non_traceable_module_name"`` / ``"non_traceable_module_class"``: children
        under these names or of these classes get no qconfig from their parent.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    >>> tq.propagate_qconfig_(m, {"": tq.default_qconfig, "1": None})
    >>> m[0].qconfig is tq.default_qconfig, m[1].qconfig
    (True, None)
    """
    _check_module(module, "propagate_qconfig_")
    qconfig_dict = {} if qconfig_dict is None else qconfig_dict
    if not isinstance(qconfig_dict, dict):
        raise TypeError(f"`qconfig_dict` must be a dict of name or class -> QConfig, got "
                        f"{type(qconfig_dict).__name__}")
    custom = prepare_custom_config_dict or {}
    skip_names = set(custom.get("non_traceable_module_name", []))
    skip_types = tuple(custom.get("non_traceable_module_class", []))
    _propagate(module, qconfig_dict, None, "", skip_names, skip_types)


def _propagate(module, qconfig_dict, parent_qconfig, prefix, skip_names, skip_types):
    qconfig = qconfig_dict.get(type(module), parent_qconfig)
    qconfig = qconfig_dict.get(prefix, qconfig)
    qconfig = getattr(module, "qconfig", qconfig)
    _check_qconfig(qconfig, prefix, module)
    module.qconfig = qconfig
    for name, child in module.named_children():
        if name in skip_names or (skip_types and isinstance(child, skip_types)):
            continue
        child_prefix = f"{prefix}.{name}" if prefix else name
        _propagate(child, qconfig_dict, qconfig, child_prefix, skip_names, skip_types)


# -- 2. observers --------------------------------------------------------------------------
def _observer_forward_hook(self, input, output):
    """Run ``self.activation_post_process`` on the module's output (the observer hook
    that ``prepare`` registers and ``convert`` removes)."""
    return self.activation_post_process(output)


class _CallSiteGuard:
    """Counts calls of the guarded modules in one forward pass of the prepared model.

    One observer serves one call site: a ReLU or FloatFunctional called twice per pass
    would record the union of two ranges (and fusion would remove the ReLU at one site
    only).  The root's hooks open and close a pass; calls outside a pass (a submodule
    run on its own) are not checked.
    """

    def __init__(self):
        self.pass_id = 0
        self.active = False


def _guard_begin(self, args):
    self._qlearn_call_guard.pass_id += 1
    self._qlearn_call_guard.active = True


def _guard_end(self, args, output):
    self._qlearn_call_guard.active = False


class _CountCall:
    """Pre-hook on a guarded module (or its observer): raises on a second call in the
    same forward pass; ``name`` and ``owner_type`` name the module in the message."""

    def __init__(self, guard, name, owner_type):
        self.guard, self.name, self.owner_type = guard, name, owner_type
        self.last_pass = -1

    def __call__(self, mod, args):
        g = self.guard
        if not g.active:
            return None
        if self.last_pass == g.pass_id:
            g.active = False          # the pass ends here: the root's end hook won't run
            where = f"`{self.name}` ({_class_name(self.owner_type)})" if self.name else \
                f"the model ({_class_name(self.owner_type)})"
            raise RuntimeError(
                f"{where} was called twice in one forward pass: its one observer would "
                f"record two different ranges (and quantize both call sites with one "
                f"scale). Give each call site its own module (e.g. self.relu1, "
                f"self.relu2, or one FloatFunctional per add)")
        self.last_pass = g.pass_id
        return None


# modules without weights, cheap to duplicate and easy to reuse by mistake (a
# FloatFunctional is guarded through its observer)
_GUARDED_TYPES = (ReLU, ReLU6)


def _static_observed_types():
    """The default ``allow_list`` of ``prepare``: the keys of the static and QAT
    mappings and ``nn.Sequential`` (an ``LSTM`` has no static int8 form, so static
    ``prepare`` gives it no observer)."""
    return (set(get_default_static_quant_module_mappings())
            | set(get_default_qat_module_mappings()) | _INCLUDE_QCONFIG_PROPAGATE_LIST)


#: modules whose output range is fixed by their math: in training mode, prepare gives them
#: a fixed-qparams fake quantizer (PyTorch's ``DEFAULT_MODULE_TO_ACT_POST_PROCESS``)
_FIXED_QPARAMS_FAKE_QUANT = {
    Hardsigmoid: default_fixed_qparams_range_0to1_fake_quant,
    Sigmoid: default_fixed_qparams_range_0to1_fake_quant,
    Softmax: default_fixed_qparams_range_0to1_fake_quant,
    Tanh: default_fixed_qparams_range_neg1to1_fake_quant,
}


def _add_observer_(module, qconfig_propagation_list=None, non_leaf_module_list=None,
                   custom_module_class_mapping=None, _prefix="", _guard=None):
    """Attach ``activation_post_process`` observers (and their hooks) to the leaves of
    ``module`` that have a qconfig and whose type is in ``qconfig_propagation_list``."""
    if qconfig_propagation_list is None:
        qconfig_propagation_list = get_default_qconfig_propagation_list()
    custom_module_class_mapping = custom_module_class_mapping or {}
    skip = no_observer_set()

    def needs_observation(m):
        return getattr(m, "qconfig", None) is not None

    def insert(m, name, observer=None):
        if needs_observation(m) and not isinstance(m, DeQuantStub):
            m.add_module("activation_post_process",
                         (observer or m.qconfig.activation)())
            if _observer_forward_hook not in m._forward_hooks.values():
                m.register_forward_hook(_observer_forward_hook)
            m._qualified_name = name

    def guard(m, target, name):
        if _guard is not None:
            target.register_forward_pre_hook(_CountCall(_guard, name, type(m)))

    for name, child in module.named_children():
        qual = f"{_prefix}.{name}" if _prefix else name
        child._qualified_name = qual
        if type(child) is Dropout:
            continue
        if isinstance(child, (nnq.FloatFunctional, nnq.QFunctional)):
            if needs_observation(child):
                child.activation_post_process = child.qconfig.activation()
                guard(child, child.activation_post_process, qual)
        elif isinstance(child, _FusedModule) or (
                non_leaf_module_list is not None and type(child) in non_leaf_module_list):
            insert(child, qual)
        elif child.training and type(child) in _FIXED_QPARAMS_FAKE_QUANT:
            # QAT: as PyTorch, whatever the qconfig, these get the fake quantizer of their
            # fixed output range (PyTorch's converted models run them on the integers)
            insert(child, qual, _FIXED_QPARAMS_FAKE_QUANT[type(child)])
        elif needs_observation(child) and type(child) in custom_module_class_mapping:
            observed = custom_module_class_mapping[type(child)].from_float(child)
            if getattr(observed, "qconfig", None) is None:
                observed.qconfig = child.qconfig
            setattr(module, name, observed)
            insert(observed, qual)
        else:
            _add_observer_(child, qconfig_propagation_list, non_leaf_module_list,
                           custom_module_class_mapping, qual, _guard)
        if needs_observation(child) and isinstance(child, _GUARDED_TYPES):
            guard(child, child, qual)

    listed = type(module) in qconfig_propagation_list and not isinstance(module, Sequential)
    leaf = _is_leaf(module) and type(module) not in skip
    qat = hasattr(module, "weight_fake_quant") and "activation_post_process" not in \
        module._modules
    if listed and (leaf or qat):
        insert(module, _prefix)


def add_quant_dequant(module):
    """Wrap every leaf of ``module`` that has a qconfig in a :class:`QuantWrapper`
    (a QuantStub before it, a DeQuantStub after), in place; returns ``module`` (or
    the wrapper, when ``module`` itself is such a leaf).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(nn.Linear(2, 2))
    >>> m[0].qconfig = tq.default_qconfig
    >>> type(tq.add_quant_dequant(m)[0]).__name__
    'QuantWrapper'
    """
    _check_module(module, "add_quant_dequant")
    if _is_leaf(module) and getattr(module, "qconfig", None):
        return QuantWrapper(module)
    for name, child in list(module.named_children()):
        module._modules[name] = add_quant_dequant(child)
    return module


def prepare(model, inplace=False, allow_list=None, observer_non_leaf_module_list=None,
            prepare_custom_config_dict=None):
    r"""Attach observers to ``model`` for calibration (post-training static quantization).

    The qconfig is propagated (:func:`propagate_qconfig_`, from ``model.qconfig`` and the
    children's own), then every quantizable leaf with a qconfig gets the child
    ``activation_post_process = qconfig.activation()`` and a forward hook that runs it
    on the leaf's output.  ``FloatFunctional`` modules get their observer in place of
    their identity ``activation_post_process``; fused modules (``nni.ConvReLU2d``, ...)
    are observed as one block.

    Parameters
    ----------
    model : Module
        The float model, with ``model.qconfig`` (or its children's) set.
    inplace : bool
        Modify ``model`` itself; by default a deep copy is prepared and ``model`` is
        left untouched.
    allow_list : set of classes, optional
        The leaf classes to observe (default: the keys of the static and QAT mappings).
    observer_non_leaf_module_list : set of classes, optional
        Non-leaf classes to observe as one block.
    prepare_custom_config_dict : dict, optional
        ``"float_to_observed_custom_module_class"``: ``{float class: observed class}``,
        the observed class built by its ``from_float``.

    Returns
    -------
    Module
        The prepared model.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 2), tq.DeQuantStub())
    >>> m.qconfig = tq.default_qconfig
    >>> p = tq.prepare(m)
    >>> type(p[1].activation_post_process).__name__, hasattr(m[1], "qconfig")
    ('MinMaxObserver', False)
    """
    _check_module(model, "prepare")
    custom = (prepare_custom_config_dict or {}).get("float_to_observed_custom_module_class",
                                                    {})
    if not inplace:
        model = copy.deepcopy(model)
    if allow_list is None:
        allow_list = _static_observed_types()
    propagate_qconfig_(model, qconfig_dict=None)
    if not any(getattr(m, "qconfig", None) for m in model.modules()):
        warnings.warn("prepare: no module has a qconfig, so nothing will be observed; set "
                      "`model.qconfig` (or a child's) first", stacklevel=2)
    guard = getattr(model, "_qlearn_call_guard", None)
    if guard is None:
        guard = _CallSiteGuard()
        model._qlearn_call_guard = guard
        model.register_forward_pre_hook(_guard_begin)
        model.register_forward_hook(_guard_end)
    _add_observer_(model, allow_list, observer_non_leaf_module_list, custom, "", guard)
    return model


# -- 4. convert ----------------------------------------------------------------------------
def _observer_has_data(obs):
    """False for an observer (or a fake quantizer's observer) that has seen nothing."""
    inner = getattr(obs, "activation_post_process", obs) \
        if isinstance(obs, FakeQuantizeBase) else obs
    mv = getattr(inner, "min_val", None)
    if mv is None or not isinstance(mv, np.ndarray):
        return True
    return mv.size > 0 and not np.isposinf(mv).any()


def _remove_hooks(module):
    for hooks in (module._forward_pre_hooks, module._forward_hooks):
        for key in [k for k, h in hooks.items()
                    if h in (_observer_forward_hook, _guard_begin, _guard_end)
                    or isinstance(h, (_CountCall, _InputCheck))]:
            del hooks[key]


def _remove_qconfig(module):
    """Delete the qconfig, the observers and the workflow's hooks, recursively."""
    for child in module.children():
        _remove_qconfig(child)
    module.__dict__.pop("qconfig", None)
    module.__dict__.pop("_qlearn_call_guard", None)
    # (a FakeQuantize keeps its own observer, a FloatFunctional its identity)
    if _is_activation_post_process(getattr(module, "activation_post_process", None)) \
            and not isinstance(module, (nnq.FloatFunctional, nnq.QFunctional,
                                        FakeQuantizeBase)):
        del module._modules["activation_post_process"]
    _remove_hooks(module)


def _swap(mod, mapping, custom_module_class_mapping, name, keep_unmapped=False):
    if getattr(mod, "qconfig", None) is None:
        return mod
    cls = custom_module_class_mapping.get(type(mod))
    if cls is not None:
        new = cls.from_observed(mod)
    elif getattr(mapping.get(type(mod)), "_IS_REFERENCE", False):
        # a reference module: the weight's qparams from a fresh qconfig.weight()
        new = reference_from_float(mapping[type(mod)], mod)
    else:
        cls = mapping.get(type(mod))
        if cls is None:
            # (nn.Hardsigmoid, observed in QAT, runs on the integers once converted)
            if not keep_unmapped and _observer_forward_hook in mod._forward_hooks.values() \
                    and _is_leaf_ignoring_observer(mod) and type(mod) is not Hardsigmoid:
                raise ValueError(
                    f"{_where(name, mod)} was observed but has no entry in the mapping: "
                    f"add `{_class_name(type(mod))}: <quantized class>` to `mapping`, or "
                    f"set `qconfig = None` on it to keep it float (with a DeQuantStub "
                    f"before and a QuantStub after it)")
            return mod
        obs = getattr(mod, "activation_post_process", None)
        if isinstance(mod, nnq.FloatFunctional) and obs is not None \
                and not _observer_has_data(obs):
            # a FloatFunctional never called: torchvision's quantizable MobileNetV2 gives
            # every inverted residual one and uses it only in those with a skip; PyTorch
            # converts it with the empty observer's default qparams (1.0, 0), unused
            warnings.warn(f"{_where(name, mod)} was never called during calibration; its "
                          f"QFunctional gets the default scale 1.0 and zero point 0",
                          UserWarning, stacklevel=4)
        elif obs is not None and _is_activation_post_process(obs) \
                and not _observer_has_data(obs):
            raise RuntimeError(
                f"{_where(name, mod)}: its observer {type(obs).__name__} saw no data; "
                f"run calibration data through the prepared model (every branch that "
                f"should be quantized) before convert")
        new = cls.from_float(mod)
    for hook in mod._forward_pre_hooks.values():
        if not isinstance(hook, (_CountCall, _InputCheck)):
            new.register_forward_pre_hook(hook)
    for hook in mod._forward_hooks.values():
        if hook is not _observer_forward_hook:
            new.register_forward_hook(hook)
    new._qualified_name = name
    return new


def _is_leaf_ignoring_observer(mod):
    return all(k == "activation_post_process" for k in mod._modules)


def swap_module(mod, mapping, custom_module_class_mapping=None,
                use_precomputed_fake_quant=False):
    """``mapping[type(mod)].from_float(mod)`` when ``mod`` has a qconfig and its type is
    a key of ``mapping``; ``mod`` itself otherwise.  The new module keeps ``mod``'s
    hooks, except the observer hook.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> lin = nn.Linear(4, 2)
    >>> lin.qconfig = tq.default_dynamic_qconfig
    >>> type(tq.swap_module(lin, tq.get_default_dynamic_quant_module_mappings()))
    <class 'qlearn.nn.quantized.dynamic.modules.linear.Linear'>
    """
    return _swap(mod, mapping, custom_module_class_mapping or {},
                 getattr(mod, "_qualified_name", ""))


def _convert(module, mapping, custom, prefix, keep_unmapped=False):
    reassign = {}
    for name, child in module.named_children():
        qual = f"{prefix}.{name}" if prefix else name
        if not isinstance(child, _FusedModule) and type(child) not in custom:
            _convert(child, mapping, custom, qual, keep_unmapped)
        reassign[name] = _swap(child, mapping, custom, qual, keep_unmapped)
    for key, value in reassign.items():
        module._modules[key] = value
    return module


class _InputCheck:
    """Pre-hook of a converted model: the input of an int8 module must be a QTensor,
    the input of a float module must not be one."""

    def __init__(self, name, want_quantized):
        self.name, self.want_quantized = name, want_quantized

    def __call__(self, mod, args):
        if not args:
            return None
        x = args[0]
        if self.want_quantized and not isinstance(x, QTensor):
            what = "a float array" if isinstance(x, np.ndarray) or hasattr(x, "data") \
                else f"a {type(x).__name__}"
            raise TypeError(f"{_where(self.name, mod)} got {what}: add a QuantStub before "
                            f"it (it computes on quint8 QTensors)")
        if not self.want_quantized and isinstance(x, QTensor):
            raise TypeError(f"{_where(self.name, mod)} got a QTensor: add a DeQuantStub "
                            f"before it (it computes in float)")
        return None


# float modules that pass a QTensor through (or hold no computation of their own);
# nn.Upsample resizes a QTensor on its integers, nn.Hardsigmoid computes the quantized
# hard sigmoid, as PyTorch's float modules do (MobileNetV3's squeeze-excite relies on it)
_PASSTHROUGH = (Identity, Flatten, Dropout, Sequential, ModuleList, QuantStub, DeQuantStub,
                Upsample, Hardsigmoid)


def _add_input_checks(model, mapping):
    quantized = set(get_default_static_quant_module_mappings().values()) \
        | set(mapping.values())
    quantized -= {nnq.Quantize, nnq.QFunctional, nnq.FloatFunctional}
    quantized -= {nnq.Embedding, nnq.EmbeddingBag}   # weight-only: integer indices in
    # reference modules take float arrays and QTensors (which they dequantize), so the
    # DeQuantize after one may get either
    if any(getattr(c, "_IS_REFERENCE", False) for c in mapping.values()):
        quantized = {c for c in quantized if not getattr(c, "_IS_REFERENCE", False)}
        quantized.discard(nnq.DeQuantize)
    dynamic = set(get_default_dynamic_quant_module_mappings().values())
    for name, m in model.named_modules():
        if any(isinstance(h, _InputCheck) for h in m._forward_pre_hooks.values()):
            continue
        t = type(m)
        if t in dynamic:
            m.register_forward_pre_hook(_InputCheck(name, False))
        elif t in quantized and t not in dynamic:
            m.register_forward_pre_hook(_InputCheck(name, True))
        elif t.__module__.startswith("qlearn.nn.modules.") and not m._modules \
                and not isinstance(m, _PASSTHROUGH):
            m.register_forward_pre_hook(_InputCheck(name, False))


def convert(module, mapping=None, inplace=False, remove_qconfig=True, is_reference=False,
            convert_custom_config_dict=None, use_precomputed_fake_quant=False):
    r"""Replace each observed (or QAT) module by its quantized class from ``mapping``.

    Every child whose exact type is a key of ``mapping`` and that has a qconfig becomes
    ``mapping[type(child)].from_float(child)``: the weight is quantized with
    ``qconfig.weight()``, the output's scale and zero point come from the child's
    observer.  Fused float modules are swapped as one block.  Afterwards the qconfigs,
    observers and hooks of the workflow are removed (``remove_qconfig``), and each int8
    module of the result checks that it gets a QTensor (each float one that it does
    not), naming itself by its qualified name.

    Parameters
    ----------
    module : Module
        A prepared and calibrated (or QAT-trained) model.
    mapping : dict, optional
        ``{float class: quantized class}``; default
        :func:`~qlearn.quantization.quantization_mappings.get_default_static_quant_module_mappings`.
    inplace : bool
        Modify ``module``; by default a deep copy is converted.
    remove_qconfig : bool
        Remove ``qconfig`` attributes and observers after the swap.
    is_reference : bool
        Build reference modules, as PyTorch's: the default ``mapping`` becomes
        :func:`~qlearn.quantization.quantization_mappings.get_default_static_quant_reference_module_mappings`
        (``nn.Linear`` -> ``nnqr.Linear``, the convolutions, the embeddings; the stubs
        -> ``Quantize`` / ``DeQuantize``), each built by ``from_float(mod,
        weight_qparams)`` with the qparams of a fresh ``qconfig.weight()`` run over its
        weight; observed layers without a reference class stay float.  The reference
        modules dequantize a QTensor input, so the model runs (PyTorch's refuses the
        quantized input; graph mode's
        :func:`~qlearn.quantization.quantize_fx.convert_to_reference_fx` also
        quantizes and dequantizes every activation).
    convert_custom_config_dict : dict, optional
        ``"observed_to_quantized_custom_module_class"``: ``{observed class: quantized
        class}``, built by the quantized class's ``from_observed``.
    use_precomputed_fake_quant : bool
        Accepted for PyTorch's signature; has no effect.

    Returns
    -------
    Module

    Raises
    ------
    RuntimeError
        An observer saw no data (convert before calibration).
    ValueError
        An observed leaf's type has no entry in ``mapping``.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 2), tq.DeQuantStub())
    >>> m.qconfig = tq.default_qconfig
    >>> p = tq.prepare(m)
    >>> _ = p(np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))
    >>> q = tq.convert(p)
    >>> [type(c).__name__ for c in q]
    ['Quantize', 'Linear', 'DeQuantize']
    >>> q[1].weight().element_size()
    1
    """
    _check_module(module, "convert")
    if mapping is None:
        mapping = (get_default_static_quant_reference_module_mappings() if is_reference
                   else get_default_static_quant_module_mappings())
    _check_mapping(mapping, "convert")
    custom = (convert_custom_config_dict or {}).get(
        "observed_to_quantized_custom_module_class", {})
    if not inplace:
        module = copy.deepcopy(module)
    _convert(module, mapping, custom, "", keep_unmapped=bool(is_reference))
    if remove_qconfig:
        _remove_qconfig(module)
        _add_input_checks(module, mapping)
    return module


def _check_mapping(mapping, who):
    if not isinstance(mapping, dict):
        raise TypeError(f"{who}: `mapping` must be a dict from float module classes to "
                        f"quantized ones (or None), got {type(mapping).__name__}")


# -- the one-call forms ----------------------------------------------------------------------
def quantize(model, run_fn, run_args, mapping=None, inplace=False):
    """Post-training static quantization in one call: ``model.eval()``, :func:`prepare`,
    ``run_fn(model, *run_args)`` (calibration), :func:`convert`.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = tq.QuantWrapper(nn.Linear(4, 2)); m.qconfig = tq.default_qconfig
    >>> data = [np.ones((2, 4), np.float32)]
    >>> q = tq.quantize(m, tq.default_eval_fn, [data])
    >>> type(q.module).__name__, type(m.module).__name__
    ('Linear', 'Linear')
    >>> q(data[0]).shape
    (2, 2)
    """
    _check_module(model, "quantize")
    if not callable(run_fn):
        raise TypeError(f"`run_fn` must be callable, got {type(run_fn).__name__}")
    if mapping is None:
        mapping = get_default_static_quant_module_mappings()
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, mapping, inplace=True)
    return model


def _dynamic_default_qconfig(dtype):
    if dtype is qint8:
        return default_dynamic_qconfig
    if _is_float16(dtype):
        return float16_dynamic_qconfig
    raise ValueError(f"quantize_dynamic: `dtype` must be qlearn.qint8 or qlearn.float16, "
                     f"got {dtype!r}")


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False):
    r"""Dynamic quantization: int8 (or float16) weights now, activations quantized from
    their own range on every call.

    Each ``Linear`` / ``LSTM`` / ``GRU`` selected by ``qconfig_spec`` is replaced by
    its :mod:`qlearn.nn.quantized.dynamic` twin; inputs and outputs stay float.  For
    qint8 each call quantizes the input with
    :math:`S_x = (\max(x, 0) - \min(x, 0)) / 127`, multiplies in int8 with int32
    accumulation and returns :math:`y = S_x S_w \sum (x_q - Z_x)(w_q - Z_w) + b`.  For
    float16 the weights are rounded to float16 and the products computed in float32.

    Parameters
    ----------
    model : Module
    qconfig_spec : set, dict or None
        A set of module classes (each gets the default dynamic qconfig of ``dtype``), or
        a dict of class or qualified name -> QConfig (``{"": qconfig}`` for every
        module), or None for ``{nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.RNNCell,
        nn.GRUCell}``.
    dtype : QDType or DType
        ``qlearn.qint8`` (default) or ``qlearn.float16`` (used with a set or None).
    mapping : dict, optional
        Default: :func:`get_default_dynamic_quant_module_mappings()
        <qlearn.quantization.quantization_mappings.get_default_dynamic_quant_module_mappings>`.
    inplace : bool
        Modify ``model``; by default a deep copy is quantized.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LSTM(8, 3))
    >>> q = tq.quantize_dynamic(m, {nn.Linear, nn.LSTM}, dtype=ql.qint8)
    >>> [type(c).__name__ for c in q]
    ['Linear', 'ReLU', 'LSTM']
    >>> q[0].weight().dtype, q[0](np.ones((1, 4), np.float32)).dtype
    (qlearn.qint8, dtype('float32'))
    """
    _check_module(model, "quantize_dynamic")
    if mapping is None:
        mapping = get_default_dynamic_quant_module_mappings()
    _check_mapping(mapping, "quantize_dynamic")
    from ..nn.modules.linear import Linear
    from ..nn.modules.rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell
    if qconfig_spec is None:
        default = _dynamic_default_qconfig(dtype)
        qconfig_spec = dict.fromkeys((Linear, LSTM, GRU, LSTMCell, RNNCell, GRUCell), default)
    elif isinstance(qconfig_spec, (set, frozenset, list, tuple)):
        default = _dynamic_default_qconfig(dtype)
        for t in qconfig_spec:
            if not isinstance(t, type):
                raise TypeError(f"`qconfig_spec` as a set holds module classes, got "
                                f"{t!r}; use a dict to give qconfigs by name")
        qconfig_spec = dict.fromkeys(qconfig_spec, default)
    elif not isinstance(qconfig_spec, dict):
        raise TypeError(f"`qconfig_spec` must be a set of module classes, a dict or None, "
                        f"got {type(qconfig_spec).__name__}")
    for key in qconfig_spec:
        if isinstance(key, type) and key not in mapping:
            raise ValueError(f"`qconfig_spec` names {_class_name(key)}, which has no "
                             f"dynamically quantized module; the mapping has "
                             f"{sorted(_class_name(k) for k in mapping)}")
        if not isinstance(key, (type, str)):
            raise TypeError(f"`qconfig_spec` keys must be module classes or qualified "
                            f"names, got {key!r}")
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    propagate_qconfig_(model, qconfig_spec)
    convert(model, mapping, inplace=True)
    return model


def prepare_qat(model, mapping=None, inplace=False):
    r"""Prepare a model for quantization-aware training.

    The model must be in training mode.  Its modules are swapped through the QAT
    mapping (``nn.Linear`` -> ``nnqat.Linear``, ``nni.ConvBnReLU2d`` ->
    ``nniqat.ConvBnReLU2d``, ...: each fake-quantizes its weight with
    ``qconfig.weight()`` in forward), then :func:`prepare` attaches
    ``qconfig.activation()`` (a FakeQuantize for a QAT qconfig) to each output.

    Parameters
    ----------
    model : Module
        A float model in training mode with ``qconfig`` set.
    mapping : dict, optional
        Default :func:`~qlearn.quantization.quantization_mappings.get_default_qat_module_mappings`.
    inplace : bool

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 2), tq.DeQuantStub())
    >>> m.qconfig = tq.get_default_qat_qconfig("x86")
    >>> p = tq.prepare_qat(m)
    >>> type(p[1]).__module__, type(p[1].activation_post_process).__name__
    ('qlearn.nn.qat.modules.linear', 'FusedMovingAvgObsFakeQuantize')
    """
    _check_module(model, "prepare_qat")
    if not model.training:
        raise ValueError("prepare_qat: the model must be in training mode; call "
                         "model.train() first (use prepare for a model in eval mode)")
    if mapping is None:
        mapping = get_default_qat_module_mappings()
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model, qconfig_dict=None)
    _convert(model, mapping, {}, "")
    prepare(model, observer_non_leaf_module_list=set(mapping.values()), inplace=True)
    return model


def quantize_qat(model, run_fn, run_args, inplace=False):
    """Quantization-aware training in one call: ``model.train()``, :func:`prepare_qat`,
    ``run_fn(model, *run_args)`` (the training loop), :func:`convert`.

    ``run_fn`` should put the model in eval mode when it is done, as PyTorch's
    tutorials do; convert then reads the fake quantizers' parameters.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = tq.QuantWrapper(nn.Linear(4, 2)); m.qconfig = tq.get_default_qat_qconfig()
    >>> def train(model, batches):
    ...     opt = ql.optim.SGD(model.parameters(), lr=0.1)
    ...     for x in batches:
    ...         loss = (model(x) ** 2).mean()
    ...         opt.zero_grad(); loss.backward(); opt.step()
    ...     model.eval()
    >>> q = tq.quantize_qat(m, train, [[np.ones((3, 4), np.float32)] * 2])
    >>> type(q.module).__module__, q(np.ones((3, 4), np.float32)).shape
    ('qlearn.nn.quantized.modules.linear', (3, 2))
    """
    _check_module(model, "quantize_qat")
    if not callable(run_fn):
        raise TypeError(f"`run_fn` must be callable, got {type(run_fn).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, inplace=True)
    return model


# -- utilities ---------------------------------------------------------------------------------
def get_observer_dict(mod, target_dict, prefix=""):
    """Fill ``target_dict`` with ``{qualified name of each activation_post_process:
    observer}``, in place (PyTorch's ``_get_observer_dict``).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> m = tq.QuantWrapper(nn.Linear(2, 2)); m.qconfig = tq.default_qconfig
    >>> d = {}; tq.get_observer_dict(tq.prepare(m), d); sorted(d)
    ['module.activation_post_process', 'quant.activation_post_process']
    """
    pre = prefix + "." if prefix else ""
    obs = getattr(mod, "activation_post_process", None)
    if obs is not None and _is_activation_post_process(obs):
        target_dict[pre + "activation_post_process"] = obs
    for name, child in mod.named_children():
        if name == "activation_post_process":
            continue
        get_observer_dict(child, target_dict, pre + name)


def default_eval_fn(model, calib_data):
    """Run ``model`` on each item of ``calib_data`` (the ``run_fn`` of
    :func:`quantize`): an item is an input, or an ``(input, target)`` pair whose target
    is ignored.

    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> tq.default_eval_fn(nn.Linear(2, 2), [(np.ones((1, 2), np.float32), 0)])
    """
    for item in calib_data:
        x = item[0] if isinstance(item, tuple) else item
        model(x)
