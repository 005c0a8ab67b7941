r"""Slow NumPy twins of the kernels, written as the equations (for tests and reading).

Each function here is the literal formula of a docs equation, with the same float32
arithmetic as the kernel it mirrors, and is named after that kernel: the twin of
``qlearn.kernels.<family>.<kernel>`` (and of the compiled ``qlearn._ext`` entry behind
it) is ``<kernel>_ref``.  The tests require the kernels to agree with these to the last
bit on every SIMD path (where a sum is reordered, to a stated tolerance).  This module
imports only NumPy: it is the oracle, not a user of the kernels.

Examples
--------
>>> import numpy as np
>>> from qlearn import reference as ref
>>> ref.quantize_per_tensor_ref(np.array([-1.0, 0.26, 2.0]), 0.1, 10, 0, 255)
array([ 0, 13, 30])
>>> x_hat, mask = ref.fake_quantize_per_tensor_ref([0.26, 9.0], 0.5, 0, -2, 2)
>>> x_hat, mask
(array([0.5, 1. ], dtype=float32), array([ True, False]))
"""
import numpy as np

f32 = np.float32


def quantize_per_tensor_ref(x, scale, zero_point, quant_min, quant_max, fused=True):
    r"""Eq. :eq:`quantize`: :math:`q = \mathrm{clamp}(\mathrm{round}(x / S + Z),
    q_{min}, q_{max})`."""
    x = np.asarray(x, dtype=f32)
    inv_scale = f32(1) / f32(scale)
    with np.errstate(over="ignore"):   # |x / S| beyond float32 is inf, then clamped
        t = fma32(x, inv_scale, zero_point) if fused else x * inv_scale + f32(zero_point)
    # clamp in float64: float32 cannot hold qint32's quant_max (2**31 - 1 rounds up)
    return np.clip(np.rint(t).astype(np.float64), quant_min, quant_max).astype(np.int64)


def quantize_per_channel_ref(x, scales, zero_points, axis, quant_min, quant_max):
    r"""Eq. :eq:`per-channel`: one :math:`(S_c, Z_c)` per slice along ``axis`` (multiply,
    then add)."""
    x = np.asarray(x, dtype=f32)
    shape = [1] * x.ndim
    shape[axis] = -1
    inv = (f32(1) / np.asarray(scales, dtype=f32)).reshape(shape)
    zp = np.asarray(zero_points).astype(f32).reshape(shape)
    return np.clip(np.rint(x * inv + zp).astype(np.float64), quant_min,
                   quant_max).astype(np.int64)


def dequantize_per_tensor_ref(q, scale, zero_point):
    r"""Eq. :eq:`dequantize`: :math:`r = (q - Z)\,S` in float32."""
    return (np.asarray(q, dtype=np.int64) - zero_point).astype(f32) * f32(scale)


def dequantize_per_channel_ref(q, scales, zero_points, axis):
    r"""Eq. :eq:`dequantize` per channel, the product taken in float64 then rounded to float32."""
    q = np.asarray(q, dtype=np.int64)
    shape = [1] * q.ndim
    shape[axis] = -1
    s = np.asarray(scales, dtype=np.float64).reshape(shape)
    z = np.asarray(zero_points, dtype=np.int64).reshape(shape)
    return ((q - z) * s).astype(f32)



# -- fake quantization (qlearn.kernels.fake_quant) ------------------------------------------
def fake_quantize_per_tensor_ref(x, scale, zero_point, quant_min, quant_max):
    r"""Eq. :eq:`qat-fq` and the STE mask of eq. :eq:`qat-ste`, in PyTorch's order (round
    *before* adding the zero point):

    .. math::

       t = \mathrm{round}(x \cdot \mathrm{f32}(1/S)) + Z, \qquad
       \hat x = (\mathrm{clamp}(t, q_{min}, q_{max}) - Z)\, S, \qquad
       m = \mathbb{1}[q_{min} \le t \le q_{max}]

    ``t`` in float32, the clamp and :math:`(q - Z) S` in float64, rounded once to float32.
    Returns ``(x_hat, mask)``.
    """
    x = np.asarray(x, dtype=f32)
    inv = f32(1) / f32(scale)
    t = (np.rint(x * inv) + f32(zero_point)).astype(np.float64)
    mask = (t >= quant_min) & (t <= quant_max)
    x_hat = (np.clip(t, quant_min, quant_max) - zero_point) * np.float64(f32(scale))
    return x_hat.astype(f32), mask


def fake_quantize_per_channel_ref(x, scales, zero_points, axis, quant_min, quant_max):
    r"""Eq. :eq:`qat-fq` with one :math:`(S_c, Z_c)` per slice along ``axis``."""
    x = np.asarray(x, dtype=f32)
    shape = [1] * x.ndim
    shape[axis] = -1
    s = np.asarray(scales, dtype=f32).reshape(shape)
    z = np.asarray(zero_points, dtype=np.int64).reshape(shape)
    t = (np.rint(x * (f32(1) / s)) + z.astype(f32)).astype(np.float64)
    mask = (t >= quant_min) & (t <= quant_max)
    x_hat = (np.clip(t, quant_min, quant_max) - z) * s.astype(np.float64)
    return x_hat.astype(f32), mask


def ste_backward_ref(grad, mask):
    r"""The straight-through estimator, eq. :eq:`qat-ste`:
    :math:`\partial L/\partial x = \partial L/\partial \hat x \cdot m`."""
    return np.asarray(grad, dtype=f32) * np.asarray(mask, dtype=f32)


def aminmax_per_channel_ref(x, axis=None):
    r""":math:`(\min_{i} x_{\dots c \dots}, \max_{i} x_{\dots c \dots})` per slice ``c``
    along ``axis`` (``None``: of the whole array, as 1-element arrays)."""
    x = np.asarray(x, dtype=f32)
    if axis is None:
        return x.min(keepdims=True).reshape(1), x.max(keepdims=True).reshape(1)
    rest = tuple(i for i in range(x.ndim) if i != axis)
    return x.min(axis=rest), x.max(axis=rest)


