"""Quantized activations with their own output parameters: ``Hardswish``, ``ELU``,
``LeakyReLU``, ``Sigmoid`` and ``Softmax`` (``torch.ao.nn.quantized``'s).  Each applies its
:mod:`qlearn.nn.quantized.functional` map and requantizes to ``(scale, zero_point)``."""
import numpy as np

from ....dtypes import quint8
from ....qtensor import quantize_per_tensor
from ...modules.module import Module
from .. import functional as qF
from .utils import activation_qparams


class _OutputQParams(Module):
    """An activation whose output has its own ``scale`` and ``zero_point``."""

    _BUFFERS = False

    def __init__(self, scale, zero_point):
        super().__init__()
        # PyTorch's Hardswish and LeakyReLU keep scale and zero point as buffers (in the
        # state dict; the output's q_scale() is the float32 value), its ELU and Sigmoid
        # as Python numbers
        if self._BUFFERS:
            self.register_buffer("scale", np.array(scale, np.float32))
            self.register_buffer("zero_point", np.array(zero_point, np.int64))
        else:
            self.scale = float(scale)
            self.zero_point = int(zero_point)

    def _qparams(self):
        return float(np.asarray(self.scale)), int(np.asarray(self.zero_point))

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

    _BUFFERS = True

    def forward(self, input):
        return qF.hardswish(input, *self._qparams())

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
        return qF.elu(input, *self._qparams(), self.alpha)

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

    _BUFFERS = True

    def __init__(self, scale, zero_point, negative_slope=0.01, inplace=False):
        super().__init__(scale, zero_point)
        self.negative_slope = negative_slope
        self.inplace = inplace

    @classmethod
    def _float_kwargs(cls, mod):
        return {"negative_slope": mod.negative_slope, "inplace": getattr(mod, "inplace",
                                                                         False)}

    def forward(self, input):
        return qF.leaky_relu(input, self.negative_slope, False, *self._qparams())

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


class Softmax(_OutputQParams):
    r"""Quantized softmax along ``dim``, requantized to ``(scale, zero_point)``: as
    PyTorch's x86 kernel, the input is dequantized, :math:`y_i = e^{x_i} / \sum_j e^{x_j}`
    computed in float32 and quantized (float32 exponentials differ by an ulp between
    libraries, so an output integer can differ from PyTorch's by one at a rounding
    boundary).  ``dim=None`` picks PyTorch's legacy default (0 for 0-, 1- and 3-d
    inputs, else 1).

    >>> import qlearn.nn.quantized as nnq
    >>> m = nnq.Softmax(dim=-1, scale=1 / 256, zero_point=0)
    >>> m
    QuantizedSoftmax(dim=-1)
    >>> m(ql.quantize_per_tensor([[0.0, 0.0, 1.0]], 0.05, 100, ql.quint8)).int_repr()
    array([[ 54,  54, 147]], dtype=uint8)
    """

    def __init__(self, dim=None, scale=1.0, zero_point=0):
        super().__init__(scale, zero_point)
        self.dim = dim

    @classmethod
    def from_float(cls, mod):
        """Build from an observed float ``nn.Softmax``: its ``dim`` and the output qparams
        of its ``activation_post_process``."""
        scale, zero_point = activation_qparams(mod, cls.__name__)
        return cls(getattr(mod, "dim", None), scale, zero_point)

    def forward(self, input):
        qF.require_quantized(input, "QuantizedSoftmax")
        x = np.asarray(input.dequantize(), np.float32)
        dim = self.dim if self.dim is not None else (0 if x.ndim in (0, 1, 3) else 1)
        if x.size == 0:
            return quantize_per_tensor(x, *self._qparams(), quint8)
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        return quantize_per_tensor(e / e.sum(axis=dim, keepdims=True), *self._qparams(),
                                   quint8)

    def __repr__(self):
        return f"QuantizedSoftmax(dim={self.dim})"
