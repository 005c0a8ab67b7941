r"""Scale and zero point from a clipping range: the one qparams function of qlearn.

Every observer, calibrator and fake-quantize module turns its statistics into a range
:math:`[\alpha, \beta]` and calls :func:`calculate_qparams`, which is written as the
equations below, in the float32 arithmetic of PyTorch's
``UniformQuantizationObserverBase._calculate_qparams`` (torch/ao/quantization/observer.py),
so that the numbers are the same.

With :math:`[Q_\min, Q_\max]` the integer range (``quant_min``, ``quant_max``):

.. math::

   \alpha' = \min(\alpha, 0), \qquad \beta' = \max(\beta, 0)

(zero must be exactly representable, so the range always contains it).

*Affine* (``per_tensor_affine``, ``per_channel_affine``):

.. math::

   S = \max\!\Big(\frac{\beta' - \alpha'}{Q_\max - Q_\min},\ \epsilon\Big), \qquad
   Z = \operatorname{clamp}\big(Q_\min - \operatorname{round}(\alpha' / S),\ Q_\min,\ Q_\max\big)

*Symmetric* (``per_tensor_symmetric``, ``per_channel_symmetric``):

.. math::

   S = \max\!\Big(\frac{\max(-\alpha', \beta')}{(Q_\max - Q_\min) / 2},\ \epsilon\Big), \qquad
   Z = \begin{cases} 0 & \text{signed dtype (qint8, qint32)} \\
                     128 & \text{quint8, default range} \\
                     \lfloor (Q_\min + Q_\max) / 2 \rfloor & \text{quint8, custom range}
       \end{cases}

*Float qparams* (``per_channel_affine_float_qparams``, for embedding tables): the range
is not widened to contain zero, and the zero point stays a float,

.. math::

   S = \begin{cases} \dfrac{\beta - \alpha}{Q_\max - Q_\min}
       & \text{if that exceeds } \epsilon \\ 1 & \text{otherwise} \end{cases},
   \qquad Z = -\alpha / S

so that :math:`\alpha` itself maps to :math:`Q_\min` (see
:mod:`qlearn.float_qparams`).

``round`` is round-half-to-even, as ``torch.round``.
"""
import numbers
import warnings

import numpy as np

from .. import _validation
from ..dtypes import per_tensor_affine, qint8, qint32, quint4x2, quint8

__all__ = ["calculate_qparams", "calculate_qmin_qmax", "validate_qmin_qmax", "FLOAT32_EPS"]

#: ``torch.finfo(torch.float32).eps``, the default lower bound of every scale.
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def validate_qmin_qmax(quant_min, quant_max, dtype=None):
    """Check a user-given integer range: integers, ``quant_min < quant_max``, 0 inside.

    PyTorch checks the last two (with ``AssertionError``); qlearn also checks that the
    range lies inside ``dtype`` (so that 2..8-bit ranges on an 8-bit dtype work and a
    range the storage cannot hold is refused) and raises ``ValueError``.

    >>> from qlearn.quantization.qparams import validate_qmin_qmax
    >>> validate_qmin_qmax(-8, 7, ql.qint8)
    >>> validate_qmin_qmax(1, 7, ql.quint8)
    Traceback (most recent call last):
    ...
    ValueError: the range [`quant_min`, `quant_max`] must contain 0, got [1, 7]
    """
    for name, v in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be an integer, got {v!r}")
    quant_min, quant_max = int(quant_min), int(quant_max)
    if not quant_min <= 0 <= quant_max:
        raise ValueError(f"the range [`quant_min`, `quant_max`] must contain 0, got "
                         f"[{quant_min}, {quant_max}]")
    if quant_min >= quant_max:
        raise ValueError(f"`quant_min` must be less than `quant_max`, got "
                         f"[{quant_min}, {quant_max}]")
    if dtype is not None and not (dtype.quant_min <= quant_min and quant_max <= dtype.quant_max):
        raise ValueError(f"[`quant_min`, `quant_max`] must lie inside the range of {dtype!r} "
                         f"[{dtype.quant_min}, {dtype.quant_max}], got [{quant_min}, {quant_max}]")


