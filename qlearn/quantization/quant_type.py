"""``QuantType``: the four ways a module is quantized (as ``torch.ao.quantization.QuantType``).

The custom configs of graph mode (:mod:`qlearn.quantization.fx.custom_config`) key their
custom-module mappings by it; their dictionary form writes it as a lower-case string
(``"static"``, ``"dynamic"``, ``"qat"``, ``"weight_only"``).
"""
import enum

__all__ = ["QuantType"]


class QuantType(enum.IntEnum):
    """How a module is quantized; the values are PyTorch's.

    ``DYNAMIC`` (0)
        int8 weights, activations quantized on the fly (``quantize_dynamic``);
    ``STATIC`` (1)
        int8 weights and activations with calibrated qparams (``prepare`` /
        ``convert``);
    ``QAT`` (2)
        static, with the qparams learned by quantization-aware training;
    ``WEIGHT_ONLY`` (3)
        quantized weights, float activations (embeddings).

    >>> from qlearn.quantization import QuantType
    >>> list(QuantType)
    [<QuantType.DYNAMIC: 0>, <QuantType.STATIC: 1>, <QuantType.QAT: 2>, <QuantType.WEIGHT_ONLY: 3>]
    """

    DYNAMIC = 0
    STATIC = 1
    QAT = 2
    WEIGHT_ONLY = 3


_QUANT_TYPE_TO_STR = {
    QuantType.STATIC: "static",
    QuantType.DYNAMIC: "dynamic",
    QuantType.QAT: "qat",
    QuantType.WEIGHT_ONLY: "weight_only",
}


def _get_quant_type_to_str(quant_type):
    """``QuantType.STATIC`` -> ``"static"`` (the key of the custom configs' dict form)."""
    if quant_type not in _QUANT_TYPE_TO_STR:
        raise ValueError(f"`quant_type` must be a QuantType, got {quant_type!r}")
    return _QUANT_TYPE_TO_STR[quant_type]


def _quant_type_from_str(name):
    """``"static"`` -> ``QuantType.STATIC``."""
    for quant_type, s in _QUANT_TYPE_TO_STR.items():
        if name == s:
            return quant_type
    raise ValueError(f"`quant_type` name must be one of {list(_QUANT_TYPE_TO_STR.values())}, "
                     f"got {name!r}")
