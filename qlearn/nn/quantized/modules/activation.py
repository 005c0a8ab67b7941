"""Quantized activations with their own output parameters: ``Hardswish``, ``ELU``,
``LeakyReLU`` and ``Sigmoid`` (``torch.ao.nn.quantized``'s).  Each applies its
:mod:`qlearn.nn.quantized.functional` map and requantizes to ``(scale, zero_point)``."""
import numpy as np

from ...modules.module import Module
from .. import functional as qF
from .utils import activation_qparams


class _OutputQParams(Module):
    """An activation whose output has its own ``scale`` and ``zero_point``."""

    _FLOAT32_SCALE = False

    def __init__(self, scale, zero_point):
        super().__init__()
        # PyTorch's Hardswish and LeakyReLU keep the scale in a float32 buffer (so the
        # output's q_scale() is the float32 value), its ELU and Sigmoid a Python float
        self.scale = float(np.float32(scale)) if self._FLOAT32_SCALE else float(scale)
        self.zero_point = int(zero_point)

    @classmethod
    def _float_kwargs(cls, mod):
        return {}

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float module: the output qparams of its
        ``activation_post_process`` and its own arguments."""
        scale, zero_point = activation_qparams(mod, cls.__name__)
        return cls(scale, zero_point, **cls._float_kwargs(mod))


class Hardswish(_OutputQParams):
    r"""Quantized hard swish, :math:`x \cdot \operatorname{clamp}(x + 3, 0, 6) / 6`
    (:func:`qlearn.nn.quantized.functional.hardswish`).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.Hardswish(0.05, 20)
    >>> m
    QuantizedHardswish()
    >>> m(ql.quantize_per_tensor([-1.0, 1.0], 0.05, 100, ql.quint8)).int_repr()
    array([13, 33], dtype=uint8)
    """

    _FLOAT32_SCALE = True

    def forward(self, input):
        return qF.hardswish(input, self.scale, self.zero_point)

    def __repr__(self):
        return "QuantizedHardswish()"


class ELU(_OutputQParams):
    r"""Quantized ELU, :math:`x` for :math:`x > 0`, :math:`\alpha (e^x - 1)` otherwise
    (:func:`qlearn.nn.quantized.functional.elu`).

    >>> import qlearn.nn.quantized as nnq
    >>> nnq.ELU(0.05, 100, alpha=0.5)
    QuantizedELU(alpha=0.5)
    """

    def __init__(self, scale, zero_point, alpha=1.0):
        super().__init__(scale, zero_point)
        self.alpha = alpha

    @classmethod
    def _float_kwargs(cls, mod):
        return {"alpha": mod.alpha}

    def forward(self, input):
        return qF.elu(input, self.scale, self.zero_point, self.alpha)

    def __repr__(self):
        return f"QuantizedELU(alpha={self.alpha})"


class LeakyReLU(_OutputQParams):
    r"""Quantized leaky ReLU, :math:`x` for :math:`x > 0`, :math:`\text{negative\_slope}
    \cdot x` otherwise (:func:`qlearn.nn.quantized.functional.leaky_relu`).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.LeakyReLU(0.05, 100, negative_slope=0.1)
    >>> m
    QuantizedLeakyReLU(negative_slope=0.1)
    >>> m(ql.quantize_per_tensor([-2.0, 1.0], 0.05, 100, ql.quint8)).dequantize()
    array([-0.2,  1. ], dtype=float32)
    """

    _FLOAT32_SCALE = True

    def __init__(self, scale, zero_point, negative_slope=0.01, inplace=False):
        super().__init__(scale, zero_point)
        self.negative_slope = negative_slope
        self.inplace = inplace

    @classmethod
    def _float_kwargs(cls, mod):
        return {"negative_slope": mod.negative_slope, "inplace": getattr(mod, "inplace",
                                                                         False)}

    def forward(self, input):
        return qF.leaky_relu(input, self.negative_slope, False, self.scale, self.zero_point)

    def __repr__(self):
        return f"QuantizedLeakyReLU(negative_slope={self.negative_slope})"


class Sigmoid(_OutputQParams):
    r"""Quantized sigmoid, :math:`1 / (1 + e^{-x})`, requantized to
    ``(output_scale, output_zero_point)`` (:func:`qlearn.nn.quantized.functional.sigmoid`).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.Sigmoid(1 / 256, 0)
    >>> m(ql.quantize_per_tensor([-1.0, 0.0, 1.0], 0.05, 100, ql.quint8)).int_repr()
    array([ 69, 128, 187], dtype=uint8)
    """

    def __init__(self, output_scale, output_zero_point):
        super().__init__(output_scale, output_zero_point)
        self.output_scale = self.scale
        self.output_zero_point = self.zero_point

    def forward(self, input):
        return qF.sigmoid(input, self.output_scale, self.output_zero_point)

    def __repr__(self):
        return "Sigmoid()"
