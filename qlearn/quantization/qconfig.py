r"""QConfig: which observer (or fake-quantize) factory watches activations and weights.

A :class:`QConfig` is a named tuple ``(activation, weight)`` of *factories*: the
workflow (``prepare``) calls each one to make a fresh observer for every layer, so an
observer instance is refused.  ``Observer.with_args(**kw)`` makes such a factory.  The
defaults and the per-backend choices are PyTorch's:

=================== ========================================= ==================================
backend             activation                                weight
=================== ========================================= ==================================
``x86``, ``fbgemm`` ``HistogramObserver(reduce_range=True)``  per-channel symmetric qint8 MinMax
``qnnpack``         ``HistogramObserver(reduce_range=False)`` per-tensor symmetric qint8 MinMax
``onednn``          ``HistogramObserver(reduce_range=False)`` per-channel symmetric qint8 MinMax
=================== ========================================= ==================================

Why ``reduce_range`` on x86: FBGEMM's AVX2 kernels multiply uint8 activations by int8
weights with ``vpmaddubsw``, which adds two products into a *saturating int16*:
:math:`255 \cdot 127 \cdot 2 = 64770 > 32767`.  With 7-bit activations
(:math:`127 \cdot 127 \cdot 2 = 32258`) the pair sum cannot overflow.  ARM's QNNPACK
accumulates in 32 bits, so it keeps the full 8 bits.
"""
import warnings
from collections import namedtuple

import numpy as np

from ..dtypes import per_channel_affine_float_qparams, qint8, quint4x2
from ..nn.modules.module import Module
from .observer import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    NoopObserver,
    PlaceholderObserver,
    _PartialWrapper,
    default_debug_observer,
    default_dynamic_quant_observer,
    default_float_qparams_observer,
    default_float_qparams_observer_4bit,
    default_observer,
    default_per_channel_weight_observer,
    default_placeholder_observer,
    default_reuse_input_observer,
    default_weight_observer,
    per_channel_weight_observer_range_neg_127_to_127,
    weight_observer_range_neg_127_to_127,
)

__all__ = [
    "QConfig", "QConfigDynamic", "default_qconfig", "default_debug_qconfig",
    "default_per_channel_qconfig", "default_dynamic_qconfig", "per_channel_dynamic_qconfig",
    "default_reuse_input_qconfig", "default_symmetric_qnnpack_qconfig",
    "float16_dynamic_qconfig", "float16_static_qconfig",
    "default_per_channel_symmetric_qnnpack_qconfig", "default_quint8_weight_qconfig",
    "get_default_qconfig", "get_default_qat_qconfig", "qconfig_equals",
    "float_qparams_weight_only_qconfig", "float_qparams_weight_only_qconfig_4bit",
    "SUPPORTED_BACKENDS", "QConfigAny", "get_default_qconfig_dict", "get_default_qat_qconfig_dict",
]

#: The backend names ``get_default_qconfig`` and ``get_default_qat_qconfig`` accept.
SUPPORTED_BACKENDS = ("fbgemm", "x86", "qnnpack", "onednn")


def _check_factory(value, field, cls_name):
    if isinstance(value, Module):
        raise ValueError(f"{cls_name} received an observer instance for `{field}` "
                         f"({type(value).__name__}(...)), please pass an observer class "
                         f"or factory instead. Use MyObserver.with_args(x=1) to override "
                         f"arguments to the constructor")
    if value is not None and not callable(value):
        raise TypeError(f"{cls_name} `{field}` must be an observer class or a factory "
                        f"made with with_args(), got {value!r}")


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """Observer factories for a layer's activations and weights.

    Pass classes (``MinMaxObserver``) or factories (``MinMaxObserver.with_args(...)``),
    not instances: each layer gets its own observers.

    Examples
    --------
    >>> from qlearn.quantization.observer import (MovingAverageMinMaxObserver,
    ...     MovingAveragePerChannelMinMaxObserver)
    >>> from qlearn.quantization.qconfig import QConfig
    >>> my_qconfig = QConfig(
    ...     activation=MovingAverageMinMaxObserver.with_args(qscheme=ql.per_tensor_affine),
    ...     weight=MovingAveragePerChannelMinMaxObserver.with_args(
    ...         qscheme=ql.per_channel_symmetric))
    >>> my_qconfig.activation()
    MovingAverageMinMaxObserver(min_val=inf, max_val=-inf)
    >>> QConfig(activation=MovingAverageMinMaxObserver(), weight=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: QConfig received an observer instance for `activation` ...
    """

    __slots__ = ()

    def __new__(cls, activation, weight):
        _check_factory(activation, "activation", "QConfig")
        _check_factory(weight, "weight", "QConfig")
        return super().__new__(cls, activation, weight)


