"""The reference quantized ``Conv2d``."""
from ....modules.conv import Conv2d as _FloatConv2d
from .utils import ReferenceQuantizedModule

__all__ = ["Conv2d"]


class Conv2d(ReferenceQuantizedModule, _FloatConv2d):
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

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, weight_qparams=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self._init_weight_qparams(weight_qparams)

    def forward(self, x):
        from .... import functional as F
        return F.conv2d(self._float_input(x), self.get_weight(), self.bias, self.stride,
                        self.padding, self.dilation, self.groups)

    @classmethod
    def from_float(cls, float_conv, weight_qparams):
        """A reference ``Conv2d`` with ``float_conv``'s parameters (copied)."""
        if not isinstance(float_conv, _FloatConv2d):
            raise TypeError(f"`float_conv` must be an nn.Conv2d, got "
                            f"{type(float_conv).__name__}")
        c = float_conv
        ref = cls(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                  c.dilation, c.groups, c.bias is not None, c.padding_mode,
                  weight_qparams=weight_qparams)
        ref.weight.data[...] = c.weight.data
        if c.bias is not None:
            ref.bias.data[...] = c.bias.data
        return ref
