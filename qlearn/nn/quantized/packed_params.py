r"""The int8 gateway at the QTensor level: packed weights and the quantized linear /
conv2d calls (``torch.ops.quantized.linear_prepack`` / ``linear`` / ``conv2d_prepack``
/ ``conv2d`` in PyTorch).

:class:`PackedLinearWeight` and :class:`PackedConvWeight` check a qint8 weight and its
float bias once, at pack time, and keep what every call needs (the packed integers,
the weight's float32 scales and int32 zero points, the bias); :func:`linear_apply`,
:func:`linear_dynamic_apply` and :func:`conv2d_apply` check the quint8 input and the
output parameters, then call the array-level kernels of :mod:`qlearn.kernels.int8`
(which forms the requantization constants of eq. :eq:`int8-requant` as PyTorch's x86
backend does).  The modules of :mod:`qlearn.nn.quantized` and
:mod:`qlearn.nn.quantized.dynamic` and the functions of
:mod:`qlearn.nn.quantized.functional` are built on these.
"""
import math

import numpy as np

from ... import _validation as V
from ...dtypes import (
    per_channel_affine,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    quint8,
)
from ...kernels import int8 as _int8
from ...kernels import simd as _simd
from ...kernels import threads as _threads
from ...kernels.quantize import per_tensor_unchecked
from ...qtensor import QTensor

__all__ = [
    "PackedConvWeight",
    "PackedLinearWeight",
    "choose_qparams_dynamic",
    "conv2d_apply",
    "linear_apply",
    "linear_dynamic_apply",
    "require_quantized",
]

def require_quantized(x, who, name="input"):
    """Raise a clear error unless ``x`` is a per-tensor quint8 :class:`QTensor`."""
    if not isinstance(x, QTensor):
        what = (f"a float array ({x.dtype})" if isinstance(x, np.ndarray)
                else type(x).__name__)
        raise TypeError(f"{who} expects a quantized `{name}` (a quint8 QTensor), got "
                        f"{what}; quantize it first, e.g. put a QuantStub (or "
                        f"nnq.Quantize) in front of this module")
    if x.dtype is not quint8:
        raise TypeError(f"{who}: `{name}` must be quint8, got {x.dtype!r}")
    if x.qscheme() not in (per_tensor_affine, per_tensor_symmetric):
        raise ValueError(f"{who}: `{name}` must be quantized per tensor, got "
                         f"{x.qscheme()!r}")
    return x


_last_qparams = (None, None)     # (key, validated pair), replaced as one object


def _check_out_qparams(scale, zero_point):
    """Validated output ``(scale, zero_point)``; a module passes the same pair call after
    call, so the last validated pair is remembered."""
    global _last_qparams
    plain = type(scale) is float and type(zero_point) is int
    key = (scale, zero_point)
    last = _last_qparams
    if plain and last[0] == key:
        return last[1]
    checked = (V.check_scale(scale, "scale"),
               V.check_zero_point(zero_point, 0, 255, "zero_point"))
    if plain:
        _last_qparams = (key, checked)
    return checked


def _weight_qparams(qweight, n_out, who):
    """Per-output-channel float32 scales and int32 zero points of a qint8 weight."""
    if not isinstance(qweight, QTensor):
        raise TypeError(f"{who}: `weight` must be a qint8 QTensor, got "
                        f"{type(qweight).__name__}")
    if qweight.dtype is not qint8:
        raise TypeError(f"{who}: `weight` must be qint8, got {qweight.dtype!r}")
    scheme = qweight.qscheme()
    if scheme in (per_tensor_affine, per_tensor_symmetric):
        scales = np.full(n_out, qweight.q_scale(), dtype=np.float64)
        zps = np.full(n_out, qweight.q_zero_point(), dtype=np.int64)
        per_channel = False
    elif scheme in (per_channel_affine, per_channel_symmetric):
        if qweight.q_per_channel_axis() != 0:
            raise ValueError(f"{who}: a per-channel `weight` must be quantized along axis "
                             f"0 (output channels), got axis {qweight.q_per_channel_axis()}")
        scales = qweight.q_per_channel_scales()
        zps = qweight.q_per_channel_zero_points()
        per_channel = True
    else:
        raise ValueError(f"{who}: unsupported weight qscheme {scheme!r}")
    return scales.astype(np.float32), zps.astype(np.int32), per_channel


