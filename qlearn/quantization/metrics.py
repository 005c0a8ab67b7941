r"""Error metrics for quantization debugging: how far a quantized result is from the float one.

The three comparisons are the ones PyTorch's numeric suite uses
(``torch.ao.ns.fx.utils.compute_sqnr``, ``compute_normalized_l2_error``,
``compute_cosine_similarity``); "Practical Quantization in PyTorch" recommends the first,
the signal-to-quantization-noise ratio (SQNR), to find the layers that suffer most. The
last three functions look at one observer instead: which values of some data fall
outside the range its ``(scale, zero_point)`` can represent.

Every comparison takes NumPy arrays, :class:`qlearn.Tensor` or :class:`qlearn.QTensor`
(dequantized first), or two lists / tuples of them (then it returns a list, one value
per pair, as PyTorch's do).  The sums are taken in float64 and the result is a Python
float; PyTorch returns a float32 tensor of the same value (shape ``(1,)`` for the cosine
similarity).
"""
import numpy as np

from ..dtypes import per_channel_affine, per_channel_symmetric
from ..qtensor import QTensor

__all__ = ["compute_sqnr", "compute_normalized_l2_error", "compute_cosine_similarity",
           "representable_range", "clipping_fraction", "saturation_count"]


def _as_array(x, name):
    """``x`` as a float64 ndarray: a QTensor dequantized, a Tensor's ``.data``."""
    if isinstance(x, QTensor):
        x = x.dequantize()
    elif not isinstance(x, np.ndarray) and isinstance(getattr(x, "data", None), np.ndarray):
        x = x.data                       # a qlearn.Tensor (or Parameter)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a real-valued array, qlearn.Tensor or QTensor, "
                        f"got {type(x).__name__}")
    return arr.astype(np.float64, copy=False)


def _pairwise(fn):
    """Apply a two-argument metric to each pair when both arguments are lists / tuples."""
    def metric(x, y, **kwargs):
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            if len(x) != len(y):
                raise ValueError(f"`x` and `y` must have the same length, got {len(x)} and "
                                 f"{len(y)}")
            return [metric(a, b, **kwargs) for a, b in zip(x, y)]
        return fn(_as_array(x, "x"), _as_array(y, "y"), **kwargs)
    metric.__name__, metric.__doc__ = fn.__name__, fn.__doc__
    metric.__qualname__, metric.__module__ = fn.__qualname__, fn.__module__
    metric.__wrapped__ = fn
    return metric


def _same_shape(x, y):
    if x.shape != y.shape:
        raise ValueError(f"`x` and `y` must have the same shape, got {x.shape} and "
                         f"{y.shape}")


@_pairwise
def compute_sqnr(x, y):
    r"""Signal-to-quantization-noise ratio of ``y`` against the reference ``x``, in dB.

    .. math::

       \mathrm{SQNR}(x, y) = 20 \log_{10} \frac{\lVert x \rVert_2}{\lVert x - y \rVert_2}

    :math:`x` is the float result (the signal), :math:`y` the quantized one, so
    :math:`x - y` is the quantization noise.  Higher is better; every halving of the
    noise adds about 6 dB, so each extra bit of a uniform quantizer is worth about 6 dB.
    Identical inputs give ``inf``.

    Parameters
    ----------
    x, y : array_like, qlearn.Tensor or qlearn.QTensor (or two lists / tuples of them)
        Same shape; QTensors are dequantized.

    Returns
    -------
    float (a list of floats for lists)

    Examples
    --------
    >>> from qlearn.quantization.metrics import compute_sqnr
    >>> x = np.array([3.0, 4.0])                 # ||x|| = 5
    >>> round(compute_sqnr(x, x + [0.05, 0.0]), 2)   # ||x - y|| = 0.05: 20 log10(100)
    40.0
    >>> q = ql.quantize_per_tensor(x, 0.1, 0, ql.quint8)
    >>> compute_sqnr(x, q)                       # 3 and 4 are exact at S = 0.1
    inf
    """
    _same_shape(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(20 * np.log10(np.linalg.norm(x) / np.linalg.norm(x - y)))


@_pairwise
def compute_normalized_l2_error(x, y):
    r"""The L2 norm of the error relative to the L2 norm of the reference ``x``.

    .. math::

       e(x, y) = \sqrt{\frac{\sum_i (x_i - y_i)^2}{\sum_i x_i^2}}
              = \frac{\lVert x - y \rVert_2}{\lVert x \rVert_2}
              = 10^{-\mathrm{SQNR}(x, y) / 20}

    Parameters
    ----------
    x, y : array_like, qlearn.Tensor or qlearn.QTensor (or two lists / tuples of them)
        Same shape; QTensors are dequantized.

    Returns
    -------
    float (a list of floats for lists)

    Examples
    --------
    >>> from qlearn.quantization.metrics import compute_normalized_l2_error
    >>> round(compute_normalized_l2_error(np.array([3.0, 4.0]), np.array([3.0, 3.5])), 3)
    0.1
    """
    _same_shape(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum((x - y) ** 2) / np.sum(x ** 2)))


