r"""Quantized operators: ``qlearn.nn.quantized.functional`` mirrors
``torch.ao.nn.quantized.functional``.

Every function takes :class:`qlearn.QTensor` inputs (quint8, per tensor) and returns a
QTensor; the output integers equal PyTorch's x86 (FBGEMM) operators' for the same inputs
and quantization parameters (see ``docs/int8.rst``).
"""
import numpy as np

from ... import _validation as V
from ...dtypes import per_tensor_affine, per_tensor_symmetric, qint8, quint8
from ...kernels import int8 as _int8
from ...kernels import lookup as _lookup
from ...qtensor import QTensor, quantize_per_tensor
from .packed_params import (
    PackedConvWeight,
    PackedLinearWeight,
    conv2d_apply,
    linear_apply,
    require_quantized,
)

__all__ = [
    "adaptive_avg_pool2d",
    "add",
    "add_relu",
    "add_scalar",
    "avg_pool2d",
    "cat",
    "conv2d",
    "linear",
    "max_pool2d",
    "mul",
    "mul_scalar",
    "relu",
    "relu6",
    # elementwise maps through a 256-entry table
    "celu",
    "clamp",
    "elu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "sigmoid",
    "threshold",
]


def linear(input, weight, bias=None, scale=None, zero_point=None):
    r"""Quantized linear map, requantized to ``(scale, zero_point)``.

    .. math::

       y_{ij} = \operatorname{clamp}\Big(\operatorname{nearbyint}\big(
       (\textstyle\sum_k (a_{ik} - Z_a)(w_{jk} - Z_{w,j}) + b_j / (S_a S_{w,j}))
       \cdot S_a S_{w,j} / S_o\big) + Z_o,\ 0,\ 255\Big)

    Parameters
    ----------
    input : QTensor
        quint8 activations ``a`` of shape (..., in_features), per tensor (``S_a``, ``Z_a``).
    weight : QTensor
        qint8 weight ``w`` of shape (out_features, in_features), per tensor or per
        channel along axis 0.
    bias : array_like of float, optional
        Float bias ``b`` of shape (out_features,).
    scale, zero_point : float, int, optional
        Output ``S_o`` and ``Z_o``; default to the input's.

    Returns
    -------
    QTensor
        quint8, shape (..., out_features).

    Notes
    -----
    The weight is packed on every call; :class:`qlearn.nn.quantized.Linear` packs once.

    Examples
    --------
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor([[1.0, 2.0, 3.0, 4.0]], 0.1, 0, ql.quint8)
    >>> w = ql.quantize_per_tensor([[0.5, 0.5, 0.5, 0.5]], 0.01, 0, ql.qint8)
    >>> qF.linear(x, w, bias=[1.0], scale=0.1, zero_point=0).dequantize()
    array([[6.]], dtype=float32)
    """
    require_quantized(input, "qF.linear")
    if scale is None:
        scale = input.q_scale()
    if zero_point is None:
        zero_point = input.q_zero_point()
    return linear_apply(input, PackedLinearWeight(weight, bias), scale, zero_point,
                        who="qF.linear")


def conv2d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", scale=1.0, zero_point=0, dtype=quint8):
    r"""Quantized 2-d convolution, requantized to ``(scale, zero_point)``.

    .. math::

       y_{n,o,h,w} = \operatorname{requant}\Big(\textstyle\sum_{c,i,j}
       (a_{n,c,hs+id-p,\,ws+jd-p} - Z_a)(w_{o,c,i,j} - Z_{w,o}) + b_o / (S_a S_{w,o})\Big)

    with the requantization of :func:`linear`; padding holds real zero (``Z_a``).

    Parameters
    ----------
    input : QTensor
        quint8, (N, C, H, W).
    weight : QTensor
        qint8, (O, C/groups, kh, kw), per tensor or per channel along axis 0.
    bias : array_like of float or None
        (O,).
    stride, padding, dilation : int or pair of ints
    groups : int
    padding_mode : str
        Only ``"zeros"``, as in PyTorch's quantized conv.
    scale, zero_point : float, int
        Output quantization parameters.
    dtype : QDType
        Only :data:`qlearn.quint8`.

    Examples
    --------
    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.ones((1, 1, 3, 3)), 0.5, 0, ql.quint8)
    >>> w = ql.quantize_per_tensor(np.ones((1, 1, 3, 3)), 0.5, 0, ql.qint8)
    >>> qF.conv2d(x, w, None, padding=1, scale=1.0, zero_point=0).int_repr()[0, 0]
    array([[4, 6, 4],
           [6, 9, 6],
           [4, 6, 4]], dtype=uint8)
    """
    if padding_mode != "zeros":
        raise ValueError(f"qF.conv2d: `padding_mode` must be 'zeros', got {padding_mode!r}")
    if dtype is not quint8:
        raise ValueError(f"qF.conv2d: `dtype` must be qlearn.quint8, got {dtype!r}")
    require_quantized(input, "qF.conv2d")
    packed = PackedConvWeight(weight, bias, stride, padding, dilation, groups)
    return conv2d_apply(input, packed, scale, zero_point, who="qF.conv2d")