class QConfigDynamic(namedtuple("QConfigDynamic", ["activation", "weight"])):
    """PyTorch's older QConfig for dynamic quantization (use :class:`QConfig`)."""

    __slots__ = ()

    def __new__(cls, activation=None, weight=None):
        _check_factory(weight, "weight", "QConfigDynamic")
        return super().__new__(cls, activation, weight)


default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
"""7-bit MinMax activations, per-tensor symmetric qint8 weights."""

default_debug_qconfig = QConfig(weight=default_weight_observer,
                                activation=default_debug_observer)
"""Records activations (RecordingObserver) for debugging."""

default_per_channel_qconfig = QConfig(activation=default_observer,
                                      weight=default_per_channel_weight_observer)
"""7-bit MinMax activations, per-channel symmetric qint8 weights."""

default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                  weight=default_weight_observer)
"""Dynamic quantization: activations quantized per batch at run time."""

per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)
"""Dynamic quantization with per-channel weights."""

default_reuse_input_qconfig = QConfig(activation=default_reuse_input_observer,
                                      weight=NoopObserver)

default_symmetric_qnnpack_qconfig = QConfig(
    activation=HistogramObserver.with_args(dtype=qint8, reduce_range=False, eps=2 ** -12),
    weight=weight_observer_range_neg_127_to_127)

default_per_channel_symmetric_qnnpack_qconfig = QConfig(
    activation=HistogramObserver.with_args(dtype=qint8, reduce_range=False, eps=2 ** -12),
    weight=per_channel_weight_observer_range_neg_127_to_127)

default_quint8_weight_qconfig = QConfig(activation=HistogramObserver, weight=MinMaxObserver)

float_qparams_weight_only_qconfig = QConfig(activation=default_placeholder_observer,
                                            weight=default_float_qparams_observer)
"""Weight-only quantization of embedding tables (``nn.Embedding``, ``nn.EmbeddingBag``):
quint8 weights with a float scale and zero point per row
(``per_channel_affine_float_qparams``), float activations, as PyTorch's qconfig of the
same name."""

float_qparams_weight_only_qconfig_4bit = QConfig(activation=default_placeholder_observer,
                                                 weight=default_float_qparams_observer_4bit)
r"""As :data:`float_qparams_weight_only_qconfig` with 4-bit rows: :data:`qlearn.quint4x2`
(values 0..15, two per byte), :math:`S_i = (\max_i - \min_i) / 15`, as PyTorch's qconfig
of the same name (``nnq.Embedding`` / ``nnq.EmbeddingBag`` then hold quint4x2 tables)."""



float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=np.float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=np.float16))
"""Dynamic quantization with weights stored as float16."""

float16_static_qconfig = QConfig(activation=PlaceholderObserver.with_args(dtype=np.float16),
                                 weight=PlaceholderObserver.with_args(dtype=np.float16))
"""Activations and weights stored as float16."""

