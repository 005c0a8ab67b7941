"""``QConfigMapping``: which qconfig each part of a model gets in graph mode.

Graph-mode quantization (:func:`~qlearn.quantization.quantize_fx.prepare_fx`) asks the
mapping for the qconfig of every node.  Five kinds of entries, from the weakest to the
strongest (a stronger one that matches wins, as in PyTorch):

1. the global qconfig (:meth:`QConfigMapping.set_global`);
2. an object type: a module class, a function (``operator.add``, ``F.relu``) or a method
   name (``"reshape"``) (:meth:`~QConfigMapping.set_object_type`);
3. a regular expression matched against the module's qualified name, first match wins
   (:meth:`~QConfigMapping.set_module_name_regex`);
4. a qualified module name; a module without an entry inherits its closest named
   ancestor's (:meth:`~QConfigMapping.set_module_name`);
5. the n-th call of an object type inside a named module
   (:meth:`~QConfigMapping.set_module_name_object_type_order`).

A qconfig of ``None`` keeps the matching nodes in float.  The dictionary form older
tutorials use, ``{"": qconfig, "object_type": [(type, qconfig)], "module_name":
[(name, qconfig)], ...}``, converts both ways (:meth:`~QConfigMapping.from_dict`,
:meth:`~QConfigMapping.to_dict`); ``prepare_fx`` accepts either.
"""
import re
from collections import OrderedDict

from .. import nn
from ..nn import functional as F
from ..nn.modules.activation import Hardsigmoid, Sigmoid, Softmax, Tanh
from .fake_quantize import FixedQParamsFakeQuantize, default_weight_fake_quant
from .observer import (
    default_fixed_qparams_range_0to1_observer,
    default_fixed_qparams_range_neg1to1_observer,
    default_placeholder_observer,
    default_weight_observer,
)
from .qconfig import (
    QConfig,
    default_quint8_weight_qconfig,
    default_reuse_input_qconfig,
    get_default_qat_qconfig,
)
from .qconfig import get_default_qconfig as _get_default_qconfig

__all__ = ["QConfigMapping", "get_default_qconfig_mapping", "get_default_qat_qconfig_mapping"]

_GLOBAL_DICT_KEY = ""
_OBJECT_TYPE_DICT_KEY = "object_type"
_MODULE_NAME_REGEX_DICT_KEY = "module_name_regex"
_MODULE_NAME_DICT_KEY = "module_name"
_MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY = "module_name_object_type_order"
_DICT_KEYS = (_GLOBAL_DICT_KEY, _OBJECT_TYPE_DICT_KEY, _MODULE_NAME_REGEX_DICT_KEY,
              _MODULE_NAME_DICT_KEY, _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY)
_STYLES = ("global_qconfig", "object_type_qconfigs", "module_name_regex_qconfigs",
           "module_name_qconfigs", "module_name_object_type_order_qconfigs")


def _check_qconfig(qconfig, who):
    if qconfig is not None and not isinstance(qconfig, QConfig):
        raise TypeError(f"{who}: `qconfig` must be a QConfig or None, got "
                        f"{type(qconfig).__name__}")
    return qconfig


def _parent_name(name):
    return name.rsplit(".", 1)[0] if "." in name else ""


