r"""Packed int8 weights and the calls into the GEMM / conv kernels.

This module is the only importer of ``qlearn._ext._qgemm``, ``_qconv`` and ``_qops``:
it validates every argument, computes the requantization constants exactly as
PyTorch's x86 (FBGEMM) backend does, and hands clean arrays to the kernels.

Requantization constants (eq. :eq:`int8-requant`), all in float32 as FBGEMM forms them:

.. math::

   m_j = \frac{\mathrm{f32}(S_a)\,\mathrm{f32}(S_{w,j})}{\mathrm{f32}(S_o)}, \qquad
   \beta_j = \begin{cases} b_j \cdot \big(1 / (S_a S_w)\big) & \text{per-tensor weight} \\
                           b_j / (S_a S_{w,j}) & \text{per-channel weight} \end{cases}

   y_{ij} = \operatorname{clamp}\big(\operatorname{nearbyint}((C_{ij} + \beta_j)\, m_j)
            + Z_o,\ \text{lo},\ 255\big)

with ``lo = Z_o`` when a ReLU is fused, else 0.  These were determined by comparing
against ``torch.ops.quantized.linear`` / ``conv2d`` (engine ``x86``) on millions of
outputs: the float bias is *not* rounded to int32 first (that variant differs on ~0.03%
of outputs), it is divided by ``Sa Sw`` in float32 and added to the int32 accumulator
converted to float32.
"""
import contextlib
import math

import numpy as np

from ... import _validation as V
from ..._ext import _qconv, _qgemm
from ..._ext._openmp import get_num_threads
from ...dtypes import (
    per_channel_affine,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    quint8,
)
from ...qtensor import QTensor

__all__ = [
    "PackedConvWeight",
    "PackedLinearWeight",
    "conv2d_apply",
    "force_gemm_path",
    "gemm_path",
    "linear_apply",
    "linear_dynamic_apply",
    "require_quantized",
]

#: int32 never overflows while K |a - Za| |w - Zw| <= K * 255 * 255 < 2**31.
MAX_DEPTH = (2 ** 31 - 1) // (255 * 255)

_PATH_NAMES = {"generic": _qgemm.GENERIC, "avx2": _qgemm.AVX2, "vnni": _qgemm.VNNI}
_forced = None


def gemm_path():
    """The GEMM path in use: ``"vnni"``, ``"avx2"`` or ``"generic"`` (fastest available).

    ``QLEARN_SIMD=generic`` or ``QLEARN_SIMD=avx2`` in the environment caps it;
    :func:`force_gemm_path` overrides it (tests and benchmarks use that).
    """
    if _forced is not None:
        return _forced
    return _qgemm.available_paths()[-1]


@contextlib.contextmanager
def force_gemm_path(path):
    """Run the enclosed code with GEMM path ``path`` (one of :func:`gemm_path`'s)."""
    global _forced
    if path not in _qgemm.available_paths():
        raise ValueError(f"`path` must be one of {_qgemm.available_paths()} on this CPU, "
                         f"got {path!r}")
    before, _forced = _forced, path
    try:
        yield
    finally:
        _forced = before


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


_F32_TINY = np.finfo(np.float32).tiny


def _requant_f32(a_scale, w_scale, out_scale, bias, per_channel):
    """``(bias_q, mult)`` of eq. (6) in float32, as FBGEMM forms them.

    With extreme but valid scales the float32 intermediate ``Sa Sw`` overflows or
    underflows (``mult`` inf or 0, ``bias_q`` inf or NaN: a silently wrong output); the
    constants are then formed in float64 and rounded once.  Constants that float32
    cannot hold even so are refused.
    """
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        atws = np.float32(a_scale) * w_scale                    # Sa Sw[j], float32
        mult = (atws / np.float32(out_scale)).astype(np.float32)
        if bias is None:
            bias_q = np.empty(0, dtype=np.float32)
        elif per_channel:
            bias_q = (bias / atws).astype(np.float32)
        else:
            bias_q = (bias * (np.float32(1) / atws)).astype(np.float32)
    if (np.isfinite(atws).all() and (atws >= _F32_TINY).all() and np.isfinite(mult).all()
            and np.isfinite(bias_q).all()):
        return bias_q, mult
    atws64 = np.float64(np.float32(a_scale)) * w_scale.astype(np.float64)
    with np.errstate(over="ignore"):
        mult = (atws64 / np.float64(np.float32(out_scale))).astype(np.float32)
        if bias is not None:
            bias_q = (bias.astype(np.float64) / atws64).astype(np.float32)
    if not np.isfinite(mult).all():
        j = int(np.argmax(~np.isfinite(mult)))
        raise ValueError(f"the requantization multiplier input scale x weight scale / "
                         f"output scale = {a_scale:.4g} x {float(w_scale[j]):.4g} / "
                         f"{out_scale:.4g} exceeds the float32 maximum (channel {j})")
    if not np.isfinite(bias_q).all():
        j = int(np.argmax(~np.isfinite(bias_q)))
        raise ValueError(f"`bias`[{j}] = {float(bias[j]):.4g} is too large for the scales: "
                         f"bias / (input scale x weight scale) exceeds the float32 maximum")
    return bias_q, mult