# QAT qconfigs hold fake-quantize factories from qlearn.quantization.fake_quantize, which
# builds on the observers: they are made on first access (PEP 562 module __getattr__).
_LAZY_QAT_QCONFIGS = {
    "default_qat_qconfig": lambda fq: QConfig(activation=fq.default_fake_quant,
                                              weight=fq.default_weight_fake_quant),
    "default_dynamic_qat_qconfig": lambda fq: QConfig(
        activation=fq.default_dynamic_fake_quant, weight=fq.default_weight_fake_quant),
    "default_qat_qconfig_v2": lambda fq: QConfig(activation=fq.default_fused_act_fake_quant,
                                                 weight=fq.default_fused_wt_fake_quant),
    "default_symmetric_qnnpack_qat_qconfig": lambda fq: QConfig(
        activation=fq.FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
            dtype=qint8, reduce_range=False, eps=2 ** -12),
        weight=fq.fused_wt_fake_quant_range_neg_127_to_127),
    "default_per_channel_symmetric_qnnpack_qat_qconfig": lambda fq: QConfig(
        activation=fq.FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
            dtype=qint8, reduce_range=False, eps=2 ** -12),
        weight=fq.fused_per_channel_wt_fake_quant_range_neg_127_to_127),
    # QAT of embedding tables (nnqat.Embedding / EmbeddingBag): float activations
    "default_embedding_qat_qconfig": lambda fq: QConfig(
        activation=NoopObserver.with_args(dtype=np.float32),
        weight=fq.default_embedding_fake_quant),
    "default_embedding_qat_qconfig_4bit": lambda fq: QConfig(
        activation=NoopObserver.with_args(dtype=np.float32),
        weight=fq.FakeQuantize.with_args(
            observer=fq.MovingAveragePerChannelMinMaxObserver,
            qscheme=per_channel_affine_float_qparams, dtype=quint4x2, ch_axis=0,
            averaging_constant=1)),
}


def __getattr__(name):
    if name in _LAZY_QAT_QCONFIGS:
        from . import fake_quantize
        value = _LAZY_QAT_QCONFIGS[name](fake_quantize)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_backend(backend):
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(map(repr, SUPPORTED_BACKENDS))}, "
                         f"got {backend!r}")


def get_default_qconfig(backend="x86", version=0):
    """The default post-training (static) qconfig for ``backend``, as PyTorch's.

    Parameters
    ----------
    backend : str
        ``'x86'`` (default), ``'fbgemm'``, ``'qnnpack'`` or ``'onednn'``.
    version : int
        Only 0.

    Examples
    --------
    >>> from qlearn.quantization.qconfig import get_default_qconfig
    >>> print(get_default_qconfig('fbgemm'))  # doctest: +NORMALIZE_WHITESPACE
    QConfig(activation=functools.partial(<class 'qlearn.quantization.observer.HistogramObserver'>,
        reduce_range=True){},
      weight=functools.partial(<class 'qlearn.quantization.observer.PerChannelMinMaxObserver'>,
        dtype=qlearn.qint8, qscheme=qlearn.per_channel_symmetric){})
    """
    _check_backend(backend)
    if version != 0:
        raise ValueError(f"`version` must be 0 for get_default_qconfig, got {version!r}")
    if backend in ("fbgemm", "x86"):
        return QConfig(activation=HistogramObserver.with_args(reduce_range=True),
                       weight=default_per_channel_weight_observer)
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                       weight=default_weight_observer)
    return QConfig(activation=HistogramObserver.with_args(reduce_range=False),  # onednn
                   weight=default_per_channel_weight_observer)


def get_default_qat_qconfig(backend="x86", version=1):
    """The default quantization-aware-training qconfig for ``backend``, as PyTorch's.

    Activations use a moving-average min/max observer inside a fake-quantize module (the
    histogram is too slow to update every training step); weights use the backend's
    default fake quantization.  ``version=1`` (default) uses the fused
    ``FusedMovingAvgObsFakeQuantize``, ``version=0`` the plain ``FakeQuantize``.

    The fake-quantize classes come from :mod:`qlearn.quantization.fake_quantize`, imported
    when this function is called.

    Examples
    --------
    >>> from qlearn.quantization.qconfig import get_default_qat_qconfig
    >>> qconfig = get_default_qat_qconfig('x86')
    >>> type(qconfig.activation()).__name__
    'FusedMovingAvgObsFakeQuantize'
    """
    _check_backend(backend)
    if version not in (0, 1, None):
        raise ValueError(f"`version` must be 0 or 1 for get_default_qat_qconfig, got "
                         f"{version!r}")
    from . import fake_quantize as fq  # imported here: fake_quantize builds on observers
    reduce_range = backend in ("fbgemm", "x86")
    if version == 0:
        act = fq.FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0,
                                        quant_max=255, reduce_range=reduce_range)
        weight = (fq.default_weight_fake_quant if backend == "qnnpack"
                  else fq.default_per_channel_weight_fake_quant)
        if backend == "onednn":
            act = fq.FakeQuantize.with_args(observer=MovingAverageMinMaxObserver,
                                            quant_min=0, quant_max=255)
        return QConfig(activation=act, weight=weight)
    act = fq.FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
        reduce_range=reduce_range)
    if backend == "onednn":
        act = fq.FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255)
    weight = (fq.default_fused_wt_fake_quant if backend == "qnnpack"
              else fq.default_fused_per_channel_wt_fake_quant)
    return QConfig(activation=act, weight=weight)