def _like(x, data):
    return QTensor(data, quint8, per_tensor_affine, x.q_scale(), x.q_zero_point())


def _require_quantized_8bit(x, who):
    """Like ``require_quantized`` but quint8 or qint8 (the elementwise ops that only
    compare integers work on both, as PyTorch's)."""
    if isinstance(x, QTensor) and x.dtype is qint8:
        if x.qscheme() not in (per_tensor_affine, per_tensor_symmetric):
            raise ValueError(f"{who}: `input` must be quantized per tensor, got "
                             f"{x.qscheme()!r}")
        return x
    return require_quantized(x, who)


def _same_qparams(x, data):
    return QTensor(data, x.dtype, x.qscheme(), x.q_scale(), x.q_zero_point())


def relu(input, inplace=False):
    r"""Quantized ReLU: :math:`q_{out} = \max(q, Z)`, same scale and zero point.

    Real 0 is the integer ``Z``, so the ReLU is a max on the integers.  quint8 and
    qint8 inputs are accepted (the output has the input's dtype), as in PyTorch.

    >>> import qlearn.nn.quantized.functional as qF
    >>> qF.relu(ql.quantize_per_tensor([-1.0, 0.5], 0.5, 4, ql.quint8)).int_repr()
    array([4, 5], dtype=uint8)
    >>> qF.relu(ql.quantize_per_tensor([-1.0, 0.5], 0.5, -3, ql.qint8)).int_repr()
    array([-3, -2], dtype=int8)
    """
    _require_quantized_8bit(input, "qF.relu")
    zp = input._int.dtype.type(input.q_zero_point())
    return _same_qparams(input, np.maximum(input._int, zp))


def relu6(input, inplace=False):
    r"""Quantized ReLU6: :math:`q_{out} = \min(\max(q, Z), Q(6))`, same parameters
    (quint8 or qint8).

    >>> import qlearn.nn.quantized.functional as qF
    >>> qF.relu6(ql.quantize_per_tensor([-1.0, 3.0, 8.0], 0.5, 0, ql.quint8)).dequantize()
    array([0., 3., 6.], dtype=float32)
    """
    _require_quantized_8bit(input, "qF.relu6")
    six = quantize_per_tensor(np.float32(6.0), input.q_scale(), input.q_zero_point(),
                              input.dtype)._int
    lo = input._int.dtype.type(input.q_zero_point())
    return _same_qparams(input, np.minimum(np.maximum(input._int, lo), six))


def _check_divisor_override(divisor_override, who):
    """avg_pool's ``divisor_override``: None or a non-zero int64 (PyTorch's type)."""
    if divisor_override is not None and (
            isinstance(divisor_override, bool)
            or not isinstance(divisor_override, (int, np.integer)) or divisor_override == 0
            or not -2**63 <= divisor_override < 2**63):
        raise ValueError(f"{who}: `divisor_override` must be a non-zero int64 or None, "
                         f"got {divisor_override!r}")


