r"""Calibrators PyTorch does not have: percentile, MSE and entropy (KL) clipping.

TensorRT and ONNX Runtime calibrate with these.  Each keeps the same histogram as
:class:`~qlearn.quantization.observer.HistogramObserver` (same kernel, same re-binning,
so ``merge`` and ``state_dict`` work the same), chooses a clipping range
:math:`[\alpha, \beta]` from it with its own rule, and hands the range to
:func:`~qlearn.quantization.qparams.calculate_qparams`.  Clipping trades a larger error
on the few clipped values for a finer step :math:`S` on all the others; on heavy-tailed
data (activations with outliers) that lowers the overall quantization error.

The histogram is read as a piecewise-uniform density: with edges
:math:`e_0 < \dots < e_B` and counts :math:`h_j`, the CDF :math:`F` is linear inside each
bin, and the histogram of :math:`|x|` follows from :math:`F_{|x|}(t) = F(t) - F(-t)`.
"""
import numbers
import warnings

import numpy as np

from ..dtypes import per_tensor_affine
from ..kernels import observer as _kernels
from .observer import FLOAT32_EPS, HistogramObserver, quint8
from .qparams import calculate_qparams, cover_scale

__all__ = ["PercentileObserver", "MSEObserver", "EntropyObserver"]


# --- reading the histogram ----------------------------------------------------------------
def _edges(min_val, max_val, bins):
    return np.linspace(float(min_val), float(max_val), bins + 1)


def _cdf_at(t, hist, edges):
    """F(t): the mass below ``t`` of the piecewise-uniform density of the histogram."""
    cum = np.concatenate([[0.0], np.cumsum(hist)])
    return np.interp(t, edges, cum, left=0.0, right=cum[-1])


def _quantile(hist, edges, q):
    """The smallest t with F(t) >= q * total (linear inside the bin)."""
    cum = np.concatenate([[0.0], np.cumsum(hist)])
    target = q * cum[-1]
    j = int(np.searchsorted(cum, target, side="left"))
    if j <= 0:
        return float(edges[0])
    if j >= cum.size:
        return float(edges[-1])
    lo, hi = cum[j - 1], cum[j]
    frac = 0.0 if hi == lo else (target - lo) / (hi - lo)
    return float(edges[j - 1] + frac * (edges[j] - edges[j - 1]))


def _abs_histogram(hist, min_val, max_val, bins):
    """Histogram of :math:`|x|` over :math:`[0, \\max|x|]` with ``bins`` bins, and its
    edges: counts are differences of :math:`F(t) - F(-t)` at the new edges."""
    edges = _edges(min_val, max_val, hist.size)
    amax = max(abs(float(min_val)), abs(float(max_val)))
    new_edges = np.linspace(0.0, amax, bins + 1)
    g = _cdf_at(new_edges, hist, edges) - _cdf_at(-new_edges, hist, edges)
    g[0] = _cdf_at(0.0, hist, edges) - _cdf_at(-0.0, hist, edges)  # mass exactly at 0: none
    counts = np.diff(g)
    counts[0] += g[0]
    return np.maximum(counts, 0.0), new_edges


class _HistogramCalibrator(HistogramObserver):
    """A HistogramObserver whose clipping range comes from ``_clipping_range``."""

    def _clipping_range(self):
        raise NotImplementedError

    def calculate_qparams(self):
        """``(scale, zero_point)`` for this calibrator's clipping range."""
        if self.min_val == np.inf and self.max_val == -np.inf:
            warnings.warn("must run observer before calling calculate_qparams. "
                          "Returning default scale and zero point ", UserWarning,
                          stacklevel=2)
            return np.array([1.0], np.float32), np.array([0], np.int64)
        if float(self.min_val) == float(self.max_val):
            lo, hi = float(self.min_val), float(self.max_val)
        else:
            lo, hi = self._clipping_range()
        lo = max(np.float32(lo), np.float32(self.min_val))
        hi = min(np.float32(hi), np.float32(self.max_val))
        lo = min(lo, hi)   # a range clipped below all the data is still a range
        scale, zero_point = self._calculate_qparams(np.float32(lo), np.float32(hi))
        # the values clipped off must not land on a level beyond the float32 maximum
        scale = cover_scale(scale, zero_point, lo, hi, self.quant_min, self.quant_max,
                            data=(self.min_val, self.max_val))
        return scale, zero_point