class _PackedGemmWeight:
    """A qint8 weight (N, K) packed for the GEMM micro-kernels (eq. :eq:`int8-pack`).

    Holds the integers ``w`` (N, K) (the reference path and :meth:`unpack` use them),
    the per-column ``Zw`` and float32 ``Sw``, ``colsum'[j] = sum_k w[j, k] - K Zw[j]``
    (eq. :eq:`int8-expansion`), and the packed bytes.
    """

    def __init__(self, w_int, qweight, bias, who):
        n, k = w_int.shape
        if k > MAX_DEPTH:
            raise ValueError(f"{who}: the reduction depth K = {k} is larger than "
                             f"{MAX_DEPTH}, where int32 accumulators could overflow")
        self.qweight = qweight
        self.w = np.ascontiguousarray(w_int, dtype=np.int8)
        self.n, self.k = n, k
        self.w_scale, self.w_zp, self.per_channel = _weight_qparams(qweight, n, who)
        self.any_wzp = bool(np.any(self.w_zp != 0))
        self.colsum = (self.w.sum(axis=1, dtype=np.int64)
                       - k * self.w_zp.astype(np.int64)).astype(np.int32)
        self.bias = _check_bias(bias, n, who)
        self.packed = np.empty(_qgemm.packed_size(n, k), dtype=np.int8)
        self.plan = None
        if n and k:
            _qgemm.pack_weight(self.w, self.packed)
            self.plan = _qgemm.PackedGemm(self.packed, self.colsum, self.w_zp, n, k)

    def requant_constants(self, a_scale, out_scale):
        """``(bias_q, mult)`` of eq. :eq:`int8-requant`, float32, formed as FBGEMM forms them.

        The last pair is cached: a module sees the same scales call after call.
        """
        key = (a_scale, out_scale)
        cached = getattr(self, "_requant_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        value = self._requant_constants(a_scale, out_scale)
        self._requant_cache = (key, value)      # one object: safe across threads
        return value

    def _requant_constants(self, a_scale, out_scale):
        return _requant_f32(a_scale, self.w_scale, out_scale, self.bias, self.per_channel)


def _as_rows(a, k):
    """Activations (M, K) uint8 as an (M, lda) C array with lda = 4 ceil(K/4).

    The micro-kernels read whole groups of 4 depth values; the packed weight is zero
    beyond K, so the padding bytes only need to exist (they are set to 0).
    """
    lda = 4 * ((k + 3) // 4)
    if lda == k and a.flags.c_contiguous:
        return a
    out = np.zeros((a.shape[0], lda), dtype=np.uint8)
    out[:, :k] = a
    return out


def _gemm(pw, a_rows, a_zp, bias_q, mult, out_zp, lo, hi, out_u8=None, fscale=None,
          fbias=None, relu=False, path=None):
    """Run eqs. :eq:`int8-expansion` + :eq:`int8-requant` (``out_u8``) or
    :eq:`int8-dynamic` (float, returned) on the chosen path."""
    empty = np.empty(0, dtype=np.float32)
    path = path or gemm_path()
    nt = get_num_threads()
    m = a_rows.shape[0]
    if out_u8 is None:
        out_f = np.empty((m, pw.n), dtype=np.float32)
    if path == "generic" or pw.plan is None:
        a = np.ascontiguousarray(a_rows[:, :pw.k])
        if out_u8 is not None:
            _qgemm.gemm_ref(a, pw.w, pw.w_zp, a_zp,
                            bias_q if bias_q.size else np.zeros(pw.n, np.float32), mult,
                            out_zp, lo, hi, out_u8, nt)
            return out_u8
        _qgemm.gemm_ref_float(a, pw.w, pw.w_zp, a_zp, fscale,
                              fbias if fbias is not None else np.zeros(pw.n, np.float32),
                              relu, out_f, nt)
        return out_f
    code = _PATH_NAMES[path]
    if out_u8 is not None:
        pw.plan.requant(code, a_rows, a_zp, bias_q, mult, out_zp, lo, hi, out_u8, nt)
        return out_u8
    pw.plan.to_float(code, a_rows, a_zp, fscale, fbias if fbias is not None else empty,
                     relu, out_f, nt)
    return out_f


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
    :eq:`int8-requant`."""
    require_quantized(x, who)
    scale, zero_point = _check_out_qparams(scale, zero_point)
    if x.ndim < 1 or x.shape[-1] != pw.k:
        raise ValueError(f"{who}: `input` must have {pw.k} features in its last "
                         f"dimension, got shape {x.shape}")
    lead = x.shape[:-1]
    a = x._int.reshape(math.prod(lead), pw.k)   # (-1 fails for K = 0)
    out = np.empty((a.shape[0], pw.n), dtype=np.uint8)
    if a.shape[0] and pw.n and not pw.k:   # no products: eq. (6) of the bias alone
        bias_q, mult = pw.requant_constants(x.q_scale(), scale)
        t = (bias_q if bias_q.size else np.zeros(pw.n, np.float32)) * mult
        out[...] = np.clip(np.rint(t) + zero_point, zero_point if relu else 0, 255)
    elif a.shape[0] and pw.n:
        bias_q, mult = pw.requant_constants(x.q_scale(), scale)
        _gemm(pw, _as_rows(a, pw.k), x.q_zero_point(), bias_q, mult, zero_point,
              zero_point if relu else 0, 255, out_u8=out)
    return QTensor(out.reshape(lead + (pw.n,)), quint8, per_tensor_affine, scale,
                   zero_point)


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
    # a range at +-3.4e38: keep the outermost levels below the float32 maximum
    # (imported here: qlearn.quantization imports nn)
    from ...quantization.qparams import cap_scale
    return float(cap_scale(np.float32(scale), zp, qmin, qmax)), int(zp)


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
    out = _gemm(pw, _as_rows(qa, pw.k), a_zp, None, None, 0, 0, 255, fscale=fscale,
                fbias=pw.bias, relu=relu)
    return out.reshape(lead + (pw.n,))


# ---- conv2d ------------------------------------------------------------------------------
def _pair(v, name, who, minimum):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v), int(v))
    try:
        v = tuple(int(t) for t in v)
    except TypeError:
        raise TypeError(f"{who}: `{name}` must be an int or a pair of ints, got {v!r}") \
            from None
    if len(v) != 2 or min(v) < minimum or max(v) > 1 << 30:   # (C longs in the kernels)
        raise ValueError(f"{who}: `{name}` must be an int or a pair of ints in "
                         f"[{minimum}, 2**30], got {v!r}")
    return v


class PackedConvWeight:
    """``torch.ops.quantized.conv2d_prepack``'s result.

    The weight (O, C/g, kh, kw) is reordered to depth order (ky, kx, c), the order
    :func:`qlearn._ext._qconv.im2col` writes, and packed per group; depthwise 3x3
    weights are also kept as int16 ``w - Zw`` taps for the direct kernel.
    """

    def __init__(self, qweight, bias, stride=1, padding=0, dilation=1, groups=1):
        who = "conv2d_prepack"
        if not isinstance(qweight, QTensor) or qweight.ndim != 4:
            raise ValueError(f"{who}: `weight` must be a 4-d qint8 QTensor (out_channels, "
                             f"in_channels/groups, kh, kw), got "
                             f"{getattr(qweight, 'shape', type(qweight).__name__)}")
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
        self.out_channels, self.in_channels = o, cg * g
        self.kernel_size = (kh, kw)
        self.qweight = qweight
        scales, zps, per_channel = _weight_qparams(qweight, o, who)
        self.bias = _check_bias(bias, o, who)
        w = qweight._int
        # depth order (ky, kx, c) to match im2col
        w_rows = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(o, kh * kw * cg))
        og = o // g
        self.group_gemm = []
        for gi in range(g):
            sub = qweight[gi * og:(gi + 1) * og]
            pwg = _PackedGemmWeight(w_rows[gi * og:(gi + 1) * og], sub,
                                    None if self.bias is None
                                    else self.bias[gi * og:(gi + 1) * og], who)
            pwg.per_channel = per_channel      # bias rounding follows the whole weight
            self.group_gemm.append(pwg)
        self.w_scale, self.w_zp, self.per_channel = scales, zps, per_channel
        self.depthwise = (g == cg * g and o == g and (kh, kw) == (3, 3)
                          and self.stride[0] == self.stride[1]
                          and self.padding[0] == self.padding[1]
                          and self.dilation[0] == self.dilation[1])
        if self.depthwise:
            wz = w.reshape(o, 9).astype(np.int32) - zps[:, None]
            self.dw_taps = np.ascontiguousarray(wz.T)          # (9, C)

    def unpack(self):
        """``(qweight, bias)`` as given (``torch.ops.quantized.conv2d_unpack``)."""
        return self.qweight, self.bias

    def output_size(self, h, w):
        r"""The output's ``(H_out, W_out)`` for an ``h`` x ``w`` input, as ``Conv2d``'s:
        :math:`H_\text{out} = \lfloor (h + 2 p_h - d_h (k_h - 1) - 1) / s_h \rfloor + 1`,
        and likewise for the width."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (dh, dw) = self.padding, self.dilation
        return ((h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
                (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


def conv2d_apply(x, pc, scale, zero_point, relu=False, who="quantized conv2d"):
    """Quantized conv2d: im2col + GEMM per group (:eq:`int8-acc` to :eq:`int8-requant`),
    or depthwise 3x3 (:eq:`int8-depthwise`).

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
    nt = get_num_threads()
    xi = channels_last(x._int, nt)
    a_zp = x.q_zero_point()
    path = gemm_path()
    if n and o:
        if pc.depthwise and path != "generic":
            bias_q, mult = _conv_requant(pc, x.q_scale(), scale)
            _qconv.depthwise3x3(xi, pc.dw_taps, pc.stride[0], pc.padding[0],
                                pc.dilation[0], a_zp, bias_q, mult, zero_point, lo, 255,
                                out, 2 if path == "vnni" else 1, nt)
        else:
            _conv_gemm(xi, pc, x.q_scale(), a_zp, scale, zero_point, lo, out, nt, path)
    return QTensor(out.transpose(0, 3, 1, 2), quint8, per_tensor_affine, scale, zero_point)


def channels_last(xi, num_threads):
    """The (N, H, W, C) C-contiguous array behind the NCHW integers ``xi``.

    A view when ``xi`` already is channels-last in memory (every convolution output
    is), else one copy.
    """
    nhwc = xi.transpose(0, 2, 3, 1)
    if nhwc.flags.c_contiguous:
        return nhwc
    if not xi.flags.c_contiguous or xi.size == 0:
        return np.ascontiguousarray(nhwc)
    out = np.empty(nhwc.shape, dtype=np.uint8)
    if xi.shape[1] <= 8:
        _qconv.small_c_to_channels_last(xi, out, num_threads)
    else:           # 16x16 SSE2 tile transposes, ~7x NumPy's transposing copy
        _qconv.to_channels_last(xi, out, num_threads)
    return out


def _conv_requant(pc, a_scale, out_scale):
    return _requant_f32(a_scale, pc.w_scale, out_scale, pc.bias, pc.per_channel)


def _conv_gemm(xi, pc, a_scale, a_zp, out_scale, out_zp, lo, out, nt, path):
    n, h, w, c = xi.shape           # channels last
    _, ho, wo, o = out.shape
    g = pc.groups
    cg, og = c // g, o // g
    (kh, kw), (sh, sw) = pc.kernel_size, pc.stride
    (ph, pw_), (dh, dw) = pc.padding, pc.dilation
    k = kh * kw * cg
    out2 = out.reshape(n * ho * wo, o)
    direct = (kh == kw == 1 and sh == sw == 1 and ph == pw_ == 0 and g == 1
              and k % 4 == 0)
    a = None
    if direct:
        # 1x1 convolution: the channels-last input already is A (eq. (3)), no im2col
        a = xi.reshape(n * h * w, c)
    elif path == "generic":
        a = np.empty((n * ho * wo, 4 * ((k + 3) // 4)), dtype=np.uint8)
    for gi, pwg in enumerate(pc.group_gemm):
        bias_q, mult = pwg.requant_constants(a_scale, out_scale)
        dst = out2[:, gi * og:(gi + 1) * og]
        if a is None:
            # patches in cache-sized blocks, fused with the GEMM (one parallel region)
            _qconv.conv_gemm(_PATH_NAMES[path], xi, gi * cg, cg, kh, kw, sh, sw, ph, pw_,
                             dh, dw, a_zp, pwg.packed, og, pwg.colsum, pwg.w_zp,
                             pwg.any_wzp, bias_q, mult, out_zp, lo, 255, dst, nt)
            continue
        if not direct:
            _qconv.im2col(xi, gi * cg, cg, kh, kw, sh, sw, ph, pw_, dh, dw, a_zp, a, nt)
        _gemm(pwg, a, a_zp, bias_q, mult, out_zp, lo, 255, out_u8=dst, path=path)
