r"""Quantized resizing: ``interpolate`` / ``upsample*`` of
:mod:`qlearn.nn.quantized.functional`.

Both keep the input's scale and zero point.  Nearest-neighbour sampling copies
integers.  Bilinear sampling interpolates the integers themselves, in float32 with the
weights of :mod:`qlearn.nn.functional_interpolate`, and rounds half to even:

.. math::

   r = \lambda_{h_0}(\lambda_{w_0} q_{00} + \lambda_{w_1} q_{01}) +
       \lambda_{h_1}(\lambda_{w_0} q_{10} + \lambda_{w_1} q_{11}) - Z, \qquad
   q_o = \operatorname{clamp}\big(\operatorname{round}(r + Z), 0, 255\big)

which is exact because the affine map :math:`r = S(q - Z)` commutes with a weighted
average whose weights sum to one: the zero point :math:`Z` cancels, except that
:math:`r` and :math:`r + Z` are each rounded to float32, which decides near-ties, as in
PyTorch (whose requantization adds :math:`Z` before rounding).  These are PyTorch's
quantized ``upsample_bilinear2d`` integers.  PyTorch has a second kernel for
channels-last tensors (which it also picks for one channel or a 1x1 image), compiled
with fused multiply-adds, whose near-ties round differently; qlearn follows it when the
integers are laid out channels-last by PyTorch's rule (a QTensor from a quantized
convolution is; :func:`_torch_channels_last`), fusing the same products.
Nearest-neighbour sampling copies integers and is the same either way.
"""
import warnings

import numpy as np

from ...qtensor import QTensor
from ..functional_interpolate import (
    fma32,
    linear_indices,
    nearest_indices,
    resolve_interpolation,
)
from .packed_params import require_quantized

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]


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
    nhwc = _torch_channels_last(input._int)
    h0, h1, lh0, lh1 = linear_indices(h, ho, align_corners, sh, fused=nhwc)
    w0, w1, lw0, lw1 = linear_indices(w, wo, align_corners, sw, fused=nhwc)
    qf = q.astype(np.float32)
    top, bottom = qf[:, :, h0], qf[:, :, h1]
    lw0, lw1 = lw0.reshape(1, 1, 1, wo), lw1.reshape(1, 1, 1, wo)
    lh0, lh1 = lh0.reshape(1, 1, ho, 1), lh1.reshape(1, 1, ho, 1)
    corners = (top[:, :, :, w0], top[:, :, :, w1], bottom[:, :, :, w0], bottom[:, :, :, w1])
    if not nhwc:
        result = _bilinear(corners, lw0, lw1, lh0, lh1, None)
    else:
        # PyTorch's channels-last kernel: blocks of 8 channels in AVX2 vectors, the rest
        # one at a time; its compiler fuses the two products differently in each
        nv = (q.shape[1] // 8) * 8
        result = np.concatenate(
            [_bilinear([c[:, :nv] for c in corners], lw0, lw1, lh0, lh1, "second"),
             _bilinear([c[:, nv:] for c in corners], lw0, lw1, lh0, lh1, "first")], axis=1)
    # PyTorch subtracts the input's zero point, then requantizes as quantize_per_tensor
    # does, round(r / 1 + Z) with Z added before rounding, each step in float32: the
    # zero points cancel up to those two roundings, which decide near-ties
    zp = np.float32(input.q_zero_point())
    result = (result - zp).astype(np.float32)
    out = np.clip(np.rint((result + zp).astype(np.float32)), 0, 255).astype(np.uint8)
    return _with_ints(input, out)


def _bilinear(corners, lw0, lw1, lh0, lh1, fused):
    r""":math:`\lambda_{h_0}(\lambda_{w_0} q_{00} + \lambda_{w_1} q_{01}) +
    \lambda_{h_1}(\lambda_{w_0} q_{10} + \lambda_{w_1} q_{11})` in float32, in PyTorch's
    order; ``fused`` ("first" / "second"): each ``a b + c d`` is one fused multiply-add
    around the first / second product, the other product rounded first."""
    a, b, c, d = corners

    def pair(x, p, y, r):           # x p + y r
        if fused is None:
            return (x * p + y * r).astype(np.float32)
        if fused == "first":
            return fma32(x, p, (y * r).astype(np.float32))
        return fma32(y, r, (x * p).astype(np.float32))

    return pair(lh0, pair(lw0, a, lw1, b), lh1, pair(lw0, c, lw1, d))


def _torch_channels_last(a):
    """Whether PyTorch would call an (N, C, H, W) tensor with these strides
    channels-last contiguous (dimensions of size 1 are ignored, so an NCHW tensor with
    one channel, or a 1x1 image, is both), which picks its NHWC kernel."""
    if a.ndim != 4:
        return False
    strides = [s // a.itemsize for s in a.strides]
    expected = 1
    for dim in (1, 3, 2, 0):
        if a.shape[dim] != 1:
            if strides[dim] != expected:
                return False
            expected *= a.shape[dim]
    return True


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
