r"""The custom configs of graph mode: what ``prepare_fx`` / ``convert_fx`` / ``fuse_fx``
do besides the qconfig mapping (``torch.ao.quantization.fx.custom_config``).

Each is built with chained ``set_*`` calls or from PyTorch's older dictionary form
(``from_dict``, ``to_dict`` for the way back), and each is accepted where PyTorch takes
it: :class:`PrepareCustomConfig` by ``prepare_fx`` / ``prepare_qat_fx``,
:class:`ConvertCustomConfig` by ``convert_fx``, :class:`FuseCustomConfig` by ``fuse_fx``.

========================================== ===================================================
``PrepareCustomConfig`` setter             effect in ``prepare_fx``
========================================== ===================================================
``set_non_traceable_module_names/classes`` the module is one ``call_module`` node, kept float
``set_float_to_observed_mapping``          a custom module, swapped to its observed class
                                           (``from_float``), with observed input and output
``set_input_quantized_indexes``            those graph inputs arrive as quint8 QTensors
``set_output_quantized_indexes``           those graph outputs are returned quantized
``set_preserved_attributes``               the attributes are copied to the prepared model
``set_standalone_module_name/class``       stored (and written by ``to_dict``); qlearn's
                                           ``prepare_fx`` refuses them (not implemented)
========================================== ===================================================

``ConvertCustomConfig.set_observed_to_quantized_mapping`` names the quantized class of an
observed custom module (its ``from_observed`` builds it, with the output observer as the
module's ``activation_post_process``).

Where qlearn differs: ``from_dict`` refuses unknown keys, naming them (PyTorch ignores
them silently, so a misspelt key is lost).
"""
from dataclasses import dataclass
from typing import Any

from ..quant_type import QuantType, _get_quant_type_to_str, _quant_type_from_str

__all__ = ["PrepareCustomConfig", "ConvertCustomConfig", "FuseCustomConfig",
           "StandaloneModuleConfigEntry"]

STANDALONE_MODULE_NAME_DICT_KEY = "standalone_module_name"
STANDALONE_MODULE_CLASS_DICT_KEY = "standalone_module_class"
FLOAT_TO_OBSERVED_DICT_KEY = "float_to_observed_custom_module_class"
OBSERVED_TO_QUANTIZED_DICT_KEY = "observed_to_quantized_custom_module_class"
NON_TRACEABLE_MODULE_NAME_DICT_KEY = "non_traceable_module_name"
NON_TRACEABLE_MODULE_CLASS_DICT_KEY = "non_traceable_module_class"
INPUT_QUANTIZED_INDEXES_DICT_KEY = "input_quantized_idxs"
OUTPUT_QUANTIZED_INDEXES_DICT_KEY = "output_quantized_idxs"
PRESERVED_ATTRIBUTES_DICT_KEY = "preserved_attributes"


def _check_keys(d, known, who):
    if not isinstance(d, dict):
        raise TypeError(f"`{who}` must be a dict, got {type(d).__name__}")
    unknown = [k for k in d if k not in known]
    if unknown:
        raise ValueError(f"`{who}` has unsupported keys {unknown}; the keys are {list(known)}")


def _str_list(values, name):
    values = list(values)
    for v in values:
        if not isinstance(v, str):
            raise TypeError(f"`{name}` must be a list of str, got an item {v!r}")
    return values


def _class_list(values, name):
    values = list(values)
    for v in values:
        if not isinstance(v, type):
            raise TypeError(f"`{name}` must be a list of classes, got an item {v!r}")
    return values


def _int_list(values, name):
    values = list(values)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"`{name}` must be a list of non-negative int, got an item "
                             f"{v!r}")
    return values


def _check_class(cls, name):
    if not isinstance(cls, type):
        raise TypeError(f"`{name}` must be a class, got {cls!r}")


def _check_quant_type(quant_type):
    if not isinstance(quant_type, QuantType):
        raise TypeError(f"`quant_type` must be a QuantType, got {quant_type!r}")


def _nonempty_repr(name, obj):
    items = {k: v for k, v in obj.__dict__.items() if len(v) > 0}
    return f"{name}({items})"


@dataclass
class StandaloneModuleConfigEntry:
    """How a standalone module would be prepared: its own qconfig mapping (None: the
    parent's), example inputs, prepare custom config and backend config.

    >>> from qlearn.quantization.fx.custom_config import StandaloneModuleConfigEntry
    >>> StandaloneModuleConfigEntry(None, (), None, None).example_inputs
    ()
    """

    qconfig_mapping: Any
    example_inputs: tuple
    prepare_custom_config: Any
    backend_config: Any


