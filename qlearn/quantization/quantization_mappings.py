r"""The mappings: plain dicts from a float module class to the class that replaces it.

``convert`` finds every quantized class here (and only here): a module is swapped when
its exact type is a key of the mapping in use, by ``mapping[type(module)].from_float``.
Print one to see what the workflow does::

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> tq.get_default_static_quant_module_mappings()[nn.Linear]
    <class 'qlearn.nn.quantized.modules.linear.Linear'>

Three mappings, one per approach, as in PyTorch:

* static (post-training and the last step of QAT): float, fused float and QAT modules
  -> int8 modules (``nnq``, ``nniq``) that take and return quint8 QTensors;
* QAT (``prepare_qat``): float and fused float modules -> modules that fake-quantize
  their weights while training (``nnqat``, ``nniqat``);
* dynamic (``quantize_dynamic``): ``Linear``, ``LSTM``, ``GRU``, the three RNN cells
  and the fused ``LinearReLU`` -> ``nnqd`` / ``nniqd`` modules with int8 (or float16)
  weights that take and return float arrays (and, weight-only, the embeddings).

Where qlearn differs from PyTorch: PyTorch's float ``ReLU``, ``MaxPool2d`` and
``AdaptiveAvgPool2d`` run on quantized tensors as they are, so its mapping leaves them
out; qlearn's float modules take float arrays only, so these three map to their
:mod:`qlearn.nn.quantized` twins.  Their output keeps the input's scale and zero point,
so ``prepare`` attaches no observer to them (:func:`no_observer_set`), exactly as
PyTorch observes none of them.
"""
from .. import nn
from ..nn import functional as F
from ..nn import intrinsic as nni
from ..nn import qat as nnqat
from ..nn import quantized as nnq
from ..nn.intrinsic import qat as nniqat
from ..nn.intrinsic import quantized as nniq
from ..nn.intrinsic.quantized import dynamic as nniqd
from ..nn.quantized import dynamic as nnqd
from ..nn.quantized import functional as qF
from ..nn.quantized import reference as nnqr
from .stubs import DeQuantStub, QuantStub

__all__ = [
    "get_default_static_quant_module_mappings",
    "get_default_qat_module_mappings",
    "get_default_dynamic_quant_module_mappings",
    "get_default_float_to_quantized_operator_mappings",
    "get_default_qconfig_propagation_list",
    "get_default_compare_output_module_list",
    "get_embedding_qat_module_mappings",
    "get_default_static_quant_reference_module_mappings",
    "get_embedding_static_quant_module_mappings",
    "get_static_quant_module_class",
    "get_dynamic_quant_module_class",
    "get_quantized_operator",
    "no_observer_set",
]