class QConfigMapping:
    """Qconfigs for the global default, object types, module names and regexes
    (``torch.ao.quantization.QConfigMapping``).

    Each ``set_*`` method returns the mapping, so calls chain.

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.quantization as tq
    >>> from qlearn.quantization import QConfigMapping
    >>> qm = (QConfigMapping().set_global(tq.default_qconfig)
    ...       .set_object_type(nn.Linear, tq.default_per_channel_qconfig)
    ...       .set_module_name("head", None))
    >>> qm.qconfig_for_module("head.fc", nn.Linear) is None
    True
    >>> qm.qconfig_for_module("body.fc", nn.Linear) is tq.default_per_channel_qconfig
    True
    >>> dict(QConfigMapping.from_dict(qm.to_dict()).module_name_qconfigs)
    {'head': None}
    """

    def __init__(self):
        self.global_qconfig = None
        self.object_type_qconfigs = OrderedDict()
        self.module_name_regex_qconfigs = OrderedDict()
        self.module_name_qconfigs = OrderedDict()
        self.module_name_object_type_order_qconfigs = OrderedDict()

    # -- setting --------------------------------------------------------------------------
    def set_global(self, global_qconfig):
        """The qconfig of everything no other entry matches."""
        self.global_qconfig = _check_qconfig(global_qconfig, "set_global")
        return self

    def set_object_type(self, object_type, qconfig):
        """The qconfig of a module class, a function, or a method name (a str)."""
        if not (callable(object_type) or isinstance(object_type, str)):
            raise TypeError(f"set_object_type: `object_type` must be a module class, a "
                            f"function or a method name, got {object_type!r}")
        self.object_type_qconfigs[object_type] = _check_qconfig(qconfig, "set_object_type")
        return self

    def set_module_name_regex(self, module_name_regex, qconfig):
        """The qconfig of the modules whose qualified name matches ``module_name_regex``
        (``re.match``; regexes are tried in the order they were first set)."""
        if not isinstance(module_name_regex, str):
            raise TypeError(f"set_module_name_regex: `module_name_regex` must be a str, "
                            f"got {type(module_name_regex).__name__}")
        try:
            re.compile(module_name_regex)
        except re.error as e:
            raise ValueError(f"set_module_name_regex: `module_name_regex` "
                             f"{module_name_regex!r} is not a valid regex ({e})") from None
        self.module_name_regex_qconfigs[module_name_regex] = _check_qconfig(
            qconfig, "set_module_name_regex")
        return self

    def set_module_name(self, module_name, qconfig):
        """The qconfig of the module at qualified name ``module_name`` and of everything
        inside it without an entry of its own."""
        if not isinstance(module_name, str):
            raise TypeError(f"set_module_name: `module_name` must be a str, got "
                            f"{type(module_name).__name__}")
        self.module_name_qconfigs[module_name] = _check_qconfig(qconfig, "set_module_name")
        return self

    def set_module_name_object_type_order(self, module_name, object_type, index, qconfig):
        """The qconfig of the ``index``-th call (from 0) of ``object_type`` made by the
        ``forward`` of the module ``module_name``."""
        if not isinstance(index, int) or index < 0:
            raise ValueError(f"set_module_name_object_type_order: `index` must be an int "
                             f">= 0, got {index!r}")
        self.module_name_object_type_order_qconfigs[(module_name, object_type, index)] = \
            _check_qconfig(qconfig, "set_module_name_object_type_order")
        return self

    # -- looking up (what prepare_fx asks) ------------------------------------------------
    def _module_qconfig(self, module_type, module_name, fallback):
        qconfig = self.object_type_qconfigs.get(module_type, fallback)
        for regex, q in self.module_name_regex_qconfigs.items():
            if re.match(regex, module_name):
                qconfig = q
                break
        name = module_name
        while name:
            if name in self.module_name_qconfigs:
                return self.module_name_qconfigs[name]
            name = _parent_name(name)
        return qconfig

    def qconfig_for_module(self, module_name, module_type):
        """The qconfig of the module ``module_name`` of class ``module_type``: its name,
        else a matching regex, else its type, else the nearest named ancestor's...
        with the precedence listed in the module docstring."""
        return self._module_qconfig(module_type, module_name, self.global_qconfig)

    def qconfig_for_call(self, object_type, scope_name, scope_type, index=None):
        """The qconfig of a function or method call ``object_type`` recorded in the
        ``forward`` of module ``scope_name`` (of class ``scope_type``); ``index`` counts
        the earlier calls of ``object_type`` there."""
        qconfig = self.object_type_qconfigs.get(object_type, self.global_qconfig)
        qconfig = self._module_qconfig(scope_type, scope_name, qconfig)
        if index is not None:
            qconfig = self.module_name_object_type_order_qconfigs.get(
                (scope_name, object_type, index), qconfig)
        return qconfig

    # -- the dict form --------------------------------------------------------------------
    def to_dict(self):
        """The dictionary form: ``{"": global, "object_type": [(type, qconfig)],
        "module_name_regex": [...], "module_name": [...],
        "module_name_object_type_order": [(name, type, index, qconfig)]}``."""
        return {
            _GLOBAL_DICT_KEY: self.global_qconfig,
            _OBJECT_TYPE_DICT_KEY: list(self.object_type_qconfigs.items()),
            _MODULE_NAME_REGEX_DICT_KEY: list(self.module_name_regex_qconfigs.items()),
            _MODULE_NAME_DICT_KEY: list(self.module_name_qconfigs.items()),
            _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY: [
                (*k, v) for k, v in self.module_name_object_type_order_qconfigs.items()],
        }

    @classmethod
    def from_dict(cls, qconfig_dict):
        """A mapping from the dictionary form (every key optional; unknown keys are an
        error naming them)."""
        if not isinstance(qconfig_dict, dict):
            raise TypeError(f"`qconfig_dict` must be a dict, got "
                            f"{type(qconfig_dict).__name__}")
        unknown = [k for k in qconfig_dict if k not in _DICT_KEYS]
        if unknown:
            raise ValueError(f"`qconfig_dict` has unknown keys {unknown}; the keys are "
                             f"{list(_DICT_KEYS)}")
        conf = cls()
        if _GLOBAL_DICT_KEY in qconfig_dict:
            conf.set_global(qconfig_dict[_GLOBAL_DICT_KEY])
        for object_type, qconfig in _entries(qconfig_dict, _OBJECT_TYPE_DICT_KEY, 2):
            conf.set_object_type(object_type, qconfig)
        for regex, qconfig in _entries(qconfig_dict, _MODULE_NAME_REGEX_DICT_KEY, 2):
            conf.set_module_name_regex(regex, qconfig)
        for name, qconfig in _entries(qconfig_dict, _MODULE_NAME_DICT_KEY, 2):
            conf.set_module_name(name, qconfig)
        for name, object_type, index, qconfig in _entries(
                qconfig_dict, _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY, 4):
            conf.set_module_name_object_type_order(name, object_type, index, qconfig)
        return conf

    def __repr__(self):
        out = "QConfigMapping ("
        for style in _STYLES:
            out += f"\n {style}"
            value = getattr(self, style)
            if isinstance(value, OrderedDict) and value:
                for key, qconfig in value.items():
                    out += f"\n  {key}: {qconfig}"
            else:
                out += f"\n  {value}"
        return out + "\n)"


