"""``nnqat.Conv2d``: a Conv2d whose weight is fake-quantized in every forward pass."""
from ...modules.conv import Conv2d as _Conv2d
from ...parameter import Parameter
from ._common import check_qconfig, float_qconfig

__all__ = ["Conv2d"]


class _QATConv:
    """The QAT behaviour, mixed in before a float convolution (1-, 2- or 3-d):
    ``weight_fake_quant`` in ``forward``, ``from_float`` and ``to_float``."""

    _FLOAT_MODULE = None
    _FLOAT_CONV_MODULE = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", qconfig=None,
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        check_qconfig(qconfig, type(self).__name__)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input):
        return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A QAT convolution sharing the parameters of the float ``mod`` (the float
        convolution, or the fused ``ConvReLU...`` for the fused subclass) with
        ``mod.qconfig``."""
        qconfig = float_qconfig(mod, (cls._FLOAT_MODULE,), cls.__name__)
        conv = mod if type(mod) is cls._FLOAT_CONV_MODULE else mod[0]
        qat = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                  conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                  conv.padding_mode, qconfig=qconfig)
        qat.weight = conv.weight
        qat.bias = conv.bias
        return qat

    def _float_conv(self):
        conv = self._FLOAT_CONV_MODULE(self.in_channels, self.out_channels, self.kernel_size,
                                       self.stride, self.padding, self.dilation,
                                       self.groups, self.bias is not None,
                                       self.padding_mode)
        conv.weight = Parameter(self.weight.data.copy())
        if self.bias is not None:
            conv.bias = Parameter(self.bias.data.copy())
        return conv

    def to_float(self):
        """The float convolution with this layer's (not fake-quantized) weights."""
        conv = self._float_conv()
        conv.train(self.training)
        return conv


class Conv2d(_QATConv, _Conv2d):
    r"""2-d convolution for quantization-aware training (``torch.ao.nn.qat.Conv2d``):

    .. math::  y = \operatorname{conv2d}(x, \operatorname{fq}(W)) + b

    with :math:`\operatorname{fq}` = ``weight_fake_quant = qconfig.weight()``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        As :class:`qlearn.nn.Conv2d`.
    qconfig : QConfig
        Required.

    Examples
    --------
    >>> import qlearn.nn.qat as nnqat
    >>> from qlearn.quantization import get_default_qat_qconfig
    >>> m = nnqat.Conv2d(3, 4, 3, padding=1, qconfig=get_default_qat_qconfig("x86"))
    >>> m(np.ones((1, 3, 5, 5), np.float32)).shape
    (1, 4, 5, 5)
    """

    _FLOAT_MODULE = _Conv2d
    _FLOAT_CONV_MODULE = _Conv2d