def _pool_out(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:   # the last window must start inside
        out -= 1
    return out


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""Quantized 2-d max pooling on the integers (max commutes with the affine map).

    .. math::  q_{out}[n, c, h, w] = \max_{i, j} q[n, c, hs + id - p, ws + jd - p]

    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.arange(16.0).reshape(1, 1, 4, 4), 1.0, 0, ql.quint8)
    >>> qF.max_pool2d(x, 2).int_repr()[0, 0]
    array([[ 5,  7],
           [13, 15]], dtype=uint8)
    """
    from .packed_params import _pair
    who = "qF.max_pool2d"
    require_quantized(input, who)
    if return_indices:
        raise ValueError(f"{who}: `return_indices=True` is not supported for quantized "
                         f"tensors (PyTorch does not support it either)")
    if input.ndim not in (3, 4):
        raise ValueError(f"{who}: `input` must be 3-d or 4-d, got shape {input.shape}")
    kh, kw = _pair(kernel_size, "kernel_size", who, 1)
    sh, sw = _pair(kernel_size if stride is None or stride == [] else stride,
                   "stride", who, 1)
    ph, pw = _pair(padding, "padding", who, 0)
    dh, dw = _pair(dilation, "dilation", who, 1)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{who}: `padding` must be at most half the kernel size, got "
                         f"padding {(ph, pw)} for kernel {(kh, kw)}")
    q = input._int
    h, w = q.shape[-2:]
    if h == 0 or w == 0:   # every window would hold padding only (PyTorch refuses too)
        raise ValueError(f"{who}: `input` must have a non-zero height and width, got "
                         f"shape {input.shape}")
    ho = _pool_out(h, kh, sh, ph, dh, ceil_mode)
    wo = _pool_out(w, kw, sw, pw, dw, ceil_mode)
    if ho < 1 or wo < 1:
        raise ValueError(f"{who}: the input {h}x{w} is too small for kernel {(kh, kw)}")
    # pad with 0 (the smallest uint8): a window always holds a real element, so the pad
    # never wins the max; extra right/bottom padding covers ceil_mode's partial windows
    need_h = (ho - 1) * sh + dh * (kh - 1) + 1
    need_w = (wo - 1) * sw + dw * (kw - 1) + 1
    pad = [(0, 0)] * (q.ndim - 2) + [(ph, max(0, need_h - h - ph)),
                                     (pw, max(0, need_w - w - pw))]
    qp = np.pad(q, pad)
    out = None
    for i in range(kh):
        for j in range(kw):
            win = qp[..., i * dh:i * dh + (ho - 1) * sh + 1:sh,
                     j * dw:j * dw + (wo - 1) * sw + 1:sw]
            out = win.copy() if out is None else np.maximum(out, win, out=out)
    return _like(input, out)


def adaptive_avg_pool2d(input, output_size):
    r"""Quantized adaptive average pooling, output parameters = input parameters.

    Bin ``i`` of ``Ho`` covers rows :math:`[\lfloor iH/H_o \rfloor, \lceil (i+1)H/H_o
    \rceil)`; with :math:`n` elements in the bin,

    .. math::  q_{out} = \operatorname{nearbyint}\big(\mathrm{f32}(\textstyle\sum q)
               \cdot \mathrm{f32}(1 / n)\big)

    The output keeps the input's scale and zero point, so the mean of the integers is
    the quantized mean; rounding the integers' own mean (rather than
    :math:`\sum (q - Z) / n + Z`, which differs at ties when Z is odd) is what
    PyTorch's quantized kernel does, measured to the integer.

    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.arange(16.0).reshape(1, 1, 4, 4), 1.0, 0, ql.quint8)
    >>> qF.adaptive_avg_pool2d(x, 1).int_repr().ravel()
    array([8], dtype=uint8)
    """
    who = "qF.adaptive_avg_pool2d"
    require_quantized(input, who)
    if input.ndim not in (3, 4):
        raise ValueError(f"{who}: `input` must be 3-d or 4-d, got shape {input.shape}")
    if isinstance(output_size, (int, np.integer)):
        output_size = (output_size, output_size)
    q = input._int
    h, w = q.shape[-2:]
    ho, wo = (h if output_size[0] is None else int(output_size[0]),
              w if output_size[1] is None else int(output_size[1]))
    if ho < 1 or wo < 1:
        raise ValueError(f"{who}: `output_size` must be positive, got {output_size}")
    out = np.empty(q.shape[:-2] + (ho, wo), dtype=np.uint8)
    # integral image: each bin sum is four lookups (int64, exact)
    ii = np.zeros(q.shape[:-2] + (h + 1, w + 1), dtype=np.int64)
    ii[..., 1:, 1:] = q.astype(np.int64).cumsum(-2).cumsum(-1)
    for i in range(ho):
        y0, y1 = (i * h) // ho, -(-((i + 1) * h) // ho)
        for j in range(wo):
            x0, x1 = (j * w) // wo, -(-((j + 1) * w) // wo)
            n = (y1 - y0) * (x1 - x0)
            s = ii[..., y1, x1] - ii[..., y0, x1] - ii[..., y1, x0] + ii[..., y0, x0]
            # PyTorch multiplies by the float32 reciprocal: at a tie (n = 14, say) it
            # lands just above the half and rounds up where a division would not
            mean = s.astype(np.float32) * (np.float32(1) / np.float32(n))
            out[..., i, j] = np.clip(np.rint(mean).astype(np.int64), 0, 255)
    return _like(input, out)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    r"""Quantized average pooling; the output keeps the input's scale and zero point.

    A window holding ``n`` input elements (the rest is padding, real 0) and divided by
    ``d`` (its size with the padding when ``count_include_pad``, else ``n``, or
    ``divisor_override``) gives, as PyTorch's quantized kernel (zero point added before
    the rounding, float32 throughout):

    .. math::  q_{out} = \operatorname{nearbyint}\big(\mathrm{f32}(\textstyle\sum q
               - n Z) \cdot \mathrm{f32}(1/d) + Z\big)

    >>> import qlearn.nn.quantized.functional as qF
    >>> x = ql.quantize_per_tensor(np.arange(16.0).reshape(1, 1, 4, 4), 1.0, 0, ql.quint8)
    >>> qF.avg_pool2d(x, 2).int_repr()[0, 0]
    array([[ 2,  4],
           [10, 12]], dtype=uint8)
    >>> qF.avg_pool2d(x, 3, stride=2, padding=1).int_repr()[0, 0]   # 9 per window
    array([[ 1,  3],
           [ 6, 10]], dtype=uint8)
    """
    from .packed_params import _pair
    who = "qF.avg_pool2d"
    require_quantized(input, who)
    if input.ndim not in (3, 4):
        raise ValueError(f"{who}: `input` must be 3-d or 4-d, got shape {input.shape}")
    k = _pair(kernel_size, "kernel_size", who, 1)
    s = _pair(kernel_size if stride is None or stride == [] else stride, "stride", who, 1)
    p = _pair(padding, "padding", who, 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{who}: `padding` must be at most half the kernel size, got "
                         f"padding {p} for kernel {k}")
    _check_divisor_override(divisor_override, who)
    q = input._int
    h, w = q.shape[-2:]
    oh, ow = (_pool_out(h, k[0], s[0], p[0], 1, ceil_mode),
              _pool_out(w, k[1], s[1], p[1], 1, ceil_mode))
    if oh < 1 or ow < 1:
        raise ValueError(f"{who}: the input {h}x{w} is too small for kernel {k} with "
                         f"padding {p}")
    out = _int8.avg_pool_u8(q[..., None, :, :], (1,) + k, (1,) + s, (0,) + p, (1, oh, ow),
                            input.q_zero_point(), count_include_pad, divisor_override)
    return _like(input, out[..., 0, :, :])


def _scalar_operand(b, who):
    """A Python/NumPy real ``b`` as float32; anything else is refused by name."""
    b = V._scalar(b, "b", "number")
    if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, float, np.integer,
                                                             np.floating)):
        raise TypeError(f"{who}: `b` must be a QTensor or a real number, got {b!r}")
    try:
        with np.errstate(over="ignore"):
            fb = np.float32(b)
    except OverflowError:   # an int beyond float64
        fb = np.float32(np.inf)
    if not np.isfinite(fb):
        raise ValueError(f"{who}: `b` must be a finite float32 number, got {V.shown(b)}")
    return fb


def _binary(a, b, scale, zero_point, op, relu, who):
    require_quantized(a, who, "a")
    if isinstance(b, QTensor):
        require_quantized(b, who, "b")
        V.check_broadcast(a.shape, b.shape, who)
        fb = b.dequantize()
    else:
        fb = _scalar_operand(b, who)
    scale = V.check_scale(scale, "scale")
    zero_point = V.check_zero_point(zero_point, 0, 255, "zero_point")
    # dequantize (float32), operate, quantize with one FMA: PyTorch's qadd / qmul,
    # measured identical on 1.7 M outputs (docs/int8.rst, "Other operators")
    with np.errstate(over="ignore", invalid="ignore"):
        r = op(a.dequantize(), fb).astype(np.float32)
    if relu:
        r = np.maximum(r, np.float32(0))
    if r.size and not np.isfinite(r).all():
        # huge scales: S (q - Z) or the sum overflows float32 although the result,
        # in the output's scale, is representable; the same steps in float64
        return _binary_f64(a, b, scale, zero_point, op, relu)
    return quantize_per_tensor(r, scale, zero_point, quint8)


def _binary_f64(a, b, scale, zero_point, op, relu):
    """:func:`_binary` in float64 (dequantize, operate, ``nearbyint(r / S) + Z``)."""
    def real(t):
        return (t._int.astype(np.float64) - t.q_zero_point()) * np.float64(
            np.float32(t.q_scale()))
    fb = real(b) if isinstance(b, QTensor) else np.float64(_scalar_operand(b, ""))
    r = op(real(a), fb)
    if relu:
        r = np.maximum(r, 0.0)
    t = np.rint(r / np.float64(np.float32(scale))) + zero_point
    return QTensor(np.clip(t, 0, 255).astype(np.uint8), quint8, per_tensor_affine, scale,
                   zero_point)


def add(a, b, scale, zero_point):
    r""":math:`Q(S_a(q_a - Z_a) + S_b(q_b - Z_b))` with output ``(scale, zero_point)``.

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([1.0, 2.0], 0.5, 0, ql.quint8)
    >>> qF.add(a, a, 0.25, 0).dequantize()
    array([2., 4.], dtype=float32)
    """
    return _binary(a, b, scale, zero_point, np.add, False, "qF.add")


def add_relu(a, b, scale, zero_point):
    """:func:`add` followed by ReLU (the output is at least ``zero_point``)."""
    return _binary(a, b, scale, zero_point, np.add, True, "qF.add_relu")


def mul(a, b, scale, zero_point):
    r"""Quantized product, :math:`q = \operatorname{nearbyint}\big((q_a - Z_a)(q_b - Z_b)
    \cdot S_a S_b / S_o\big) + Z_o` (a float ``b`` is dequantize-multiply-quantize).

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([1.0, 2.0], 0.5, 0, ql.quint8)
    >>> qF.mul(a, a, 0.25, 0).dequantize()
    array([1., 4.], dtype=float32)
    """
    if not isinstance(b, QTensor):
        return _binary(a, b, scale, zero_point, np.multiply, False, "qF.mul")
    require_quantized(a, "qF.mul", "a")
    require_quantized(b, "qF.mul", "b")
    V.check_broadcast(a.shape, b.shape, "qF.mul")
    scale = V.check_scale(scale, "scale")
    zero_point = V.check_zero_point(zero_point, 0, 255, "zero_point")
    # PyTorch's qmul: the product of the integer differences, requantized with one
    # float32 multiplier Sa Sb / So (measured identical; the dequantize-multiply-quantize
    # route differs at ~0.3 % of ties)
    c = ((a._int.astype(np.int32) - a.q_zero_point())
         * (b._int.astype(np.int32) - b.q_zero_point()))
    with np.errstate(over="ignore", under="ignore"):
        ab = np.float32(a.q_scale()) * np.float32(b.q_scale())
        m = ab * (np.float32(1) / np.float32(scale))
    if np.isfinite(m) and ab >= np.finfo(np.float32).tiny:
        t = np.rint(c.astype(np.float32) * np.float32(m))
    else:
        # Sa Sb overflowed or underflowed float32 (m inf or 0: every output Z or a
        # saturated NaN); the same multiplier in float64
        m = (np.float64(np.float32(a.q_scale())) * np.float64(np.float32(b.q_scale()))
             / np.float64(np.float32(scale)))
        with np.errstate(over="ignore"):
            t = np.rint(c.astype(np.float64) * m)
    # clamp before the integer cast: an overflowing product (inf) must saturate
    q = np.clip(t, -zero_point, 255 - zero_point).astype(np.int64) + zero_point
    return QTensor(q.astype(np.uint8), quint8, per_tensor_affine, scale, zero_point)


def cat(tensors, dim=0, scale=None, zero_point=None):
    r"""Concatenate quantized tensors, requantizing each to ``(scale, zero_point)``.

    Inputs whose parameters already equal the output's are copied as integers; others
    are dequantized and quantized again (PyTorch's quantized cat).

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([1.0], 0.5, 0, ql.quint8)
    >>> b = ql.quantize_per_tensor([3.0], 1.0, 0, ql.quint8)
    >>> qF.cat([a, b], 0, scale=0.5, zero_point=0).dequantize()
    array([1., 3.], dtype=float32)
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("qF.cat: `tensors` must not be empty")
    for i, t in enumerate(tensors):
        require_quantized(t, "qF.cat", f"tensors[{i}]")
    if tensors[0].ndim == 0:
        raise ValueError("qF.cat: `tensors` must have at least one dimension to be "
                         "concatenated, got 0-d QTensors")
    dim = V.check_cat_shapes([t.shape for t in tensors], dim, "qF.cat")
    scale = tensors[0].q_scale() if scale is None else V.check_scale(scale, "scale")
    zero_point = (tensors[0].q_zero_point() if zero_point is None
                  else V.check_zero_point(zero_point, 0, 255, "zero_point"))
    parts = []
    for t in tensors:
        if t.q_scale() == scale and t.q_zero_point() == zero_point:
            parts.append(t._int)
        else:
            r = t.dequantize()
            if r.size and not np.isfinite(r).all():   # S (q - Z) beyond float32
                parts.append(_binary_f64(t, 0.0, scale, zero_point, np.add, False)._int)
            else:
                parts.append(quantize_per_tensor(r, scale, zero_point, quint8)._int)
    return QTensor(np.concatenate(parts, axis=dim), quint8, per_tensor_affine, scale,
                   zero_point)


def _number(other):
    c = V._scalar(other, "other", "number")
    # a string is no number here, as in PyTorch's schema (Scalar; a bool counts)
    if not isinstance(c, (int, float, np.integer, np.floating, np.bool_)):
        raise TypeError(f"`other` must be a number, got {type(other).__name__}")
    if not np.isfinite(float(c)):   # no scale or zero point represents the result
        raise ValueError(f"`other` must be a finite number, got {float(c)}")
    return float(c)


def add_scalar(input, other):
    r"""``input + other`` for a number ``other``, as PyTorch's quantized scalar add: the
    integers stay and the zero point moves by :math:`c_q = \operatorname{round}(c/S)`,

    .. math::

       S' = S,\quad Z' = Z - c_q \qquad\text{when } 0 \le Z - c_q \le 255;

    otherwise the range is stretched to keep every value: :math:`Z' = 0`,
    :math:`S' = S\,(255 - (Z - c_q))/255` (or :math:`Z' = 255`,
    :math:`S' = S\,(Z - c_q)/255`) and :math:`q' = Z' + \operatorname{round}((q - Z + c_q)
    \, S/S')`.  (Graph-mode quantization writes ``x + 1.0`` as this call.)

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([0.0, 1.0], 0.5, 10, ql.quint8)
    >>> r = qF.add_scalar(a, 1.0)
    >>> r.int_repr().tolist(), r.q_zero_point(), r.dequantize().tolist()
    ([10, 12], 8, [1.0, 2.0])
    """
    require_quantized(input, "qF.add_scalar")
    c = _number(other)
    s, z = float(input.q_scale()), int(input.q_zero_point())
    if not abs(c / s) < 2.0 ** 31:              # PyTorch's shift is an int32 as well
        raise ValueError(f"qF.add_scalar: `other` / scale must be below 2**31 in "
                         f"magnitude, got {c} / {s}")
    c_q = int(np.rint(c / s))                   # in float64, as PyTorch (ties to even)
    shifted = z - c_q
    if 0 <= shifted <= 255:
        return QTensor(input._int.copy(), quint8, per_tensor_affine, s, shifted)
    if shifted < 0:
        s_out, z_out = (255 - shifted) / 255 * s, 0
    else:
        s_out, z_out = shifted / 255 * s, 255
    # PyTorch's requantize_from_int: the shifted integer times one float32 multiplier
    # S / S', rounded once (ties to even) -- equal to PyTorch's integers
    multiplier = np.float32(s) * (np.float32(1) / np.float32(s_out))
    shifted_q = (input._int.astype(np.int64) - z + c_q).astype(np.float32)
    q = np.rint(shifted_q * multiplier).astype(np.int64) + z_out
    return QTensor(np.clip(q, 0, 255).astype(np.uint8), quint8, per_tensor_affine, s_out,
                   z_out)


def mul_scalar(input, other):
    r"""``input * other`` for a number ``other``, as PyTorch's quantized scalar multiply:
    the integers stay and the scale absorbs :math:`c`, :math:`S' = cS` for
    :math:`c > 0`; for :math:`c < 0` the integers are mirrored, :math:`q' = 255 - q`,
    :math:`Z' = 255 - Z`, :math:`S' = |c| S`; :math:`c = 0` gives zeros with
    :math:`S' = 1, Z' = 0`.

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([0.0, 1.0], 0.5, 10, ql.quint8)
    >>> r = qF.mul_scalar(a, -2.0)
    >>> r.int_repr().tolist(), r.q_scale(), r.q_zero_point(), r.dequantize().tolist()
    ([245, 243], 1.0, 245, [0.0, -2.0])
    """
    require_quantized(input, "qF.mul_scalar")
    c = _number(other)
    s, z = float(input.q_scale()), int(input.q_zero_point())
    if c == 0:
        return QTensor(np.zeros_like(input._int), quint8, per_tensor_affine, 1.0, 0)
    if c > 0:
        return QTensor(input._int.copy(), quint8, per_tensor_affine, s * float(c), z)
    return QTensor((255 - input._int.astype(np.int64)).astype(np.uint8), quint8,
                   per_tensor_affine, s * -float(c), 255 - z)



# -- elementwise maps ---------------------------------------------------------------------
def _real(v, name, who):
    """A finite real number argument as a Python float."""
    v = V._scalar(v, name, "number")
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                             np.floating)):
        raise TypeError(f"{who}: `{name}` must be a real number, got {v!r}")
    if not np.isfinite(float(v)):
        raise ValueError(f"{who}: `{name}` must be a finite number, got {float(v)}")
    return float(v)


