"""Quantized fused modules: ``qlearn.nn.intrinsic.quantized`` mirrors
``torch.ao.nn.intrinsic.quantized``.  The ReLU is fused into the requantization: the
output is clamped below at its zero point (eq. :eq:`int8-requant`)."""
from ....dtypes import qint8
from ...quantized.modules.batchnorm import BatchNorm2d as _BatchNorm2d
from ...quantized.modules.batchnorm import BatchNorm3d as _BatchNorm3d
from ...quantized.modules.conv import Conv2d as _Conv2d
from ...quantized.modules.linear import Linear as _Linear
from ..modules.fused_nd import BNReLU3d as _FloatBNReLU3d
from .conv_relu_nd import ConvReLU1d, ConvReLU3d
from .linear_act import LinearLeakyReLU, LinearTanh
from . import dynamic  # noqa: E402,F401  (nniqd, as torch's subpackage)

__all__ = ["BNReLU2d", "BNReLU3d", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "LinearReLU",
           "LinearLeakyReLU", "LinearTanh"]


class LinearReLU(_Linear):
    r"""Quantized ``relu(linear(x))`` in one pass: :class:`qlearn.nn.quantized.Linear`
    whose requantization clamps at :math:`Z_o` (real 0).

    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> nniq.LinearReLU(4, 2)   # doctest: +ELLIPSIS
    QuantizedLinearReLU(in_features=4, out_features=2, scale=1.0, zero_point=0, qscheme=...)
    """

    _NAME = "QuantizedLinearReLU"
    _RELU = True

    def __init__(self, in_features, out_features, bias=True, dtype=qint8):
        # PyTorch names this argument ``bias`` here (``bias_`` in nnq.Linear)
        super().__init__(in_features, out_features, bias, dtype)

    @classmethod
    def _float_modules(cls):
        from ..modules.fused import LinearReLU as FloatLinearReLU
        from ..qat import LinearReLU as QATLinearReLU
        return (FloatLinearReLU, QATLinearReLU)


class ConvReLU2d(_Conv2d):
    r"""Quantized ``relu(conv2d(x))`` in one pass (output clamped at :math:`Z_o`).

    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> nniq.ConvReLU2d(3, 8, 3)
    QuantizedConvReLU2d(3, 8, kernel_size=(3, 3), stride=(1, 1), scale=1.0, zero_point=0)
    """

    _NAME = "QuantizedConvReLU2d"
    _RELU = True

    @classmethod
    def _float_modules(cls):
        from ..modules.fused import ConvReLU2d as FloatConvReLU2d
        from ..qat import ConvBnReLU2d as QATConvBnReLU2d
        from ..qat import ConvReLU2d as QATConvReLU2d
        return (FloatConvReLU2d, QATConvReLU2d, QATConvBnReLU2d)


class BNReLU2d(_BatchNorm2d):
    r"""Quantized ``relu(batch_norm(x))`` in one pass: :class:`qlearn.nn.quantized.BatchNorm2d`
    whose output is clamped below at :math:`Z_y` (PyTorch's ``quantized::batch_norm2d_relu``).

    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> nniq.BNReLU2d(4)
    QuantizedBNReLU2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    _NAME = "QuantizedBNReLU2d"
    _FLOAT_NAMES = ("BNReLU2d",)
    _RELU = True


class BNReLU3d(_BatchNorm3d):
    r"""Quantized ``relu(batch_norm(x))`` on (N, C, D, H, W) quint8 input in one pass:
    :class:`qlearn.nn.quantized.BatchNorm3d` clamped below at :math:`Z_y` (PyTorch's
    ``quantized::batch_norm3d_relu``); ``from_float`` takes an observed
    :class:`qlearn.nn.intrinsic.BNReLU3d`.

    .. math::

       q_y = \max\big(\operatorname{clamp}(\operatorname{round}(\alpha_c (q_x - Z_x)
       + b_c) + Z_y,\ 0,\ 255),\ Z_y\big)

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> m = nniq.BNReLU3d(2)
    >>> m
    QuantizedBNReLU3d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> m.scale, m.zero_point = 0.1, 10
    >>> x = ql.quantize_per_tensor(np.array([1.0, -1.0]).reshape(1, 2, 1, 1, 1), 0.1, 10,
    ...                            ql.quint8)
    >>> m(x).dequantize().ravel()       # the negative channel clamped at real 0
    array([1., 0.], dtype=float32)
    """

    _NAME = "QuantizedBNReLU3d"
    _FLOAT_NAMES = ("BNReLU3d",)
    _FUSED = _FloatBNReLU3d
    _RELU = True
