"""The reference quantized ``Conv2d``."""
from ....modules.conv import Conv2d as _FloatConv2d
from .conv_nd import _copy_parameters, _ReferenceConvNd

__all__ = ["Conv2d"]


class Conv2d(_ReferenceConvNd, _FloatConv2d):
    r"""Reference quantized 2-d convolution (``torch.ao.nn.quantized.reference.Conv2d``):
    the float convolution with the quantized-dequantized weight :math:`\hat W`.

    Parameters are ``nn.Conv2d``'s, then ``weight_qparams`` (see
    :class:`qlearn.nn.quantized.reference.Linear`).

    Examples
    --------
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> conv = nn.Conv2d(1, 2, 3)
    >>> ref = nnqr.Conv2d.from_float(conv, {"qscheme": ql.per_channel_symmetric,
    ...     "dtype": ql.qint8, "scale": np.float32([0.01, 0.02]),
    ...     "zero_point": np.zeros(2, np.int64), "axis": 0})
    >>> ref
    QuantizedConv2d(Reference)(1, 2, kernel_size=(3, 3), stride=(1, 1))
    >>> ref(np.ones((1, 1, 4, 4), np.float32)).shape
    (1, 2, 2, 2)
    """

    _NAME = "QuantizedConv2d(Reference)"
    _FLOAT = _FloatConv2d

    @classmethod
    def from_float(cls, float_conv, weight_qparams):
        """A reference ``Conv2d`` with ``float_conv``'s parameters (copied); unlike the
        other dimensions it also takes a subclass of ``nn.Conv2d``, as it always has."""
        if not isinstance(float_conv, _FloatConv2d):
            raise TypeError(f"`float_conv` must be an nn.Conv2d, got "
                            f"{type(float_conv).__name__}")
        c = float_conv
        ref = cls(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                  c.dilation, c.groups, c.bias is not None, c.padding_mode,
                  weight_qparams=weight_qparams)
        return _copy_parameters(ref, c)