def _check_bias(bias, n_out, who):
    if bias is None:
        return None
    b = np.asarray(bias.data if hasattr(bias, "data") and not isinstance(bias, np.ndarray)
                   else bias)
    b = V.as_float32(b, "bias")
    if b.shape != (n_out,):
        raise ValueError(f"{who}: `bias` must have shape ({n_out},), got {b.shape}")
    V.check_all_finite(b, "bias")
    return b


class _PackedGemmWeight(_int8.GemmWeight):
    """A qint8 weight (N, K) packed for the GEMM micro-kernels (eq. :eq:`int8-pack`),
    checked once: its QTensor, float32 scales ``w_scale`` and int32 zero points per
    output column, the float32 bias, and (from :class:`qlearn.kernels.int8.GemmWeight`)
    the integers, ``colsum'`` and the packed bytes.
    """

    def __init__(self, w_int, qweight, bias, who):
        n, k = w_int.shape
        if k > _int8.MAX_DEPTH:
            raise ValueError(f"{who}: the reduction depth K = {k} is larger than "
                             f"{_int8.MAX_DEPTH}, where int32 accumulators could overflow")
        self.qweight = qweight
        self.w_scale, w_zp, self.per_channel = _weight_qparams(qweight, n, who)
        self.bias = _check_bias(bias, n, who)
        super().__init__(w_int, w_zp)
        self._requant_cache = (None, None)

    def requant_constants(self, a_scale, out_scale):
        """``(bias_q, mult)`` of eq. :eq:`int8-requant`, float32, formed as FBGEMM forms them.

        The last pair is cached: a module sees the same scales call after call.
        """
        return _requant_cached(self, a_scale, out_scale)


def _requant_cached(pw, a_scale, out_scale):
    """``(bias_q, mult)`` of the weight ``pw`` (its ``w_scale``, ``bias`` and
    ``per_channel``) for these scales, the last pair cached on ``pw``."""
    key = (a_scale, out_scale)
    cached = getattr(pw, "_requant_cache", (None, None))   # (older pickles lack it)
    if cached[0] == key:
        return cached[1]
    value = _int8.requant_constants(a_scale, pw.w_scale, out_scale, pw.bias, pw.per_channel)
    pw._requant_cache = (key, value)        # one object: safe across threads
    return value


# ---- linear ------------------------------------------------------------------------------
class PackedLinearWeight(_PackedGemmWeight):
    """``torch.ops.quantized.linear_prepack``'s result: weight (N, K) and float bias."""

    def __init__(self, qweight, bias=None):
        who = "linear_prepack"
        if not isinstance(qweight, QTensor) or qweight.ndim != 2:
            raise ValueError(f"{who}: `weight` must be a 2-d qint8 QTensor (out_features, "
                             f"in_features), got "
                             f"{getattr(qweight, 'shape', type(qweight).__name__)}")
        super().__init__(qweight._int, qweight, bias, who)

    def unpack(self):
        """``(qweight, bias)`` as given."""
        return self.qweight, self.bias


def linear_apply(x, pw, scale, zero_point, relu=False, who="quantized linear"):
    r"""Quantized linear: :math:`y = \mathrm{requant}(x W^T + b)`, eqs. :eq:`int8-acc` to
    :eq:`int8-requant`.

    The weight was checked when it was packed; per call only the input (a per-tensor
    quint8 QTensor with ``pw.k`` features) and the output ``(scale, zero_point)`` are.
    """
    if (type(x) is not QTensor or x.dtype is not quint8
            or x._qscheme is not per_tensor_affine):
        require_quantized(x, who)     # raises, or accepts a subclass / symmetric scheme
    scale, zero_point = _check_out_qparams(scale, zero_point)
    xi = x._int
    shape = xi.shape
    if not shape or shape[-1] != pw.k:
        raise ValueError(f"{who}: `input` must have {pw.k} features in its last "
                         f"dimension, got shape {shape}")
    if len(shape) == 2:
        a, m, lead = xi, shape[0], None
    else:
        m = math.prod(shape[:-1])
        a, lead = xi.reshape(m, pw.k), shape[:-1]    # (-1 fails for K = 0)
    n = pw.n
    out = np.empty((m, n), dtype=np.uint8)
    lo = zero_point if relu else 0
    if m and n:
        bias_q, mult = pw.requant_constants(x._scale, scale)
        if not pw.k:          # no products: eq. (6) of the bias alone
            t = (bias_q if bias_q.size else np.zeros(n, np.float32)) * mult
            out[...] = np.clip(np.rint(t) + zero_point, lo, 255)
        elif (path := _simd.active()) and pw.plan is not None and pw.k % 4 == 0 \
                and a.flags.c_contiguous:
            # the per-call path: no copies, the kernel checks its arrays itself
            pw.plan.requant(path, a, x._zero_point, bias_q, mult, zero_point, lo, 255, out,
                            _threads.get_num_threads())
        else:
            _int8.gemm_u8(pw, _int8.as_rows(a, pw.k), x._zero_point, bias_q, mult,
                          zero_point, lo, 255, out)
    if lead is not None:
        out = out.reshape(lead + (n,))
    return per_tensor_unchecked(out, quint8, per_tensor_affine, scale, zero_point)