def calculate_qmin_qmax(quant_min, quant_max, has_customized_qrange, dtype, reduce_range):
    """The integer range ``(quant_min, quant_max)`` an observer quantizes to.

    Without a custom range it is the dtype's 8-bit range, or with ``reduce_range`` the
    range with one bit less (x86 kernels' ``vpmaddubsw`` computes ``a0 w0 + a1 w1`` in
    int16, which 255 * 127 * 2 overflows, so their default activations use 7 bits):

    ======== ================= ===================
    dtype    full range        ``reduce_range``
    ======== ================= ===================
    quint8   [0, 255]          [0, 127]
    qint8    [-128, 127]       [-64, 63]
    qint32   [-2**31, 2**31-1] [-2**31, 2**31-1]
    quint4x2 [0, 15]           [0, 15]
    ======== ================= ===================

    A custom range is halved by ``reduce_range`` too (``quant_min // 2``,
    ``quant_max // 2``), as in PyTorch.

    >>> from qlearn.quantization.qparams import calculate_qmin_qmax
    >>> calculate_qmin_qmax(None, None, False, ql.quint8, True)
    (0, 127)
    >>> calculate_qmin_qmax(-8, 7, True, ql.qint8, False)
    (-8, 7)
    """
    if has_customized_qrange:
        if reduce_range:
            return quant_min // 2, quant_max // 2
        return quant_min, quant_max
    if dtype is qint8:
        return (-64, 63) if reduce_range else (-128, 127)
    if dtype is quint8:
        return (0, 127) if reduce_range else (0, 255)
    if dtype is qint32:
        return -(2 ** 31), 2 ** 31 - 1
    if dtype is quint4x2:       # 4-bit embedding rows; PyTorch ignores reduce_range here
        return 0, 15
    raise TypeError(f"`dtype` must be qlearn.quint8, qlearn.qint8 or qlearn.qint32, got {dtype!r}")


def _quantized_levels(x, scale, zero_point, quant_min, quant_max):
    """The integers ``x`` (float64 array) quantizes to with float32 ``scale`` and
    ``zero_point``, both ways qlearn's kernels round (as PyTorch's): one FMA
    ``nearbyint(fma(x, 1/S, Z))`` (8-bit per tensor) and two roundings
    ``nearbyint(x * (1/S) + Z)`` (per channel, qint32)."""
    inv = np.float32(1) / np.float32(scale)
    x32 = np.float32(x)
    with np.errstate(over="ignore"):
        fma = np.rint(np.float32(np.float64(x32) * np.float64(inv) + zero_point))
        two = np.rint(np.float32(x32 * inv) + np.float32(zero_point))
    return [int(np.clip(q, quant_min, quant_max)) for q in (fma, two)]


def _finite_level(q, scale, zero_point):
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32((q - zero_point) * np.float64(np.float32(scale)))))


def _lowered(scale, zero_point, quant_min, quant_max):
    """The largest float32 ``<= scale`` whose outermost levels are finite."""
    reach = max(quant_max - zero_point, zero_point - quant_min, 1)
    top = np.float32(_F32_MAX / reach)
    for _ in range(4):      # float32 rounding of the quotient may be up by an ulp
        if not (_finite_level(quant_min, top, zero_point)
                and _finite_level(quant_max, top, zero_point)):
            top = np.nextafter(top, np.float32(0))
    return min(np.float32(scale), top)


def _covers(scale, zero_point, ends, quant_min, quant_max, clipped=()):
    """Whether each end quantizes (both roundings) to a finite level within S/2, and
    each ``clipped`` value (data outside a calibrator's range) to a finite level."""
    for x in clipped:
        for q in _quantized_levels(x, scale, zero_point, quant_min, quant_max):
            if not _finite_level(q, scale, zero_point):
                return False
    for end in ends:
        for q in _quantized_levels(end, scale, zero_point, quant_min, quant_max):
            if not _finite_level(q, scale, zero_point):
                return False
            level = (q - zero_point) * np.float64(scale)
            if abs(level - end) > 0.5 * np.float64(scale) * (1 + 2.0 ** -20):
                return False
    return True


