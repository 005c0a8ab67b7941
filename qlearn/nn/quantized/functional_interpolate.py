r"""Quantized resizing and 1-d max pooling: ``interpolate`` / ``upsample*`` and
``max_pool1d`` of :mod:`qlearn.nn.quantized.functional`.

Both keep the input's scale and zero point.  Nearest-neighbour sampling copies
integers.  Bilinear sampling interpolates the integers themselves, in float32 with the
weights of :mod:`qlearn.nn.functional_interpolate`, and rounds half to even:

.. math::

   q_o = \operatorname{clamp}\Big(\operatorname{round}\big(
   \lambda_{h_0}(\lambda_{w_0} q_{00} + \lambda_{w_1} q_{01}) +
   \lambda_{h_1}(\lambda_{w_0} q_{10} + \lambda_{w_1} q_{11})\big), 0, 255\Big)

which is exact because the affine map :math:`r = S(q - Z)` commutes with a weighted
average whose weights sum to one (the zero point :math:`Z` drops out; PyTorch subtracts
it and adds it back before rounding, which is the same).  These are PyTorch's quantized
``upsample_bilinear2d`` integers for NCHW tensors, except where the interpolated value
lies within a float32 rounding of a half: there PyTorch's float arithmetic can round the
other way (about one element in 30 000 of random 8x16x33x29 inputs at scale 1.7; none
at scale 2).  PyTorch has a second kernel for channels-last tensors (which it also picks
for one channel or a 1x1 image, and for the output of its quantized convolutions),
compiled with fused multiply-adds, which differs in the same way a little more often
(about one in 7 500).  Nearest-neighbour sampling agrees with both exactly.
"""
import warnings

import numpy as np

from ...qtensor import QTensor
from ..functional_interpolate import linear_indices, nearest_indices, resolve_interpolation
from .packed_params import require_quantized

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "max_pool1d"]