@_pairwise
def compute_cosine_similarity(x, y, eps=1e-8):
    r"""Cosine of the angle between ``x`` and ``y``, both flattened.

    .. math::

       \cos(x, y) = \frac{x}{\max(\lVert x \rVert_2, \epsilon)} \cdot
                    \frac{y}{\max(\lVert y \rVert_2, \epsilon)}, \qquad \epsilon = 10^{-8}

    Only the number of elements has to agree (PyTorch flattens both, so that a weight
    can be compared with a differently shaped copy of it).  1 means the same direction;
    it ignores a common scale factor, unlike :func:`compute_sqnr`.

    Parameters
    ----------
    x, y : array_like, qlearn.Tensor or qlearn.QTensor (or two lists / tuples of them)
        The same number of elements; QTensors are dequantized.

    Returns
    -------
    float (a list of floats for lists)

    Examples
    --------
    >>> from qlearn.quantization.metrics import compute_cosine_similarity
    >>> compute_cosine_similarity(np.array([1.0, 0.0]), np.array([[2.0], [0.0]]))
    1.0
    >>> round(compute_cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4)
    0.7071
    """
    if x.size != y.size:
        raise ValueError(f"`x` and `y` must have the same number of elements, got "
                         f"{x.size} ({x.shape}) and {y.size} ({y.shape})")
    x, y = x.reshape(-1), y.reshape(-1)
    return float(np.dot(x / max(np.linalg.norm(x), eps), y / max(np.linalg.norm(y), eps)))


# --- one observer against some data -------------------------------------------------------
def _observer_qparams(observer):
    """``(scale, zero_point, quant_min, quant_max, ch_axis)`` of an observer or fake
    quantizer; ``ch_axis`` is None for per-tensor qparams."""
    if not callable(getattr(observer, "calculate_qparams", None)) or \
            getattr(observer, "quant_min", None) is None or \
            getattr(observer, "quant_max", None) is None:
        raise TypeError(f"`observer` must be an observer or fake quantizer with "
                        f"calculate_qparams(), quant_min and quant_max, got "
                        f"{type(observer).__name__}")
    scale, zero_point = observer.calculate_qparams()
    scale = np.asarray(scale, np.float64).reshape(-1)
    zero_point = np.asarray(zero_point, np.float64).reshape(-1)
    per_channel = getattr(observer, "qscheme", None) in (per_channel_affine,
                                                          per_channel_symmetric)
    ch_axis = int(getattr(observer, "ch_axis", 0)) if per_channel else None
    return scale, zero_point, int(observer.quant_min), int(observer.quant_max), ch_axis


def representable_range(observer):
    r"""The real interval an observer's ``(scale, zero_point)`` can represent.

    .. math::

       [\,S (Q_\min - Z),\; S (Q_\max - Z)\,]

    Values outside it are clipped to its ends by quantization.

    Parameters
    ----------
    observer : ObserverBase or FakeQuantize
        Anything with ``calculate_qparams()``, ``quant_min`` and ``quant_max`` (and
        ``qscheme`` / ``ch_axis`` for per-channel qparams).

    Returns
    -------
    (low, high) : two float64 arrays of shape (1,), or (C,) per channel

    Examples
    --------
    >>> from qlearn.quantization import MinMaxObserver
    >>> from qlearn.quantization.metrics import representable_range
    >>> obs = MinMaxObserver()
    >>> _ = obs(np.array([-1.0, 0.0, 3.0], np.float32))   # S = 4/255, Z = 64
    >>> lo, hi = representable_range(obs)
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (-1.0039, 2.9961)
    """
    scale, zero_point, qmin, qmax, _ = _observer_qparams(observer)
    return scale * (qmin - zero_point), scale * (qmax - zero_point)