def cover_scale(scale, zero_point, min_val, max_val, quant_min, quant_max, data=None):
    r"""``scale`` moved (``zero_point`` kept) so that no value of the range quantizes to
    a level beyond the float32 maximum.

    For a range reaching :math:`\pm 3.4 \times 10^{38}` the outermost level
    :math:`S (Q_\min - Z)` (or :math:`S (Q_\max - Z)`) can exceed the float32 maximum; PyTorch
    keeps the scale, and the data at that end dequantizes to :math:`-\infty`. Lowering
    ``S`` until every level is finite would shrink the range instead, so the other end
    would be clipped by up to :math:`S` (twice the rounding bound).  qlearn raises ``S``
    to the smallest float32 for which the end rounds one level inward,
    :math:`S' > |\alpha| / (j - \tfrac12)` for an end at level :math:`j` (in both rounding orders of
    the kernels): every value of the range then quantizes to a finite level within
    :math:`S'/2` of it, and the infinite level is reached by no value of it.  When
    lowering ``S`` by a few ulps (or until every level is finite) keeps both ends on
    finite levels within :math:`S/2`, that smaller change is made instead (a range
    :math:`[0, 3.4 \times 10^{38}]` whose scale rounded up).  ``data`` =
    ``(lowest, highest)`` of the observed values, for a range that clips them (a
    calibrator's): the clipped values must land on finite levels too.  A scale whose
    levels are all finite (every range that does not reach the float32 limits) is
    returned unchanged: PyTorch's number.
    """
    scale = np.array(np.atleast_1d(scale), np.float32)
    if not scale.size:
        return scale
    zps = np.atleast_1d(zero_point)
    reach = max(quant_max - float(np.min(zps)), float(np.max(zps)) - quant_min)
    if float(np.max(scale)) * reach < 0.5 * _F32_MAX:   # the common case: far from it
        return scale
    zps = np.broadcast_to(zps, scale.shape)
    lo = np.broadcast_to(np.minimum(np.atleast_1d(np.float64(min_val)), 0.0), scale.shape)
    hi = np.broadcast_to(np.maximum(np.atleast_1d(np.float64(max_val)), 0.0), scale.shape)
    extra = () if data is None else (float(np.min(data[0])), float(np.max(data[1])))
    with np.errstate(over="ignore"):
        s64 = scale.astype(np.float64)
        z64 = zps.astype(np.float64)
        edge = ~(np.isfinite(((quant_min - z64) * s64).astype(np.float32))
                 & np.isfinite(((quant_max - z64) * s64).astype(np.float32)))
    for i in np.flatnonzero(edge):      # (the rest: every level finite, kept as it is)
        z = float(zps[i])
        s = scale[i]
        # a scale that rounded up: a few ulps down may already cover both ends
        lows, t = [], s
        for _ in range(4):
            t = np.nextafter(t, np.float32(0))
            lows.append(t)
        lows.append(_lowered(s, z, quant_min, quant_max))
        low = next((t for t in lows
                    if _covers(t, z, (lo[i], hi[i]), quant_min, quant_max, extra)), None)
        if low is not None:
            scale[i] = low
            continue
        for _ in range(64):
            need = s
            for end in (lo[i], hi[i]) + extra:
                for q in _quantized_levels(end, s, z, quant_min, quant_max):
                    if not _finite_level(q, s, z):
                        j = abs(q - z)          # >= 1: the level of 0 is 0
                        want = np.float32(abs(end) / (j - 0.5)) if j > 1 else s
                        need = max(need, np.nextafter(max(want, s), np.float32(np.inf)))
            if need == s:
                break
            s = np.float32(need)
        scale[i] = s
    return scale


_F32_MAX = float(np.finfo(np.float32).max)


def _finite_scale(scale32, scale64, min_val, max_val):
    """``scale32`` where it is finite, else ``scale64`` (the same quotient in float64).

    A range near the float32 limits overflows the float32 difference ``beta - alpha``
    (PyTorch then returns an infinite scale); float64 holds it.  A scale that is itself
    beyond float32 (a range wider than ``(Q_max - Q_min) * 3.4e38``) cannot be stored.
    """
    if np.isfinite(scale32).all():
        return scale32
    with np.errstate(over="ignore"):
        fixed = np.where(np.isfinite(scale32), scale32, scale64.astype(np.float32))
    if not np.isfinite(fixed).all():
        i = int(np.argmax(np.atleast_1d(~np.isfinite(fixed))))
        raise ValueError(f"the range [{np.atleast_1d(min_val)[i]}, "
                         f"{np.atleast_1d(max_val)[i]}] is too wide for this quantized "
                         f"range: its scale {np.atleast_1d(scale64)[i]:.4g} exceeds the "
                         f"float32 maximum")
    return fixed.astype(np.float32)