class PrepareCustomConfig:
    """The custom configuration of :func:`~qlearn.quantization.quantize_fx.prepare_fx`
    and ``prepare_qat_fx`` (see the module notes for what each setter does).

    Every setter returns the config, so calls chain; a list setter replaces the list.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization.quantize_fx import PrepareCustomConfig
    >>> c = (PrepareCustomConfig().set_non_traceable_module_names(["body"])
    ...      .set_input_quantized_indexes([0]))
    >>> c
    PrepareCustomConfig({'non_traceable_module_names': ['body'], 'input_quantized_indexes': [0]})
    >>> c.to_dict()
    {'non_traceable_module_name': ['body'], 'input_quantized_idxs': [0]}
    """

    def __init__(self):
        self.standalone_module_names = {}
        self.standalone_module_classes = {}
        self.float_to_observed_mapping = {}
        self.non_traceable_module_names = []
        self.non_traceable_module_classes = []
        self.input_quantized_indexes = []
        self.output_quantized_indexes = []
        self.preserved_attributes = []

    def __repr__(self):
        return _nonempty_repr("PrepareCustomConfig", self)

    def set_standalone_module_name(self, module_name, qconfig_mapping, example_inputs,
                                   prepare_custom_config, backend_config):
        """Mark the submodule ``module_name`` as a standalone module (stored; qlearn's
        ``prepare_fx`` refuses standalone modules)."""
        if not isinstance(module_name, str):
            raise TypeError(f"`module_name` must be a str, got {module_name!r}")
        self.standalone_module_names[module_name] = StandaloneModuleConfigEntry(
            qconfig_mapping, example_inputs, prepare_custom_config, backend_config)
        return self

    def set_standalone_module_class(self, module_class, qconfig_mapping, example_inputs,
                                    prepare_custom_config, backend_config):
        """Mark every submodule of class ``module_class`` as a standalone module (stored;
        qlearn's ``prepare_fx`` refuses standalone modules)."""
        _check_class(module_class, "module_class")
        self.standalone_module_classes[module_class] = StandaloneModuleConfigEntry(
            qconfig_mapping, example_inputs, prepare_custom_config, backend_config)
        return self

    def set_float_to_observed_mapping(self, float_class, observed_class,
                                      quant_type=QuantType.STATIC):
        """Swap every ``float_class`` submodule to ``observed_class.from_float(mod)`` in
        prepare; static quantization only (as in PyTorch)."""
        _check_class(float_class, "float_class")
        _check_class(observed_class, "observed_class")
        _check_quant_type(quant_type)
        if quant_type != QuantType.STATIC:
            raise ValueError(f"`quant_type` must be QuantType.STATIC (custom float -> "
                             f"observed mappings exist for static quantization only), "
                             f"got {quant_type!r}")
        self.float_to_observed_mapping.setdefault(quant_type, {})[float_class] = \
            observed_class
        return self

    def set_non_traceable_module_names(self, module_names):
        """Record these submodules (by qualified name) as single float nodes."""
        self.non_traceable_module_names = _str_list(module_names, "module_names")
        return self

    def set_non_traceable_module_classes(self, module_classes):
        """Record every submodule of these classes as a single float node."""
        self.non_traceable_module_classes = _class_list(module_classes, "module_classes")
        return self

    def set_input_quantized_indexes(self, indexes):
        """The graph inputs (by position) that the converted model receives already
        quantized (quint8 QTensors), so it quantizes them no more."""
        self.input_quantized_indexes = _int_list(indexes, "indexes")
        return self

    def set_output_quantized_indexes(self, indexes):
        """The graph outputs (by position) that the converted model returns quantized
        (no dequantize in front of them)."""
        self.output_quantized_indexes = _int_list(indexes, "indexes")
        return self

    def set_preserved_attributes(self, attributes):
        """Attributes of the model that the prepared model keeps although ``forward``
        does not use them."""
        self.preserved_attributes = _str_list(attributes, "attributes")
        return self

    @classmethod
    def from_dict(cls, prepare_custom_config_dict):
        """A config from PyTorch's dictionary form: the keys
        ``"standalone_module_name"`` / ``"standalone_module_class"`` (lists of
        ``(name or class, qconfig_mapping, example_inputs, prepare_custom_config,
        backend_config)``), ``"float_to_observed_custom_module_class"``
        (``{"static": {float: observed}}``), ``"non_traceable_module_name"``,
        ``"non_traceable_module_class"``, ``"input_quantized_idxs"``,
        ``"output_quantized_idxs"``, ``"preserved_attributes"``."""
        from ..qconfig_mapping import QConfigMapping
        d = prepare_custom_config_dict
        _check_keys(d, (STANDALONE_MODULE_NAME_DICT_KEY, STANDALONE_MODULE_CLASS_DICT_KEY,
                        FLOAT_TO_OBSERVED_DICT_KEY, NON_TRACEABLE_MODULE_NAME_DICT_KEY,
                        NON_TRACEABLE_MODULE_CLASS_DICT_KEY, INPUT_QUANTIZED_INDEXES_DICT_KEY,
                        OUTPUT_QUANTIZED_INDEXES_DICT_KEY, PRESERVED_ATTRIBUTES_DICT_KEY),
                    "prepare_custom_config_dict")
        conf = cls()

        def entry(qconfig, custom):
            if isinstance(qconfig, dict):
                qconfig = QConfigMapping.from_dict(qconfig)
            if isinstance(custom, dict):
                custom = PrepareCustomConfig.from_dict(custom)
            return qconfig, custom

        for name, qconfig, inputs, custom, backend in d.get(STANDALONE_MODULE_NAME_DICT_KEY,
                                                            []):
            qconfig, custom = entry(qconfig, custom)
            conf.set_standalone_module_name(name, qconfig, inputs, custom, backend)
        for klass, qconfig, inputs, custom, backend in d.get(
                STANDALONE_MODULE_CLASS_DICT_KEY, []):
            qconfig, custom = entry(qconfig, custom)
            conf.set_standalone_module_class(klass, qconfig, inputs, custom, backend)
        for qt_name, mapping in d.get(FLOAT_TO_OBSERVED_DICT_KEY, {}).items():
            quant_type = _quant_type_from_str(qt_name)
            for float_class, observed_class in mapping.items():
                conf.set_float_to_observed_mapping(float_class, observed_class, quant_type)
        conf.set_non_traceable_module_names(d.get(NON_TRACEABLE_MODULE_NAME_DICT_KEY, []))
        conf.set_non_traceable_module_classes(d.get(NON_TRACEABLE_MODULE_CLASS_DICT_KEY, []))
        conf.set_input_quantized_indexes(d.get(INPUT_QUANTIZED_INDEXES_DICT_KEY, []))
        conf.set_output_quantized_indexes(d.get(OUTPUT_QUANTIZED_INDEXES_DICT_KEY, []))
        conf.set_preserved_attributes(d.get(PRESERVED_ATTRIBUTES_DICT_KEY, []))
        return conf

    def to_dict(self):
        """The dictionary form (only the non-empty entries), as :meth:`from_dict` reads
        it."""
        def standalone(key, e):
            return (key, e.qconfig_mapping.to_dict() if e.qconfig_mapping else None,
                    e.example_inputs,
                    e.prepare_custom_config.to_dict() if e.prepare_custom_config else None,
                    e.backend_config)

        d = {}
        if self.standalone_module_names:
            d[STANDALONE_MODULE_NAME_DICT_KEY] = [
                standalone(k, e) for k, e in self.standalone_module_names.items()]
        if self.standalone_module_classes:
            d[STANDALONE_MODULE_CLASS_DICT_KEY] = [
                standalone(k, e) for k, e in self.standalone_module_classes.items()]
        if self.float_to_observed_mapping:
            d[FLOAT_TO_OBSERVED_DICT_KEY] = {
                _get_quant_type_to_str(qt): dict(m)
                for qt, m in self.float_to_observed_mapping.items()}
        if self.non_traceable_module_names:
            d[NON_TRACEABLE_MODULE_NAME_DICT_KEY] = list(self.non_traceable_module_names)
        if self.non_traceable_module_classes:
            d[NON_TRACEABLE_MODULE_CLASS_DICT_KEY] = list(self.non_traceable_module_classes)
        if self.input_quantized_indexes:
            d[INPUT_QUANTIZED_INDEXES_DICT_KEY] = list(self.input_quantized_indexes)
        if self.output_quantized_indexes:
            d[OUTPUT_QUANTIZED_INDEXES_DICT_KEY] = list(self.output_quantized_indexes)
        if self.preserved_attributes:
            d[PRESERVED_ATTRIBUTES_DICT_KEY] = list(self.preserved_attributes)
        return d


