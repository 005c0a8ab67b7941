r"""The reference quantized ``Conv1d`` / ``Conv3d`` and the transposed convolutions
``ConvTranspose1d`` / ``2d`` / ``3d``: each is its float layer computing with the
quantized-dequantized weight :math:`\hat W` (eq. in
:mod:`~qlearn.nn.quantized.reference.modules.utils`), as
``torch.ao.nn.quantized.reference``'s.  A transposed convolution's weight is
(in_channels, out_channels/groups, \*K): a per-channel ``weight_qparams`` for it names
its ``axis`` (PyTorch's graph mode uses 1, the output channels)."""
from .... import functional_conv_transpose as FT
from ....modules.conv_nd import Conv1d as _FloatConv1d
from ....modules.conv_nd import Conv3d as _FloatConv3d
from ....modules.conv_transpose import ConvTranspose1d as _FloatConvTranspose1d
from ....modules.conv_transpose import ConvTranspose2d as _FloatConvTranspose2d
from ....modules.conv_transpose import ConvTranspose3d as _FloatConvTranspose3d
from .utils import ReferenceQuantizedModule

__all__ = ["Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


def _copy_parameters(ref, float_conv):
    ref.weight.data[...] = float_conv.weight.data
    if float_conv.bias is not None:
        ref.bias.data[...] = float_conv.bias.data
    return ref


class _ReferenceConvNd(ReferenceQuantizedModule):
    """``Conv1d`` / ``Conv3d``: the float layer's ``_conv_forward`` with :math:`\\hat W`."""

    _FLOAT = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, weight_qparams=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self._init_weight_qparams(weight_qparams)

    def forward(self, x):
        return self._conv_forward(self._float_input(x), self.get_weight(), self.bias)

    @classmethod
    def from_float(cls, float_conv, weight_qparams):
        """A reference convolution with ``float_conv``'s geometry and parameters
        (copied) and the given weight qparams."""
        if type(float_conv) is not cls._FLOAT:
            raise TypeError(f"`float_conv` must be an nn.{cls._FLOAT.__name__}, got "
                            f"{type(float_conv).__name__}")
        c = float_conv
        ref = cls(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                  c.dilation, c.groups, c.bias is not None, c.padding_mode,
                  weight_qparams=weight_qparams)
        return _copy_parameters(ref, c)


class Conv1d(_ReferenceConvNd, _FloatConv1d):
    r"""Reference quantized 1-d convolution (``torch.ao.nn.quantized.reference.Conv1d``):
    ``conv1d(x, Ŵ, b)`` in float.

    Parameters are ``nn.Conv1d``'s, then ``weight_qparams`` (see
    :class:`qlearn.nn.quantized.reference.Linear`).

    >>> import numpy as np, qlearn as ql
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> ref = nnqr.Conv1d.from_float(nn.Conv1d(1, 2, 3), {"qscheme": ql.per_tensor_affine,
    ...     "dtype": ql.qint8, "scale": 0.01, "zero_point": 0})
    >>> ref
    QuantizedConv1d(Reference)(1, 2, kernel_size=(3,), stride=(1,))
    >>> ref(np.ones((1, 1, 5), np.float32)).shape
    (1, 2, 3)
    """

    _NAME = "QuantizedConv1d(Reference)"
    _FLOAT = _FloatConv1d


class Conv3d(_ReferenceConvNd, _FloatConv3d):
    r"""Reference quantized 3-d convolution (``torch.ao.nn.quantized.reference.Conv3d``):
    ``conv3d(x, Ŵ, b)`` in float.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> ref = nnqr.Conv3d.from_float(nn.Conv3d(1, 2, 2), None)
    >>> ref
    QuantizedConv3d(Reference)(1, 2, kernel_size=(2, 2, 2), stride=(1, 1, 1))
    """

    _NAME = "QuantizedConv3d(Reference)"
    _FLOAT = _FloatConv3d


class _ReferenceConvTransposeNd(ReferenceQuantizedModule):
    """The transposed convolutions with :math:`\\hat W` (``output_size`` as the float
    layer's)."""

    _FLOAT = None
    _FN = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None, weight_qparams=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         output_padding, groups, bias, dilation, padding_mode, device, dtype)
        self._init_weight_qparams(weight_qparams)

    def forward(self, x, output_size=None):
        x = self._float_input(x)
        return type(self)._FN(x, self.get_weight(), self.bias, self.stride, self.padding,
                              self._output_padding(x, output_size), self.groups,
                              self.dilation)

    @classmethod
    def from_float(cls, float_conv, weight_qparams):
        """A reference transposed convolution with ``float_conv``'s geometry and
        parameters (copied) and the given weight qparams."""
        if type(float_conv) is not cls._FLOAT:
            raise TypeError(f"`float_conv` must be an nn.{cls._FLOAT.__name__}, got "
                            f"{type(float_conv).__name__}")
        c = float_conv
        ref = cls(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                  c.output_padding, c.groups, c.bias is not None, c.dilation,
                  c.padding_mode, weight_qparams=weight_qparams)
        return _copy_parameters(ref, c)


class ConvTranspose1d(_ReferenceConvTransposeNd, _FloatConvTranspose1d):
    r"""Reference quantized 1-d transposed convolution
    (``torch.ao.nn.quantized.reference.ConvTranspose1d``): ``conv_transpose1d(x, Ŵ, b)``
    in float; ``forward(x, output_size=None)``.

    >>> import numpy as np, qlearn as ql
    >>> from qlearn import nn
    >>> import qlearn.nn.quantized.reference as nnqr
    >>> ref = nnqr.ConvTranspose1d.from_float(nn.ConvTranspose1d(2, 1, 3, stride=2), None)
    >>> ref
    QuantizedConvTranspose1d(Reference)(2, 1, kernel_size=(3,), stride=(2,))
    >>> ref(np.ones((1, 2, 4), np.float32), output_size=(10,)).shape
    (1, 1, 10)
    """

    _NAME = "QuantizedConvTranspose1d(Reference)"
    _FLOAT = _FloatConvTranspose1d
    _FN = staticmethod(FT.conv_transpose1d)


class ConvTranspose2d(_ReferenceConvTransposeNd, _FloatConvTranspose2d):
    r"""Reference quantized 2-d transposed convolution
    (``torch.ao.nn.quantized.reference.ConvTranspose2d``).

    >>> import qlearn.nn.quantized.reference as nnqr
    >>> nnqr.ConvTranspose2d(2, 1, 3)
    QuantizedConvTranspose2d(Reference)(2, 1, kernel_size=(3, 3), stride=(1, 1))
    """

    _NAME = "QuantizedConvTranspose2d(Reference)"
    _FLOAT = _FloatConvTranspose2d
    _FN = staticmethod(FT.conv_transpose2d)


class ConvTranspose3d(_ReferenceConvTransposeNd, _FloatConvTranspose3d):
    r"""Reference quantized 3-d transposed convolution
    (``torch.ao.nn.quantized.reference.ConvTranspose3d``).

    >>> import qlearn.nn.quantized.reference as nnqr
    >>> nnqr.ConvTranspose3d(2, 1, 3)
    QuantizedConvTranspose3d(Reference)(2, 1, kernel_size=(3, 3, 3), stride=(1, 1, 1))
    """

    _NAME = "QuantizedConvTranspose3d(Reference)"
    _FLOAT = _FloatConvTranspose3d
    _FN = staticmethod(FT.conv_transpose3d)