def _factory_equals(a, b):
    if isinstance(a, _PartialWrapper) and isinstance(b, _PartialWrapper):
        ka, kb = dict(a.p.keywords), dict(b.p.keywords)
        if ("observer" in ka and "observer" in kb
                and not _factory_equals(ka.pop("observer"), kb.pop("observer"))):
            return False
        return a.p.func == b.p.func and a.p.args == b.p.args and ka == kb
    return a == b


def qconfig_equals(q1, q2):
    """Whether two qconfigs build the same observers (factories compared by arguments).

    >>> from qlearn.quantization.qconfig import qconfig_equals, get_default_qconfig
    >>> qconfig_equals(get_default_qconfig('x86'), get_default_qconfig('fbgemm'))
    True
    """
    if q1 is None or q2 is None:
        return q1 == q2
    return (_factory_equals(q1.activation, q2.activation)
            and _factory_equals(q1.weight, q2.weight))


#: A qconfig or None (None keeps a module in float): the type of a qconfig slot.
QConfigAny = QConfig | None


def _deprecated_dict(name, replacement):
    warnings.warn(f"`qlearn.quantization.{name}` is deprecated, as in PyTorch; use "
                  f"`qlearn.quantization.{replacement}` instead", FutureWarning, stacklevel=3)


def get_default_qconfig_dict(backend="x86", version=0):
    """The dictionary form of :func:`~qlearn.quantization.get_default_qconfig_mapping`
    (``QConfigMapping.to_dict()``), PyTorch's older spelling of the same defaults.

    Deprecated in PyTorch, which warns with a ``FutureWarning``; so does qlearn.

    Parameters
    ----------
    backend : str
        ``"x86"``, ``"fbgemm"``, ``"qnnpack"`` or ``"onednn"``.
    version : int
        Only 0.

    Returns
    -------
    dict
        ``{"": qconfig, "object_type": [...], "module_name_regex": [],
        "module_name": [], "module_name_object_type_order": []}``.

    Examples
    --------
    >>> import warnings
    >>> from qlearn.quantization import get_default_qconfig_dict
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     d = get_default_qconfig_dict("x86")
    >>> sorted(d)
    ['', 'module_name', 'module_name_object_type_order', 'module_name_regex', 'object_type']
    """
    from .qconfig_mapping import get_default_qconfig_mapping
    _deprecated_dict("get_default_qconfig_dict", "get_default_qconfig_mapping")
    return get_default_qconfig_mapping(backend, version).to_dict()


def get_default_qat_qconfig_dict(backend="x86", version=1):
    """The dictionary form of :func:`~qlearn.quantization.get_default_qat_qconfig_mapping`
    (deprecated, with a ``FutureWarning``, as in PyTorch).

    >>> import warnings
    >>> from qlearn.quantization import get_default_qat_qconfig_dict
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)
    ...     d = get_default_qat_qconfig_dict()
    >>> type(d[""].activation()).__name__
    'FusedMovingAvgObsFakeQuantize'
    """
    from .qconfig_mapping import get_default_qat_qconfig_mapping
    _deprecated_dict("get_default_qat_qconfig_dict", "get_default_qat_qconfig_mapping")
    return get_default_qat_qconfig_mapping(backend, version).to_dict()