def choose_qparams_dynamic(x, reduce_range=True):
    """Scale and zero point for one tensor, as FBGEMM's ``ChooseQuantizationParams``.

    The range is widened to contain 0; ``qmax`` is 127 with ``reduce_range`` (so the
    vpmaddubsw pairs cannot saturate), else 255.  float64 arithmetic, float32 scale.
    """
    qmin, qmax = 0, (127 if reduce_range else 255)
    lo = min(float(x.min()) if x.size else 0.0, 0.0)
    hi = max(float(x.max()) if x.size else 0.0, 0.0)
    lo, hi = float(np.float32(lo)), float(np.float32(hi))
    scale = (hi - lo) / (qmax - qmin)
    if np.float32(scale) == 0 or not np.isfinite(np.float32(1) / np.float32(scale)):
        scale = 0.1
    scale = float(np.float32(scale))
    zp_min, zp_max = qmin - lo / scale, qmax - hi / scale
    err_min = abs(qmin) - abs(lo / scale)
    err_max = abs(qmax) - abs(hi / scale)
    zp = zp_min if err_min < err_max else zp_max
    zp = qmin if zp < qmin else (qmax if zp > qmax else int(np.rint(zp)))
    # a range at +-3.4e38: no end of it may quantize to a level beyond the float32
    # maximum (imported here: qlearn.quantization imports nn)
    from ...quantization.qparams import cover_scale
    return float(cover_scale(np.float32(scale), zp, lo, hi, qmin, qmax)[0]), int(zp)


def linear_dynamic_apply(x, pw, reduce_range=True, relu=False, who="dynamic linear"):
    r"""Dynamic quantized linear: quantize ``x`` from its own range, then eq. :eq:`int8-dynamic`.

    :math:`y_{ij} = S_a S_{w,j} C_{ij} + b_j`, a float32 array.
    """
    from ...qtensor import quantize_per_tensor
    if isinstance(x, QTensor):
        raise TypeError(f"{who} expects a float `input` (it quantizes activations "
                        f"itself), got a QTensor; dequantize() it first")
    xf = V.as_float32(getattr(x, "data", x) if not isinstance(x, np.ndarray) else x,
                      "input")
    V.check_all_finite(xf, "input")
    if xf.ndim < 1 or xf.shape[-1] != pw.k:
        raise ValueError(f"{who}: `input` must have {pw.k} features in its last "
                         f"dimension, got shape {xf.shape}")
    lead = xf.shape[:-1]
    a_scale, a_zp = choose_qparams_dynamic(xf, reduce_range)
    qa = quantize_per_tensor(xf, a_scale, a_zp, quint8)._int.reshape(math.prod(lead), pw.k)
    if qa.shape[0] == 0 or pw.n == 0:
        return np.zeros(lead + (pw.n,), dtype=np.float32)
    if pw.k == 0:    # no products: the bias
        out = np.zeros(lead + (pw.n,), np.float32) + (0 if pw.bias is None else pw.bias)
        return np.maximum(out, 0) if relu else out
    with np.errstate(over="ignore"):
        fscale = (np.float32(a_scale) * pw.w_scale).astype(np.float32)
    if not np.isfinite(fscale).all():   # inf * 0 would be NaN for a zero accumulator
        raise ValueError(f"{who}: the output scale input scale x weight scale = "
                         f"{a_scale:.4g} x {float(pw.w_scale.max()):.4g} exceeds the "
                         f"float32 maximum")
    out = _int8.gemm_f32(pw, _int8.as_rows(qa, pw.k), a_zp, fscale, pw.bias, relu)
    return out.reshape(lead + (pw.n,))