class PercentileObserver(_HistogramCalibrator):
    r"""Clip at a percentile of the observed values.

    With :math:`p` = ``percentile`` / 100 and :math:`F` the histogram's CDF:

    .. math::

        \text{symmetric:}\quad \beta = F_{|x|}^{-1}(p),\ \alpha = -\beta; \qquad
        \text{affine:}\quad \alpha = F^{-1}(1 - p),\ \beta = F^{-1}(p)

    (the affine rule clips a fraction :math:`1 - p` on each side).

    Parameters
    ----------
    percentile : float
        In (0, 100], default 99.99.  ``100`` gives the min/max range.
    bins, dtype, qscheme, reduce_range, quant_min, quant_max, eps
        As in :class:`~qlearn.quantization.observer.HistogramObserver`.

    Examples
    --------
    >>> from qlearn.quantization.calibrators import PercentileObserver
    >>> x = np.linspace(-1.0, 1.0, 1001, dtype=np.float32)
    >>> x[-1] = 50.0                                     # one outlier
    >>> obs = PercentileObserver(percentile=99.0, qscheme=ql.per_tensor_symmetric,
    ...                          dtype=ql.qint8)
    >>> _ = obs(x)
    >>> scale, zero_point = obs.calculate_qparams()
    >>> print(round(float(scale[0]) * 127.5, 2))         # beta = 99th percentile of |x|
    0.99
    """

    def __init__(self, percentile=99.99, bins=2048, dtype=quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=FLOAT32_EPS,
                 **kwargs):
        if isinstance(percentile, (bool, np.bool_)) or not isinstance(
                percentile, numbers.Real):    # float() would also read "99" or True
            raise TypeError(f"`percentile` must be a number in (0, 100], got {percentile!r}")
        percentile = float(percentile)
        if not 0 < percentile <= 100:
            raise ValueError(f"`percentile` must be in (0, 100], got {percentile}")
        super().__init__(bins=bins, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps, **kwargs)
        self.percentile = percentile

    def _clipping_range(self):
        p = self.percentile / 100.0
        if self.qscheme.is_symmetric:
            counts, edges = _abs_histogram(self.histogram, self.min_val, self.max_val,
                                           self.bins)
            beta = _quantile(counts, edges, p)
            return -beta, beta
        edges = _edges(self.min_val, self.max_val, self.bins)
        return _quantile(self.histogram, edges, 1.0 - p), _quantile(self.histogram, edges, p)


def _expected_mse(centers, counts, lo, hi, obs):
    r"""The expected error E of MSEObserver for each candidate range ``(lo[k], hi[k])``
    (vectorised over k)."""
    scale, zp = calculate_qparams(lo, hi, obs.dtype, obs.qscheme, obs.quant_min,
                                  obs.quant_max, float(obs.eps[0]), obs.has_customized_qrange)
    s = scale.astype(np.float64)[:, None]
    a = (obs.quant_min - zp.astype(np.float64))[:, None] * s     # representable range
    b = (obs.quant_max - zp.astype(np.float64))[:, None] * s
    c = centers[None, :]
    below = np.where(c < a, (a - c) ** 2, 0.0)
    above = np.where(c > b, (c - b) ** 2, 0.0)
    inside = np.where((c >= a) & (c <= b), s * s / 12.0, 0.0)
    return ((below + above + inside) * counts[None, :]).sum(axis=1) / counts.sum()


class MSEObserver(_HistogramCalibrator):
    r"""Clip where the expected mean squared quantization error is smallest.

    For a candidate range, :func:`~qlearn.quantization.qparams.calculate_qparams` gives
    :math:`S, Z`; the representable range is
    :math:`[\hat\alpha, \hat\beta] = [S (Q_\min - Z),\ S (Q_\max - Z)]`.  With bin
    centres :math:`c_j` and counts :math:`h_j`, values inside are rounded (uniform error,
    variance :math:`S^2/12`) and values outside are clipped:

    .. math::

       E(\alpha, \beta) = \frac{1}{\sum_j h_j} \sum_j h_j \begin{cases}
           (\hat\alpha - c_j)^2 & c_j < \hat\alpha \\
           S^2 / 12 & \hat\alpha \le c_j \le \hat\beta \\
           (c_j - \hat\beta)^2 & c_j > \hat\beta \end{cases}

    Symmetric: candidates :math:`\beta = \max|x| \cdot k / K`, :math:`\alpha = -\beta`,
    :math:`k = 1 \dots K`.  Affine: coordinate descent over
    :math:`\beta \in \{x_\max k / K\}` with :math:`\alpha` fixed, then
    :math:`\alpha \in \{x_\min k / K\}` with :math:`\beta` fixed, three rounds.  The
    minimiser of :math:`E` is the range.

    Parameters
    ----------
    num_candidates : int
        :math:`K`, default 128.
    bins, dtype, qscheme, reduce_range, quant_min, quant_max, eps
        As in :class:`~qlearn.quantization.observer.HistogramObserver`.

    Examples
    --------
    >>> from qlearn.quantization.calibrators import MSEObserver
    >>> rng = np.random.default_rng(0)
    >>> x = rng.laplace(size=100_000).astype(np.float32)
    >>> obs = MSEObserver(dtype=ql.qint8, qscheme=ql.per_tensor_symmetric)
    >>> _ = obs(x)
    >>> scale, _ = obs.calculate_qparams()
    >>> bool(scale[0] * 127.5 < np.abs(x).max())      # clips the tails
    True
    """

    def __init__(self, num_candidates=128, bins=2048, dtype=quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=FLOAT32_EPS,
                 **kwargs):
        # (the search holds num_candidates x bins errors: bounded like bins)
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) \
                or not 1 <= num_candidates <= 1 << 16:
            raise ValueError(f"`num_candidates` must be an integer in [1, 65536], got "
                             f"{num_candidates!r}")
        super().__init__(bins=bins, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps, **kwargs)
        self.num_candidates = num_candidates

    def _clipping_range(self):
        edges = _edges(self.min_val, self.max_val, self.bins)
        centers = (edges[:-1] + edges[1:]) / 2
        counts = self.histogram
        keep = counts > 0
        centers, counts = centers[keep], counts[keep]
        frac = np.arange(1, self.num_candidates + 1) / self.num_candidates
        mn, mx = float(self.min_val), float(self.max_val)

        def best_of(lo, hi):
            err = _expected_mse(centers, counts, lo, hi, self)
            k = int(np.argmin(err))
            return float(lo[k]), float(hi[k])

        if self.qscheme.is_symmetric:
            beta = max(abs(mn), abs(mx)) * frac
            return best_of(-beta, beta)
        # affine: coordinate descent, the upper end with the lower fixed and vice versa.
        # The range always holds 0 (eq. qp-range), so the candidates shrink toward 0
        # from min(x_min, 0) and max(x_max, 0): for all-positive data a candidate
        # beta = x_max k / K below x_min would otherwise be an empty range.
        mn, mx = min(mn, 0.0), max(mx, 0.0)
        lo, hi = mn, mx
        for _ in range(3):
            lo, hi = best_of(np.full(frac.size, lo), mx * frac)
            lo, hi = best_of(mn * frac, np.full(frac.size, hi))
        return lo, hi