def _table_map(input, fn, scale, zero_point, who, inverse_in_float64=False):
    r"""``fn`` applied to a quint8 QTensor as PyTorch's quantized elementwise kernels do:
    each integer is dequantized, :math:`x = q S - Z S` in float32, mapped by ``fn`` in
    float32 and quantized to ``(scale, zero_point)``.  A quint8 input has only 256
    values, so the map is computed once per value and the integers are looked up.

    PyTorch runs its vectorised loop on blocks of 32 elements and a scalar loop, which
    dequantizes as :math:`(q - Z) S`, on the remaining ``n % 32``; the two can differ by
    one at a rounding tie, so PyTorch's own integers depend on an element's position.
    qlearn gives every element the vectorised result.  ``inverse_in_float64``: the
    output's :math:`1/S'` rounded from float64, :math:`\mathrm{f32}(1/S')`, as PyTorch's
    hard swish forms it (the others divide in float32)."""
    require_quantized(input, who)
    if scale is None:
        scale, zero_point = input.q_scale(), input.q_zero_point()
    # PyTorch's vectorised dequantize is one fused multiply-add, q S + (-Z S); a float64
    # product of two float32 numbers is exact, so this rounds (almost always) as the FMA
    s = np.float32(input.q_scale())
    neg_zs = np.float32(-input.q_zero_point()) * s
    levels = (np.arange(256, dtype=np.float64) * np.float64(s)
              + np.float64(neg_zs)).astype(np.float32)
    scale = V.check_scale(scale)
    zero_point = V.check_zero_point(zero_point, 0, 255)
    with np.errstate(over="ignore", invalid="ignore"):
        mapped = np.asarray(fn(levels), dtype=np.float32)
    # and its vectorised quantize rounds before adding Z (quantize_per_tensor adds Z
    # first): round(y / S') + Z', which differs at the many ties of a map onto the
    # input's own grid (hardtanh, leaky_relu without output qparams)
    inv = np.float32(1.0 / scale) if inverse_in_float64 else np.float32(1) / np.float32(scale)
    table = np.clip(np.rint(mapped * inv) + zero_point, 0, 255).astype(np.uint8)
    return QTensor(_lookup.lookup_u8(table, input._int), quint8, per_tensor_affine, scale,
                   zero_point)