# ---- conv2d ------------------------------------------------------------------------------
def _int_tuple(v, n, name, who, minimum, what):
    """An int or a sequence of ``n`` ints in ``[minimum, 2**30]`` as a tuple of ``n``
    ints.  A string, a float or a bool (alone or inside the sequence) is refused: they
    would otherwise be read digit by digit or truncated."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        v = (int(v),) * n
    if isinstance(v, (str, bytes)) or not isinstance(v, (tuple, list, np.ndarray)) \
            or not all(isinstance(t, (int, np.integer))
                       and not isinstance(t, (bool, np.bool_)) for t in v):
        raise TypeError(f"{who}: `{name}` must be an int or {what}, got {v!r}")
    v = tuple(int(t) for t in v)
    if len(v) != n or min(v) < minimum or max(v) > 1 << 30:   # (C longs in the kernels)
        raise ValueError(f"{who}: `{name}` must be an int or {what} in "
                         f"[{minimum}, 2**30], got {v!r}")
    return v


def _check_conv_weight_sizes(qweight, who, layout):
    """A convolution weight with a zero-size dimension (no output channel, no input
    channel or an empty kernel) is refused: an empty kernel would otherwise widen the
    output by one per axis; PyTorch refuses all three when it builds the primitive."""
    if 0 in qweight.shape:
        raise ValueError(f"{who}: `weight` {layout} must have no zero-size dimension, "
                         f"got shape {qweight.shape}")


def _pair(v, name, who, minimum):
    return _int_tuple(v, 2, name, who, minimum, "a pair of ints")


class PackedConvWeight:
    """``torch.ops.quantized.conv2d_prepack``'s result.

    The weight (O, C/g, kh, kw) is reordered to depth order (ky, kx, c), the order
    :func:`qlearn.kernels.int8.im2col` writes, and packed per group; depthwise
    weights (one filter per channel) are also kept as int32 ``w - Zw`` taps for the
    direct kernel.
    """

    def __init__(self, qweight, bias, stride=1, padding=0, dilation=1, groups=1,
                 _who="conv2d_prepack"):
        who = _who
        if not isinstance(qweight, QTensor) or qweight.ndim != 4:
            raise ValueError(f"{who}: `weight` must be a 4-d qint8 QTensor (out_channels, "
                             f"in_channels/groups, kh, kw), got "
                             f"{getattr(qweight, 'shape', type(qweight).__name__)}")
        _check_conv_weight_sizes(qweight, who, "(out_channels, in_channels/groups, kh, kw)")
        self.stride = _pair(stride, "stride", who, 1)
        self.padding = _pair(padding, "padding", who, 0)
        self.dilation = _pair(dilation, "dilation", who, 1)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) \
                or groups < 1:
            raise ValueError(f"{who}: `groups` must be a positive integer, got {groups!r}")
        self.groups = g = int(groups)
        o, cg, kh, kw = qweight.shape
        if o % g:
            raise ValueError(f"{who}: out_channels ({o}) must be divisible by groups ({g})")
        og = o // g
        self.out_channels, self.in_channels = o, cg * g
        self.kernel_size = (kh, kw)
        self.qweight = qweight
        scales, zps, per_channel = _weight_qparams(qweight, o, who)
        self.bias = _check_bias(bias, o, who)
        w = qweight._int
        # depth order (ky, kx, c) to match im2col
        w_rows = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(o, kh * kw * cg))
        self.group_gemm = []
        for gi in range(g):
            sub = qweight[gi * og:(gi + 1) * og]
            pwg = _PackedGemmWeight(w_rows[gi * og:(gi + 1) * og], sub,
                                    None if self.bias is None
                                    else self.bias[gi * og:(gi + 1) * og], who)
            pwg.per_channel = per_channel      # bias rounding follows the whole weight
            self.group_gemm.append(pwg)
        self.w_scale, self.w_zp, self.per_channel = scales, zps, per_channel
        # one input channel per group: the direct depthwise kernel (any window; a GEMM
        # per group would fill og columns of its 16- or 64-wide tiles); with a channel
        # multiplier og > 1 output channel o reads input channel o // og, so the kernel
        # runs on the input with each channel repeated og times
        self.depthwise = cg == 1 and (g > 1 or o == 1)
        if self.depthwise:
            wz = w.reshape(o, kh * kw).astype(np.int32) - zps[:, None]
            self.dw_taps = np.ascontiguousarray(wz.T)          # (kh kw, C)
        # 4 or 8 input and as many output channels per group, a symmetric weight: the
        # direct kernel, 16 or 8 groups per vpdpbusd on VNNI, 4 or 2 per vpmaddwd on
        # AVX2 (a GEMM per group would fill 4 or 8 of the 16 columns of its tiles); its
        # weights are packed for a path on first use (_groupwise_weights)
        self.groupwise = g > 1 and cg == og and cg in (4, 8) and not np.any(zps)
        self._gw_packs = {}
        # what every call of _conv_gemm needs, formed once: the window, whether it is a
        # 1x1 convolution (the channels-last input is then the GEMM's A) and per group
        # (packed weight, first input channel, first output column)
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        self._window = (kh, kw, sh, sw, ph, pw, dh, dw)
        self._direct = (kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and g == 1
                        and (kh * kw * cg) % 4 == 0)
        self._groups = [(pwg, gi * cg, gi * og) for gi, pwg in enumerate(self.group_gemm)]
        self._last_size = (None, None)
        self._requant_cache = (None, None)

    # the caches formed on first use (_grouped_gemm, _groupwise_weights) are formed
    # again after unpickling: the grouped GEMM weight's packed bytes would lose their
    # alignment in a pickle, as a GemmWeight's would
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_gemm_groups", None)
        state["_gw_packs"] = {}
        return state

    def unpack(self):
        """``(qweight, bias)`` as given (``torch.ops.quantized.conv2d_unpack``)."""
        return self.qweight, self.bias

    def output_size(self, h, w):
        r"""The output's ``(H_out, W_out)`` for an ``h`` x ``w`` input, as ``Conv2d``'s:
        :math:`H_\text{out} = \lfloor (h + 2 p_h - d_h (k_h - 1) - 1) / s_h \rfloor + 1`,
        and likewise for the width."""
        last = self._last_size          # a module sees the same size call after call
        if last[0] == (h, w):
            return last[1]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (dh, dw) = self.padding, self.dilation
        size = ((h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
                (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)
        self._last_size = ((h, w), size)      # one object: safe across threads
        return size


def conv2d_apply(x, pc, scale, zero_point, relu=False, who="quantized conv2d"):
    """Quantized conv2d: im2col + GEMM per group (:eq:`int8-acc` to :eq:`int8-requant`),
    or depthwise (:eq:`int8-depthwise`), or for 4 or 8 channels per group the direct
    grouped kernel (:func:`qlearn.kernels.int8.groupwise`).

    Returns a QTensor of logical shape (N, O, Ho, Wo) whose integers are laid out
    channels-last (as PyTorch's are); the next convolution reads them in place.
    """
    require_quantized(x, who)
    scale, zero_point = _check_out_qparams(scale, zero_point)
    if x.ndim != 4:
        raise ValueError(f"{who}: `input` must be 4-d (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    if c != pc.in_channels:
        raise ValueError(f"{who}: `input` must have {pc.in_channels} channels, got {c}")
    ho, wo = pc.output_size(h, w)
    if ho < 1 or wo < 1:
        raise ValueError(f"{who}: the input {h}x{w} is too small for kernel "
                         f"{pc.kernel_size} with padding {pc.padding} and dilation "
                         f"{pc.dilation}")
    o = pc.out_channels
    out = np.empty((n, ho, wo, o), dtype=np.uint8)
    lo = zero_point if relu else 0
    a_zp = x.q_zero_point()
    path = _simd.active()
    if n and o:
        if pc.depthwise and path != _simd.Simd.GENERIC:
            xi, nchw = _layout(x._int)
            bias_q, mult = _conv_requant(pc, x.q_scale(), scale)
            _int8.depthwise(xi, pc.dw_taps, pc.kernel_size, pc.stride, pc.padding,
                            pc.dilation, a_zp, bias_q, mult, zero_point, lo, 255, out, path,
                            nchw=nchw)
        elif getattr(pc, "groupwise", False) and path != _simd.Simd.GENERIC:  # old pickles
            xi, nchw = _layout(x._int)
            bias_q, mult = _conv_requant(pc, x.q_scale(), scale)
            packed, colsum = _groupwise_weights(pc, path)
            _int8.groupwise(xi, packed, colsum, pc.in_channels // pc.groups, pc.kernel_size,
                            pc.stride, pc.padding, pc.dilation, a_zp, bias_q, mult,
                            zero_point, lo, 255, out, path, nchw=nchw)
        else:
            _conv_gemm(x._int, pc, x.q_scale(), a_zp, scale, zero_point, lo, out, path)
    return per_tensor_unchecked(out.transpose(0, 3, 1, 2), quint8, per_tensor_affine, scale,
                                zero_point)


def _layout(x):
    """``(x, True)`` for NCHW integers ``x`` in C order (the kernels convert them as they
    read), else ``(channels-last array, False)``: a view when ``x`` is channels-last in
    memory (a convolution's output), else a copy."""
    _, c, h, w = x.shape
    if x.flags.c_contiguous and c > 1 and h * w > 1:
        return x, True
    xi = x.transpose(0, 2, 3, 1)
    return (xi if xi.flags.c_contiguous else _int8.channels_last(x)), False


def _groupwise_weights(pc, path):
    """:func:`qlearn.kernels.int8.pack_groupwise`'s ``(packed, colsum)`` of ``pc`` for
    ``path``, packed on first use (a module on the VNNI path never packs the AVX2
    layout) and kept."""
    packs = pc.__dict__.setdefault("_gw_packs", {})          # (older pickles lack it)
    if path not in packs:
        packs[path] = _int8.pack_groupwise(pc.qweight._int, path)   # one dict: thread-safe
    return packs[path]


def _grouped_gemm(pc):
    """The GEMM weights of every group of ``pc`` as one
    :class:`qlearn.kernels.int8.GroupedGemmWeight`, made on first use and kept (not
    pickled: see PackedConvWeight.__getstate__)."""
    gw = pc.__dict__.get("_gemm_groups")
    if gw is None:
        gw = pc._gemm_groups = _int8.GroupedGemmWeight(pc.group_gemm)
    return gw


def _conv_requant(pc, a_scale, out_scale):
    """``(bias_q, mult)`` of eq. :eq:`int8-requant` for the whole weight of ``pc``, cached
    as a GEMM weight's."""
    return _requant_cached(pc, a_scale, out_scale)


def _conv_gemm(x, pc, a_scale, a_zp, out_scale, out_zp, lo, out, path):
    """The groups of a convolution of the NCHW-shaped integers ``x`` into the
    channels-last ``out``.  A channels-last ``x`` (a convolution's output) is read in
    place; an NCHW one is converted by the fused kernel, band by band in cache (no
    whole copy), except where the kernel reads a matrix (the 1x1 convolution, the
    generic path): there it is copied once."""
    n, c, h, w = x.shape
    _, ho, wo, o = out.shape
    og = o // pc.groups
    kh, kw, sh, sw, ph, pw_, dh, dw = pc._window
    direct = pc._direct
    out2 = out.reshape(n * ho * wo, o)
    xi, nchw = _layout(x)
    if nchw and (direct or path == _simd.Simd.GENERIC):
        xi, nchw = _int8.channels_last(x), False
    if direct or path == _simd.Simd.GENERIC:
        cg = c // pc.groups
        k = kh * kw * cg
        # 1x1 convolution: the channels-last input already is A (eq. (3)), no im2col
        a = (xi.reshape(n * h * w, c) if direct
             else np.empty((n * ho * wo, 4 * ((k + 3) // 4)), dtype=np.uint8))
        for pwg, c0, j0 in pc._groups:
            bias_q, mult = pwg.requant_constants(a_scale, out_scale)
            if not direct:
                _int8.im2col(xi, c0, cg, kh, kw, sh, sw, ph, pw_, dh, dw, a_zp, a)
            _int8.gemm_u8(pwg, a, a_zp, bias_q, mult, out_zp, lo, 255, out2[:, j0:j0 + og],
                          path)
        return
    # patches in cache-sized blocks, fused with the GEMM, every group in one parallel
    # job (a job per group would split each small GEMM between the threads)
    gw = pc.group_gemm[0] if pc.groups == 1 else _grouped_gemm(pc)
    bias_q, mult = _conv_requant(pc, a_scale, out_scale)
    _int8.conv_gemm(gw, xi, 0, c // pc.groups, kh, kw, sh, sw, ph, pw_, dh, dw, a_zp, bias_q,
                    mult, out_zp, lo, 255, out2, path, _threads.get_num_threads(), nchw)