# -- static: float / fused / QAT -> int8 ---------------------------------------------------
DEFAULT_STATIC_QUANT_MODULE_MAPPINGS = {
    QuantStub: nnq.Quantize,
    DeQuantStub: nnq.DeQuantize,
    nn.Linear: nnq.Linear,
    nn.Conv2d: nnq.Conv2d,
    nn.Conv1d: nnq.Conv1d,
    nn.Conv3d: nnq.Conv3d,
    nn.ConvTranspose1d: nnq.ConvTranspose1d,
    nn.ConvTranspose2d: nnq.ConvTranspose2d,
    nn.ConvTranspose3d: nnq.ConvTranspose3d,
    nn.ReLU: nnq.ReLU,
    nn.ReLU6: nnq.ReLU6,
    nn.LeakyReLU: nnq.LeakyReLU,
    nn.MaxPool2d: nnq.MaxPool2d,
    nn.AdaptiveAvgPool2d: nnq.AdaptiveAvgPool2d,
    nn.MaxPool1d: nnq.MaxPool1d,
    nn.AdaptiveAvgPool1d: nnq.AdaptiveAvgPool1d,
    nn.Dropout: nnq.Dropout,
    nn.BatchNorm2d: nnq.BatchNorm2d,
    nn.BatchNorm3d: nnq.BatchNorm3d,
    nn.LayerNorm: nnq.LayerNorm,
    nn.GroupNorm: nnq.GroupNorm,
    nn.InstanceNorm1d: nnq.InstanceNorm1d,
    nn.InstanceNorm2d: nnq.InstanceNorm2d,
    nn.InstanceNorm3d: nnq.InstanceNorm3d,
    nn.Hardswish: nnq.Hardswish,
    nn.ELU: nnq.ELU,
    nn.PReLU: nnq.PReLU,
    nnq.FloatFunctional: nnq.QFunctional,
    # weight-only (float_qparams_weight_only_qconfig): float in, float out
    nn.Embedding: nnq.Embedding,
    nn.EmbeddingBag: nnq.EmbeddingBag,
    # fused float modules
    nni.ConvReLU2d: nniq.ConvReLU2d,
    nni.ConvReLU1d: nniq.ConvReLU1d,
    nni.ConvReLU3d: nniq.ConvReLU3d,
    nni.LinearReLU: nniq.LinearReLU,
    nni.BNReLU2d: nniq.BNReLU2d,
    nni.BNReLU3d: nniq.BNReLU3d,
    nni.LinearLeakyReLU: nniq.LinearLeakyReLU,
    nni.LinearTanh: nniq.LinearTanh,
    # QAT modules: the batch norm is folded into the weight on the way
    nnqat.Linear: nnq.Linear,
    nnqat.Conv2d: nnq.Conv2d,
    nniqat.ConvBn2d: nnq.Conv2d,
    nniqat.ConvBnReLU2d: nniq.ConvReLU2d,
    nniqat.ConvReLU2d: nniq.ConvReLU2d,
    nniqat.LinearReLU: nniq.LinearReLU,
    nniqat.LinearBn1d: nnq.Linear,
    nnqat.Conv1d: nnq.Conv1d,
    nniqat.ConvBn1d: nnq.Conv1d,
    nniqat.ConvBnReLU1d: nniq.ConvReLU1d,
    nniqat.ConvReLU1d: nniq.ConvReLU1d,
    nnqat.Conv3d: nnq.Conv3d,
    nniqat.ConvBn3d: nnq.Conv3d,
    nniqat.ConvBnReLU3d: nniq.ConvReLU3d,
    nniqat.ConvReLU3d: nniq.ConvReLU3d,
}

# -- reference: float -> float layers with quantized-dequantized weights -------------------
DEFAULT_REFERENCE_STATIC_QUANT_MODULE_MAPPINGS = {
    QuantStub: nnq.Quantize,
    DeQuantStub: nnq.DeQuantize,
    nn.Linear: nnqr.Linear,
    nn.Conv1d: nnqr.Conv1d,
    nn.Conv2d: nnqr.Conv2d,
    nn.Conv3d: nnqr.Conv3d,
    nn.ConvTranspose1d: nnqr.ConvTranspose1d,
    nn.ConvTranspose2d: nnqr.ConvTranspose2d,
    nn.ConvTranspose3d: nnqr.ConvTranspose3d,
    nn.Embedding: nnqr.Embedding,
    nn.EmbeddingBag: nnqr.EmbeddingBag,
}

# -- QAT: float / fused -> modules that fake-quantize their weights ------------------------
DEFAULT_QAT_MODULE_MAPPINGS = {
    nn.Conv2d: nnqat.Conv2d,
    nn.Linear: nnqat.Linear,
    nni.ConvBn2d: nniqat.ConvBn2d,
    nni.ConvBnReLU2d: nniqat.ConvBnReLU2d,
    nni.ConvReLU2d: nniqat.ConvReLU2d,
    nni.LinearReLU: nniqat.LinearReLU,
    nni.LinearBn1d: nniqat.LinearBn1d,
    # as PyTorch's: a plain Conv1d and ConvReLU1d stay float during QAT (fake-quantized
    # outputs, weights quantized at convert); nnqat.Conv1d / nniqat.ConvReLU1d exist for
    # a custom mapping, and the static mapping converts them
    nni.ConvBn1d: nniqat.ConvBn1d,
    nni.ConvBnReLU1d: nniqat.ConvBnReLU1d,
    nn.Conv3d: nnqat.Conv3d,
    nni.ConvBn3d: nniqat.ConvBn3d,
    nni.ConvBnReLU3d: nniqat.ConvBnReLU3d,
    nni.ConvReLU3d: nniqat.ConvReLU3d,
}

