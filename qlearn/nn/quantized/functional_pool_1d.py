r"""Quantized 1-d pooling (``qF.max_pool1d``, ``qF.avg_pool1d``,
``qF.adaptive_avg_pool1d``): the 2-d quantized pooling of the (N, C, 1, L) view, so the
integers are the 2-d kernels' (PyTorch computes its quantized 1-d pooling the same way).
The output keeps the input's scale and zero point."""
from .functional import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .packed_params import require_quantized

__all__ = ["max_pool1d", "avg_pool1d", "adaptive_avg_pool1d"]


def _single(v, name, who, minimum):
    v = v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else v
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{who}: `{name}` must be an int >= {minimum} (or a 1-tuple), "
                         f"got {v!r}")
    return v


def _kernel_stride(kernel_size, stride, who):
    """The window and its step; no ``stride`` (None, [] or ()) means the window's."""
    k = _single(kernel_size, "kernel_size", who, 1)
    s = k if stride is None or stride == [] or stride == () else \
        _single(stride, "stride", who, 1)
    return k, s


def _rows(x, who):
    require_quantized(x, who)
    if x.ndim not in (2, 3):
        raise ValueError(f"{who}: `input` must be 3-d (N, C, L) or 2-d (C, L), got shape "
                         f"{x.shape}")
    return x.reshape(x.shape[:-1] + (1, x.shape[-1]))


def _back(y):
    return y.reshape(y.shape[:-2] + (y.shape[-1],))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""Quantized 1-d max pooling on the integers: :math:`q_{out}[n,c,p] = \max_k
    q[n,c,pS + kD - P]`.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.array([[[1.0, 3.0, 2.0, 5.0]]]), 1.0, 0, ql.quint8)
    >>> qF.max_pool1d(x, 2).int_repr()
    array([[[3, 5]]], dtype=uint8)
    """
    who = "qF.max_pool1d"
    k, s = _kernel_stride(kernel_size, stride, who)
    p, d = _single(padding, "padding", who, 0), _single(dilation, "dilation", who, 1)
    return _back(max_pool2d(_rows(input, who), (1, k), (1, s), (0, p), (1, d), ceil_mode,
                            return_indices))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    r"""Quantized 1-d average pooling (the rounding of :func:`avg_pool2d`).

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.array([[[1.0, 3.0, 2.0, 6.0]]]), 1.0, 0, ql.quint8)
    >>> qF.avg_pool1d(x, 2).int_repr()
    array([[[2, 4]]], dtype=uint8)
    """
    who = "qF.avg_pool1d"
    k, s = _kernel_stride(kernel_size, stride, who)
    p = _single(padding, "padding", who, 0)
    return _back(avg_pool2d(_rows(input, who), (1, k), (1, s), (0, p), ceil_mode,
                            count_include_pad))


def adaptive_avg_pool1d(input, output_size):
    r"""Quantized adaptive average pooling over L (the rounding of
    :func:`adaptive_avg_pool2d`).

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.arange(6.0).reshape(1, 1, 6), 1.0, 0, ql.quint8)
    >>> qF.adaptive_avg_pool1d(x, 2).int_repr()
    array([[[1, 4]]], dtype=uint8)
    """
    who = "qF.adaptive_avg_pool1d"
    o = _single(output_size, "output_size", who, 1)
    return _back(adaptive_avg_pool2d(_rows(input, who), (1, o)))
