r"""Int8 GEMM and convolution kernels (the only importer of ``qlearn._ext._qgemm`` and
``qlearn._ext._qconv``).

Array level: uint8 activations, int8 weights, int32 zero points, float32 constants.
The QTensor level (:mod:`qlearn.nn.quantized.packed_params`: checking the user's
tensors, the packed-weight classes, ``linear_apply`` / ``conv2d_apply``) calls these.
Here a weight is packed once (:class:`GemmWeight`), the requantization constants are
formed as PyTorch's x86 (FBGEMM) backend forms them (:func:`requant_constants`), the
SIMD path (:mod:`qlearn.kernels.simd`; the generic path runs the plain reference loop
``_qgemm.gemm_ref``) and the thread count are resolved, and the kernels are called on
C-contiguous arrays.  AVX2 is the SIMD path; its exact 8-bit variant (for blocks with
activations above 127, where ``vpmaddubsw`` would saturate) is chosen inside the kernel.

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
converted to float32.  NumPy twins: :func:`qlearn.reference.gemm_requant_ref`,
:func:`~qlearn.reference.gemm_float_ref`, :func:`~qlearn.reference.depthwise_ref`.

Examples
--------
>>> import numpy as np
>>> from qlearn.kernels import int8
>>> gw = int8.GemmWeight(np.array([[1, -2, 3]], np.int8), np.zeros(1, np.int32))
>>> out = np.empty((1, 1), np.uint8)
>>> a = int8.as_rows(np.array([[10, 20, 30]], np.uint8), 3)
>>> bias_q, mult = int8.requant_constants(1.0, np.ones(1, np.float32), 1.0, None, False)
>>> int(int8.gemm_u8(gw, a, 0, bias_q, mult, 5, 0, 255, out)[0, 0])   # 10 - 40 + 90 + 5
65
"""
import numpy as np

from .._ext import _qconv, _qgemm
from . import simd as _simd
from . import threads as _threads
from .simd import Simd

__all__ = ["MAX_DEPTH", "GemmWeight", "GroupedGemmWeight", "requant_constants", "as_rows",
           "gemm_u8", "gemm_f32", "channels_last", "conv_gemm", "im2col", "depthwise",
           "groupwise", "pack_groupwise",
           "avg_pool_u8", "AVX2_EXACT", "peak_gops", "peak_run"]

#: The deepest reduction K for which int32 cannot overflow:
#: ``K |a - Za| |w - Zw| <= K * 255 * 255 < 2**31``.
MAX_DEPTH = (2 ** 31 - 1) // (255 * 255)
#: The path value a GEMM returns when AVX2 ran its exact 8-bit variant (not a SIMD path).
AVX2_EXACT = _qgemm.AVX2_EXACT

_F32_TINY = np.finfo(np.float32).tiny
_EMPTY_F32 = np.empty(0, dtype=np.float32)
_EMPTY_F32.flags.writeable = False


