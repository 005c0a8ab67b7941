r"""``nnqat.dynamic.Linear``: a QAT Linear for dynamic quantization."""
from ...modules.linear import Linear as _QATLinear

__all__ = ["Linear"]


def _is_memoryless(observer):
    return getattr(observer, "averaging_constant", None) == 1


def activation_is_memoryless(qconfig):
    """Whether ``qconfig``'s activation observer (or the observer inside its fake
    quantizer) is a moving average with ``averaging_constant`` 1: it forgets every
    batch but the last, as dynamic quantization's per-call qparams do."""
    act = qconfig.activation()
    inner = getattr(act, "activation_post_process", None)
    return _is_memoryless(inner if inner is not None else act)


class Linear(_QATLinear):
    r"""Linear layer for dynamic quantization-aware training
    (``torch.ao.nn.qat.dynamic.Linear``): :class:`qlearn.nn.qat.Linear`,
    :math:`y = x\,\operatorname{fq}(W)^\top + b`, whose qconfig must observe activations
    without memory (a moving average with ``averaging_constant=1``, as
    :data:`~qlearn.quantization.fake_quantize.default_dynamic_fake_quant`), since the
    dynamic layer it becomes (:class:`qlearn.nn.quantized.dynamic.Linear`, through
    ``from_float``) takes the qparams of each input anew.

    Raises ``ValueError`` for a qconfig with a remembering activation observer.

    Examples
    --------
    >>> import numpy as np
    >>> import qlearn.nn.qat as nnqat
    >>> import qlearn.quantization as tq
    >>> qconfig = tq.QConfig(activation=tq.default_dynamic_fake_quant,
    ...                      weight=tq.default_weight_fake_quant)
    >>> m = nnqat.dynamic.Linear(4, 2, qconfig=qconfig)
    >>> m(np.ones((3, 4), np.float32)).shape
    (3, 2)
    >>> import qlearn.nn.quantized.dynamic as nnqd
    >>> type(nnqd.Linear.from_float(m)).__name__
    'Linear'
    """

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias, qconfig, device, dtype)
        if not activation_is_memoryless(qconfig):
            raise ValueError("nnqat.dynamic.Linear: dynamic QAT needs a memoryless "
                             "activation observer (a moving-average observer with "
                             "averaging_constant=1, e.g. default_dynamic_fake_quant), got "
                             f"{qconfig.activation!r}")