class ConvertCustomConfig:
    """The custom configuration of :func:`~qlearn.quantization.quantize_fx.convert_fx`:
    the quantized classes of observed custom modules and the preserved attributes.

    Examples
    --------
    >>> from qlearn.quantization.quantize_fx import ConvertCustomConfig
    >>> c = ConvertCustomConfig().set_preserved_attributes(["version"])
    >>> c
    ConvertCustomConfig({'preserved_attributes': ['version']})
    >>> c.to_dict()
    {'preserved_attributes': ['version']}
    """

    def __init__(self):
        self.observed_to_quantized_mapping = {}
        self.preserved_attributes = []

    def __repr__(self):
        return _nonempty_repr("ConvertCustomConfig", self)

    def set_observed_to_quantized_mapping(self, observed_class, quantized_class,
                                          quant_type=QuantType.STATIC):
        """Convert every ``observed_class`` module to
        ``quantized_class.from_observed(mod)``."""
        _check_class(observed_class, "observed_class")
        _check_class(quantized_class, "quantized_class")
        _check_quant_type(quant_type)
        self.observed_to_quantized_mapping.setdefault(quant_type, {})[observed_class] = \
            quantized_class
        return self

    def set_preserved_attributes(self, attributes):
        """Attributes the converted model keeps although ``forward`` does not use them."""
        self.preserved_attributes = _str_list(attributes, "attributes")
        return self

    @classmethod
    def from_dict(cls, convert_custom_config_dict):
        """A config from the keys ``"observed_to_quantized_custom_module_class"``
        (``{"static": {observed: quantized}}``) and ``"preserved_attributes"``."""
        d = convert_custom_config_dict
        _check_keys(d, (OBSERVED_TO_QUANTIZED_DICT_KEY, PRESERVED_ATTRIBUTES_DICT_KEY),
                    "convert_custom_config_dict")
        conf = cls()
        for qt_name, mapping in d.get(OBSERVED_TO_QUANTIZED_DICT_KEY, {}).items():
            quant_type = _quant_type_from_str(qt_name)
            for observed_class, quantized_class in mapping.items():
                conf.set_observed_to_quantized_mapping(observed_class, quantized_class,
                                                       quant_type)
        conf.set_preserved_attributes(d.get(PRESERVED_ATTRIBUTES_DICT_KEY, []))
        return conf

    def to_dict(self):
        """The dictionary form (only the non-empty entries)."""
        d = {}
        if self.observed_to_quantized_mapping:
            d[OBSERVED_TO_QUANTIZED_DICT_KEY] = {
                _get_quant_type_to_str(qt): dict(m)
                for qt, m in self.observed_to_quantized_mapping.items()}
        if self.preserved_attributes:
            d[PRESERVED_ATTRIBUTES_DICT_KEY] = list(self.preserved_attributes)
        return d


