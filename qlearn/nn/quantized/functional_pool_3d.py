r"""Quantized 3-d average pooling (``qF.avg_pool3d``, ``qF.adaptive_avg_pool3d``) of
(N, C, D, H, W) or (C, D, H, W) quint8 input; the output keeps the input's scale and
zero point.  The integers are those of the 2-d kernels' rules, one axis more, measured
against PyTorch's ``quantized::avg_pool3d`` / ``adaptive_avg_pool3d``:

.. math::

   q_{out} = \operatorname{nearbyint}\big(\mathrm{f32}(\textstyle\sum q - n Z)
   \cdot \mathrm{f32}(1/d) + Z\big) \quad\text{(avg\_pool3d)}, \qquad
   q_{out} = \operatorname{nearbyint}\big(\mathrm{f32}(\textstyle\sum q)
   \cdot \mathrm{f32}(1/n)\big) \quad\text{(adaptive)}

with :math:`n` the input elements in the window and :math:`d` its divisor.  avg_pool3d
runs the compiled kernel :func:`qlearn.kernels.int8.avg_pool_u8` (separable window sums,
the planes on the thread pool); adaptive_avg_pool3d's window sums are lookups in a 3-d
integral image (int64, exact).
"""
import itertools

import numpy as np

from ...kernels import int8 as _int8
from .functional import _check_divisor_override, _like, _pool_out
from .packed_conv_nd import ntuple
from .packed_params import require_quantized

__all__ = ["avg_pool3d", "adaptive_avg_pool3d"]


def _volume(x, who):
    require_quantized(x, who)
    if x.ndim not in (4, 5):
        raise ValueError(f"{who}: `input` must be 5-d (N, C, D, H, W) or 4-d (C, D, H, W), "
                         f"got shape {x.shape}")
    return x._int


def _integral(q):
    """``ii[..., d, h, w]`` = the sum of ``q[..., :d, :h, :w]`` (int64)."""
    ii = np.zeros(q.shape[:-3] + tuple(n + 1 for n in q.shape[-3:]), np.int64)
    ii[..., 1:, 1:, 1:] = q.astype(np.int64).cumsum(-3).cumsum(-2).cumsum(-1)
    return ii


def _box_sums(ii, starts, stops):
    """Sums over the boxes ``[starts[a], stops[a])`` per axis a (broadcast over the
    output grid): inclusion-exclusion over the eight corners."""
    grids = [(np.ix_(*[(stops if c else starts)[a] for a, c in enumerate(corner)]),
              (-1) ** (3 - sum(corner))) for corner in itertools.product((0, 1), repeat=3)]
    return sum(sign * ii[(Ellipsis,) + idx] for idx, sign in grids)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    r"""Quantized 3-d average pooling (``torch.ao.nn.quantized.functional.avg_pool3d``).

    A window holding ``n`` input elements, divided by ``d`` (its size with the padding
    when ``count_include_pad``, else ``n``, or ``divisor_override``), gives
    :math:`\operatorname{nearbyint}(\mathrm{f32}(\sum q - nZ)\,\mathrm{f32}(1/d) + Z)`
    (the zero point added before the rounding, as PyTorch's kernel).  Unlike PyTorch's,
    it also takes an unbatched (C, D, H, W) input.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.arange(8.0).reshape(1, 1, 2, 2, 2), 1.0, 0, ql.quint8)
    >>> qF.avg_pool3d(x, 2).int_repr().ravel()       # the mean 3.5, to even
    array([4], dtype=uint8)
    >>> qF.avg_pool3d(x, (1, 2, 2)).int_repr().ravel()
    array([2, 6], dtype=uint8)
    """
    who = "qF.avg_pool3d"
    q = _volume(input, who)
    k = ntuple(kernel_size, 3, "kernel_size", who, 1)
    s = k if stride is None or stride == [] or stride == () else \
        ntuple(stride, 3, "stride", who, 1)
    p = ntuple(padding, 3, "padding", who, 0)
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
        raise ValueError(f"{who}: `padding` must be at most half the kernel size, got "
                         f"padding {p} for kernel {k}")
    _check_divisor_override(divisor_override, who)
    size = q.shape[-3:]
    out = tuple(_pool_out(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in
                zip(size, k, s, p))
    if min(out) < 1:
        raise ValueError(f"{who}: the input {'x'.join(map(str, size))} is too small for "
                         f"kernel {k} with padding {p}")
    return _like(input, _int8.avg_pool_u8(q, k, s, p, out, input.q_zero_point(),
                                          count_include_pad, divisor_override))


def adaptive_avg_pool3d(input, output_size):
    r"""Quantized adaptive 3-d average pooling
    (``torch.ao.nn.quantized.functional.adaptive_avg_pool3d``): bin ``i`` of ``O`` along
    an axis of length ``L`` covers :math:`[\lfloor iL/O \rfloor, \lceil (i+1)L/O \rceil)`,
    and with :math:`n` elements in the bin
    :math:`q_{out} = \operatorname{nearbyint}(\mathrm{f32}(\sum q)\,\mathrm{f32}(1/n))`.
    ``output_size`` is an int or a 3-tuple whose ``None`` entries keep the input's size.

    >>> import numpy as np, qlearn as ql
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.arange(8.0).reshape(1, 2, 2, 2), 1.0, 0, ql.quint8)
    >>> qF.adaptive_avg_pool3d(x, (1, None, 1)).int_repr().ravel()
    array([2, 4], dtype=uint8)
    """
    who = "qF.adaptive_avg_pool3d"
    q = _volume(input, who)
    size = q.shape[-3:]
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        output_size = (output_size,) * 3
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 3:
        raise ValueError(f"{who}: `output_size` must be an int or a tuple of 3 ints (or "
                         f"None), got {output_size!r}")
    out = tuple(n if o is None else int(o) for n, o in zip(size, output_size))
    if min(out) < 1:
        raise ValueError(f"{who}: `output_size` must be positive, got {output_size}")
    starts = [np.arange(o) * n // o for n, o in zip(size, out)]
    stops = [-(-(np.arange(1, o + 1) * n) // o) for n, o in zip(size, out)]
    total = _box_sums(_integral(q), starts, stops)
    count = np.einsum("i,j,k->ijk", *[b - a for a, b in zip(starts, stops)])
    # PyTorch multiplies by the float32 reciprocal (not a division): ties can round up
    mean = total.astype(np.float32) * (np.float32(1) / count.astype(np.float32))
    return _like(input, np.clip(np.rint(mean), 0, 255).astype(np.uint8))
