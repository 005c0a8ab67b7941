"""``ConvTranspose1d``, ``ConvTranspose2d`` and ``ConvTranspose3d`` (see
:mod:`qlearn.nn.functional_conv_transpose`)."""
import numpy as np

from .. import functional_conv_transpose as FT
from ..functional_conv_nd import _ntuple
from ._utils import check_conv_channels, check_factory_kwargs
from .conv import _ConvBase

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _ConvTransposeNd(_ConvBase):
    """PyTorch's arguments for the transposed convolutions, and ``output_size``."""

    _DIMS = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        check_conv_channels(in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"`padding_mode` must be 'zeros' for {type(self).__name__} "
                             f"(as PyTorch's), got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"`padding` must be an int or a tuple of ints for "
                             f"{type(self).__name__}, got {padding!r}")
        n = self._DIMS
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", 1)
        self.stride = _ntuple(stride, n, "stride", 1)
        self.padding = _ntuple(padding, n, "padding", 0)
        self.output_padding = _ntuple(output_padding, n, "output_padding", 0)
        self.dilation = _ntuple(dilation, n, "dilation", 1)
        self.groups, self.padding_mode = groups, padding_mode
        self._init_parameters((in_channels, out_channels // groups) + self.kernel_size,
                              bias)

    def _output_padding(self, input, output_size):
        """``output_padding``, or the one that gives ``output_size`` (as PyTorch's)."""
        if output_size is None:
            return self.output_padding
        n = self._DIMS
        size = tuple(output_size)[-n:]
        spatial = tuple(getattr(input, "shape", np.shape(input)))[-n:]
        smallest = FT.transposed_output_size(spatial, self.kernel_size, self.stride,
                                             self.padding, self.dilation, (0,) * n)
        pads = tuple(int(s) - m for s, m in zip(size, smallest))
        largest = tuple(m + max(s, d) - 1 for m, s, d in
                        zip(smallest, self.stride, self.dilation))
        if len(size) != n or any(not 0 <= p < max(s, d) for p, s, d in
                                 zip(pads, self.stride, self.dilation)):
            raise ValueError(f"`output_size` {tuple(output_size)} is not reachable: the "
                             f"spatial size must be between {smallest} and {largest}")
        return pads


class ConvTranspose1d(_ConvTransposeNd):
    r"""1-d transposed convolution, as ``torch.nn.ConvTranspose1d``: the adjoint of a
    ``Conv1d`` of the same geometry,
    :math:`L_{out} = (L-1)S - 2P + D(K-1) + P^{out} + 1`.  ``weight`` is
    (in_channels, out_channels/groups, K); ``forward(input, output_size=None)``.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> m = nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1)
    >>> m
    ConvTranspose1d(4, 2, kernel_size=(3,), stride=(2,), padding=(1,), output_padding=(1,))
    >>> m(np.zeros((1, 4, 5), np.float32)).shape
    (1, 2, 10)
    """

    _DIMS = 1

    def forward(self, input, output_size=None):
        return FT.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                   self._output_padding(input, output_size), self.groups,
                                   self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    r"""2-d transposed convolution, as ``torch.nn.ConvTranspose2d``; ``weight`` is
    (in_channels, out_channels/groups, KH, KW).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> m = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    >>> m(np.zeros((1, 4, 5, 5), np.float32), output_size=(10, 10)).shape
    (1, 2, 10, 10)
    """

    _DIMS = 2

    def forward(self, input, output_size=None):
        return FT.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                   self._output_padding(input, output_size), self.groups,
                                   self.dilation)


class ConvTranspose3d(_ConvTransposeNd):
    r"""3-d transposed convolution, as ``torch.nn.ConvTranspose3d``; ``weight`` is
    (in_channels, out_channels/groups, KD, KH, KW), per axis
    :math:`O_i = (L_i-1)S_i - 2P_i + D_i(K_i-1) + P^{out}_i + 1`.

    >>> import numpy as np
    >>> from qlearn import nn
    >>> m = nn.ConvTranspose3d(4, 2, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    >>> m
    ConvTranspose3d(4, 2, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    >>> m(np.zeros((1, 4, 3, 5, 5), np.float32), output_size=(3, 10, 10)).shape
    (1, 2, 3, 10, 10)
    """

    _DIMS = 3

    def forward(self, input, output_size=None):
        return FT.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                   self._output_padding(input, output_size), self.groups,
                                   self.dilation)