class FuseCustomConfig:
    """The custom configuration of :func:`~qlearn.quantization.quantize_fx.fuse_fx`:
    the preserved attributes.

    Examples
    --------
    >>> from qlearn.quantization.quantize_fx import FuseCustomConfig
    >>> FuseCustomConfig.from_dict({"preserved_attributes": ["version"]})
    FuseCustomConfig({'preserved_attributes': ['version']})
    """

    def __init__(self):
        self.preserved_attributes = []

    def __repr__(self):
        return _nonempty_repr("FuseCustomConfig", self)

    def set_preserved_attributes(self, attributes):
        """Attributes the fused model keeps although ``forward`` does not use them."""
        self.preserved_attributes = _str_list(attributes, "attributes")
        return self

    @classmethod
    def from_dict(cls, fuse_custom_config_dict):
        """A config from the key ``"preserved_attributes"``."""
        _check_keys(fuse_custom_config_dict, (PRESERVED_ATTRIBUTES_DICT_KEY,),
                    "fuse_custom_config_dict")
        return cls().set_preserved_attributes(
            fuse_custom_config_dict.get(PRESERVED_ATTRIBUTES_DICT_KEY, []))

    def to_dict(self):
        """The dictionary form (only the non-empty entries)."""
        d = {}
        if self.preserved_attributes:
            d[PRESERVED_ATTRIBUTES_DICT_KEY] = list(self.preserved_attributes)
        return d