def _with_ints(x, data):
    return QTensor(data, x.dtype, x.qscheme(), x.q_scale(), x.q_zero_point())


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    r"""Resize a quantized (N, C, H, W) input, keeping its scale and zero point.

    ``mode="nearest"`` copies the integers of the nearest source pixel;
    ``mode="bilinear"`` interpolates the integers (see the module notes).  The output
    size, the source coordinates and ``align_corners`` follow
    :func:`qlearn.nn.functional.interpolate`.

    Parameters
    ----------
    input : QTensor
        quint8, per tensor, (N, C, H, W).
    size : int or (int, int), optional
    scale_factor : float or (float, float), optional
    mode : {"nearest", "bilinear"}
    align_corners : bool, optional
        Bilinear only (default False).

    Returns
    -------
    QTensor

    Examples
    --------
    >>> import qlearn.nn.quantized.functional as qF
    >>> q = ql.quantize_per_tensor(np.float32([[[[0, 1], [2, 3]]]]), 0.1, 10, ql.quint8)
    >>> qF.interpolate(q, scale_factor=2).int_repr()[0, 0]
    array([[10, 10, 20, 20],
           [10, 10, 20, 20],
           [30, 30, 40, 40],
           [30, 30, 40, 40]], dtype=uint8)
    >>> qF.interpolate(q, size=3, mode="bilinear", align_corners=True).int_repr()[0, 0]
    array([[10, 15, 20],
           [20, 25, 30],
           [30, 35, 40]], dtype=uint8)
    """
    who = "qF.interpolate"
    require_quantized(input, who)
    ho, wo, scales, align_corners = resolve_interpolation(
        input.shape, size, scale_factor, mode, align_corners, None, who)
    q = input.int_repr()
    h, w = q.shape[2:]
    sh, sw = scales if scales is not None else (None, None)
    if mode == "nearest":
        out = q[:, :, nearest_indices(h, ho, sh)][:, :, :, nearest_indices(w, wo, sw)]
        return _with_ints(input, np.ascontiguousarray(out))
    h0, h1, lh0, lh1 = linear_indices(h, ho, align_corners, sh)
    w0, w1, lw0, lw1 = linear_indices(w, wo, align_corners, sw)
    qf = q.astype(np.float32)
    top, bottom = qf[:, :, h0], qf[:, :, h1]
    lw0, lw1 = lw0.reshape(1, 1, 1, wo), lw1.reshape(1, 1, 1, wo)
    lh0, lh1 = lh0.reshape(1, 1, ho, 1), lh1.reshape(1, 1, ho, 1)
    # PyTorch's order of float32 operations, term by term
    row0 = lw0 * top[:, :, :, w0] + lw1 * top[:, :, :, w1]
    row1 = lw0 * bottom[:, :, :, w0] + lw1 * bottom[:, :, :, w1]
    # PyTorch subtracts the input's zero point and requantizes as quantize_per_tensor
    # does, round(v / 1 + Z) with Z added before rounding: the zero points cancel, and
    # the interpolated integer is rounded as it is (half to even)
    result = lh0 * row0 + lh1 * row1
    out = np.clip(np.rint(result), 0, 255).astype(np.uint8)
    return _with_ints(input, out)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated spelling of :func:`interpolate` (PyTorch warns; so does qlearn).

    >>> import warnings
    >>> import qlearn.nn.quantized.functional as qF
    >>> q = ql.quantize_per_tensor(np.zeros((1, 1, 2, 2)), 0.1, 0, ql.quint8)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     qF.upsample(q, scale_factor=3).shape
    (1, 1, 6, 6)
    """
    warnings.warn("qF.upsample is deprecated, as in PyTorch; use qF.interpolate instead",
                  UserWarning, stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated: ``interpolate(input, size, scale_factor, mode="nearest")``.

    >>> import warnings
    >>> import qlearn.nn.quantized.functional as qF
    >>> q = ql.quantize_per_tensor(np.zeros((1, 1, 2, 2)), 0.1, 0, ql.quint8)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     qF.upsample_nearest(q, size=(3, 5)).shape
    (1, 1, 3, 5)
    """
    warnings.warn("qF.upsample_nearest is deprecated, as in PyTorch; use qF.interpolate "
                  "instead", UserWarning, stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated: ``interpolate(input, size, scale_factor, mode="bilinear",
    align_corners=True)`` (PyTorch's definition: corners aligned).

    >>> import warnings
    >>> import qlearn.nn.quantized.functional as qF
    >>> q = ql.quantize_per_tensor(np.float32([[[[0, 2]]]]), 1.0, 0, ql.quint8)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     qF.upsample_bilinear(q, size=(1, 3)).int_repr()
    array([[[[0, 1, 2]]]], dtype=uint8)
    """
    warnings.warn("qF.upsample_bilinear is deprecated, as in PyTorch; use qF.interpolate "
                  "instead", UserWarning, stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""Quantized 1-d max pooling on the integers of an (N, C, L) or (C, L) input:

    .. math::  q_{out}[n, c, l] = \max_{i} q[n, c, l s + i d - p]

    (:func:`max_pool2d` with a 1-row window; the scale and zero point are kept).

    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.float32([[[1, 5, 2, 8, 3]]]), 1.0, 0, ql.quint8)
    >>> qF.max_pool1d(x, 2).int_repr()
    array([[[5, 8]]], dtype=uint8)
    """
    from .functional import max_pool2d
    who = "qF.max_pool1d"
    require_quantized(input, who)
    if input.ndim not in (2, 3):
        raise ValueError(f"{who}: `input` must be 2-d (C, L) or 3-d (N, C, L), got shape "
                         f"{input.shape}")

    def one(v, name):
        if isinstance(v, (tuple, list)):
            if len(v) != 1:
                raise ValueError(f"{who}: `{name}` must be an int or a 1-tuple, got {v!r}")
            return v[0]
        return v

    stride = None if stride is None or stride == [] else one(stride, "stride")
    k = one(kernel_size, "kernel_size")
    q = input.int_repr()
    x4 = _with_ints(input, q[..., None, :])
    out = max_pool2d(x4, (1, k), None if stride is None else (1, stride),
                     (0, one(padding, "padding")), (1, one(dilation, "dilation")),
                     ceil_mode, return_indices)
    return _with_ints(input, np.ascontiguousarray(out.int_repr()[..., 0, :]))