def lsq_backward_per_tensor_ref(x, dy, scale, zero_point, quant_min, quant_max,
                                grad_factor):
    r"""LSQ's gradients (eq. :eq:`qat-lsq`), in ATen's float32 arithmetic, with
    :math:`q = \mathrm{round}(Z + x / S)` (:math:`Z` added *before* rounding here):

    .. math::

       \frac{\partial L}{\partial x} = g\,[q_{min} \le q \le q_{max}], \qquad
       \frac{\partial L}{\partial S} = \gamma \sum g \cdot \begin{cases}
           (\hat x - x) / S & \text{inside} \\ q_{min} - Z \text{ or } q_{max} - Z
           & \text{below or above} \end{cases}, \qquad
       \frac{\partial L}{\partial Z} = \gamma \sum_{\text{outside}} -g\, S

    (:math:`\gamma` = ``grad_factor``; the sums in float64).  Returns ``(dx, dS, dZ)``.
    """
    x = np.asarray(x, dtype=f32)
    dy = np.asarray(dy, dtype=f32)
    s, z, gf = f32(scale), f32(zero_point), f32(grad_factor)
    inv = f32(1) / s
    q = np.rint(z + x * inv).astype(np.float64)
    below, above = q < quant_min, q > quant_max
    inside = ~(below | above)
    x_hat = (np.clip(q, quant_min, quant_max).astype(f32) - z) * s
    ds = np.where(inside, dy * (x_hat - x) * inv * gf,
                  np.where(below, (dy * (f32(quant_min) - z)) * gf,
                           (dy * (f32(quant_max) - z)) * gf)).astype(f32)
    dz = np.where(inside, f32(0), dy * f32(-1) * s * gf).astype(f32)
    return (np.where(inside, dy, f32(0)), float(ds.astype(np.float64).sum()),
            float(dz.astype(np.float64).sum()))


# -- observers (qlearn.kernels.observer) ----------------------------------------------------
def minmax_ref(x):
    r"""Eq. :eq:`cal-minmax`'s reduction: :math:`(\min_i x_i, \max_i x_i)` over the values
    that are not NaN, and whether there were NaN."""
    x = np.asarray(x, dtype=f32).reshape(-1)
    nan = bool(np.isnan(x).any())
    keep = x[~np.isnan(x)]
    if keep.size == 0:
        return float("inf"), float("-inf"), nan
    return float(keep.min()), float(keep.max()), nan


def minmax_per_channel_ref(x, axis):
    r"""Eq. :eq:`cal-minmax` per slice along ``axis`` (NaN skipped): ``(mins, maxs)``."""
    x = np.asarray(x, dtype=f32)
    rest = tuple(i for i in range(x.ndim) if i != axis)
    return np.fmin.reduce(x, axis=rest), np.fmax.reduce(x, axis=rest)


def histc_ref(x, bins, left, right):
    r"""``torch.histc``'s float32 arithmetic: the values in :math:`[l, r]` counted in bin
    :math:`b(x) = \min(\lfloor (x - l)\, n / (r - l) \rfloor, n - 1)` (the last bin holds
    its right edge)."""
    x = np.asarray(x, dtype=f32)
    left, right = f32(left), f32(right)
    keep = (x >= left) & (x <= right)
    b = ((x[keep] - left) * f32(bins) / (right - left)).astype(np.int64)
    b = np.clip(b, 0, bins - 1)
    return np.bincount(b, minlength=bins)


def histc64_ref(x, left, right, bins):
    r"""The same rule in float64, which holds a range as wide as the whole float32 line
    (the kernel switches to it when :math:`(r - l)\, n` overflows float32)."""
    x = np.asarray(x, dtype=np.float64)
    keep = (x >= left) & (x <= right)
    b = np.floor((x[keep] - left) * bins / (float(right) - float(left))).astype(np.int64)
    return np.bincount(np.minimum(b, bins - 1), minlength=bins)


def quantization_error_ref(hist, bin_width, start, end, dst_nbins):
    r"""HistogramObserver's L2 error of clipping to bins ``[start, end]`` (PyTorch's
    ``_compute_quantization_error``), in float32: each source bin's density
    :math:`h_j / w` integrated as :math:`\int (x - c)^2` over its overlap with the
    destination bins of width :math:`w (e - s + 1) / n_{dst}`, centres :math:`c`."""
    dst = bin_width * (end - start + 1) / dst_nbins
    if dst == 0:
        return 0.0
    hist = np.asarray(hist)
    src_begin = (np.arange(hist.size) - start).astype(f32) * f32(bin_width)
    src_end = src_begin + f32(bin_width)
    dob = np.clip(np.floor_divide(src_begin, f32(dst)), 0, dst_nbins - 1).astype(f32)
    doe = np.clip(np.floor_divide(src_end, f32(dst)), 0, dst_nbins - 1).astype(f32)
    density = hist.astype(f32) / f32(bin_width)
    half, nhalf = f32(dst / 2), f32(-dst / 2)

    def get_norm(b, e, d):
        return d * ((e * e * e - b * b * b) / f32(3))

    norm = get_norm(src_begin - (dob + f32(0.5)) * f32(dst), half, density)
    norm = norm + (doe - dob - f32(1)) * get_norm(nhalf, half, density)
    norm = norm + get_norm(nhalf, src_end - (doe * f32(dst) + half), density)
    return float(f32(norm.astype(np.float64).sum()))


def linspace32_ref(start, end, steps):
    r"""``torch.linspace`` in float32, by its scalar formula: :math:`a + i\,\delta` for the
    first half, :math:`b - (n - 1 - i)\,\delta` for the second."""
    start, end = f32(start), f32(end)
    step = (end - start) / f32(steps - 1)
    i = np.arange(steps)
    half = steps // 2
    lo = start + step * i[:half].astype(f32)
    hi = end - step * (steps - i[half:] - 1).astype(f32)
    return np.concatenate([lo, hi]).astype(f32)


def upscale_histogram_ref(hist, orig_min, orig_max, update_min, update_max, rate=16):
    r"""HistogramObserver's re-binning (PyTorch's ``_upscale_histogram``): each old bin
    split into ``rate`` equal pieces of mass :math:`h_j / r`, each counted in the new bin
    :math:`b` with :math:`e'_b \le m < e'_{b+1}`, :math:`m` the piece's centre and
    :math:`e'` the new edges (``torch.linspace`` in float32)."""
    hist = np.asarray(hist)
    bins = hist.size
    pieces = np.repeat(hist, rate) / rate
    orig_min, orig_max = f32(orig_min), f32(orig_max)
    bin_size = (orig_max - orig_min) / f32(bins * rate)
    mids = linspace32_ref(orig_min, orig_max, bins * rate + 1)[:-1] + f32(0.5) * bin_size
    bounds = linspace32_ref(update_min, update_max, bins + 1)
    bucket = np.clip(np.searchsorted(bounds, mids, side="right") - 1, 0, bins - 1)
    return np.bincount(bucket, weights=pieces, minlength=bins)


def _kl_divergence(p, q):
    p = p / p.sum()
    q = q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _smooth(p, eps=1e-4):
    """Move a little mass onto empty bins so that KL(p || q) is finite (TensorRT)."""
    zero = p == 0
    n_zero = int(zero.sum())
    n_nonzero = p.size - n_zero
    if n_nonzero == 0:
        return None
    eps1 = eps * n_zero / n_nonzero
    out = p.astype(np.float64).copy()
    out[zero] = eps
    out[~zero] -= eps1
    return out if (out > 0).all() else None


