"""``MaxPool1d``, ``AvgPool1d``, ``AdaptiveAvgPool1d`` (see
:mod:`qlearn.nn.functional_pool_1d`)."""
from .. import functional_pool_1d as FP
from .module import Module

__all__ = ["MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d"]


class MaxPool1d(Module):
    r"""Max over each ``kernel_size`` window of (N, C, L) or (C, L) input:
    :math:`y_{n,c,p} = \max_k x_{n,c,\,pS - P + kD}` (``torch.nn.MaxPool1d``).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> nn.MaxPool1d(2)
    MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> nn.MaxPool1d(3, stride=2, padding=1)(np.zeros((1, 4, 9))).shape
    (1, 4, 5)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return FP.max_pool1d(input, self.kernel_size, self.stride, self.padding,
                             self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")


class AvgPool1d(Module):
    r"""Mean over each ``kernel_size`` window of (N, C, L) input (``torch.nn.AvgPool1d``;
    the sizes are kept as 1-tuples, as PyTorch's).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> nn.AvgPool1d(2)
    AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    >>> nn.AvgPool1d(2)(np.ones((1, 1, 4))).numpy()
    array([[[1., 1.]]], dtype=float32)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = (FP.single(kernel_size, "kernel_size", 1),)
        self.stride = self.kernel_size if stride is None or stride == [] else \
            (FP.single(stride, "stride", 1),)
        self.padding = (FP.single(padding, "padding", 0),)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        return FP.avg_pool1d(input, self.kernel_size, self.stride, self.padding,
                             self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(Module):
    r"""Mean over the ``output_size`` windows that divide L (``torch.nn.AdaptiveAvgPool1d``).

    >>> import numpy as np
    >>> from qlearn import nn
    >>> nn.AdaptiveAvgPool1d(1)(np.ones((2, 3, 7))).shape
    (2, 3, 1)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return FP.adaptive_avg_pool1d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