# -- dynamic: float -> int8 / float16 weights, float activations ---------------------------
DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS = {
    nn.Linear: nnqd.Linear,
    nnqat.Linear: nnqd.Linear,
    nn.LSTM: nnqd.LSTM,
    nn.GRU: nnqd.GRU,
    nn.RNNCell: nnqd.RNNCell,
    nn.LSTMCell: nnqd.LSTMCell,
    nn.GRUCell: nnqd.GRUCell,
    nni.LinearReLU: nniqd.LinearReLU,
    # weight-only (with float_qparams_weight_only_qconfig), as in the static mapping
    nn.EmbeddingBag: nnq.EmbeddingBag,
    nn.Embedding: nnq.Embedding,
}

# -- functions -> quantized functions (for graph mode) -------------------------------------
DEFAULT_FLOAT_TO_QUANTIZED_OPERATOR_MAPPINGS = {
    F.relu: qF.relu,
    F.relu6: qF.relu6,
    F.max_pool2d: qF.max_pool2d,
    F.avg_pool2d: qF.avg_pool2d,
    F.adaptive_avg_pool2d: qF.adaptive_avg_pool2d,
    F.max_pool1d: qF.max_pool1d,
    F.avg_pool1d: qF.avg_pool1d,
    F.adaptive_avg_pool1d: qF.adaptive_avg_pool1d,
    F.interpolate: qF.interpolate,
    # PyTorch's entries: the quantized function takes the output's scale and zero point
    F.elu: qF.elu,
    F.hardswish: qF.hardswish,
    F.instance_norm: qF.instance_norm,
    F.layer_norm: qF.layer_norm,
    F.leaky_relu: qF.leaky_relu,
}

# containers that take a qconfig although they are no quantizable leaf
_INCLUDE_QCONFIG_PROPAGATE_LIST = {nn.Sequential}

# quantized outputs that keep their input's (scale, zero_point): no observer needed
_NO_OBSERVER_SET = {nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool1d,
                    nn.AdaptiveAvgPool1d}


def get_default_static_quant_module_mappings():
    """The static mapping: float, fused and QAT module classes -> int8 module classes.

    Returns a copy; changing it changes nothing else.

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> m = tq.get_default_static_quant_module_mappings()
    >>> m[tq.QuantStub].__name__, m[nn.Conv2d].__name__
    ('Quantize', 'Conv2d')
    """
    return dict(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS)


def get_default_qat_module_mappings():
    """The QAT mapping: float and fused module classes -> QAT module classes
    (``prepare_qat`` swaps through it; ``convert`` then uses the static mapping).

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> tq.get_default_qat_module_mappings()[nn.Linear].__module__
    'qlearn.nn.qat.modules.linear'
    """
    return dict(DEFAULT_QAT_MODULE_MAPPINGS)


def get_default_static_quant_reference_module_mappings():
    """The reference mapping: ``nn.Linear``, the convolutions (1-, 2-, 3-d, direct and
    transposed) and the embeddings -> their :mod:`qlearn.nn.quantized.reference` twins
    (float layers whose weight is quantized and dequantized), the stubs -> ``Quantize``
    / ``DeQuantize``; what :func:`~qlearn.quantization.quantize_fx.convert_to_reference_fx`
    and ``convert(..., is_reference=True)`` use.  (PyTorch's also has reference
    recurrent layers, which qlearn does not.)

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> tq.get_default_static_quant_reference_module_mappings()[nn.Linear].__module__
    'qlearn.nn.quantized.reference.modules.linear'
    """
    return dict(DEFAULT_REFERENCE_STATIC_QUANT_MODULE_MAPPINGS)