def entropy_search_ref(hist, levels, start=None):
    r"""TensorRT's KL search (EntropyObserver) on a histogram of magnitudes: the bin
    count :math:`i \ge` ``start`` minimising :math:`D_i = \mathrm{KL}(P_i \,\|\, Q_i) =
    \sum_k P_k \log (P_k / Q_k)`, :math:`P_i` the first :math:`i` bins with the mass
    beyond added to the last, :math:`Q_i` those bins merged into ``levels`` groups, each
    group's mass spread evenly over its non-empty bins (empty bins smoothed first)."""
    hist = np.asarray(hist)
    bins = hist.size
    start = levels if start is None else start
    best_i, best_kl = bins, np.inf
    for i in range(start, bins + 1):
        p = hist[:i].astype(np.float64).copy()
        p[i - 1] += hist[i:].sum()                 # clipped mass lands in the last bin
        nonzero = hist[:i] != 0
        groups = np.minimum(np.arange(i) * levels // i, levels - 1)
        mass = np.bincount(groups, weights=hist[:i], minlength=levels)
        count = np.bincount(groups, weights=nonzero, minlength=levels)
        q = np.where(nonzero, mass[groups] / np.maximum(count[groups], 1), 0.0)
        ps, qs = _smooth(p), _smooth(q)
        if ps is None or qs is None:
            continue
        kl = _kl_divergence(ps, qs)
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i


# -- Distiller's quantizers (qlearn.kernels.quantizers) ---------------------------------------
def clip_round_ref(x, lo, hi, unit, levels):
    r"""Eq. :eq:`dorefa-quantize-k` on a clipped input:
    :math:`\mathrm{f32}\big(\mathrm{round}(\mathrm{clamp}(x, lo, hi)\, n / u)\, u / n\big)`,
    :math:`n` = ``levels`` (:math:`2^k - 1`), :math:`u` = ``unit``, in float64 (ties to
    even)."""
    c = np.clip(np.asarray(x, dtype=f32), f32(lo), f32(hi)).astype(np.float64)
    return (np.rint(c * levels / np.float64(unit)) * np.float64(unit) / levels).astype(f32)


def clip_backward_ref(x, grad, lo, hi, hi_inclusive=True):
    r"""The clip's gradient with the STE through the rounding:
    :math:`g \cdot \mathbb{1}[lo \le x \le hi]` (:math:`x < hi` unless ``hi_inclusive``)."""
    x = np.asarray(x, dtype=f32)
    inside = (x >= f32(lo)) & ((x <= f32(hi)) if hi_inclusive else (x < f32(hi)))
    return np.where(inside, np.asarray(grad, dtype=f32), f32(0))


def pact_backward_ref(x, grad, alpha):
    r"""PACT's gradients, eq. :eq:`pact-backward`: :math:`\partial L/\partial x = g\,
    \mathbb{1}[0 \le x < \alpha]` and :math:`\partial L/\partial \alpha = \sum_{x \ge
    \alpha} g` (float64)."""
    x = np.asarray(x, dtype=f32)
    g = np.asarray(grad, dtype=f32)
    return (clip_backward_ref(x, g, 0, alpha, hi_inclusive=False),
            float(g[x >= f32(alpha)].astype(np.float64).sum()))


def dorefa_weight_forward_ref(w, levels):
    r"""DoReFa's weights, eq. :eq:`dorefa-weight`: :math:`t = \tanh w`,
    :math:`w_q = 2\,\mathrm{quantize}_k\big(t / (2 \max|t|) + 1/2\big) - 1` (tanh in
    float64, rounded to float32; an all-zero ``w`` gives :math:`f = 1/2`).  Returns
    ``(w_q, t, max|t|)``."""
    t = np.tanh(np.asarray(w, dtype=np.float64)).astype(f32)
    big = np.abs(t).max() if t.size else f32(0)
    f = t / (f32(2) * big) + f32(0.5) if big > 0 else np.full(t.shape, f32(0.5))
    q = (np.rint(f.astype(np.float64) * levels) / levels).astype(f32)
    return (f32(2) * q - f32(1)).astype(f32), t, f32(big)


def dorefa_weight_backward_ref(t, grad, big):
    r"""The direct part of eq. :eq:`dorefa-grad`, :math:`g\,(1 - t^2) / M`, and
    :math:`\sum_i g_i t_i` (float64), the factor of the term through :math:`M = \max|t|`."""
    t = np.asarray(t, dtype=f32)
    g = np.asarray(grad, dtype=f32)
    return g * (1 - t * t) / f32(big), float((g.astype(np.float64) * t).sum())


# -- float convolution and pooling (qlearn.kernels.float_conv) --------------------------------
def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col_ref(x, KH, KW, S, P, D):
    r"""The patch matrix of a convolution: :math:`\mathrm{cols}[(c K_H + i) K_W + j,\ (n O_H
    + p) O_W + q] = x_{n, c,\, p S_H - P_H + i D_H,\, q S_W - P_W + j D_W}` (0 in the
    padding), so that ``w.reshape(O, -1) @ cols`` is the convolution."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (P[0], P[0]), (P[1], P[1])))
    OH, OW = _out_size(H, KH, S[0], P[0], D[0]), _out_size(W, KW, S[1], P[1], D[1])
    cols = np.zeros((C, KH, KW, N, OH, OW), x.dtype)
    for i in range(KH):
        for j in range(KW):
            hs, ws = i * D[0], j * D[1]
            cols[:, i, j] = xp[:, :, hs:hs + S[0] * OH:S[0], ws:ws + S[1] * OW:S[1]] \
                .transpose(1, 0, 2, 3)
    return cols.reshape(C * KH * KW, N * OH * OW)


def col2im_ref(cols, shape, KH, KW, S, P, D):
    r"""The adjoint of :func:`im2col_ref`, :math:`dx_{n,c,h,w} = \sum \mathrm{cols}[(c K_H +
    i) K_W + j,\ (n O_H + p) O_W + q]` over the taps with :math:`p S_H - P_H + i D_H = h`
    and :math:`q S_W - P_W + j D_W = w`: every entry added back to the pixel it was read
    from (padding dropped); an array of ``shape`` (N, C, H, W)."""
    N, C, H, W = shape
    OH, OW = _out_size(H, KH, S[0], P[0], D[0]), _out_size(W, KW, S[1], P[1], D[1])
    c6 = np.asarray(cols).reshape(C, KH, KW, N, OH, OW)
    dx = np.zeros((N, C, H + 2 * P[0], W + 2 * P[1]), c6.dtype)
    for i in range(KH):
        for j in range(KW):
            hs, ws = i * D[0], j * D[1]
            dx[:, :, hs:hs + S[0] * OH:S[0], ws:ws + S[1] * OW:S[1]] += \
                c6[:, i, j].transpose(1, 0, 2, 3)
    return dx[:, :, P[0]:P[0] + H, P[1]:P[1] + W]


def max_pool2d_forward_ref(x, K, S, P, D=(1, 1)):
    r""":math:`y_{n,c,p,q} = \max_{i<K_H,\,j<K_W} x_{n,c,\,p S_H - P_H + i D_H,\,q S_W - P_W
    + j D_W}` (padding counts as :math:`-\infty`), and the flat index :math:`h W + w` of
    the first maximum in window order.  Returns ``(y, idx)``."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    OH, OW = _out_size(H, K[0], S[0], P[0], D[0]), _out_size(W, K[1], S[1], P[1], D[1])
    y = np.full((N, C, OH, OW), -np.inf, x.dtype)
    idx = np.zeros((N, C, OH, OW), np.int64)
    for a in range(OH):
        for b in range(OW):
            for i in range(K[0]):
                for j in range(K[1]):
                    h, w = a * S[0] - P[0] + i * D[0], b * S[1] - P[1] + j * D[1]
                    if 0 <= h < H and 0 <= w < W:
                        v = x[:, :, h, w]
                        better = v > y[:, :, a, b]     # strict: the first maximum wins
                        y[:, :, a, b] = np.where(better, v, y[:, :, a, b])
                        idx[:, :, a, b] = np.where(better, h * W + w, idx[:, :, a, b])
    return y, idx


def max_pool2d_backward_ref(g, idx, shape):
    r""":math:`\partial L/\partial x_{n,c,h,w} = \sum_{(p,q):\ \mathrm{idx}_{n,c,p,q} = hW + w}
    g_{n,c,p,q}`: each window's gradient to its arg-max; an array of ``shape``."""
    g = np.asarray(g)
    N, C, H, W = shape
    dx = np.zeros((N * C, H * W), g.dtype)
    for r, (gi, ii) in enumerate(zip(g.reshape(N * C, -1), np.asarray(idx).reshape(N * C, -1),
                                     strict=True)):
        np.add.at(dx[r], ii, gi)
    return dx.reshape(shape)


def avg_pool2d_ref(x, K, S, P, count_include_pad=True):
    r""":math:`y_{n,c,p,q} = \frac{1}{d} \sum_{i<K_H,\,j<K_W} x_{n,c,\,p S_H - P_H + i,\,q S_W
    - P_W + j}`, the padding 0 and :math:`d` the window size (counting the padding when
    ``count_include_pad``, else only the pixels inside)."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    pads = ((0, 0), (0, 0), (P[0], P[0]), (P[1], P[1]))
    xp, ones = np.pad(x, pads), np.pad(np.ones((H, W)), pads[2:])
    OH, OW = (H + 2 * P[0] - K[0]) // S[0] + 1, (W + 2 * P[1] - K[1]) // S[1] + 1
    out = np.empty((N, C, OH, OW), x.dtype)
    for a in range(OH):
        for b in range(OW):
            rows, cols = slice(a * S[0], a * S[0] + K[0]), slice(b * S[1], b * S[1] + K[1])
            d = K[0] * K[1] if count_include_pad else ones[rows, cols].sum()
            out[:, :, a, b] = xp[:, :, rows, cols].sum(axis=(2, 3)) / d
    return out


def avg_pool_u8_ref(q, K, S, P, out_size, zero_point, count_include_pad=True,
                    divisor_override=None):
    r"""Quantized average pooling of the uint8 ``q`` (..., D, H, W) over windows ``K``
    with strides ``S`` and padding ``P`` (3-tuples, for the last three axes) into
    ``out_size``: a window holding :math:`n` input elements and divided by :math:`d` (its
    size with the padding when ``count_include_pad``, else :math:`n`, or
    ``divisor_override``) gives PyTorch's

    .. math::  q_{out} = \mathrm{clamp}\big(\operatorname{nearbyint}\big(
               \mathrm{f32}(\textstyle\sum q - n Z) \cdot \mathrm{f32}(1/d) + Z\big),
               0, 255\big)

    (float32 throughout: the difference, the reciprocal, the product, the sum)."""
    q = np.asarray(q)
    out = np.empty(q.shape[:-3] + tuple(out_size), np.uint8)
    size = q.shape[-3:]
    for o in np.ndindex(*out_size):
        box, pool = [], 1
        for a in range(3):
            start = o[a] * S[a] - P[a]
            stop = min(start + K[a], size[a] + P[a])       # the window, padding included
            pool *= stop - start
            box.append(slice(max(start, 0), min(stop, size[a])))
        window = q[(Ellipsis,) + tuple(box)]
        n = window.shape[-3] * window.shape[-2] * window.shape[-1]
        total = window.reshape(window.shape[:-3] + (-1,)).astype(np.int64).sum(-1)
        d = (divisor_override if divisor_override is not None
             else pool if count_include_pad else n)
        v = ((total.astype(f32) - f32(int(zero_point) * n)) * (f32(1) / f32(d))
             + f32(zero_point))
        out[(Ellipsis,) + o] = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return out


# -- int8 GEMM and convolution (qlearn.kernels.int8) -----------------------------------------
def _accumulate(a, w, a_zp, w_zp):
    """Eq. :eq:`int8-acc`: the exact int64 sum of (a - Za)(w - Zw[j])."""
    w_zp = np.broadcast_to(np.asarray(w_zp, dtype=np.int64), (np.shape(w)[0],))
    return ((np.asarray(a, dtype=np.int64) - a_zp)
            @ (np.asarray(w, dtype=np.int64) - w_zp[:, None]).T)


def gemm_u8_ref(a, w, a_zp, w_zp, bias_q, mult, out_zp, lo, hi):
    r"""Eq. :eq:`int8-acc` then eq. :eq:`int8-requant`, as written:

    .. math::

       C_{ij} = \sum_k (a_{ik} - Z_a)(w_{jk} - Z_{w,j}), \qquad
       y_{ij} = \mathrm{clamp}\big(\mathrm{round}((\mathrm{f32}(C_{ij}) + \beta_j)\, m_j)
                + Z_o,\ lo,\ hi\big)

    in float32 (the accumulator exact in int64); ``bias_q`` may be empty (no bias).
    """
    acc = _accumulate(a, w, a_zp, w_zp)
    bias_q = np.asarray(bias_q, dtype=f32)
    x = acc.astype(f32) + (bias_q if bias_q.size else f32(0))
    x = x * np.asarray(mult, dtype=f32)
    return np.clip(np.rint(x).astype(np.int64) + out_zp, lo, hi).astype(np.uint8)


def gemm_f32_ref(a, w, a_zp, w_zp, fscale, fbias, relu):
    r"""Eq. :eq:`int8-acc` then the float output of dynamic quantization, eq.
    :eq:`int8-dynamic`: :math:`y_{ij} = \mathrm{f32}(C_{ij})\, s_j + b_j`, ReLU'd if
    ``relu`` (``fbias`` None: no bias)."""
    y = _accumulate(a, w, a_zp, w_zp).astype(f32) * np.asarray(fscale, dtype=f32)
    if fbias is not None:
        y = y + np.asarray(fbias, dtype=f32)
    return np.maximum(y, f32(0)) if relu else y


def conv_gemm_ref(x, w, a_zp, w_zp, bias_q, mult, out_zp, lo, hi, stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1)):
    r"""One group of an int8 convolution as :func:`gemm_u8_ref` of its patches: ``x``
    (N, C, H, W) uint8 padded with :math:`Z_a` (real zero), ``w`` (O, C, kh, kw) int8;
    returns (N, O, Ho, Wo) uint8.  The patches are :func:`im2col_ref`'s."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    # pad with Za: shift so that the padding (0 after the shift) is the zero point
    cols = im2col_ref(x - a_zp, kh, kw, stride, padding, dilation) + a_zp
    ho = _out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = _out_size(wd, kw, stride[1], padding[1], dilation[1])
    y = gemm_u8_ref(cols.T, w.reshape(o, -1), a_zp, w_zp, bias_q, mult, out_zp, lo, hi)
    return y.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def depthwise_ref(x, w, a_zp, w_zp, bias_q, mult, out_zp, lo, hi, stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1)):
    r"""Eq. :eq:`int8-depthwise`: each channel convolved with its own
    :math:`k_h \times k_w` taps,
    :math:`C_{n,c,p,q} = \sum_{i<k_h,\,j<k_w} (x_{n,c,\,p s_h - P_h + i d_h,\,
    q s_w - P_w + j d_w} - Z_a) (w_{c,i,j} - Z_{w,c})` (padding :math:`Z_a`), then eq.
    :eq:`int8-requant` per channel.  ``x`` (N, C, H, W) uint8, ``w`` (C, 1, kh, kw)
    int8, ``stride``, ``padding`` and ``dilation`` (height, width) pairs; returns
    (N, C, Ho, Wo)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    kh, kw = w.shape[2:]
    w = w.reshape(-1, kh, kw)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, wd = x.shape
    w_zp = np.broadcast_to(np.asarray(w_zp, dtype=np.int64), (c,))
    xp = np.pad(x - a_zp, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(wd, kw, sw, pw, dw)
    acc = np.zeros((n, c, ho, wo), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dh:i * dh + sh * ho:sh, j * dw:j * dw + sw * wo:sw]
            acc += patch * (w[:, i, j] - w_zp)[None, :, None, None]
    bias_q = np.asarray(bias_q, dtype=f32)
    t = acc.astype(f32) + (bias_q[None, :, None, None] if bias_q.size else f32(0))
    t = t * np.asarray(mult, dtype=f32)[None, :, None, None]
    return np.clip(np.rint(t).astype(np.int64) + out_zp, lo, hi).astype(np.uint8)


def groupwise_ref(x, w, a_zp, bias_q, mult, out_zp, lo, hi, stride=(1, 1),
                  padding=(0, 0), dilation=(1, 1)):
    r"""A grouped convolution of G input and G output channels per group, symmetric
    weight (:math:`Z_w = 0`), as :func:`conv_gemm_ref` of each group:
    :math:`C_{n,Gg+j,p,q} = \sum_{c<G,\,i,\,k} (x_{n,Gg+c,\ldots} - Z_a)\,
    w_{Gg+j,c,i,k}`, then eq. :eq:`int8-requant`.  ``x`` (N, C, H, W) uint8, ``w``
    (C, G, kh, kw) int8; returns (N, C, Ho, Wo)."""
    x, w = np.asarray(x), np.asarray(w)
    G = w.shape[1]
    bias_q, mult = np.asarray(bias_q, dtype=f32), np.asarray(mult, dtype=f32)
    return np.concatenate(
        [conv_gemm_ref(x[:, c:c + G], w[c:c + G], a_zp, 0,
                       bias_q[c:c + G] if bias_q.size else bias_q, mult[c:c + G], out_zp,
                       lo, hi, stride, padding, dilation)
         for c in range(0, w.shape[0], G)], axis=1)


# -- float zero points and the embedding lookups (qlearn.kernels.float_qparams, .embedding) --
def fma32(a, b, c):
    r"""The float32 fused multiply-add :math:`\mathrm{fl}_{32}(a b + c)`, rounded once.

    The product of two float32 numbers is exact in float64, so ``a * b + c`` in float64
    is rounded once there; rounding that to float32 is right except when the float64
    sum lands exactly on a float32 midpoint that the exact sum is not on.  A midpoint
    has the 29 significand bits float32 drops equal to ``1 0...0``; for those (rare)
    elements the exact rounding error of the float64 addition (Knuth's two-sum) tells
    which side the exact sum lies on, and the midpoint is nudged one float64 step that
    way.  (Sums below the float32 normal range are checked the slow way.)

    >>> import numpy as np
    >>> from qlearn.reference import fma32
    >>> a = np.float32(1 + 2 ** -12)
    >>> bool(fma32(a, a, -1) == 2 ** -11 + 2 ** -24)      # a^2 - 1, rounded once: exact
    True
    >>> bool(a * a - np.float32(1) == 2 ** -11)          # rounded twice: 2^-24 lost
    True
    """
    a, b, c = (np.asarray(t, f32) for t in (a, b, c))
    if a.ndim == b.ndim == c.ndim == 0:
        return fma32(a[None], b[None], c[None])[0]
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.multiply(a, b, dtype=np.float64)            # exact
        s = np.add(p, c, dtype=np.float64)
        r = s.astype(f32)
        bits = np.ascontiguousarray(s).view(np.uint64)
        suspect = (bits & 0x1FFFFFFF) == 0x10000000
        suspect |= np.abs(s) < 2.0 ** -126           # float32 subnormal range
    if not suspect.any():
        return r
    idx = np.nonzero(suspect)
    ps = p[idx] if p.shape == s.shape else np.broadcast_to(p, s.shape)[idx]
    cs = np.broadcast_to(c, s.shape)[idx].astype(np.float64)
    ss = s[idx]
    bv = ss - ps                                     # two-sum: ps + cs == ss + err
    err = (ps - (ss - bv)) + (cs - bv)
    with np.errstate(invalid="ignore", over="ignore"):
        rs = ss.astype(f32)
        r64 = rs.astype(np.float64)
        other = np.nextafter(rs, np.where(ss > r64, f32(np.inf), f32(-np.inf)))
        tie = (ss == (r64 + other.astype(np.float64)) * 0.5) & (err != 0)
    fixed = np.where(tie, np.nextafter(ss, np.where(err > 0, np.inf, -np.inf)), ss)
    r = np.array(r, copy=True)
    r[idx] = fixed.astype(f32)
    return r

def _channel_shape(ndim, axis):
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def quantize_per_channel_float_qparams_ref(x, scales, zero_points, axis, quant_min,
                                           quant_max):
    r"""Eq. :eq:`float-qparams` with a float :math:`Z_c`, in float32 and unfused (PyTorch's
    ``quantize_val_float_qparams``):

    .. math::

       q = \mathrm{nearbyint}\big(\mathrm{clamp}(\mathrm{f32}(\mathrm{f32}(x \cdot
       \mathrm{f32}(1 / S_c)) + Z_c),\ q_{min},\ q_{max})\big)

    (the bounds are integers, so clamping first equals rounding first; a NaN clamps to
    :math:`q_{min}`, the kernel also reports it).  Returns int64.

    >>> from qlearn import reference as ref
    >>> ref.quantize_per_channel_float_qparams_ref([[-1.0, 0.0, 0.5]], [1.5 / 255], [170.0],
    ...                                        0, 0, 255)
    array([[  0, 170, 255]])
    """
    x = np.asarray(x, dtype=f32)
    shape = _channel_shape(x.ndim, axis)
    inv = (f32(1) / np.asarray(scales, dtype=f32)).reshape(shape)
    zp = np.asarray(zero_points, dtype=f32).reshape(shape)
    with np.errstate(over="ignore"):    # |x / S| beyond float32 is inf, then clamped
        t = x * inv + zp
    # fmax / fmin: a NaN becomes the bound, as the kernel's fmaxf / fminf make it
    return np.rint(np.fmin(np.fmax(t, f32(quant_min)), f32(quant_max))).astype(np.int64)


def dequantize_per_channel_float_qparams_ref(q, scales, zero_points, axis):
    r"""Eq. :eq:`float-qparams`'s inverse, :math:`\hat r = \mathrm{f32}(\mathrm{f32}(q) -
    Z_c) \cdot S_c` in float32, one :math:`(S_c, Z_c)` per slice along ``axis``.

    >>> from qlearn import reference as ref
    >>> ref.dequantize_per_channel_float_qparams_ref([[0, 170, 255]], [0.5], [170.25], 0)
    array([[-85.125,  -0.125,  42.375]], dtype=float32)
    """
    q = np.asarray(q)
    shape = _channel_shape(q.ndim, axis)
    return ((q.astype(f32) - np.asarray(zero_points, dtype=f32).reshape(shape))
            * np.asarray(scales, dtype=f32).reshape(shape))


_MODES = {"sum": 0, "mean": 1, "max": 2}


def _quantized_bags(rows, scales, biases, indices, bounds, weights, mode):
    """The reduction shared by the 8- and 4-bit lookups; ``rows`` (N, D) float32 integers."""
    mode = _MODES.get(mode, mode)
    indices, bounds = np.asarray(indices, np.int64), np.asarray(bounds, np.int64)
    weights = None if weights is None or np.size(weights) == 0 else \
        np.asarray(weights, dtype=f32)
    scales, biases = np.asarray(scales, dtype=f32), np.asarray(biases, dtype=f32)
    out = np.zeros((bounds.size - 1, rows.shape[1]), f32)
    for b in range(bounds.size - 1):
        for k, p in enumerate(range(bounds[b], bounds[b + 1])):
            i = indices[p]
            s, z = scales[i], biases[i]
            if weights is not None:          # folded into the row's scale and bias
                s, z = s * weights[p], z * weights[p]
            if mode == 2:
                v = fma32(s, rows[i], z)
                out[b] = v if k == 0 else np.where(v > out[b], v, out[b])
            else:
                out[b] = fma32(s, rows[i], out[b] + z)
        if mode == 1 and bounds[b + 1] > bounds[b]:
            out[b] = out[b] / f32(bounds[b + 1] - bounds[b])
    return out


def embedding_bag_byte_ref(qweight, scales, biases, indices, bounds, weights=None,
                           mode="sum"):
    r"""The quint8 lookup as PyTorch's packed kernel (FBGEMM) evaluates it.

    Row :math:`i` stands for :math:`\operatorname{fma}(S_i, q_{ij}, b_i)`, with
    :math:`b_i = \mathrm{f32}(-Z_i S_i)` (``biases``); bag :math:`\mathcal{B}` =
    ``indices[bounds[b]:bounds[b + 1]]`` reduces, in index order, with
    :math:`\tilde S = \mathrm{f32}(w_p S_i)`, :math:`\tilde b = \mathrm{f32}(w_p b_i)`
    (:math:`w_p` = ``weights[p]``, none: 1),

    .. math::

       \text{sum: } o \leftarrow \operatorname{fma}\big(\tilde S,\ q_{i},\ \mathrm{f32}(o
       + \tilde b)\big), \qquad
       \text{mean: } o / |\mathcal{B}|, \qquad
       \text{max: } o_j = \max_{p} \operatorname{fma}(\tilde S, q_{ij}, \tilde b)

    (:math:`o = 0` to start; the max keeps the first when a later value is not greater;
    an empty bag is 0).  ``mode``: "sum", "mean", "max" or the kernel's 0, 1, 2.
    Every fma is one float32 rounding (:func:`fma32`).

    >>> from qlearn import reference as ref
    >>> ref.embedding_bag_byte_ref([[0, 255], [1, 2]], [0.5, 2.0], [-1.0, 0.0], [0, 1, 1],
    ...                        [0, 1, 1, 3], mode="mean")
    array([[ -1. , 126.5],
           [  0. ,   0. ],
           [  2. ,   4. ]], dtype=float32)
    """
    rows = np.asarray(qweight, dtype=np.uint8).astype(f32)
    return _quantized_bags(rows, scales, biases, indices, bounds, weights, mode)


def embedding_bag_4bit_ref(packed, scales, biases, indices, bounds, weights=None,
                           mode="sum", embedding_dim=None):
    r""":func:`embedding_bag_byte_ref` on a quint4x2 table packed two values a byte, low
    nibble first, each row on its own bytes:

    .. math::

       q_{ij} = \big\lfloor P_{i, \lfloor j/2 \rfloor} / 16^{\,j \bmod 2} \big\rfloor
       \bmod 16

    ``scales`` and ``biases`` are the float16 values PyTorch's 4-bit table stores,
    :math:`\mathrm{fp16}(S_i)` and :math:`\mathrm{fp16}(-Z_i S_i)`, as float32.
    ``embedding_dim`` (default ``2 * packed.shape[1]``) drops the padding nibble of an
    odd one.

    >>> from qlearn import reference as ref
    >>> ref.embedding_bag_4bit_ref([[0x21, 0x03]], [0.5], [-1.0], [0, 0], [0, 2],
    ...                        embedding_dim=3)
    array([[-1.,  0.,  1.]], dtype=float32)
    """
    packed = np.asarray(packed, dtype=np.uint8)
    d = 2 * packed.shape[1] if embedding_dim is None else embedding_dim
    j = np.arange(d)
    rows = (packed[:, j // 2] >> (4 * (j % 2))) & 15
    return _quantized_bags(rows.astype(f32), scales, biases, indices, bounds, weights,
                           mode)


def embedding_bag_forward_ref(weight, indices, bounds, weights=None, mode=0, fused=True):
    r"""The float bags of ``F.embedding_bag``, accumulated in index order in float32 as
    PyTorch's CPU kernels do, bag :math:`\mathcal{B}` = ``indices[bounds[b]:bounds[b + 1]]``,
    :math:`o = 0` to start:

    .. math::

       \text{sum: } o \leftarrow \mathrm{f32}(o + W_i), \quad
       o \leftarrow \operatorname{fma}(w_p, W_i, o) \ (\text{weighted, } fused), \quad
       o \leftarrow \mathrm{f32}(o + \mathrm{f32}(w_p W_i)) \ (\text{weighted})

    .. math::

       \text{max: } o_j = W_{i^*\! j}, \quad \mathrm{winner}_j = p^* =
       \text{the first } p \in \mathcal{B} \text{ with } W_{i_p j} = \max_{p} W_{i_p j}

    (``weights`` ignored; an empty bag is 0, its winners -1).  ``mode`` 0 (or "sum")
    returns ``out``; 2 (or "max") ``(out, winner)``.

    >>> import numpy as np
    >>> from qlearn import reference as ref
    >>> w = np.array([[1.0, 5.0], [3.0, 2.0]], np.float32)
    >>> ref.embedding_bag_forward_ref(w, [0, 1, 1], [0, 3], [1.0, 0.5, 2.0])
    array([[ 8.5, 10. ]], dtype=float32)
    >>> ref.embedding_bag_forward_ref(w, [0, 1], [0, 0, 2], mode="max")
    (array([[0., 0.],
           [3., 5.]], dtype=float32), array([[-1, -1],
           [ 1,  0]]))
    """
    mode = _MODES.get(mode, mode)
    weight = np.asarray(weight, dtype=f32)
    indices, bounds = np.asarray(indices, np.int64), np.asarray(bounds, np.int64)
    weights = None if weights is None or np.size(weights) == 0 else \
        np.asarray(weights, dtype=f32)
    out = np.zeros((bounds.size - 1, weight.shape[1]), f32)
    winner = np.full(out.shape, -1, np.int64)
    for b in range(bounds.size - 1):
        for k, p in enumerate(range(bounds[b], bounds[b + 1])):
            row = weight[indices[p]]
            if mode == 2:
                take = (row > out[b]) | (k == 0)
                out[b] = np.where(take, row, out[b])
                winner[b] = np.where(take, p, winner[b])
            elif weights is None:
                out[b] = out[b] + row
            elif fused:
                out[b] = fma32(weights[p], row, out[b])
            else:
                out[b] = out[b] + weights[p] * row
    return (out, winner) if mode == 2 else out


# -- quantized normalisations (qlearn.kernels.norm) -----------------------------------------
# The equations of qlearn/nn/quantized/functional_norm.py, as NumPy: float32 arrays for
# every float32 step, fma32 for the fused ones.
_INT32_FLOAT_MAX = f32(2147483520.0)    # the largest float32 below 2^31
_TORCH_BLOCK = 32                       # elements PyTorch quantizes per vector block


def _qnorm_quantize_vector(y, scale, zero_point, qmin, qmax):
    """PyTorch's vectorised quantize: round, then add the zero point; ``y / S`` clamped
    at 2^31 - 128 first (NaN gives the bound, as x86 ``minps``), and a value at that
    bound wraps to ``qmin`` when the zero point passes 127 (int32 overflow)."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = y * (f32(1) / f32(scale))
        r = np.rint(np.fmin(t, _INT32_FLOAT_MAX))
        out = np.clip(r + f32(zero_point), qmin, qmax)
        if zero_point > 127:
            out[r == _INT32_FLOAT_MAX] = qmin
    return out.astype(np.int64)


def _qnorm_quantize_scalar(y, scale, zero_point, qmin, qmax):
    """PyTorch's scalar quantize: ``nearbyint(fma(y, 1/S, Z))``, saturating, NaN to 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = fma32(y, f32(1) / f32(scale), f32(zero_point))
        return np.clip(np.nan_to_num(np.rint(t), nan=0.0), qmin, qmax).astype(np.int64)


def _qnorm_stats(q, x_scale, x_zero_point, eps, float32_sums=False):
    """The centred mean and the factor of each row of the (M, n) integers ``q``
    (float32, shape (M, 1)); ``float32_sums``: the sums in float32, in order."""
    n = f32(q.shape[1])
    q64 = q.astype(np.int64)
    if float32_sums:
        mean_shifted = np.add.accumulate(q64.astype(f32), axis=1)[:, -1] / n
        mean_sq = np.add.accumulate((q64 * q64).astype(f32), axis=1)[:, -1] / n
    else:
        mean_shifted = q64.sum(axis=1).astype(f32) / n
        mean_sq = (q64 * q64).sum(axis=1).astype(f32) / n
    mean = mean_shifted - f32(x_zero_point)
    var = np.maximum(fma32(-mean_shifted, mean_shifted, mean_sq), f32(0))
    xs = f32(x_scale)
    with np.errstate(divide="ignore"):
        r = (np.float64(xs) / np.sqrt(((var * xs) * xs).astype(np.float64) + eps)).astype(f32)
    return mean[:, None], r[:, None]


def layer_norm_ref(q, weight, bias, x_scale, x_zero_point, eps, out_scale, out_zero_point,
                   qmin, qmax):
    r"""Quantized layer norm of the rows of the (M, N) integers ``q`` (the kernel's
    arguments; ``weight`` / ``bias`` of shape (N,) or None):

    .. math::

       \bar q = \mathrm{fl}(\textstyle\sum q / N), \quad \mu = \bar q - Z_x, \quad
       v = \max(\mathrm{fma}(-\bar q, \bar q, \mathrm{fl}(\textstyle\sum q^2 / N)), 0),
       \quad r = \mathrm{fl}_{32}\big(S_x / \sqrt{\mathrm{fl}(v S_x S_x) + \epsilon}\big)

    .. math::

       y_j = \mathrm{fma}(\mathrm{fl}((q_j - Z_x - \mu) r), \gamma_j, \beta_j), \qquad
       q_{y,j} = \operatorname{clamp}(\operatorname{nearbyint}(y_j / S_y) + Z_y)

    for the first :math:`N - N \bmod 32` elements of a row; the others are quantized
    as :math:`\operatorname{nearbyint}(\mathrm{fma}(y_j, 1/S_y, Z_y))` (PyTorch's
    scalar loop).  Returns int64 (M, N).

    >>> import numpy as np
    >>> from qlearn import reference as ref
    >>> ref.layer_norm_ref(np.array([[10, 30]]), None, None, 0.1, 10, 1e-5, 0.01, 128,
    ...                    0, 255)
    array([[ 28, 228]])
    """
    q = np.asarray(q)
    M, N = q.shape
    mean, r = _qnorm_stats(q, x_scale, x_zero_point, eps)
    w = np.ones(N, f32) if weight is None else np.asarray(weight, f32)
    b = np.zeros(N, f32) if bias is None else np.asarray(bias, f32)
    with np.errstate(invalid="ignore", over="ignore"):
        u = ((q.astype(f32) - f32(x_zero_point)) - mean) * r
        u = fma32(u, w.reshape(1, N), b.reshape(1, N))
    out = _qnorm_quantize_vector(u, out_scale, out_zero_point, qmin, qmax)
    tail = N % _TORCH_BLOCK
    if tail:
        out[:, N - tail:] = _qnorm_quantize_scalar(u[:, N - tail:], out_scale,
                                                   out_zero_point, qmin, qmax)
    return out


def group_norm_ref(q, gamma, beta, num_groups, nhwc, float32_sums, x_scale, x_zero_point,
                   eps, out_scale, out_zero_point, qmin, qmax):
    r"""Quantized group norm of the (B G, C / G, P) integers ``q`` (row :math:`n G + g`:
    group :math:`g` of sample :math:`n`; ``gamma`` / ``beta`` of shape (C,) or None),
    with the statistics of :func:`layer_norm_ref` per row and :math:`s_c =
    \mathrm{fl}(r \gamma_c)`:

    .. math::

       y = \mathrm{fma}(q - Z_x - \mu,\ s_c,\ \beta_c), \qquad
       \text{NHWC: } y = \mathrm{fma}(q - Z_x,\ s_c,\ \mathrm{fma}(-s_c, \mu, \beta_c))

    quantized as :math:`\operatorname{clamp}(\operatorname{nearbyint}(y / S_y) + Z_y)`,
    except (``nhwc``) the channels of a group past the last multiple of 32, quantized
    as PyTorch's scalar loop does.  ``float32_sums``: :math:`\sum q` and
    :math:`\sum q^2` in float32, in order.  Returns int64, the shape of ``q``.

    >>> import numpy as np
    >>> from qlearn import reference as ref
    >>> q = np.array([10, 30, 50, 50]).reshape(2, 2, 1)
    >>> ref.group_norm_ref(q, None, None, 2, False, False, 0.1, 0, 1e-5, 0.01, 128,
    ...                    0, 255).ravel()
    array([ 28, 228, 128, 128])
    """
    q = np.asarray(q)
    M, cpg, P = q.shape
    G = int(num_groups)
    B = M // G
    C = G * cpg
    mean, r = _qnorm_stats(q.reshape(M, cpg * P), x_scale, x_zero_point, eps,
                           float32_sums)
    gamma = np.ones(C, f32) if gamma is None else np.asarray(gamma, f32)
    beta = np.zeros(C, f32) if beta is None else np.asarray(beta, f32)
    with np.errstate(invalid="ignore", over="ignore"):
        zq = q.astype(f32) - f32(x_zero_point)          # exact
        mean = mean.reshape(M, 1, 1)
        gain = (r.reshape(B, G, 1) * gamma.reshape(1, G, cpg)).reshape(M, cpg, 1)
        shift = np.tile(beta.reshape(G, cpg), (B, 1)).reshape(M, cpg, 1)
        if not nhwc:
            return _qnorm_quantize_vector(fma32(zq - mean, gain, shift), out_scale,
                                          out_zero_point, qmin, qmax)
        y = fma32(zq, gain, fma32(-gain, mean, shift))
    out = _qnorm_quantize_vector(y, out_scale, out_zero_point, qmin, qmax)
    first_scalar = cpg - cpg % _TORCH_BLOCK
    out[:, first_scalar:] = _qnorm_quantize_scalar(y[:, first_scalar:], out_scale,
                                                   out_zero_point, qmin, qmax)
    return out


def batch_norm_ref(q, alpha, beta, x_zero_point, out_zero_point, lo, hi):
    r"""The quantized batch norm's map of the (N, C, inner) quint8 integers ``q``,
    one fused multiply-add per element with the channel's constants:

    .. math::

       q_y = \operatorname{clamp}\big(\operatorname{nearbyint}(\mathrm{fma}(\alpha_c,
       q - Z_x, b_c)) + Z_y,\ lo,\ hi\big)

    (NaN to ``lo``), :math:`\alpha_c` and :math:`b_c` as ``nnq.BatchNorm2d`` forms them.
    Returns int64, the shape of ``q``.

    >>> import numpy as np
    >>> from qlearn import reference as ref
    >>> ref.batch_norm_ref(np.array([[[130, 126]]]), [2.0], [0.5], 128, 100, 0, 255)
    array([[[104,  96]]])
    """
    q = np.asarray(q)
    a = np.asarray(alpha, f32).reshape(1, -1, 1)
    b = np.asarray(beta, f32).reshape(1, -1, 1)
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.rint(fma32(a, q.astype(f32) - f32(x_zero_point), b)) + f32(out_zero_point)
        v = np.where(np.isnan(v), f32(lo), v)
    return np.clip(v, lo, hi).astype(np.int64)


# -- the quantized element-wise maps (qlearn.kernels.lookup) --------------------------------
def lookup_u8_ref(table, q):
    r"""The table lookup of a quantized element-wise map: :math:`y_i = T[q_i]`, ``table``
    :math:`T` holding the output integer of each of the 256 input integers.

    >>> import numpy as np
    >>> from qlearn import reference as ref
    >>> ref.lookup_u8_ref(np.arange(256, dtype=np.uint8)[::-1], [0, 255])
    array([255,   0], dtype=uint8)
    """
    return np.asarray(table, np.uint8)[np.asarray(q, np.intp)]
