r"""One-dimensional pooling (``torch.nn.functional.max_pool1d``, ``avg_pool1d``,
``adaptive_avg_pool1d``): the 2-d pooling of an input of height 1.

An (N, C, L) input is viewed as (N, C, 1, L) and pooled with a (1, K) window, so the
values and gradients are those of :func:`qlearn.nn.functional.max_pool2d` /
:func:`~qlearn.nn.functional.avg_pool2d` / :func:`~qlearn.nn.functional.adaptive_avg_pool2d`
on that view (and the indices of ``return_indices`` are positions along L).
"""
import numbers

from . import functional as F
from .functional import _tensor

__all__ = ["max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "single"]


def single(value, name, minimum):
    """An int or a 1-tuple of an int, >= ``minimum``, as an int."""
    v = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"`{name}` must be an int or a 1-tuple of an int, got {value!r}")
    if v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return int(v)


def _rows(x):
    x = _tensor(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"`input` must be 3-d (N, C, L) or 2-d (C, L), got shape {x.shape}")
    return x.unsqueeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""1-d max pooling: :math:`y_{n,c,p} = \max_{k<K} x_{n,c,\,pS - P + kD}` (padding
    counts as :math:`-\infty`; ``stride`` defaults to ``kernel_size``).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.max_pool1d(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2).numpy()
    array([[[3., 5.]]], dtype=float32)
    """
    k = single(kernel_size, "kernel_size", 1)
    s = k if stride is None or stride == [] or stride == () else single(stride, "stride", 1)
    p, d = single(padding, "padding", 0), single(dilation, "dilation", 1)
    out = F.max_pool2d(_rows(input), (1, k), (1, s), (0, p), (1, d), ceil_mode,
                       return_indices)
    if return_indices:
        y, idx = out
        return y.squeeze(-2), idx.squeeze(-2)
    return out.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    r"""1-d average pooling: :math:`y_{n,c,p} = \frac1d \sum_{k<K} x_{n,c,\,pS - P + k}`,
    :math:`d = K` (or the real elements only, without ``count_include_pad``).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.avg_pool1d(np.array([[[1.0, 3.0, 2.0, 6.0]]]), 2).numpy()
    array([[[2., 4.]]], dtype=float32)
    """
    k = single(kernel_size, "kernel_size", 1)
    s = k if stride is None or stride == [] or stride == () else single(stride, "stride", 1)
    p = single(padding, "padding", 0)
    return F.avg_pool2d(_rows(input), (1, k), (1, s), (0, p), ceil_mode,
                        count_include_pad).squeeze(-2)


def adaptive_avg_pool1d(input, output_size):
    r"""Average over ``output_size`` windows of L: window :math:`p` covers
    :math:`[\lfloor pL/O \rfloor, \lceil (p+1)L/O \rceil)`.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.adaptive_avg_pool1d(np.arange(6.0).reshape(1, 1, 6), 2).numpy()
    array([[[1., 4.]]], dtype=float32)
    """
    o = single(output_size, "output_size", 1)
    return F.adaptive_avg_pool2d(_rows(input), (1, o)).squeeze(-2)