def get_embedding_qat_module_mappings():
    """The QAT mapping with the embeddings added: ``nn.Embedding`` / ``nn.EmbeddingBag``
    -> ``nnqat.Embedding`` / ``nnqat.EmbeddingBag``, which fake-quantize their tables
    (row-wise, :data:`~qlearn.quantization.fake_quantize.default_embedding_fake_quant`)
    while training.  Pass it as ``prepare_qat(model, mapping=...)``.

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> m = tq.get_embedding_qat_module_mappings()
    >>> m[nn.EmbeddingBag].__module__, m[nn.Linear].__name__
    ('qlearn.nn.qat.modules.embedding_ops', 'Linear')
    """
    mapping = dict(DEFAULT_QAT_MODULE_MAPPINGS)
    mapping[nn.EmbeddingBag] = nnqat.EmbeddingBag
    mapping[nn.Embedding] = nnqat.Embedding
    return mapping


def get_embedding_static_quant_module_mappings():
    """The static mapping with the QAT embeddings added: ``nnqat.Embedding`` /
    ``nnqat.EmbeddingBag`` -> ``nnq.Embedding`` / ``nnq.EmbeddingBag`` (the ``convert``
    step after :func:`get_embedding_qat_module_mappings`).

    >>> import qlearn.quantization as tq
    >>> import qlearn.nn.qat as nnqat
    >>> tq.get_embedding_static_quant_module_mappings()[nnqat.Embedding].__name__
    'Embedding'
    """
    mapping = dict(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS)
    mapping[nnqat.EmbeddingBag] = nnq.EmbeddingBag
    mapping[nnqat.Embedding] = nnq.Embedding
    return mapping


def get_default_dynamic_quant_module_mappings():
    """The dynamic mapping, PyTorch's: ``Linear`` (and the QAT ``nnqat.Linear``),
    ``LSTM``, ``GRU``, ``RNNCell``, ``LSTMCell``, ``GRUCell`` -> their ``nnqd`` classes,
    the fused ``nni.LinearReLU`` -> ``nniqd.LinearReLU``, and the weight-only
    ``Embedding`` / ``EmbeddingBag`` -> ``nnq.Embedding`` / ``nnq.EmbeddingBag`` (for a
    ``quantize_dynamic`` spec that gives them
    :data:`~qlearn.quantization.qconfig.float_qparams_weight_only_qconfig`).

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> m = tq.get_default_dynamic_quant_module_mappings()
    >>> print(sorted({c.__name__ for c in m}))   # doctest: +NORMALIZE_WHITESPACE
    ['Embedding', 'EmbeddingBag', 'GRU', 'GRUCell', 'LSTM', 'LSTMCell', 'Linear',
     'LinearReLU', 'RNNCell']
    >>> m[nn.Embedding].__module__
    'qlearn.nn.quantized.modules.embedding_ops'
    """
    return dict(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)


def get_default_float_to_quantized_operator_mappings():
    """Float functions of :mod:`qlearn.nn.functional` -> their quantized twins in
    :mod:`qlearn.nn.quantized.functional`: PyTorch's entries (``elu``, ``hardswish``,
    ``instance_norm``, ``layer_norm``, ``leaky_relu``, whose quantized forms take the
    output's scale and zero point; PyTorch maps them to the ``torch.ops.quantized``
    operators, qlearn to the ``qF`` functions that compute them), and the ones whose
    output keeps the input's scale and zero point (``relu``, the poolings,
    ``interpolate``), which PyTorch runs on quantized tensors as they are.  PyTorch's
    ``F.dropout`` entry has no twin: qlearn has no quantized dropout function (the
    ``nnq.Dropout`` module is the identity in eval mode).

    >>> import qlearn.quantization as tq
    >>> import qlearn.nn.functional as F
    >>> tq.get_default_float_to_quantized_operator_mappings()[F.relu].__module__
    'qlearn.nn.quantized.functional'
    """
    return dict(DEFAULT_FLOAT_TO_QUANTIZED_OPERATOR_MAPPINGS)


def get_quantized_operator(float_op):
    """The quantized function for the float function ``float_op``.

    Raises ``ValueError`` when there is none.

    >>> import qlearn.quantization as tq
    >>> import qlearn.nn.functional as F
    >>> tq.get_quantized_operator(F.max_pool2d).__name__
    'max_pool2d'
    """
    op = DEFAULT_FLOAT_TO_QUANTIZED_OPERATOR_MAPPINGS.get(float_op)
    if op is None:
        known = sorted(f.__name__ for f in DEFAULT_FLOAT_TO_QUANTIZED_OPERATOR_MAPPINGS)
        raise ValueError(f"`float_op` {getattr(float_op, '__name__', float_op)!r} has no "
                         f"quantized operator; the mapped ones are {known}")
    return op


