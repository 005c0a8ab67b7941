"""``Conv2d``."""
import math

import numpy as np

from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._utils import check_conv_channels, check_factory_kwargs, conv_extra_repr
from .module import Module

__all__ = ["Conv2d"]


class _ConvBase(Module):
    """What every float convolution (1-, 2-, 3-d, direct or transposed) shares: its
    parameters, PyTorch's initialisation of them, and its repr."""

    def _init_parameters(self, weight_shape, bias):
        """Create ``weight`` of ``weight_shape`` and ``bias`` (out_channels,) or None,
        then initialise them."""
        self.weight = Parameter(np.empty(weight_shape, np.float32))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        r"""Re-initialise as PyTorch: ``weight`` by ``kaiming_uniform_(a=sqrt(5))``, ``bias``
        from :math:`\mathcal U(-1/\sqrt{k}, 1/\sqrt{k})`, :math:`k` = fan-in of ``weight``."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        return conv_extra_repr(self)


class Conv2d(_ConvBase):
    r"""2-d convolution (cross-correlation), as ``torch.nn.Conv2d``:

    .. math::
        y_{n,o,p,q} = b_o + \sum_{c<C/G}\sum_{i<K_H}\sum_{j<K_W} W_{o,c,i,j}\,
        x_{n,\,gC/G + c,\; pS_H - P_H + iD_H,\; qS_W - P_W + jD_W}

    for output channel :math:`o` in group :math:`g`.  Computed by im2col and one matrix
    product per group (see :func:`qlearn.nn.functional.conv2d`).  ``weight`` is
    (out_channels, in_channels/groups, KH, KW), initialised as Linear's with
    :math:`k = C/G \cdot K_H K_W`.

    >>> from qlearn import nn
    >>> m = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    >>> m(np.zeros((1, 3, 9, 9), np.float32)).shape
    (1, 8, 5, 5)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        check_conv_channels(in_channels, out_channels, groups, allow_bool=True)
        if padding_mode != "zeros":
            raise ValueError(f"`padding_mode` must be 'zeros' (the only mode qlearn "
                             f"implements), got {padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        if isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 1:
            # (8,) is read as a square 8x8 kernel; PyTorch would build an unusable
            # 3-d weight from it (its forward then fails)
            kernel_size = kernel_size[0]
        self.kernel_size = F._pair(kernel_size, "kernel_size", 1)
        self.stride = F._pair(stride, "stride", 1)
        if isinstance(padding, str) and padding not in ("valid", "same"):
            # refused here, as torch.nn.Conv2d does, not at the first forward
            raise ValueError(f"`padding` must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
        self.padding = padding if isinstance(padding, str) else F._pair(padding, "padding", 0)
        self.dilation = F._pair(dilation, "dilation", 1)
        self.groups, self.padding_mode = groups, padding_mode
        self._init_parameters((out_channels, in_channels // groups) + self.kernel_size,
                              bias)

    def _conv_forward(self, input, weight, bias):
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)