def hardswish(input, scale, zero_point):
    r"""Quantized hard swish, requantized to ``(scale, zero_point)``:

    .. math::  y = x \cdot \operatorname{clamp}(x + 3, 0, 6) / 6

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-4.0, -1.0, 0.0, 1.0, 4.0], 0.05, 100, ql.quint8)
    >>> qF.hardswish(a, 0.05, 20).int_repr()       # -0.35, 0.65 and 4.0 at S = 0.05
    array([ 20,  13,  20,  33, 100], dtype=uint8)
    """
    f32 = np.float32
    return _table_map(input, lambda x: x * np.minimum(np.maximum(x + f32(3), f32(0)),
                                                      f32(6)) / f32(6),
                      scale, zero_point, "qF.hardswish", inverse_in_float64=True)


def hardsigmoid(input, inplace=False):
    r"""Quantized hard sigmoid with PyTorch's fixed output parameters
    :math:`S = 1/256, Z = 0`:

    .. math::  y = \operatorname{clamp}(x + 3, 0, 6) / 6

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-4.0, 0.0, 1.5, 4.0], 0.05, 100, ql.quint8)
    >>> qF.hardsigmoid(a).int_repr()
    array([  0, 128, 192, 255], dtype=uint8)
    """
    f32 = np.float32
    return _table_map(input, lambda x: np.minimum(np.maximum(x + f32(3), f32(0)), f32(6))
                      / f32(6), 1.0 / 256, 0, "qF.hardsigmoid")