def calculate_qparams(min_val, max_val, dtype=quint8, qscheme=None, quant_min=0,
                      quant_max=255, eps=FLOAT32_EPS, has_customized_qrange=False):
    r"""Scale and zero point for the clipping range ``[min_val, max_val]``.

    Implements equations :eq:`qp-range`, :eq:`qp-affine` and :eq:`qp-symmetric` in
    float32, as PyTorch's observers do.

    Parameters
    ----------
    min_val, max_val : float or array_like
        :math:`\alpha` and :math:`\beta`: scalars (per tensor) or 1-d arrays of
        ``C`` entries (per channel).  ``min_val = +inf, max_val = -inf`` (an observer that
        saw no data) or empty arrays give PyTorch's default ``(1.0, 0)`` with a warning.
    dtype : QDType
        ``qlearn.quint8``, ``qlearn.qint8`` or ``qlearn.qint32``.
    qscheme : QScheme
        Affine or symmetric (per tensor or per channel; the shape of ``min_val`` decides
        the output shape).  Default ``qlearn.per_tensor_affine``.
    quant_min, quant_max : int
        :math:`Q_\min`, :math:`Q_\max` (see :func:`calculate_qmin_qmax`).
    eps : float
        :math:`\epsilon`, the smallest scale returned.
    has_customized_qrange : bool
        Whether the user chose ``quant_min``/``quant_max`` (changes the symmetric quint8
        zero point, eq. :eq:`qp-symmetric`).

    Returns
    -------
    scale : ndarray of float32, shape ``(1,)`` or ``(C,)``
    zero_point : ndarray of int64, same shape (float32 for
        ``per_channel_affine_float_qparams``)

    Examples
    --------
    >>> from qlearn.quantization.qparams import calculate_qparams
    >>> s, z = calculate_qparams(-1.0, 3.0, ql.quint8, ql.per_tensor_affine, 0, 255)
    >>> s, z      # S = 4 / 255, Z = 0 - round(-1 / S) = 64
    (array([0.01568628], dtype=float32), array([64]))
    >>> calculate_qparams(-1.0, 3.0, ql.qint8, ql.per_tensor_symmetric, -128, 127)
    (array([0.02352941], dtype=float32), array([0]))
    """
    if qscheme is None:
        qscheme = per_tensor_affine
    _validation.check_dtype(dtype)
    _validation.check_qscheme(qscheme)
    min_val = np.asarray(min_val, dtype=np.float32)
    max_val = np.asarray(max_val, dtype=np.float32)
    if min_val.shape != max_val.shape or min_val.ndim > 1:
        raise ValueError(f"`min_val` and `max_val` must be scalars or 1-d arrays of the same "
                         f"shape, got {min_val.shape} and {max_val.shape}")

    # PyTorch's check_min_max_valid: no data yet -> default qparams with a warning
    if min_val.size == 0 or (min_val.ndim == 0 and min_val == np.inf and max_val == -np.inf):
        warnings.warn("must run observer before calling calculate_qparams. "
                      "Returning default values.", UserWarning, stacklevel=3)
        return np.array([1.0], np.float32), np.array([0], np.int64)
    if np.any(min_val > max_val):
        i = int(np.argmax(np.atleast_1d(min_val > max_val)))
        lo, hi = np.atleast_1d(min_val)[i], np.atleast_1d(max_val)[i]
        raise ValueError(f"`min_val` must not exceed `max_val`, got min {lo} > max {hi} "
                         f"(entry {i})")

    if not (np.isfinite(min_val).all() and np.isfinite(max_val).all()):
        bad = np.atleast_1d(~(np.isfinite(min_val) & np.isfinite(max_val)))
        i = int(np.argmax(bad))
        raise ValueError(f"`min_val` and `max_val` must be finite, got "
                         f"[{np.atleast_1d(min_val)[i]}, {np.atleast_1d(max_val)[i]}] "
                         f"(entry {i})")

    zero = np.float32(0)
    eps32 = np.float32(eps)
    if qscheme.is_float_qparams:
        return _float_qparams(min_val, max_val, quant_min, quant_max, eps32)
    min_val_neg = np.minimum(min_val, zero)                      # eq. (qp-range)
    max_val_pos = np.maximum(max_val, zero)

    if qscheme.is_symmetric:                                     # eq. (qp-symmetric)
        max_val_pos = np.maximum(-min_val_neg, max_val_pos)
        with np.errstate(over="ignore"):
            scale = max_val_pos / np.float32((quant_max - quant_min) / 2)
        scale = _finite_scale(scale, max_val_pos.astype(np.float64)
                              / ((quant_max - quant_min) / 2), min_val, max_val)
        scale = np.maximum(scale, eps32)
        if dtype is quint8:
            zp = (quant_min + quant_max) // 2 if has_customized_qrange else 128
        else:
            zp = 0
        zero_point = np.full(scale.shape, zp, np.int64)
    else:                                                        # eq. (qp-affine)
        with np.errstate(over="ignore"):
            scale = (max_val_pos - min_val_neg) / np.float32(quant_max - quant_min)
        scale = _finite_scale(scale, (max_val_pos.astype(np.float64) - min_val_neg)
                              / (quant_max - quant_min), min_val, max_val)
        scale = np.maximum(scale, eps32)
        shift = np.round(min_val_neg / scale)                    # round half to even
        # (a huge shift only happens with a tiny eps; clip it before the integer cast)
        shift = np.clip(shift, -2.0 ** 62, 2.0 ** 62).astype(np.int64)
        zero_point = quant_min - shift
        zero_point = np.clip(zero_point, quant_min, quant_max)

    scale = cover_scale(scale, zero_point, min_val, max_val, quant_min, quant_max)
    # per-tensor results are arrays of shape (1,), as torch returns them
    scale = np.atleast_1d(np.asarray(scale, np.float32))
    zero_point = np.atleast_1d(np.asarray(zero_point, np.int64))
    return scale, zero_point