def _real_codes(observer, x):
    """:math:`v = x / S + Z` before rounding and clamping, and the observer's integer
    range."""
    scale, zero_point, qmin, qmax, ch_axis = _observer_qparams(observer)
    arr = _as_array(x, "x")
    if ch_axis is not None:
        if arr.ndim == 0 or not -arr.ndim <= ch_axis < arr.ndim:
            raise ValueError(f"`x` of shape {arr.shape} has no axis {ch_axis} (the "
                             f"observer's ch_axis)")
        if arr.shape[ch_axis] != scale.size:
            raise ValueError(f"`x` has {arr.shape[ch_axis]} channels along axis "
                             f"{ch_axis}, the observer has qparams for {scale.size}")
        shape = [1] * arr.ndim
        shape[ch_axis] = scale.size
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    else:
        scale, zero_point = scale[0], zero_point[0]
    return arr / scale + zero_point, qmin, qmax


def clipping_fraction(observer, x):
    r"""The fraction of the values of ``x`` that the observer's qparams clip.

    A value is clipped when quantization moves it by more than half a step, that is
    when :math:`x / S + Z` falls more than half a step outside the integer range:

    .. math::

       c = \frac{1}{n} \Big|\Big\{ i : x_i / S + Z \notin
           [Q_\min - \tfrac{1}{2},\; Q_\max + \tfrac{1}{2}] \Big\}\Big|

    (A value exactly half a step beyond an end, such as the maximum of a symmetric
    range, which rounds to :math:`Q_\max + 1` and is clamped back, is not counted: its
    error is that of rounding.)

    A min/max observer clips nothing of the data it saw; on new data, or with a
    histogram or percentile observer that narrows the range on purpose, ``c`` measures
    how much of the tail is traded for a finer step.

    Parameters
    ----------
    observer : ObserverBase or FakeQuantize
        Its current ``calculate_qparams()`` (per channel along ``ch_axis`` for the
        per-channel qschemes).
    x : array_like, qlearn.Tensor or qlearn.QTensor
        The data to check.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> from qlearn.quantization import MinMaxObserver
    >>> from qlearn.quantization.metrics import clipping_fraction
    >>> obs = MinMaxObserver()
    >>> _ = obs(np.linspace(-1, 1, 101, dtype=np.float32))
    >>> clipping_fraction(obs, np.array([-2.0, 0.0, 0.5, 3.0]))   # -2 and 3
    0.5
    """
    v, qmin, qmax = _real_codes(observer, x)
    if v.size == 0:
        return 0.0
    # half a step, plus the float32 rounding of a scale such as max|x| / 127.5 (which
    # puts the maximum itself a hair past qmax + 1/2)
    half = 0.5 + 1e-4
    return float(np.mean((v < qmin - half) | (v > qmax + half)))


def saturation_count(observer, x):
    r"""How many values of ``x`` the observer's range pushes against its ends.

    A value saturates when :math:`x / S + Z` lies beyond an end of the integer range, so
    that the clamp (not only the rounding) would move it onto :math:`Q_\min` or
    :math:`Q_\max`:

    .. math::

       s = \Big|\Big\{ i : x_i / S + Z < Q_\min \ \text{ or } \ x_i / S + Z > Q_\max
           \Big\}\Big|

    This counts the clipped values (:func:`clipping_fraction`, so
    :math:`s \ge c\,n`) and those in the outer half of the two end steps; values that
    the range represents exactly, such as the zeros after a ReLU when :math:`Z = Q_\min`,
    are not counted.  Many saturated values mean the range is too small for the data.

    Parameters
    ----------
    observer : ObserverBase or FakeQuantize
    x : array_like, qlearn.Tensor or qlearn.QTensor

    Returns
    -------
    int

    Examples
    --------
    >>> from qlearn.quantization import MinMaxObserver
    >>> from qlearn.quantization.metrics import saturation_count
    >>> obs = MinMaxObserver()
    >>> _ = obs(np.linspace(-1, 1, 101, dtype=np.float32))
    >>> saturation_count(obs, np.array([-2.0, -0.5, 0.0, 0.5, 3.0]))   # -2 and 3
    2
    """
    v, qmin, qmax = _real_codes(observer, x)
    return int(np.count_nonzero((v < qmin) | (v > qmax)))