_ENTRY_FORMS = {_OBJECT_TYPE_DICT_KEY: "(object_type, qconfig)",
                _MODULE_NAME_REGEX_DICT_KEY: "(regex, qconfig)",
                _MODULE_NAME_DICT_KEY: "(module_name, qconfig)",
                _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY:
                    "(module_name, object_type, index, qconfig)"}


def _entries(qconfig_dict, key, n):
    """``qconfig_dict[key]`` (default empty) as a list of ``n``-tuples, or a TypeError
    naming the key and the entry (PyTorch fails with an unpacking error naming neither)."""
    value = qconfig_dict.get(key, [])
    form = _ENTRY_FORMS[key]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"`qconfig_dict[{key!r}]` must be a list of {form} tuples, got "
                        f"{type(value).__name__} {value!r}")
    for i, entry in enumerate(value):
        # the kinds PyTorch's unpacking raises: TypeError for no tuple, ValueError for
        # a tuple of the wrong length
        if not isinstance(entry, (list, tuple)):
            raise TypeError(f"`qconfig_dict[{key!r}][{i}]` must be a {form} tuple, got "
                            f"{entry!r}")
        if len(entry) != n:
            raise ValueError(f"`qconfig_dict[{key!r}][{i}]` must be a {form} tuple "
                             f"({n} items), got {len(entry)} items: {entry!r}")
    return value


