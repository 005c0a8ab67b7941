"""``nniq.ConvReLU1d`` and ``nniq.ConvReLU3d``: the quantized 1-d / 3-d convolutions with
the ReLU fused into the requantization (output clamped below at :math:`Z_o`)."""
from ...quantized.modules.conv_nd import Conv1d as _Conv1d
from ...quantized.modules.conv_nd import Conv3d as _Conv3d

__all__ = ["ConvReLU1d", "ConvReLU3d"]


class ConvReLU1d(_Conv1d):
    r"""Quantized ``relu(conv1d(x))`` in one pass (``torch.ao.nn.intrinsic.quantized.ConvReLU1d``).

    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> nniq.ConvReLU1d(3, 8, 3)
    QuantizedConvReLU1d(3, 8, kernel_size=(3,), stride=(1,), scale=1.0, zero_point=0)
    """

    _NAME = "QuantizedConvReLU1d"
    _RELU = True

    @classmethod
    def _float_modules(cls):
        """The fused float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ..modules.fused_nd import ConvReLU1d as FloatConvReLU1d
        from ..qat import ConvBnReLU1d as QATConvBnReLU1d
        from ..qat import ConvReLU1d as QATConvReLU1d
        return (FloatConvReLU1d, QATConvReLU1d, QATConvBnReLU1d)


class ConvReLU3d(_Conv3d):
    r"""Quantized ``relu(conv3d(x))`` in one pass (``torch.ao.nn.intrinsic.quantized.ConvReLU3d``).

    >>> import qlearn.nn.intrinsic.quantized as nniq
    >>> nniq.ConvReLU3d(3, 8, 3)
    QuantizedConvReLU3d(3, 8, kernel_size=(3, 3, 3), stride=(1, 1, 1), scale=1.0, zero_point=0)
    """

    _NAME = "QuantizedConvReLU3d"
    _RELU = True

    @classmethod
    def _float_modules(cls):
        """The fused float, QAT and QAT-with-BN classes ``from_float`` accepts."""
        from ..modules.fused_nd import ConvReLU3d as FloatConvReLU3d
        from ..qat import ConvBnReLU3d as QATConvBnReLU3d
        from ..qat import ConvReLU3d as QATConvReLU3d
        return (FloatConvReLU3d, QATConvReLU3d, QATConvBnReLU3d)