def sigmoid(input, scale=1.0 / 256, zero_point=0):
    r"""Quantized logistic sigmoid, by default with PyTorch's fixed output parameters
    :math:`S = 1/256, Z = 0` (``torch.sigmoid`` on a quint8 tensor):

    .. math::  y = 1 / (1 + e^{-x})

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-1.0, 0.0, 1.0], 0.05, 100, ql.quint8)
    >>> qF.sigmoid(a).int_repr()
    array([ 69, 128, 187], dtype=uint8)
    """
    f32 = np.float32
    return _table_map(input, lambda x: f32(1) / (f32(1) + np.exp(-x)), scale, zero_point,
                      "qF.sigmoid")


def elu(input, scale, zero_point, alpha=1.0):
    r"""Quantized ELU, requantized to ``(scale, zero_point)``:

    .. math::  y = x \ (x > 0), \qquad y = \alpha\,(e^{x} - 1) \ (x \le 0)

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-2.0, 0.0, 1.0], 0.05, 100, ql.quint8)
    >>> qF.elu(a, 0.05, 100).dequantize()
    array([-0.85,  0.  ,  1.  ], dtype=float32)
    """
    alpha = np.float32(_real(alpha, "alpha", "qF.elu"))
    return _table_map(input, lambda x: np.where(x > 0, x, (np.exp(x) - np.float32(1))
                                                * alpha), scale, zero_point, "qF.elu")