def get_static_quant_module_class(float_module_class, additional_static_quant_mapping=None,
                                  is_reference=False):
    """The int8 class that replaces ``float_module_class`` in static quantization (its
    reference class with ``is_reference=True``).

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> tq.get_static_quant_module_class(nn.Linear).__name__
    'Linear'
    """
    base = DEFAULT_REFERENCE_STATIC_QUANT_MODULE_MAPPINGS if is_reference \
        else DEFAULT_STATIC_QUANT_MODULE_MAPPINGS
    mapping = {**base, **(additional_static_quant_mapping or {})}
    cls = mapping.get(float_module_class)
    if cls is None:
        raise ValueError(f"`float_module_class` {_class_name(float_module_class)} has no "
                         f"static quantized module in the mapping")
    return cls


def get_dynamic_quant_module_class(float_module_class,
                                   additional_dynamic_quant_mapping=None):
    """The ``nnqd`` class that replaces ``float_module_class`` in dynamic quantization.

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> tq.get_dynamic_quant_module_class(nn.LSTM).__module__
    'qlearn.nn.quantized.dynamic.modules.rnn'
    """
    mapping = {**DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS,
               **(additional_dynamic_quant_mapping or {})}
    cls = mapping.get(float_module_class)
    if cls is None:
        raise ValueError(f"`float_module_class` {_class_name(float_module_class)} has no "
                         f"dynamic quantized module in the mapping")
    return cls


def get_default_qconfig_propagation_list():
    """Every module class a qconfig is meant for: the keys of the three mappings and
    ``nn.Sequential`` (a set).

    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> nn.LSTM in tq.get_default_qconfig_propagation_list()
    True
    """
    return (set(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS) | set(DEFAULT_QAT_MODULE_MAPPINGS)
            | set(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS) | _INCLUDE_QCONFIG_PROPAGATE_LIST)


def get_default_compare_output_module_list():
    """The module classes whose outputs the numeric suite compares: the float and
    quantized classes of the static and dynamic mappings (a set).

    >>> import qlearn.quantization as tq
    >>> import qlearn.nn.quantized as nnq
    >>> nnq.Linear in tq.get_default_compare_output_module_list()
    True
    """
    return (set(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS.values())
            | set(DEFAULT_QAT_MODULE_MAPPINGS.values())
            | set(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS.values())
            | set(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS)
            | set(DEFAULT_QAT_MODULE_MAPPINGS)
            | set(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)
            | _INCLUDE_QCONFIG_PROPAGATE_LIST)


def no_observer_set():
    """The module classes ``prepare`` leaves without an output observer: their
    quantized forms keep the input's scale and zero point (see the module notes).

    >>> import qlearn.quantization as tq
    >>> sorted(c.__name__ for c in tq.no_observer_set())
    ['AdaptiveAvgPool1d', 'AdaptiveAvgPool2d', 'MaxPool1d', 'MaxPool2d', 'ReLU']
    """
    return set(_NO_OBSERVER_SET)


# -- names for messages ----------------------------------------------------------------------
_PREFIXES = (("qlearn.nn.quantized.dynamic", "nnqd"), ("qlearn.nn.quantized", "nnq"),
             ("qlearn.nn.intrinsic.quantized", "nniq"), ("qlearn.nn.intrinsic.qat", "nniqat"),
             ("qlearn.nn.intrinsic", "nni"), ("qlearn.nn.qat", "nnqat"),
             ("qlearn.quantization", "tq"), ("qlearn.nn", "nn"))


def _class_name(cls):
    """``nnq.Conv2d``, ``nn.Linear``, ... (the package alias a reader writes)."""
    mod = getattr(cls, "__module__", "") or ""
    for prefix, alias in _PREFIXES:
        if mod == prefix or mod.startswith(prefix + "."):
            return f"{alias}.{cls.__name__}"
    return getattr(cls, "__qualname__", repr(cls))