def _float_qparams(min_val, max_val, quant_min, quant_max, eps32):
    """``per_channel_affine_float_qparams``: S = (max - min) / (Qmax - Qmin) (1 where
    not above eps), Z = -min / S, both float32, as PyTorch's observers compute them."""
    with np.errstate(over="ignore"):
        scale = (max_val - min_val) / np.float32(quant_max - quant_min)
    scale = _finite_scale(scale, (max_val.astype(np.float64) - min_val)
                          / (quant_max - quant_min), min_val, max_val)
    scale = np.where(scale > eps32, scale, np.float32(1)).astype(np.float32)
    zero_point = (np.float32(-1) * min_val) / scale
    return np.atleast_1d(scale), np.atleast_1d(zero_point.astype(np.float32))



# -- the rule of PyTorch's fused moving-average fake-quantize op ---------------------------

#: Scales below this are raised to it by :func:`calculate_qparams_fused` (the smallest
#: normal float16, so that a scale never falls into float16's subnormal range).
SMALL_SCALE_THRESHOLD = float(np.float32(6.1e-5))

__all__ += ["calculate_qparams_fused", "SMALL_SCALE_THRESHOLD"]


def calculate_qparams_fused(min_val, max_val, quant_min, quant_max, symmetric=False):
    r"""Scale and zero point as PyTorch's *fused* fake-quantize op chooses them.

    ``torch.fused_moving_avg_obs_fake_quant`` (behind ``FusedMovingAvgObsFakeQuantize``
    and so behind every default QAT qconfig) does not call its observer's
    ``calculate_qparams``: its C++ kernel calls FBGEMM's ``ChooseQuantizationParams``,
    a rule written for the server kernels, with ``preserve_sparsity`` set for the
    symmetric qschemes.  It differs from :func:`calculate_qparams` (the observers' rule)
    in four places, so the two agree on affine ranges away from the edge cases only:

    1. *Symmetric* uses the signed half-ranges :math:`q_- = -(\lfloor (Q_\max - Q_\min)/2
       \rfloor + 1)` and :math:`q_+ = \lfloor (Q_\max - Q_\min)/2 \rfloor` (for
       ``[-128, 127]``: -128 and 127) and widens the range to

       .. math::

          s = \max\!\Big(\Big|\frac{\alpha}{q_-}\Big|, \Big|\frac{\beta}{q_+}\Big|\Big),
          \qquad \alpha \leftarrow s\, q_-, \quad \beta \leftarrow s\, q_+

       only when :math:`\alpha < 0 < \beta`; its scale is then
       :math:`\max(-\alpha/128, \beta/127)`, not the observers'
       :math:`\max(-\alpha, \beta)/127.5`.  One-sided data is not widened and gets an
       affine scale and zero point (for example ``qint8`` data in :math:`[0, 1]`:
       :math:`S = 1/255`, :math:`Z = -128`).
    2. No ``eps``: :math:`S = (\beta' - \alpha')/(Q_\max - Q_\min)` (in float64, rounded
       to float32, with :math:`\alpha' = \min(\alpha, 0)`, :math:`\beta' = \max(\beta,
       0)`); :math:`S = 0.1` when it is 0 or its float32 reciprocal overflows.
    3. A floor :math:`S_{\min} = 6.1 \cdot 10^{-5}` (``SMALL_SCALE_THRESHOLD``): a smaller
       :math:`S` becomes :math:`S_{\min}` and the range grows with it (one-sided: the
       open end becomes :math:`\pm S_{\min}(Q_\max - Q_\min)`; else both ends are
       multiplied by :math:`S_{\min}/S`), which moves the zero point too.
    4. The zero point is computed from whichever end adds the smaller terms and
       nudged (clamped, then rounded half to even):

       .. math::

          Z_0 = \begin{cases} Q_\min - \alpha'/S & |Q_\min| + |\alpha'/S| <
                                                   |Q_\max| + |\beta'/S| \\
                              Q_\max - \beta'/S & \text{otherwise} \end{cases}
          \qquad
          Z = \begin{cases} Q_\min & Z_0 < Q_\min \\ Q_\max & Z_0 > Q_\max \\
                            \operatorname{round}(Z_0) & \text{otherwise} \end{cases}

       and for symmetric ranges with :math:`\alpha' < 0 < \beta'`,
       :math:`Z_0 = (Q_\min + Q_\max)/2` (so 0 for ``[-128, 127]``, 128 for
       ``[0, 255]``).  All-zero data thus gets :math:`S = 0.1` and, on ``[-128, 127]``,
       :math:`Z = 127`.

    Every step is done in the float32 / float64 arithmetic of the C++ code, so the
    results are PyTorch's to the bit, except at the float32 limit, where PyTorch's are
    unusable: a symmetric range whose widened end passes :math:`3.4 \times 10^{38}`
    (PyTorch: ``scale = inf``, output NaN) takes the float64 ends, and a range end that
    would land on a level beyond the float32 maximum (PyTorch: output :math:`\pm\infty`)
    gets the scale of :func:`cover_scale`.  PyTorch builds without FBGEMM use a copy of
    this rule in ``quant_utils`` (aten/src/ATen/native/quantized/cpu/QuantUtils.h) that
    keeps the scale in float64 until the end; x86 builds, the oracle here, use FBGEMM's.

    Parameters
    ----------
    min_val, max_val : float or array_like
        :math:`\alpha`, :math:`\beta`: the running range, a scalar or one entry per
        channel (float32).
    quant_min, quant_max : int
        :math:`Q_\min < Q_\max`.
    symmetric : bool
        ``preserve_sparsity``: whether the qscheme is symmetric.

    Returns
    -------
    scale : ndarray of float32, shape ``(1,)`` or ``(C,)``
    zero_point : ndarray of int64, same shape

    Examples
    --------
    >>> from qlearn.quantization.qparams import calculate_qparams_fused
    >>> calculate_qparams_fused(-1.0, 3.0, -128, 127, symmetric=True)  # 3 / 127
    (array([0.02362205], dtype=float32), array([0]))
    >>> calculate_qparams_fused(0.0, 0.0, -128, 127)                   # all zero
    (array([0.1], dtype=float32), array([127]))
    >>> calculate_qparams_fused(0.0, 1e-3, 0, 255)                     # floored scale
    (array([6.1e-05], dtype=float32), array([0]))
    """
    for name, v in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be an integer, got {v!r}")
    qmin, qmax = int(quant_min), int(quant_max)
    if qmin >= qmax:
        raise ValueError(f"`quant_min` must be less than `quant_max`, got [{qmin}, {qmax}]")
    if symmetric and qmax - qmin < 2:
        # q_+ would be 0: PyTorch divides by it and returns a garbage zero point
        raise ValueError(f"a symmetric range needs `quant_max` - `quant_min` >= 2, got "
                         f"[{qmin}, {qmax}]")
    f32, f64 = np.float32, np.float64
    lo = np.atleast_1d(np.asarray(min_val, f32))
    hi = np.atleast_1d(np.asarray(max_val, f32))
    if lo.shape != hi.shape or lo.ndim > 1:
        raise ValueError(f"`min_val` and `max_val` must be scalars or 1-d arrays of the same "
                         f"shape, got {np.shape(min_val)} and {np.shape(max_val)}")
    span = qmax - qmin
    floor = f32(SMALL_SCALE_THRESHOLD)
    # inf/nan only enter from a running range that never saw data; the selects below
    # discard those lanes, so their warnings are noise
    with np.errstate(all="ignore"):
        if symmetric:                                     # step 1, float32 divisions
            q_neg, q_pos = -(span // 2 + 1), span // 2
            two_sided = (lo < 0) & (hi > 0)
            s = np.maximum(np.abs(lo / f32(q_neg)), np.abs(hi / f32(q_pos))).astype(f64)
            lo64 = np.where(two_sided, s * q_neg, lo.astype(f64))
            hi64 = np.where(two_sided, s * q_pos, hi.astype(f64))
            lo = np.where(two_sided, (s * q_neg).astype(f32), lo)
            hi = np.where(two_sided, (s * q_pos).astype(f32), hi)
        else:
            lo64, hi64 = lo.astype(f64), hi.astype(f64)
        lo = np.minimum(lo, f32(0))
        hi = np.maximum(hi, f32(0))
        scale = ((hi.astype(f64) - lo.astype(f64)) / f64(span)).astype(f32)   # step 2
        # a widened symmetric end beyond float32 (data at +-3.4e38): PyTorch's scale is
        # inf and its output NaN; the same quotient from the float64 ends instead
        wide = np.isinf(scale) & np.isfinite(lo64) & np.isfinite(hi64)
        scale = np.where(wide, ((np.maximum(hi64, 0) - np.minimum(lo64, 0)) / span)
                         .astype(f32), scale)
        degenerate = (scale == 0) | np.isinf(f32(1) / scale)
        scale = np.where(degenerate, f32(0.1), scale)
        small = scale < floor                                                  # step 3
        amplifier = floor / scale
        lo_small = np.where(lo == 0, lo, np.where(hi == 0, -floor * f32(span), lo * amplifier))
        hi_small = np.where(lo == 0, floor * f32(span), np.where(hi == 0, hi, hi * amplifier))
        lo = np.where(small, lo_small, lo)
        hi = np.where(small, hi_small, hi)
        scale = np.where(small, floor, scale)
        s64 = scale.astype(f64)                                                # step 4
        lo_q, hi_q = lo.astype(f64) / s64, hi.astype(f64) / s64
        z0 = np.where(abs(qmin) + np.abs(lo_q) < abs(qmax) + np.abs(hi_q),
                      qmin - lo_q, qmax - hi_q)
        if symmetric:
            z0 = np.where((lo < 0) & (hi > 0), (qmin + qmax) / 2.0, z0)
        z0 = np.where(np.isnan(z0), 0.0, z0)
        zero_point = np.where(z0 < qmin, qmin, np.where(z0 > qmax, qmax, np.rint(z0)))
    zero_point = zero_point.astype(np.int64)
    ok = np.isfinite(np.atleast_1d(np.asarray(min_val, f32))) \
        & np.isfinite(np.atleast_1d(np.asarray(max_val, f32)))
    if ok.all():        # (a range that never saw data keeps PyTorch's lanes as they are)
        # an end that would fake-quantize to an infinite level: see cover_scale
        scale = cover_scale(scale, zero_point, np.asarray(min_val, f32),
                            np.asarray(max_val, f32), qmin, qmax)
    return scale.astype(f32), zero_point