class EntropyObserver(_HistogramCalibrator):
    r"""Clip where the KL divergence between the original and the quantized distribution
    is smallest (TensorRT's entropy calibration).

    On the histogram of :math:`|x|` (``bins`` bins of width :math:`w`), for each candidate
    threshold bin :math:`i` (from the number of levels :math:`L` up to ``bins``):

    1. :math:`P` = the first :math:`i` bins, with the mass beyond added to bin
       :math:`i - 1` (clipping);
    2. :math:`Q` = the first :math:`i` bins merged into :math:`L` groups and expanded back,
       each group's mass spread evenly over its non-empty bins (quantization);
    3. :math:`D_i = \mathrm{KL}(P \,\|\, Q) = \sum_k P_k \log (P_k / Q_k)` (after
       smoothing empty bins).

    .. math::

        T = w \cdot \arg\min_i D_i

    Symmetric: :math:`[\alpha, \beta] = [-T, T]` with :math:`L = (Q_\max - Q_\min + 1) / 2`
    levels per side (128 for 8 bits).  Affine: for non-negative data (ReLU outputs) the
    histogram of :math:`x` itself is used with :math:`L = Q_\max - Q_\min + 1` and
    :math:`[\alpha, \beta] = [x_\min, T]`; for data of both signs,
    :math:`[\max(x_\min, -T), \min(x_\max, T)]` with :math:`T` from :math:`|x|`.

    The search runs in the compiled kernel (:func:`qlearn.kernels.observer.entropy_search`);
    its NumPy twin, written as the steps above, is
    :func:`qlearn.reference.entropy_search_ref`.

    Parameters
    ----------
    bins, dtype, qscheme, reduce_range, quant_min, quant_max, eps
        As in :class:`~qlearn.quantization.observer.HistogramObserver`.

    Examples
    --------
    >>> from qlearn.quantization.calibrators import EntropyObserver
    >>> rng = np.random.default_rng(0)
    >>> x = np.abs(rng.standard_normal(50_000)).astype(np.float32)
    >>> x[:3] = 30.0                                # outliers
    >>> obs = EntropyObserver()
    >>> _ = obs(x)
    >>> scale, zero_point = obs.calculate_qparams()
    >>> bool(scale[0] * 255 < 10.0), int(zero_point[0])
    (True, 0)
    """

    def __init__(self, bins=2048, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=FLOAT32_EPS, **kwargs):
        super().__init__(bins=bins, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps, **kwargs)

    def _clipping_range(self):
        mn, mx = float(self.min_val), float(self.max_val)
        levels = self.quant_max - self.quant_min + 1
        if not self.qscheme.is_symmetric and mn >= 0:
            # non-negative data: the histogram over [min, max] is one of magnitudes
            i = _kernels.entropy_search(np.ascontiguousarray(self.histogram, np.float64),
                                        min(levels, self.bins), min(levels, self.bins))
            width = (mx - mn) / self.bins
            return mn, mn + i * width
        counts, edges = _abs_histogram(self.histogram, mn, mx, self.bins)
        half = min(max(levels // 2, 1), self.bins)
        i = _kernels.entropy_search(np.ascontiguousarray(counts, np.float64), half, half)
        t = edges[i]
        if self.qscheme.is_symmetric:
            return -t, t
        return max(mn, -t), min(mx, t)
