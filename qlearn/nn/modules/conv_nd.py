"""``Conv1d`` and ``Conv3d`` (``Conv2d`` is in :mod:`qlearn.nn.modules.conv`)."""
from .. import functional_conv_nd as FN
from ._utils import check_conv_channels, check_factory_kwargs
from .conv import _ConvBase

__all__ = ["Conv1d", "Conv3d"]


class _ConvNd(_ConvBase):
    """What ``Conv1d`` and ``Conv3d`` share: PyTorch's arguments and their checks."""

    _DIMS = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        check_conv_channels(in_channels, out_channels, groups)
        if padding_mode not in FN._PADDING_MODES:
            raise ValueError(f"`padding_mode` must be one of {FN._PADDING_MODES}, got "
                             f"{padding_mode!r}")
        n = self._DIMS
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = FN._ntuple(kernel_size, n, "kernel_size", 1)
        self.stride = FN._ntuple(stride, n, "stride", 1)
        self.dilation = FN._ntuple(dilation, n, "dilation", 1)
        if isinstance(padding, str):
            FN.conv_padding(padding, self.kernel_size, self.stride, self.dilation)
            self.padding = padding
        else:
            self.padding = FN._ntuple(padding, n, "padding", 0)
        self.groups, self.padding_mode = groups, padding_mode
        self._init_parameters((out_channels, in_channels // groups) + self.kernel_size,
                              bias)

    def _conv_forward(self, input, weight, bias):
        return FN._convnd(input, weight, bias, self.stride, self.padding, self.dilation,
                          self.groups, self.padding_mode, self._DIMS, type(self).__name__)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvNd):
    r"""1-d convolution (cross-correlation), as ``torch.nn.Conv1d``:

    .. math::
        y_{n,o,p} = b_o + \sum_{c<C/G}\sum_{k<K} W_{o,c,k}\, x_{n,\,gC/G + c,\; pS - P + kD}

    for output channel :math:`o` in group :math:`g`, over (N, C, L) or unbatched (C, L)
    input (see :func:`qlearn.nn.functional.conv1d`).  ``weight`` is
    (out_channels, in_channels/groups, K).  ``padding`` may be ``"same"`` or
    ``"valid"``; ``padding_mode`` is ``"zeros"``, ``"reflect"``, ``"replicate"`` or
    ``"circular"``, as PyTorch's.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> m = nn.Conv1d(2, 4, 3, padding=1)
    >>> m
    Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=(1,))
    >>> m(np.zeros((8, 2, 10), np.float32)).shape
    (8, 4, 10)
    """

    _DIMS = 1


class Conv3d(_ConvNd):
    r"""3-d convolution (cross-correlation), as ``torch.nn.Conv3d``:

    .. math::
        y_{n,o,t,p,q} = b_o + \sum_{c,i,j,k} W_{o,c,i,j,k}\,
        x_{n,\,gC/G + c,\; tS_D - P_D + iD_D,\; pS_H - P_H + jD_H,\; qS_W - P_W + kD_W}

    over (N, C, D, H, W) or unbatched (C, D, H, W) input (see
    :func:`qlearn.nn.functional.conv3d`); ``weight`` is
    (out_channels, in_channels/groups, KD, KH, KW).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> m = nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    >>> m(np.zeros((1, 3, 4, 9, 9), np.float32)).shape
    (1, 8, 4, 5, 5)
    """

    _DIMS = 3