def celu(input, scale, zero_point, alpha=1.0):
    r"""Quantized CELU, requantized to ``(scale, zero_point)``:

    .. math::  y = x \ (x > 0), \qquad y = \alpha\,(e^{x/\alpha} - 1) \ (x \le 0)

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-2.0, 0.0, 1.0], 0.05, 100, ql.quint8)
    >>> qF.celu(a, 0.05, 100, alpha=2.0).dequantize()
    array([-1.25,  0.  ,  1.  ], dtype=float32)
    """
    alpha = _real(alpha, "alpha", "qF.celu")
    if alpha == 0:
        raise ValueError("qF.celu: `alpha` must not be 0")
    a, inv = np.float32(alpha), np.float32(1.0 / alpha)
    return _table_map(input, lambda x: np.where(x > 0, x, (np.exp(x * inv) - np.float32(1))
                                                * a), scale, zero_point, "qF.celu")


def leaky_relu(input, negative_slope=0.01, inplace=False, scale=None, zero_point=None):
    r"""Quantized leaky ReLU; the output keeps the input's parameters unless ``scale``
    and ``zero_point`` are given:

    .. math::  y = x \ (x > 0), \qquad y = \text{negative\_slope} \cdot x \ (x \le 0)

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-2.0, 0.0, 1.0], 0.05, 100, ql.quint8)
    >>> qF.leaky_relu(a, 0.1).dequantize()
    array([-0.2,  0. ,  1. ], dtype=float32)
    """
    slope = np.float32(_real(negative_slope, "negative_slope", "qF.leaky_relu"))
    if (scale is None) != (zero_point is None):
        raise ValueError("qF.leaky_relu: give both `scale` and `zero_point` or neither")
    return _table_map(input, lambda x: np.where(x > 0, x, x * slope), scale, zero_point,
                      "qF.leaky_relu")


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    r"""Quantized hardtanh: :math:`y = \operatorname{clamp}(x, \text{min\_val},
    \text{max\_val})`, the output keeping the input's parameters (the integers are
    clamped to the quantized bounds).

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-2.0, 0.5, 2.0], 0.05, 100, ql.quint8)
    >>> qF.hardtanh(a).dequantize()
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    lo = _real(min_val, "min_val", "qF.hardtanh")
    hi = _real(max_val, "max_val", "qF.hardtanh")
    if lo > hi:
        raise ValueError(f"qF.hardtanh: `min_val` must not exceed `max_val`, got {lo} > {hi}")
    return _table_map(input, lambda x: np.clip(x, np.float32(lo), np.float32(hi)), None, None,
                      "qF.hardtanh")


def clamp(input, min_, max_):
    r"""Quantized clamp, :math:`y = \operatorname{clamp}(x, \text{min\_}, \text{max\_})`
    with the input's parameters (as :func:`hardtanh`).

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-2.0, 0.5, 2.0], 0.05, 100, ql.quint8)
    >>> qF.clamp(a, 0.0, 1.5).dequantize()
    array([0. , 0.5, 1.5], dtype=float32)
    """
    lo = _real(min_, "min_", "qF.clamp")
    hi = _real(max_, "max_", "qF.clamp")
    if lo > hi:
        raise ValueError(f"qF.clamp: `min_` must not exceed `max_`, got {lo} > {hi}")
    return _table_map(input, lambda x: np.clip(x, np.float32(lo), np.float32(hi)), None, None,
                      "qF.clamp")


def threshold(input, threshold, value):
    r"""Quantized threshold, :math:`y = x \ (x > \text{threshold})`, else
    :math:`y = \text{value}`, with the input's parameters.

    >>> import qlearn.nn.quantized.functional as qF
    >>> a = ql.quantize_per_tensor([-2.0, 0.5, 2.0], 0.05, 100, ql.quint8)
    >>> qF.threshold(a, 1.0, -1.0).dequantize()
    array([-1., -1.,  2.], dtype=float32)
    """
    t = np.float32(_real(threshold, "threshold", "qF.threshold"))
    v = np.float32(_real(value, "value", "qF.threshold"))
    return _table_map(input, lambda x: np.where(x > t, x, v), None, None, "qF.threshold")


# the 1-d and 3-d convolutions live in their own module
from .functional_conv_nd import conv1d, conv3d  # noqa: E402
from .functional_pool_1d import adaptive_avg_pool1d, avg_pool1d, max_pool1d  # noqa: E402

__all__ += ["conv1d", "conv3d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d"]

from .functional_pool_3d import adaptive_avg_pool3d, avg_pool3d  # noqa: E402

__all__ += ["avg_pool3d", "adaptive_avg_pool3d"]

from .functional_interpolate import (  # noqa: E402
    interpolate,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)

__all__ += ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]

# the normalisations live in their own module (memory-bound NumPy, with the precise
# rounding steps of PyTorch's kernel)
from .functional_norm import group_norm, instance_norm, layer_norm  # noqa: E402

__all__ += ["layer_norm", "group_norm", "instance_norm"]
