r"""``F.interpolate``: resize the two spatial dimensions of an (N, C, H, W) input by
nearest-neighbour or bilinear sampling, with PyTorch's index arithmetic.

Output size.  Exactly one of ``size`` and ``scale_factor`` is given; a scale factor
:math:`s` gives :math:`H_o = \lfloor H s \rfloor` and, unless
``recompute_scale_factor``, is also what maps output rows back to input rows
(:math:`1/s`; otherwise, and with ``size``, the ratio :math:`H / H_o` is used).

Nearest.  Output row :math:`h` reads input row
:math:`\min(\lfloor h\,r \rfloor, H - 1)` with :math:`r = 1/s` or :math:`H/H_o` in
float32 (the same row when :math:`H_o = H`, row :math:`h/2` when :math:`H_o = 2H`).

Bilinear.  The source coordinate of output row :math:`h` is

.. math::

   \tilde h = \begin{cases} h\,\frac{H - 1}{H_o - 1} & \text{align\_corners} \\
   \max\big(r\,(h + \tfrac12) - \tfrac12,\ 0\big) & \text{otherwise}\end{cases}

with :math:`h_0 = \lfloor \tilde h \rfloor`, :math:`h_1 = \min(h_0 + 1, H - 1)`,
:math:`\lambda = \tilde h - h_0`, and likewise for columns; then

.. math::

   y = (1 - \lambda_h)\big((1 - \lambda_w) x_{h_0 w_0} + \lambda_w x_{h_0 w_1}\big)
       + \lambda_h\big((1 - \lambda_w) x_{h_1 w_0} + \lambda_w x_{h_1 w_1}\big).

All coordinates are float32, as in PyTorch's kernels;
:func:`qlearn.nn.quantized.functional.interpolate` applies the same formulas to the
integers of a QTensor.
"""
import math
import numbers

import numpy as np

from ..reference import fma32

__all__ = ["interpolate"]

_MODES = ("nearest", "bilinear")


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def resolve_interpolation(shape, size, scale_factor, mode, align_corners,
                          recompute_scale_factor, who):
    """Check the arguments of ``interpolate`` for an input of ``shape``; return
    ``(out_h, out_w, scales, align_corners)`` with ``scales`` the two scale factors the
    kernel maps coordinates with (None when the ratio of sizes is used)."""
    if mode not in _MODES:
        raise ValueError(f"{who}: `mode` must be one of {list(_MODES)}, got {mode!r} "
                         f"(qlearn implements nearest and bilinear)")
    if len(shape) != 4:
        raise ValueError(f"{who}: `input` must be 4-d (N, C, H, W), got shape "
                         f"{tuple(shape)}")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(f"{who}: `align_corners` can only be set with mode "
                             f"'bilinear', got align_corners={align_corners!r} for mode "
                             f"'nearest'")
    elif align_corners is None:
        align_corners = False
    if not isinstance(align_corners, (bool, type(None))):
        raise TypeError(f"{who}: `align_corners` must be a bool or None, got "
                        f"{align_corners!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{who}: exactly one of `size` and `scale_factor` must be given, "
                         f"got size={size!r}, scale_factor={scale_factor!r}")
    in_hw = tuple(shape[2:])
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{who}: `recompute_scale_factor` is not meaningful with an "
                             f"explicit `size`")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if len(sizes) != 2 or not all(_is_int(s) for s in sizes) or min(sizes) < 1:
            raise ValueError(f"{who}: `size` must be a positive int or a pair of positive "
                             f"ints, got {size!r}")
        return int(sizes[0]), int(sizes[1]), None, align_corners
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) \
        else (scale_factor, scale_factor)
    if len(factors) != 2 or not all(
            isinstance(f, numbers.Real) and not isinstance(f, bool) and math.isfinite(f)
            and f > 0 for f in factors):
        raise ValueError(f"{who}: `scale_factor` must be a positive number or a pair of "
                         f"positive numbers, got {scale_factor!r}")
    out = tuple(int(math.floor(float(n) * float(f))) for n, f in zip(in_hw, factors))
    if min(out) < 1:
        raise ValueError(f"{who}: `scale_factor` {scale_factor!r} makes the output size "
                         f"{out} of the input size {in_hw} empty")
    scales = None if recompute_scale_factor else tuple(float(f) for f in factors)
    return out[0], out[1], scales, align_corners


def _ratio(n_in, n_out, scale):
    """The float32 step from output to input coordinates (PyTorch's
    ``compute_scales_value``)."""
    if scale is not None and scale > 0:
        return np.float32(1.0 / scale)
    return np.float32(n_in) / np.float32(n_out)


