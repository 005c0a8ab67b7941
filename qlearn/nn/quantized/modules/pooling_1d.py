"""``nnq.MaxPool1d`` and ``nnq.AdaptiveAvgPool1d``: the quantized twins the static
mapping swaps in for the float 1-d poolings (qlearn's float layers take float arrays
only; PyTorch's run on quantized tensors as they are).  The output keeps the input's
scale and zero point, so ``prepare`` observes neither."""
from .. import functional_pool_1d as qFP
from ..packed_params import require_quantized
from .misc import AdaptiveAvgPool2d, MaxPool2d

__all__ = ["MaxPool1d", "AdaptiveAvgPool1d"]


class MaxPool1d(MaxPool2d):
    """Quantized 1-d max pooling (:func:`qlearn.nn.quantized.functional.max_pool1d`).

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> x = ql.quantize_per_tensor(np.array([[[1.0, 3.0, 2.0, 5.0]]]), 1.0, 0, ql.quint8)
    >>> nnq.MaxPool1d(2)(x).int_repr()
    array([[[3, 5]]], dtype=uint8)
    """

    def forward(self, x):
        require_quantized(x, "MaxPool1d")
        return qFP.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                              self.ceil_mode, self.return_indices)


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Quantized adaptive 1-d average pooling
    (:func:`qlearn.nn.quantized.functional.adaptive_avg_pool1d`).

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized as nnq
    >>> x = ql.quantize_per_tensor(np.arange(6.0).reshape(1, 1, 6), 1.0, 0, ql.quint8)
    >>> nnq.AdaptiveAvgPool1d(1)(x).int_repr()
    array([[[2]]], dtype=uint8)
    """

    def forward(self, x):
        require_quantized(x, "AdaptiveAvgPool1d")
        return qFP.adaptive_avg_pool1d(x, self.output_size)