def _default_mapping(is_qat, backend, version):
    qconfig = (get_default_qat_qconfig(backend, version) if is_qat
               else _get_default_qconfig(backend, version))
    default_weight = default_weight_fake_quant if is_qat else default_weight_observer
    mapping = QConfigMapping().set_global(qconfig).set_object_type(
        "reshape", default_reuse_input_qconfig)
    # transposed convolutions: per-tensor weights on fbgemm / x86, whose kernels have no
    # per-channel transposed path (PyTorch's entries, in PyTorch's order)
    transpose = QConfig(activation=qconfig.activation, weight=default_weight) \
        if backend in ("fbgemm", "x86") else qconfig
    for op in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"):
        if hasattr(nn, op):
            mapping.set_object_type(getattr(nn, op), transpose)
    for op in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        if hasattr(F, op):
            mapping.set_object_type(getattr(F, op), transpose)
    # layer norm's weight stays float; PReLU's slopes are quint8 (its own qconfig)
    layer_norm = QConfig(activation=qconfig.activation, weight=default_placeholder_observer)
    mapping.set_object_type(F.layer_norm, layer_norm)
    mapping.set_object_type(nn.LayerNorm, layer_norm)
    mapping.set_object_type(nn.PReLU, default_quint8_weight_qconfig)
    # ops whose output range is fixed by their math: hardsigmoid, sigmoid and softmax in
    # [0, 1], tanh in [-1, 1]
    zero_one, neg_one_one = (default_fixed_qparams_range_0to1_observer,
                             default_fixed_qparams_range_neg1to1_observer)
    fixed = ((Hardsigmoid, zero_one), (F.hardsigmoid, zero_one), ("hardsigmoid", zero_one),
             ("hardsigmoid_", zero_one),
             (Sigmoid, zero_one), (F.sigmoid, zero_one), ("sigmoid", zero_one),
             ("sigmoid_", zero_one), (Softmax, zero_one),
             (Tanh, neg_one_one), (F.tanh, neg_one_one), ("tanh", neg_one_one),
             ("tanh_", neg_one_one))
    made = {}
    for op, observer in fixed:
        if id(observer) not in made:
            act = FixedQParamsFakeQuantize.with_args(observer=observer) if is_qat \
                else observer
            made[id(observer)] = QConfig(activation=act, weight=default_weight)
        mapping.set_object_type(op, made[id(observer)])
    return mapping


def get_default_qconfig_mapping(backend="x86", version=0):
    """The default mapping for post-training quantization on ``backend`` (``"x86"``,
    ``"fbgemm"``, ``"qnnpack"``, ``"onednn"``): the global qconfig is
    :func:`~qlearn.quantization.qconfig.get_default_qconfig` ``(backend)``; ``reshape``
    reuses its input's quantization; transposed convolutions get per-tensor weights on
    ``"x86"`` / ``"fbgemm"``, layer norm a float weight, PReLU quint8 slopes, and
    hardsigmoid, sigmoid, softmax and tanh fixed-qparams observers, as in PyTorch.

    >>> from qlearn.quantization import get_default_qconfig_mapping
    >>> qm = get_default_qconfig_mapping("x86")
    >>> qm.global_qconfig.activation.p.keywords["reduce_range"]
    True
    """
    return _default_mapping(False, backend, version)


def get_default_qat_qconfig_mapping(backend="x86", version=1):
    """The default mapping for quantization-aware training on ``backend``: as
    :func:`get_default_qconfig_mapping` with fake quantizers
    (:func:`~qlearn.quantization.qconfig.get_default_qat_qconfig`).

    >>> from qlearn.quantization import get_default_qat_qconfig_mapping
    >>> type(get_default_qat_qconfig_mapping().global_qconfig.activation()).__name__
    'FusedMovingAvgObsFakeQuantize'
    """
    return _default_mapping(True, backend, version)