def nearest_indices(n_in, n_out, scale):
    """The input index each of ``n_out`` output positions reads (int64 array)."""
    idx = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return idx
    if n_out == 2 * n_in:
        return idx >> 1
    r = _ratio(n_in, n_out, scale)
    return np.minimum(np.floor(idx.astype(np.float32) * r).astype(np.int64), n_in - 1)


def linear_indices(n_in, n_out, align_corners, scale, fused=False):
    """``(i0, i1, lambda0, lambda1)`` of bilinear sampling along one axis: the two
    source indices and their float32 weights.  ``fused``: the source coordinate
    :math:`r (h + 1/2) - 1/2` is one fused multiply-add (as PyTorch's kernels compiled
    for AVX2 compute it)."""
    dst = np.arange(n_out, dtype=np.float32)
    if align_corners:
        r = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
        src = r * dst
    else:
        r = _ratio(n_in, n_out, scale)
        if fused:
            src = fma32(r, dst + np.float32(0.5), np.float32(-0.5))
        else:
            src = r * (dst + np.float32(0.5)) - np.float32(0.5)
        src = np.maximum(src, np.float32(0))
    i0 = src.astype(np.int64)                     # truncation: src >= 0
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam1 = (src - i0.astype(np.float32)).astype(np.float32)
    lam0 = (np.float32(1) - lam1).astype(np.float32)
    return i0, i1, lam0, lam1


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    r"""Resize an (N, C, H, W) input: nearest-neighbour or bilinear (see the module
    notes for the equations); differentiable (the gradient of each output element
    flows back to the one or four input elements it read, weighted).

    A QTensor input is resized by :func:`qlearn.nn.quantized.functional.interpolate`
    (as ``torch.nn.functional.interpolate`` of a quantized tensor).

    Parameters
    ----------
    input : Tensor, ndarray or QTensor
        (N, C, H, W).
    size : int or (int, int), optional
        Output (H_o, W_o).
    scale_factor : float or (float, float), optional
        :math:`H_o = \lfloor H s \rfloor`.
    mode : {"nearest", "bilinear"}
    align_corners : bool, optional
        Bilinear only (default False): map the corner pixels' centres onto each other.
    recompute_scale_factor : bool, optional
        Map coordinates with :math:`H/H_o` instead of the given scale factor.
    antialias : bool
        Only False.

    Returns
    -------
    Tensor (or QTensor for a QTensor input)

    Examples
    --------
    >>> import qlearn.nn.functional as F
    >>> x = np.arange(4.0, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> F.interpolate(x, scale_factor=2).numpy()[0, 0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]], dtype=float32)
    >>> F.interpolate(x, size=3, mode="bilinear", align_corners=True).numpy()[0, 0]
    array([[0. , 0.5, 1. ],
           [1. , 1.5, 2. ],
           [2. , 2.5, 3. ]], dtype=float32)
    """
    from ..qtensor import QTensor
    if isinstance(input, QTensor):
        if recompute_scale_factor or antialias:
            raise ValueError("F.interpolate of a QTensor: `recompute_scale_factor` and "
                             "`antialias` are not supported (as in PyTorch's quantized "
                             "interpolate)")
        from .quantized.functional import interpolate as q_interpolate
        return q_interpolate(input, size, scale_factor, mode, align_corners)
    from . import functional as F
    if antialias:
        raise ValueError(f"F.interpolate: `antialias=True` is not supported, got "
                         f"antialias={antialias!r}")
    x = F._tensor(input)
    ho, wo, scales, align_corners = resolve_interpolation(
        x.shape, size, scale_factor, mode, align_corners, recompute_scale_factor,
        "F.interpolate")
    h, w = x.shape[2:]
    sh, sw = scales if scales is not None else (None, None)
    if mode == "nearest":
        return x[:, :, nearest_indices(h, ho, sh)][:, :, :, nearest_indices(w, wo, sw)]
    h0, h1, lh0, lh1 = linear_indices(h, ho, align_corners, sh)
    w0, w1, lw0, lw1 = linear_indices(w, wo, align_corners, sw)
    top, bottom = x[:, :, h0], x[:, :, h1]
    lw0, lw1 = lw0.reshape(1, 1, 1, wo), lw1.reshape(1, 1, 1, wo)
    row0 = top[:, :, :, w0] * lw0 + top[:, :, :, w1] * lw1
    row1 = bottom[:, :, :, w0] * lw0 + bottom[:, :, :, w1] * lw1
    return row0 * lh0.reshape(1, 1, ho, 1) + row1 * lh1.reshape(1, 1, ho, 1)