def requant_constants(a_scale, w_scale, out_scale, bias, per_channel):
    """``(bias_q, mult)`` of eq. :eq:`int8-requant` in float32, as FBGEMM forms them.

    ``w_scale`` is float32 per output column; ``bias`` float32 or None (then ``bias_q``
    is empty).  With extreme but valid scales the float32 intermediate ``Sa Sw``
    overflows or underflows (``mult`` inf or 0, ``bias_q`` inf or NaN: a silently wrong
    output); the constants are then formed in float64 and rounded once.  Constants that
    float32 cannot hold even so are refused with ``ValueError``.
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


class GemmWeight:
    """An int8 weight (N, K) packed for the GEMM micro-kernels (eq. :eq:`int8-pack`).

    Holds the integers ``w`` (the reference path uses them), the per-column zero points
    ``w_zp`` (int32), ``colsum'[j] = sum_k w[j, k] - K Zw[j]`` (eq.
    :eq:`int8-expansion`), the packed bytes and the kernel's bound plan.  ``K`` must
    not exceed :data:`MAX_DEPTH` (the caller checks it, naming its own operator).
    """

    def __init__(self, w, w_zp):
        self.w = np.ascontiguousarray(w, dtype=np.int8)
        self.n, self.k = n, k = self.w.shape
        self.w_zp = np.ascontiguousarray(w_zp, dtype=np.int32)
        self.any_wzp = bool(np.any(self.w_zp != 0))
        self.colsum = (self.w.sum(axis=1, dtype=np.int64)
                       - k * self.w_zp.astype(np.int64)).astype(np.int32)
        self._pack()

    def _pack(self):
        n, k = self.n, self.k
        self.packed = _qgemm.empty_packed(n, k)   # 64-byte aligned: see empty_packed
        self.plan = None
        if n and k:
            _qgemm.pack_weight(self.w, self.packed)
            self.plan = _qgemm.PackedGemm(self.packed, self.colsum, self.w_zp, n, k)

    # The plan is a compiled object bound to the packed bytes' address, and an
    # unpickled copy of those bytes loses their 64-byte alignment: a pickle carries
    # the integers only and packs them again (as torch's packed params do).
    def __getstate__(self):
        state = self.__dict__.copy()
        del state["packed"], state["plan"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pack()


class GroupedGemmWeight:
    r"""The GEMM weights of a grouped convolution's groups (one :class:`GemmWeight` each,
    of equal shapes) as :func:`conv_gemm` takes them for all groups in one call: the
    packed bytes one group after the other (each a whole number of 64-byte panels, from
    a 64-byte boundary, as :func:`qlearn._ext._qgemm.empty_packed`'s), ``colsum'`` and
    ``w_zp`` concatenated.  Group :math:`g` of :math:`G` (:math:`K` input columns and
    :math:`N` outputs each) computes

    .. math:: y_{m,\,gN+j} = \sum_{k<K} x_{m,\,gK+k}\, w^{(g)}_{j,k},
              \qquad 0 \le g < G,\ 0 \le j < N,

    then the epilogue of :class:`GemmWeight` with its own ``colsum'`` and ``w_zp``.
    It holds no state of its own: build it again rather than pickle it.
    """

    def __init__(self, weights):
        self.groups, self.n = len(weights), weights[0].n
        size = weights[0].packed.shape[0]
        buf = np.empty(size * self.groups + 63, dtype=np.int8)
        off = -buf.ctypes.data % 64
        self.packed = buf[off:off + size * self.groups]
        for i, gw in enumerate(weights):
            self.packed[i * size:(i + 1) * size] = gw.packed
        self.colsum = np.concatenate([gw.colsum for gw in weights])
        self.w_zp = np.concatenate([gw.w_zp for gw in weights])
        self.any_wzp = any(gw.any_wzp for gw in weights)


def as_rows(a, k):
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


def gemm_u8(gw, a_rows, a_zp, bias_q, mult, out_zp, lo, hi, out, simd=None,
            num_threads=None):
    r"""``out[i, j] = clamp(nearbyint((C[i, j] + bias_q[j]) mult[j]) + Zo, lo, hi)``,
    :math:`C_{ij} = \sum_k (a_{ik} - Z_a)(w_{jk} - Z_{w,j})` (eqs. :eq:`int8-expansion`
    and :eq:`int8-requant`), into the uint8 ``out`` (rows may be strided); returns
    ``out``.  ``a_rows`` comes from :func:`as_rows`; ``simd`` defaults to the active
    path."""
    path = _simd.active() if simd is None else simd
    nt = _threads.resolve(num_threads)
    if path == Simd.GENERIC or gw.plan is None:
        _qgemm.gemm_ref(np.ascontiguousarray(a_rows[:, :gw.k]), gw.w, gw.w_zp, a_zp,
                        bias_q if bias_q.size else np.zeros(gw.n, np.float32), mult,
                        out_zp, lo, hi, out, nt)
    else:
        gw.plan.requant(path, a_rows, a_zp, bias_q, mult, out_zp, lo, hi, out, nt)
    return out


def gemm_f32(gw, a_rows, a_zp, fscale, fbias, relu, simd=None, num_threads=None):
    r"""The float output of dynamic quantization, :math:`y_{ij} = C_{ij}\,
    \mathrm{fscale}_j + \mathrm{fbias}_j` (eq. :eq:`int8-dynamic`; ``fbias`` may be
    None), ReLU'd if ``relu``: a new (M, N) float32 array."""
    path = _simd.active() if simd is None else simd
    nt = _threads.resolve(num_threads)
    out = np.empty((a_rows.shape[0], gw.n), dtype=np.float32)
    if path == Simd.GENERIC or gw.plan is None:
        _qgemm.gemm_ref_float(np.ascontiguousarray(a_rows[:, :gw.k]), gw.w, gw.w_zp, a_zp,
                              fscale,
                              fbias if fbias is not None else np.zeros(gw.n, np.float32),
                              relu, out, nt)
    else:
        gw.plan.to_float(path, a_rows, a_zp, fscale,
                         fbias if fbias is not None else _EMPTY_F32, relu, out, nt)
    return out


def channels_last(xi, num_threads=None):
    """The (N, H, W, C) C-contiguous array behind the NCHW uint8 integers ``xi``.

    A view when ``xi`` already is channels-last in memory (every convolution output
    is), else one copy.
    """
    nhwc = xi.transpose(0, 2, 3, 1)
    if nhwc.flags.c_contiguous:
        return nhwc
    if not xi.flags.c_contiguous or xi.size == 0:
        return np.ascontiguousarray(nhwc)
    out = np.empty(nhwc.shape, dtype=np.uint8)
    nt = _threads.resolve(num_threads)
    if xi.shape[1] <= 8:
        _qconv.small_c_to_channels_last(xi, out, nt)
    else:           # 16x16 SSE2 tile transposes, ~7x NumPy's transposing copy
        _qconv.to_channels_last(xi, out, nt)
    return out


def to_channels_last(xi, out, num_threads=None):
    """``out[n, h, w, c] = xi[n, c, h, w]`` with the tiled transposes (uint8, C arrays)."""
    _qconv.to_channels_last(np.ascontiguousarray(xi), out, _threads.resolve(num_threads))


def im2col(xi, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, a_zp, out, num_threads=None):
    """The (N Ho Wo, lda) patch matrix of channels ``[c0, c0 + cg)`` of the channels-last
    ``xi``, depth order (ky, kx, c), padding filled with ``a_zp``."""
    _qconv.im2col(xi, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, a_zp, out,
                  _threads.resolve(num_threads))


def conv_gemm(gw, xi, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, a_zp, bias_q, mult, out_zp,
              lo, hi, out, simd=None, num_threads=None, nchw=False, band_bytes=0):
    """A convolution, patches and GEMM fused (eqs. :eq:`int8-expansion`,
    :eq:`int8-requant`), into the (N Ho Wo, >= Ng) uint8 ``out``; needs a SIMD path.
    ``gw`` is one group's :class:`GemmWeight` (input channels ``[c0, c0 + cg)``), or a
    :class:`GroupedGemmWeight`: its groups in one parallel job, group i reading the
    channels ``[c0 + i cg, c0 + (i + 1) cg)`` into the columns ``[i Ng, (i + 1) Ng)``
    (``bias_q`` and ``mult`` then cover every group's columns).

    ``xi`` is the channels-last (N, H, W, C) C array, or with ``nchw`` the (N, C, H, W)
    C array, which the kernel converts band by band into cache as it goes (no whole
    copy); ``band_bytes`` (0: the kernel's 256 KiB) caps a band's converted rows, for
    tests of many short bands."""
    path = _simd.active() if simd is None else simd
    _qconv.conv_gemm(path, xi, c0, cg, kh, kw, sh, sw, ph, pw, dh, dw, a_zp, gw.packed,
                     gw.n, gw.colsum, gw.w_zp, gw.any_wzp, bias_q, mult, out_zp, lo, hi,
                     out, _threads.resolve(num_threads), nchw, band_bytes,
                     getattr(gw, "groups", 1))


def _conv_scratch_kept():
    """Bytes of each scratch block the fused convolution keeps between calls."""
    return _qconv.scratch_kept()


def depthwise(xi, taps, kernel, stride, padding, dilation, a_zp, bias_q, mult, out_zp, lo,
              hi, out, simd=None, num_threads=None, nchw=False):
    """Depthwise convolution (eq. :eq:`int8-depthwise`) of the channels-last ``xi`` (or
    with ``nchw`` the (N, C, H, W) C array, whose rows the kernel transposes as it reads
    them) with the (kh kw, C) int32 taps ``w - Zw`` (in (ky, kx) order), requantized
    into the (N, Ho, Wo, C) ``out``; ``kernel``, ``stride``, ``padding`` and
    ``dilation`` are (height, width) pairs.  An input of C / m channels (a channel
    multiplier m) gives output channel c from input channel c // m: the kernel repeats
    a channels-last input's channels as it copies its rows, an NCHW one is repeated
    here (whole planes: a copy at memory speed)."""
    path = _simd.active() if simd is None else simd
    cx = xi.shape[1] if nchw else xi.shape[3]
    if nchw and cx and out.shape[3] != cx and out.shape[3] % cx == 0:
        xi = np.repeat(xi, out.shape[3] // cx, axis=1)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    _qconv.depthwise(xi, taps, kh, kw, sh, sw, ph, pw, dh, dw, a_zp, bias_q, mult, out_zp,
                     lo, hi, out, int(path), _threads.resolve(num_threads), nchw)


def groupwise(xi, packed, colsum, group_size, kernel, stride, padding, dilation, a_zp,
              bias_q, mult, out_zp, lo, hi, out, simd=None, num_threads=None, nchw=False):
    r"""Grouped convolution of G = 4 or 8 input and as many output channels per group
    (``group_size``) with a symmetric weight, on the VNNI or the AVX2 path (its NumPy
    twin: :func:`qlearn.reference.groupwise_ref`): the channels-last ``xi`` (or with
    ``nchw`` the (N, C, H, W) C array) with the weight packed by :func:`pack_groupwise`
    for that path (``packed``, ``colsum``), requantized (eq. :eq:`int8-requant`) into
    the (N, Ho, Wo, C) ``out``; ``kernel``, ``stride``, ``padding`` and ``dilation`` are
    (height, width) pairs.  With :math:`G` = ``group_size`` and the padding :math:`Z_a`,

    .. math::
       C_{n,y,x,Gg+j} = \sum_{c<G,\ i<k_h,\ k<k_w} (q_{a,n,\,y s_h + i d_h - p_h,\,
                        x s_w + k d_w - p_w,\,Gg+c} - Z_a)\, q_{w,Gg+j,c,i,k}
    """
    path = _simd.active() if simd is None else _simd._parse(simd, "simd")
    if path == _simd.Simd.GENERIC:
        raise ValueError("groupwise needs the AVX2 or the VNNI path")
    if packed.dtype != _GW_DTYPE[path]:
        raise ValueError(f"groupwise: `packed` holds {packed.dtype} weights; the "
                         f"{path.name} path takes pack_groupwise(w, {path.name!r})'s "
                         f"({np.dtype(_GW_DTYPE[path])})")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    _qconv.groupwise(xi, packed.view(np.int8), colsum, group_size, kh, kw, sh, sw, ph, pw,
                     dh, dw, a_zp, bias_q, mult, out_zp, lo, hi, out, int(path),
                     _threads.resolve(num_threads), nchw)


# the weights of groupwise on each path: 64 channels of int8 a vpdpbusd (VNNI), 16 of
# int16 a vpmaddwd (AVX2)
_GW_DTYPE = {_simd.Simd.VNNI: np.int8, _simd.Simd.AVX2: np.int16}
_GW_BLOCK = {_simd.Simd.VNNI: 64, _simd.Simd.AVX2: 16}


def pack_groupwise(w, simd=None):
    r"""The weight of :func:`groupwise` on the path ``simd`` (default: the active one;
    VNNI or AVX2): ``w`` (C, G, kh, kw) int8 (C / G groups, G = 4 or 8) as blocks of
    :math:`B / G` groups, :math:`B` = 64 channels of int8 on VNNI or 16 of int16 on
    AVX2, per tap :math:`t = k_y k_w + k_x` and output :math:`j < G` of the group
    :math:`B` values, value :math:`G l + c = w_{G(B b / G + l) + j,\, c,\, t}` (zero
    past the last group); and the column sums :math:`\sum_{c, t} w_{o, c, t}` (int32).
    """
    path = _simd.active() if simd is None else _simd._parse(simd, "simd")
    if path not in _GW_BLOCK:
        raise ValueError("pack_groupwise: the grouped kernel runs on the AVX2 or the VNNI "
                         f"path, not {path.name}")
    w = np.asarray(w, dtype=np.int8)
    o, G, kh, kw = w.shape
    g, t, per = o // G, kh * kw, _GW_BLOCK[path] // G
    gp = -(-g // per) * per
    wg = np.zeros((gp, G, G, t), _GW_DTYPE[path])               # (group, j, c, tap)
    wg[:g] = w.reshape(g, G, G, t)
    packed = wg.reshape(gp // per, per, G, G, t).transpose(0, 4, 2, 1, 3)  # (b, t, j, l, c)
    colsum = w.reshape(o, -1).sum(axis=1, dtype=np.int32)
    return np.ascontiguousarray(packed).reshape(-1), colsum


def avg_pool_u8(q, kernel, stride, padding, out_size, zero_point, count_include_pad=True,
                divisor_override=None, num_threads=None):
    r"""Quantized average pooling of the uint8 integers ``q`` (..., D, H, W) over the
    last three axes (a 2-d pooling is one with ``D = 1`` and a window of depth 1): a
    window holding :math:`n` elements, divided by :math:`d` (its size with the padding
    when ``count_include_pad``, else :math:`n`, or ``divisor_override``) gives

    .. math::  q_{out} = \mathrm{clamp}\big(\operatorname{nearbyint}\big(
               \mathrm{f32}(\textstyle\sum q - n Z) \cdot \mathrm{f32}(1/d) + Z\big),
               0, 255\big)

    (PyTorch's quantized avg_pool2d / avg_pool3d; the twin is
    :func:`qlearn.reference.avg_pool_u8_ref`).  ``kernel``, ``stride``, ``padding`` and
    ``out_size`` are 3-tuples, checked by the caller (the window inside the padded
    input, ``divisor_override`` a non-zero int64).  Returns the (..., OD, OH, OW) uint8
    array.

    >>> import numpy as np
    >>> from qlearn.kernels import int8
    >>> q = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    >>> int8.avg_pool_u8(q, (1, 2, 2), (1, 2, 2), (0, 0, 0), (1, 2, 2), 0)[0]
    array([[ 2,  4],
           [10, 12]], dtype=uint8)
    """
    q = np.ascontiguousarray(q, dtype=np.uint8)
    lead = q.shape[:-3]
    out = np.empty(lead + tuple(out_size), dtype=np.uint8)
    planes = int(np.prod(lead, dtype=np.int64))
    _qconv.avg_pool_u8(q.reshape((planes,) + q.shape[-3:]),
                       out.reshape((planes,) + tuple(out_size)), tuple(kernel),
                       tuple(stride), tuple(padding), int(zero_point),
                       bool(count_include_pad),
                       None if divisor_override is None else int(divisor_override),
                       _threads.resolve(num_threads))
    return out


def _peak_path(path):
    """``path`` as a Simd member with a peak (AVX2 or VNNI, on this CPU), else
    ValueError."""
    path = _simd._parse(path)
    if path == Simd.GENERIC or path not in _simd.available():
        raise ValueError(f"`path` must be an available SIMD path "
                         f"({[p.name.lower() for p in _simd.available()[1:]]}), got "
                         f"{path.name.lower()!r}: the generic loops have no "
                         f"instruction-level peak")
    return path


def peak_gops(path, seconds=0.2):
    r"""One core's int8 peak on SIMD path ``path`` (``"avx2"``, ``"vnni"`` or a
    :class:`~qlearn.kernels.simd.Simd`), in GOP/s.

    Independent chains of exactly the micro-kernel's multiply instructions
    (``vpmaddubsw`` + ``vpmaddwd`` + ``vpaddd`` for AVX2, ``vpdpbusd`` for VNNI) run for
    about ``seconds`` on the calling thread; the result is
    :math:`2 \cdot \text{multiply-adds} / \text{time}`, what a tile could reach with no
    loads, stores or epilogue.  ``ValueError`` if this CPU lacks the path.
    """
    return _qgemm.peak_gops(int(_peak_path(path)), float(seconds))


def peak_run(path, ops):
    r"""Run the instruction chains of :func:`peak_gops` on ``path`` for at least ``ops``
    operations on the calling thread, and return the operations done.

    A benchmark times it in the same rounds as a kernel doing ``ops`` operations: the
    kernel's fraction of the peak is then
    :math:`t_{\text{peak}}(\text{ops}) / t_{\text{kernel}}(\text{ops})`, with both times
    taken under the same load (:func:`peak_gops` is the best moment instead).
    ``ValueError`` if this CPU lacks the path or ``ops`` is not a positive number.
    """
    path = _peak_path(path)
    ops = float(ops)
    if not (0 < ops < 2.0 ** 60):
        raise ValueError(f"`ops` must be a positive number below 2**60, got {ops!r}")
    return _qgemm.peak_run(int(path), ops)
