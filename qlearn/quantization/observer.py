r"""Observers: modules that watch the values a tensor takes and turn them into qparams.

The names, arguments and defaults are PyTorch's (``torch.ao.quantization.observer``), and
for the same data fed in the same batches :meth:`calculate_qparams` returns the same
scale and zero point.  An observer is an :class:`qlearn.nn.Module`: ``obs(x)`` records
``x`` and returns it unchanged (the same object), its statistics are buffers
(``min_val``, ``max_val``, ``histogram``) that :meth:`~qlearn.nn.Module.state_dict`
saves, and ``Observer.with_args(**kw)`` makes a factory for a :class:`QConfig
<qlearn.quantization.qconfig.QConfig>`.

Every observer reduces its statistics to a clipping range :math:`[\alpha, \beta]` and
calls :func:`qlearn.quantization.qparams.calculate_qparams`.

Where qlearn differs from PyTorch (documented on the classes):

* NaN or infinity in observed data raises ``ValueError`` (PyTorch's min/max observers
  silently store NaN, which then poisons every qparam; its HistogramObserver drops
  infinities with a warning).
* zero points are always int64 (PyTorch returns int32 for affine and int64 for
  symmetric schemes).
* invalid arguments raise ``ValueError``/``TypeError`` naming the argument, where PyTorch
  raises ``AssertionError``; a custom ``quant_min``/``quant_max`` must lie inside the
  dtype's range.
"""
import functools
import math
import threading
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np

from .. import _validation
from .._printing import tensor_repr
from ..dtypes import (
    QDType,
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    qint32,
    quint4x2,
    quint8,
)
from ..kernels import observer as _kernels
from ..nn.modules.module import Module
from .qparams import FLOAT32_EPS, calculate_qmin_qmax, calculate_qparams, validate_qmin_qmax

__all__ = [
    "ObserverBase", "UniformQuantizationObserverBase", "MinMaxObserver",
    "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver", "HistogramObserver", "FixedQParamsObserver",
    "PlaceholderObserver", "RecordingObserver", "NoopObserver", "ReuseInputObserver",
    "default_observer", "default_placeholder_observer", "default_debug_observer",
    "default_weight_observer", "weight_observer_range_neg_127_to_127",
    "default_histogram_observer", "default_per_channel_weight_observer",
    "per_channel_weight_observer_range_neg_127_to_127", "default_dynamic_quant_observer",
    "default_fixed_qparams_range_neg1to1_observer",
    "default_fixed_qparams_range_0to1_observer", "default_reuse_input_observer",
    "default_float_qparams_observer", "default_float_qparams_observer_4bit",
    "default_affine_fixed_qparams_observer",
    "default_symmetric_fixed_qparams_observer", "get_observer_state_dict",
    "load_observer_state_dict",
]

# --- factories ----------------------------------------------------------------------------
class _PartialWrapper:
    """A ``functools.partial`` of an observer class, printed as PyTorch prints it.

    ``callable_args`` are called at construction time (``with_callable_args``).
    """

    def __init__(self, p):
        self.p = p
        self.callable_args = {}

    def __call__(self, *args, **keywords):
        for name, fn in self.callable_args.items():
            if name not in keywords:
                keywords = {**keywords, name: fn()}
        return self.p(*args, **keywords)

    def __repr__(self):
        return self.p.__repr__() + self.callable_args.__repr__()

    def with_args(self, **kwargs):
        """A new factory that also passes ``kwargs`` to the constructor (as PyTorch's)."""
        return _with_args(self, **kwargs)

    def with_callable_args(self, **kwargs):
        """A copy of this factory whose ``kwargs`` values are functions, called at each
        construction to give the argument's value (unless it is passed explicitly)."""
        result = _PartialWrapper(p=self.p)
        result.callable_args = {**self.callable_args, **kwargs}
        return result


def _with_args(cls_or_self, **kwargs):
    """A factory that builds ``cls_or_self(**kwargs)`` each time it is called."""
    return _PartialWrapper(functools.partial(cls_or_self, **kwargs))


def _with_callable_args(cls_or_self, **kwargs):
    """A factory whose ``kwargs`` values are functions called at each construction."""
    result = _PartialWrapper(p=functools.partial(cls_or_self))
    return result.with_callable_args(**kwargs)


# --- input handling -----------------------------------------------------------------------
def _as_array(x):
    """The observed data as a C-contiguous float32 ndarray (no copy when it already is)."""
    if not isinstance(x, np.ndarray) and isinstance(getattr(x, "data", None), np.ndarray):
        x = x.data                         # a qlearn.Tensor: its float32 array
    return _validation.as_float32(x, "x")


def _non_finite_error(arr):
    bad = arr.ravel()[~np.isfinite(arr.ravel())][0]
    return ValueError(f"`x` must be finite to be observed, got a {bad} value")


def _tensor_minmax(arr):
    """(min, max) of a non-empty float32 array, as float32 scalars; raises on NaN/inf."""
    flat = arr.reshape(-1)
    lo, hi, has_nan = _kernels.minmax(flat)
    if has_nan or lo == -np.inf or hi == np.inf:
        raise _non_finite_error(arr)
    return np.float32(lo), np.float32(hi)


def _channel_minmax(arr, ch_axis):
    """Per-channel (min, max) along ``ch_axis``, as float32 arrays of shape (C,)."""
    if arr.ndim == 0:
        raise ValueError(f"`x` must have at least 1 dimension for a per-channel observer, "
                         f"got a 0-d array (ch_axis={ch_axis})")
    axis = _validation.check_axis(ch_axis, arr.ndim, "ch_axis")
    lo = np.empty(arr.shape[axis], np.float32)
    hi = np.empty(arr.shape[axis], np.float32)
    has_nan = _kernels.minmax_per_channel(arr, axis, lo, hi)
    if has_nan or np.isinf(lo).any() or np.isinf(hi).any():
        raise _non_finite_error(arr)
    return lo, hi


# --- base classes -------------------------------------------------------------------------
class ObserverBase(Module, ABC):
    r"""Base of every observer: ``forward`` records statistics, ``calculate_qparams``
    turns them into ``(scale, zero_point)``.

    Parameters
    ----------
    dtype : QDType
        The quantized dtype the qparams are for.
    is_dynamic : bool
        Whether the qparams are computed at run time from each input (dynamic
        quantization) rather than from calibration data.
    """

    # buffers whose shape a state dict may not change (PyTorch: "size mismatch")
    _FIXED_SHAPE = ("eps",)

    def __init__(self, dtype, is_dynamic=False):
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = bool(is_dynamic)

    @abstractmethod
    def forward(self, x):
        pass

    @abstractmethod
    def calculate_qparams(self, **kwargs):
        """``(scale, zero_point)`` from the statistics recorded so far (abstract); the
        uniform observers reduce them to :math:`[\alpha, \beta]` and call
        :func:`qlearn.quantization.qparams.calculate_qparams`."""
        pass

    def merge(self, other):
        """Combine the statistics of ``other`` (same class and arguments) into ``self``."""
        raise NotImplementedError(f"{type(self).__name__} cannot be merged")

    def _check_mergeable(self, other):
        if type(other) is not type(self):
            raise TypeError(f"`other` must be a {type(self).__name__}, got "
                            f"{type(other).__name__}")
        for attr in ("dtype", "qscheme", "quant_min", "quant_max", "bins", "ch_axis"):
            if getattr(self, attr, None) != getattr(other, attr, None):
                raise ValueError(f"cannot merge observers with different `{attr}`: "
                                 f"{getattr(self, attr)!r} and {getattr(other, attr)!r}")

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        """Load buffers as NumPy arrays of this observer's buffer dtypes, so that a
        state dict holding other array types (a PyTorch observer's, say) loads too."""
        local = {}
        for name, buf in self._buffers.items():
            key = prefix + name
            if key in state_dict and isinstance(buf, np.ndarray):
                value = np.asarray(getattr(state_dict[key], "data", state_dict[key]))
                if value.dtype.kind not in "biuf":
                    errors.append(f"`{key}` must be a numeric array, got "
                                  f"{type(state_dict[key]).__name__} of dtype "
                                  f"{value.dtype}")
                    local[key] = buf        # leave the buffer as it is
                    continue
                if value.ndim != buf.ndim and value.size == 1 == buf.size:
                    value = value.reshape(buf.shape)      # [x] for a 0-d x, and back
                if (name in self._FIXED_SHAPE and value.shape != buf.shape) \
                        or value.ndim != buf.ndim:
                    errors.append(f"size mismatch for {key}: copying a buffer with shape "
                                  f"{value.shape}, the shape in the current model is "
                                  f"{buf.shape}")
                    local[key] = buf
                    continue
                local[key] = value.astype(buf.dtype)
        if local:
            state_dict = {**state_dict, **local}
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)

    with_args = classmethod(_with_args)
    with_callable_args = classmethod(_with_callable_args)


_QDTYPES = (quint8, qint8, qint32, quint4x2)
_QSCHEMES = (per_tensor_affine, per_tensor_symmetric, per_channel_affine,
             per_channel_symmetric, per_channel_affine_float_qparams)


class UniformQuantizationObserverBase(ObserverBase):
    r"""Base of the observers that compute an affine or symmetric scale and zero point.

    Parameters
    ----------
    dtype : QDType
        ``qlearn.quint8`` (default), ``qlearn.qint8`` or ``qlearn.qint32``.
    qscheme : QScheme
        One of the four qschemes (each subclass accepts its per-tensor or per-channel
        pair).
    reduce_range : bool
        Use one bit less: ``[0, 127]`` for quint8, ``[-64, 63]`` for qint8 (see
        :func:`~qlearn.quantization.qparams.calculate_qmin_qmax`).
    quant_min, quant_max : int or None
        A custom integer range :math:`[Q_\min, Q_\max]` inside the dtype that contains
        0 (e.g. ``-8, 7`` for 4-bit weights).  Give both or neither.
    eps : float
        The smallest scale returned (default float32's machine epsilon).

    Examples
    --------
    The integer range each observer quantizes to, :math:`[Q_\min, Q_\max]`:

    >>> from qlearn.quantization.observer import MinMaxObserver
    >>> obs = MinMaxObserver(dtype=ql.qint8, quant_min=-8, quant_max=7)   # 4 bits
    >>> obs.quant_min, obs.quant_max
    (-8, 7)
    >>> _ = obs(np.array([-1.0, 2.0], np.float32))
    >>> obs.calculate_qparams()            # S = 3 / 15, Z = -8 - round(-1 / S) = -3
    (array([0.2], dtype=float32), array([-3]))
    """

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=FLOAT32_EPS,
                 is_dynamic=False, **kwargs):
        _validation.check_dtype(dtype, "dtype", _QDTYPES)
        _validation.check_qscheme(qscheme, "qscheme", _QSCHEMES)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments "
                            f"{sorted(kwargs)}")
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        if not isinstance(reduce_range, (bool, np.bool_)):
            raise TypeError(f"`reduce_range` must be a bool, got {reduce_range!r}")
        eps = _validation._scalar(eps, "eps", "positive number")
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
            raise TypeError(f"`eps` must be a positive finite number, got {eps!r}")
        if not (0 < eps < np.inf):
            raise ValueError(f"`eps` must be a positive finite number, got {eps}")
        eps = float(eps)
        self.qscheme = qscheme
        self.reduce_range = bool(reduce_range)
        self.register_buffer("eps", np.array([eps], np.float32))
        if (quant_min is None) != (quant_max is None):
            raise ValueError(f"give both `quant_min` and `quant_max` or neither, got "
                             f"quant_min={quant_min}, quant_max={quant_max}")
        self.has_customized_qrange = quant_min is not None
        if self.has_customized_qrange:
            validate_qmin_qmax(quant_min, quant_max, dtype)
            quant_min, quant_max = int(quant_min), int(quant_max)
        self.quant_min, self.quant_max = calculate_qmin_qmax(
            quant_min, quant_max, self.has_customized_qrange, dtype, self.reduce_range)
        if qscheme.is_symmetric and self.reduce_range and dtype is quint8:
            raise NotImplementedError("cannot reduce range for symmetric quantization "
                                      "with quint8 (as in PyTorch)")

    def _calculate_qparams(self, min_val, max_val):
        """``calculate_qparams`` of :mod:`~qlearn.quantization.qparams` with this
        observer's dtype, qscheme, range and eps."""
        return calculate_qparams(min_val, max_val, self.dtype, self.qscheme, self.quant_min,
                                 self.quant_max, float(self.eps[0]),
                                 self.has_customized_qrange)

    def reset_min_max_vals(self):
        """Forget the data seen; subclasses that record a range override it (here it
        raises ``NotImplementedError``, as in PyTorch)."""
        raise NotImplementedError("Cannot reset min/max values in the given observer.")


# --- min/max ------------------------------------------------------------------------------
class MinMaxObserver(UniformQuantizationObserverBase):
    r"""Running minimum and maximum of every tensor seen.

    .. math::

        x_\min \leftarrow \min\big(x_\min, \min(X)\big), \qquad
        x_\max \leftarrow \max\big(x_\max, \max(X)\big)

    starting from :math:`x_\min = +\infty`, :math:`x_\max = -\infty`; then
    :math:`[\alpha, \beta] = [x_\min, x_\max]` gives the scale and zero point through
    :func:`~qlearn.quantization.qparams.calculate_qparams` (affine:
    :math:`S = (\beta' - \alpha') / (Q_\max - Q_\min)`,
    :math:`Z = Q_\min - \operatorname{round}(\alpha' / S)`; symmetric:
    :math:`S = \max(-\alpha', \beta') / ((Q_\max - Q_\min) / 2)`).

    Parameters are those of :class:`UniformQuantizationObserverBase`; ``qscheme`` must
    be per-tensor.  Empty tensors are ignored; ``calculate_qparams`` before any data
    returns ``(1.0, 0)`` with a warning; NaN or infinity raises ``ValueError``.

    Examples
    --------
    >>> from qlearn.quantization.observer import MinMaxObserver
    >>> obs = MinMaxObserver()
    >>> x = np.array([-1.0, 0.5, 3.0], np.float32)
    >>> obs(x) is x
    True
    >>> obs.min_val, obs.max_val
    (array(-1., dtype=float32), array(3., dtype=float32))
    >>> obs.calculate_qparams()       # S = 4/255, Z = round(1/S) = 64
    (array([0.01568628], dtype=float32), array([64]))
    """

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=FLOAT32_EPS,
                 is_dynamic=False, **kwargs):
        _validation.check_qscheme(qscheme, "qscheme", (per_tensor_affine,
                                                       per_tensor_symmetric))
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max,
                         factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.register_buffer("min_val", np.array(np.inf, np.float32))
        self.register_buffer("max_val", np.array(-np.inf, np.float32))

    def forward(self, x_orig):
        """Record the running minimum and maximum of ``x_orig``; return it unchanged."""
        x = _as_array(x_orig)
        if x.size == 0:
            return x_orig
        lo, hi = _tensor_minmax(x)
        self.min_val[...] = min(self.min_val, lo)
        self.max_val[...] = max(self.max_val, hi)
        return x_orig

    def calculate_qparams(self):
        """``(scale, zero_point)`` for the running range ``[min_val, max_val]``.

        The range is widened to contain 0 and mapped onto ``[quant_min, quant_max]``
        by :func:`qlearn.quantization.qparams.calculate_qparams`.

        Returns
        -------
        scale : ndarray of float32, shape (1,)
        zero_point : ndarray of int64, shape (1,)
            NumPy arrays where PyTorch returns tensors (NumPy is qlearn's only run-time
            dependency, and the arrays go straight to ``quantize_per_tensor`` or a
            kernel); the values are PyTorch's.

        Examples
        --------
        >>> from qlearn.quantization.observer import MinMaxObserver
        >>> obs = MinMaxObserver()
        >>> _ = obs(np.float32([-1.0, 3.0]))
        >>> obs.calculate_qparams()                 # S = 4 / 255, Z = round(1 / S)
        (array([0.01568628], dtype=float32), array([64]))
        """
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self):
        return _range_repr(self.min_val, self.max_val)

    def reset_min_max_vals(self):
        """Forget the data seen: ``min_val = inf``, ``max_val = -inf``."""
        self.min_val[...] = np.inf
        self.max_val[...] = -np.inf

    def merge(self, other):
        """Combine another MinMaxObserver's range into this one: the min of the minima
        and the max of the maxima, exactly what one observer over both data sets holds.

        >>> from qlearn.quantization.observer import MinMaxObserver
        >>> a, b = MinMaxObserver(), MinMaxObserver()
        >>> _ = a(np.array([0.0, 1.0], np.float32)); _ = b(np.array([-2.0], np.float32))
        >>> a.merge(b).min_val
        array(-2., dtype=float32)
        """
        self._check_mergeable(other)
        self.min_val[...] = min(self.min_val, other.min_val)
        self.max_val[...] = max(self.max_val, other.max_val)
        return self


class MovingAverageMinMaxObserver(MinMaxObserver):
    r"""Exponential moving average of each batch's minimum and maximum.

    The first batch sets the range; each later batch :math:`X_t` moves it by the
    ``averaging_constant`` :math:`c`:

    .. math::

        m_t = m_{t-1} + c \, \big(\min(X_t) - m_{t-1}\big), \qquad
        M_t = M_{t-1} + c \, \big(\max(X_t) - M_{t-1}\big)

    (in float32, as PyTorch).  Scale and zero point as in :class:`MinMaxObserver`.

    Parameters
    ----------
    averaging_constant : float
        :math:`c \in (0, 1]`, default 0.01.  ``c = 1`` keeps only the last batch.
    dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic
        As in :class:`MinMaxObserver`; ``is_dynamic=True`` requires ``c = 1``.

    Examples
    --------
    >>> from qlearn.quantization.observer import MovingAverageMinMaxObserver
    >>> obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
    >>> _ = obs(np.array([0.0, 2.0], np.float32))    # m = 0, M = 2
    >>> _ = obs(np.array([-2.0, 4.0], np.float32))   # m = 0 + .5 (-2 - 0), M = 2 + .5 (4 - 2)
    >>> obs.min_val, obs.max_val
    (array(-1., dtype=float32), array(3., dtype=float32))
    """

    def __init__(self, averaging_constant=0.01, dtype=quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=FLOAT32_EPS,
                 is_dynamic=False, **kwargs):
        averaging_constant = _check_averaging_constant(averaging_constant)
        if is_dynamic and averaging_constant != 1:
            raise NotImplementedError(f"MovingAverageMinMaxObserver doesn't support dynamic "
                                      f"quantization for averaging constant of "
                                      f"{averaging_constant}")
        self_kwargs = dict(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                           quant_min=quant_min, quant_max=quant_max, eps=eps,
                           is_dynamic=is_dynamic, **kwargs)
        super().__init__(**self_kwargs)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        """Move the running range toward this batch's; return ``x_orig`` unchanged."""
        x = _as_array(x_orig)
        if x.size == 0:
            return x_orig
        lo, hi = _tensor_minmax(x)
        if self.min_val == np.inf and self.max_val == -np.inf:
            self.min_val[...] = lo
            self.max_val[...] = hi
        else:
            self.min_val[...] = _moving_average(self.min_val, lo, self.averaging_constant)
            self.max_val[...] = _moving_average(self.max_val, hi, self.averaging_constant)
        return x_orig

    def merge(self, other):
        """Not defined: a moving average depends on the order of the batches, so the
        averages of two shards do not combine into the average over all the data."""
        raise NotImplementedError("moving-average observers cannot be merged: the "
                                  "average depends on the order of the batches; use "
                                  "MinMaxObserver or HistogramObserver for sharded "
                                  "calibration")


def _moving_average(old, new, c):
    """``old + c (new - old)`` in float32, as PyTorch updates a running min or max.

    For values near the float32 limits ``new - old`` overflows (the average of 3e38 and
    -3e38 became -inf); the average itself always fits, so those entries are computed in
    float64 and rounded once.
    """
    old = np.asarray(old, np.float32)
    new = np.asarray(new, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        out = old + np.float32(c) * (new - old)
    if not np.isfinite(out).all():
        exact = (old.astype(np.float64) + float(np.float32(c))
                 * (new.astype(np.float64) - old.astype(np.float64))).astype(np.float32)
        out = np.where(np.isfinite(out), out, exact).astype(np.float32)
    return out


def _check_averaging_constant(c):
    if isinstance(c, bool) or not isinstance(c, (int, float, np.floating, np.integer)):
        raise TypeError(f"`averaging_constant` must be a number in (0, 1], got {c!r}")
    if not 0 < c <= 1:      # compared before float(): a huge int does not fit a float
        raise ValueError(f"`averaging_constant` must be in (0, 1], got {c}")
    return float(c)


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    r"""Running minimum and maximum of each channel along ``ch_axis``.

    .. math::

        x_{\min, c} \leftarrow \min\big(x_{\min, c}, \min_{i} X_{c, i}\big), \qquad
        x_{\max, c} \leftarrow \max\big(x_{\max, c}, \max_{i} X_{c, i}\big)

    where :math:`i` runs over every index except the channel's.  Each channel gets its
    own scale and zero point, computed as in :class:`MinMaxObserver` (arrays of shape
    ``(C,)``).  Per-channel symmetric quantization is the usual choice for weights.

    Parameters
    ----------
    ch_axis : int
        The channel axis (negative values count from the end); checked against each
        tensor's dimensions.
    dtype, reduce_range, quant_min, quant_max, eps
        As in :class:`MinMaxObserver`.
    qscheme : QScheme
        ``per_channel_affine`` (default), ``per_channel_symmetric`` or
        ``per_channel_affine_float_qparams`` (float scales and zero points,
        :math:`S_c = (\max_c - \min_c) / (Q_\max - Q_\min)`, :math:`Z_c = -\min_c / S_c`,
        for embedding tables; see :func:`~qlearn.quantization.qparams.calculate_qparams`).

    Examples
    --------
    >>> from qlearn.quantization.observer import PerChannelMinMaxObserver
    >>> obs = PerChannelMinMaxObserver(ch_axis=0, dtype=ql.qint8,
    ...                                qscheme=ql.per_channel_symmetric)
    >>> _ = obs(np.array([[-1.0, 0.5], [0.2, 2.0]], np.float32))
    >>> obs.min_val, obs.max_val
    (array([-1. ,  0.2], dtype=float32), array([0.5, 2. ], dtype=float32))
    >>> obs.calculate_qparams()      # S_c = max|x_c| / 127.5
    (array([0.00784314, 0.01568628], dtype=float32), array([0, 0]))
    """

    def __init__(self, ch_axis=0, dtype=quint8, qscheme=per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=FLOAT32_EPS, is_dynamic=False, **kwargs):
        _validation.check_qscheme(qscheme, "qscheme", (per_channel_affine,
                                                       per_channel_symmetric,
                                                       per_channel_affine_float_qparams))
        if is_dynamic:
            raise NotImplementedError(f"{type(self).__name__} doesn't support dynamic "
                                      f"quantization")
        if isinstance(ch_axis, bool) or not isinstance(ch_axis, (int, np.integer)):
            raise TypeError(f"`ch_axis` must be an integer, got {ch_axis!r}")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max,
                         factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.ch_axis = int(ch_axis)
        self.register_buffer("min_val", np.empty(0, np.float32))
        self.register_buffer("max_val", np.empty(0, np.float32))

    def _batch_minmax(self, x):
        lo, hi = _channel_minmax(x, self.ch_axis)
        if self.min_val.size and lo.shape != self.min_val.shape:
            raise ValueError(f"the number of channels along ch_axis={self.ch_axis} changed: "
                             f"the observer holds {self.min_val.shape[0]}, `x` has "
                             f"{lo.shape[0]} (shape {x.shape})")
        return lo, hi

    def forward(self, x_orig):
        """Record each channel's running minimum and maximum; return ``x_orig``."""
        x = _as_array(x_orig)
        if x.size == 0:
            return x_orig
        lo, hi = self._batch_minmax(x)
        if self.min_val.size == 0:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = np.minimum(self.min_val, lo)
            self.max_val = np.maximum(self.max_val, hi)
        return x_orig

    def calculate_qparams(self):
        """``(scales, zero_points)``, one pair per channel along ``ch_axis``.

        Each channel's running range is widened to contain 0 and mapped onto
        ``[quant_min, quant_max]`` by
        :func:`qlearn.quantization.qparams.calculate_qparams`.

        Returns
        -------
        scales : ndarray of float32, shape (C,)
        zero_points : ndarray of int64, shape (C,)
            NumPy arrays where PyTorch returns tensors (NumPy is qlearn's only run-time
            dependency, and the arrays go straight to ``quantize_per_tensor`` or a
            kernel); the values are PyTorch's.

        Examples
        --------
        >>> from qlearn.quantization.observer import PerChannelMinMaxObserver
        >>> obs = PerChannelMinMaxObserver(ch_axis=0)
        >>> _ = obs(np.float32([[-1.0, 3.0], [0.5, 2.0]]))
        >>> obs.calculate_qparams()
        (array([0.01568628, 0.00784314], dtype=float32), array([64,  0]))
        """
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self):
        return _range_repr(self.min_val, self.max_val)

    def reset_min_max_vals(self):
        """Forget the data seen (empty ``min_val`` / ``max_val``)."""
        self.min_val = np.empty(0, np.float32)
        self.max_val = np.empty(0, np.float32)

    def merge(self, other):
        """Combine another observer's per-channel ranges (element-wise min and max)."""
        self._check_mergeable(other)
        if other.min_val.size == 0:
            return self
        if self.min_val.size == 0:
            self.min_val, self.max_val = other.min_val.copy(), other.max_val.copy()
            return self
        if other.min_val.shape != self.min_val.shape:
            raise ValueError(f"cannot merge observers with {self.min_val.shape[0]} and "
                             f"{other.min_val.shape[0]} channels")
        self.min_val = np.minimum(self.min_val, other.min_val)
        self.max_val = np.maximum(self.max_val, other.max_val)
        return self


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    r"""Per-channel exponential moving average of the minimum and maximum.

    .. math::

        m_{t, c} = m_{t-1, c} + c_\text{avg} \big(\min_i X_{t, c, i} - m_{t-1, c}\big)

    and likewise for the maximum; the first batch sets the range.  Scales and zero
    points per channel as in :class:`PerChannelMinMaxObserver`.

    Parameters
    ----------
    averaging_constant : float
        :math:`c_\text{avg} \in (0, 1]`, default 0.01.
    ch_axis, dtype, qscheme, reduce_range, quant_min, quant_max, eps
        As in :class:`PerChannelMinMaxObserver`.

    Examples
    --------
    >>> from qlearn.quantization.observer import MovingAveragePerChannelMinMaxObserver
    >>> obs = MovingAveragePerChannelMinMaxObserver(averaging_constant=0.5, ch_axis=1)
    >>> _ = obs(np.array([[0.0, -4.0], [1.0, 4.0]], np.float32))
    >>> _ = obs(np.array([[0.0, -2.0], [3.0, 2.0]], np.float32))
    >>> obs.min_val, obs.max_val
    (array([ 0., -3.], dtype=float32), array([2., 3.], dtype=float32))
    """

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=quint8,
                 qscheme=per_channel_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=FLOAT32_EPS, is_dynamic=False, **kwargs):
        averaging_constant = _check_averaging_constant(averaging_constant)
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme,
                         reduce_range=reduce_range, quant_min=quant_min,
                         quant_max=quant_max, eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        """Move each channel's running range toward this batch's; return ``x_orig``."""
        x = _as_array(x_orig)
        if x.size == 0:
            return x_orig
        lo, hi = self._batch_minmax(x)
        if self.min_val.size == 0:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = _moving_average(self.min_val, lo, self.averaging_constant)
            self.max_val = _moving_average(self.max_val, hi, self.averaging_constant)
        return x_orig

    merge = MovingAverageMinMaxObserver.merge


# --- histogram ----------------------------------------------------------------------------
# More bins than this (128 MiB of float64 counts) is a typo, not a histogram; the kernel's
# partial counts would need 64 times as much.
MAX_BINS = 1 << 24

# HistogramObserver.forward replaces its range and histogram in several steps; two Python
# threads feeding one observer would lose counts without it.
_HISTOGRAM_LOCK = threading.Lock()


def _unit_binade(bin_width):
    """``bin_width`` scaled by a power of two into [0.5, 1).

    The L2 search compares errors that all scale with the square of the bin width, and
    multiplying every float32 operand by a power of two changes no rounding; so the
    search on the scaled width picks exactly PyTorch's bins, without the overflow of
    ``width ** 3`` for ranges near the float32 limits (or underflow for tiny ones).
    """
    if bin_width == 0 or not math.isfinite(bin_width):
        return bin_width
    return math.ldexp(bin_width, -math.frexp(bin_width)[1])


def _upscale_histogram_f64(hist, orig_min, orig_max, update_min, update_max, rate, bins):
    """HistogramObserver's re-binning in float64, for ranges whose width overflows float32.

    The same rule as the kernel: ``bins * rate`` equal pieces of the old range, each
    piece's mass (``hist[k // rate] / rate``) goes to the new bin holding its centre.
    """
    npieces = len(hist) * rate
    k = np.arange(npieces)
    lo, hi = float(orig_min), float(orig_max)
    centres = lo + (k + 0.5) * ((hi - lo) / npieces)
    bounds = np.linspace(float(update_min), float(update_max), bins + 1)
    b = np.clip(np.searchsorted(bounds, centres, side="right") - 1, 0, bins - 1)
    return np.bincount(b, weights=np.asarray(hist, np.float64)[k // rate] / rate,
                       minlength=bins)


def _histc(x, bins, lo, hi):
    """torch.histc(x, bins, min=lo, max=hi) as float64 counts (x float32, non-empty)."""
    lo, hi = float(lo), float(hi)
    if lo == hi and x.size:
        lo, hi = float(x.min()), float(x.max())
    if lo == hi:   # torch widens an empty range by one on each side
        lo = min(float(np.nextafter(np.float32(lo), np.float32(-np.inf))), lo - 1.0)
        hi = max(float(np.nextafter(np.float32(hi), np.float32(np.inf))), hi + 1.0)
    counts = np.zeros(bins, np.int64)
    _kernels.histc(x, lo, hi, counts)
    return counts.astype(np.float64)


class HistogramObserver(UniformQuantizationObserverBase):
    r"""Histogram of the values seen, and PyTorch's L2-minimising choice of range.

    1. **Histogram.**  ``bins`` equal bins over the running range
       :math:`[x_\min, x_\max]`, counted as ``torch.histc`` counts them.  When a batch
       widens the range, the old histogram is re-binned into the new one: each old bin is
       split into 16 pieces whose centres are assigned to the new bins.
    2. **Search.**  With :math:`h_j` the counts and :math:`w` the bin width, clipping to
       bins :math:`[s, e]` quantizes into :math:`N = 2^{\text{bits}}` destination bins
       of width :math:`D = w (e - s + 1) / N`.  Treating each source bin as uniform
       density :math:`h_j / w`, a piece :math:`[a, b]` measured from the centre of the
       destination bin it falls in costs

       .. math::

          E_{[a, b]} = \frac{h_j}{w} \int_a^b t^2 \, dt = \frac{h_j}{w} \frac{b^3 - a^3}{3},

       and the error :math:`E(s, e)` sums this over every source bin (clipped parts
       land in the outermost destination bins).  Starting from :math:`s = 0`,
       :math:`e = \text{bins} - 1`, the search moves the lower or upper quantile bound
       :math:`\alpha, \beta` inward by :math:`10^{-5}` of the mass (the side that frees
       more bins) and stops when :math:`E` increases.
    3. **Qparams.**  :math:`[\alpha, \beta] = [x_\min + s w, \, x_\min + (e + 1) w]`, then
       as :class:`MinMaxObserver`.

    This is ``_non_linear_param_search`` of PyTorch (after Caffe2's norm minimisation),
    computed in float32 in the same order, so the qparams agree with PyTorch's.

    Parameters
    ----------
    bins : int
        Number of histogram bins (default 2048).
    dtype, qscheme, reduce_range, quant_min, quant_max, eps
        As in :class:`MinMaxObserver` (per-tensor qschemes).

    Examples
    --------
    >>> from qlearn.quantization.observer import HistogramObserver
    >>> rng = np.random.default_rng(0)
    >>> x = rng.laplace(size=100_000).astype(np.float32)     # long tails
    >>> obs = HistogramObserver()
    >>> _ = obs(x)
    >>> new_min, new_max = obs._non_linear_param_search()
    >>> bool(new_max - new_min < x.max() - x.min())          # a tail is clipped
    True
    >>> scale, zero_point = obs.calculate_qparams()
    >>> bool(scale[0] < (x.max() - x.min()) / 255)
    True
    """

    _FIXED_SHAPE = ("eps", "histogram")

    def __init__(self, bins=2048, dtype=quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=FLOAT32_EPS, is_dynamic=False, **kwargs):
        _validation.check_qscheme(qscheme, "qscheme", (per_tensor_affine,
                                                       per_tensor_symmetric))
        if is_dynamic:
            raise NotImplementedError(f"{type(self).__name__} doesn't support dynamic "
                                      f"quantization")
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) \
                or not 1 <= bins <= MAX_BINS:
            raise ValueError(f"`bins` must be an integer in [1, {MAX_BINS}], got {bins!r}")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max,
                         factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.bins = int(bins)
        self.register_buffer("histogram", np.zeros(self.bins, np.float64))
        self.register_buffer("min_val", np.array(np.inf, np.float32))
        self.register_buffer("max_val", np.array(-np.inf, np.float32))
        self.dst_nbins = 2 ** dtype.bits
        self.upsample_rate = 16  # sub-bins per bin when re-binning

    # -- re-binning (PyTorch's _upscale_histogram / _combine_histograms) --------------------
    def _upscale_histogram(self, histogram, orig_min, orig_max, update_min, update_max):
        r"""Re-bin ``histogram`` over ``[orig_min, orig_max]`` into ``self.bins`` bins over
        the wider ``[update_min, update_max]``: each bin is split into ``upsample_rate``
        equal pieces, each piece goes to the new bin holding its centre."""
        with np.errstate(over="ignore"):
            wide = not (np.isfinite(np.float32(orig_max) - np.float32(orig_min))
                        and np.isfinite(np.float32(update_max) - np.float32(update_min)))
        if wide:
            return _upscale_histogram_f64(histogram, orig_min, orig_max, update_min,
                                          update_max, self.upsample_rate, self.bins)
        out = np.empty(self.bins, np.float64)
        _kernels.upscale_histogram(histogram, orig_min, orig_max, update_min, update_max,
                                   self.upsample_rate, out)
        return out

    def _combine_histograms(self, orig_hist, orig_min, orig_max, update_hist, update_min,
                            update_max):
        """``update_hist`` (already over the new range) plus ``orig_hist`` re-binned."""
        if update_min == orig_min and update_max == orig_max:
            return orig_hist + update_hist
        if orig_min == orig_max:   # a single value: put all its mass in its new bin
            one = np.array([orig_min], np.float32)
            return _histc(one, self.bins, update_min, update_max) * orig_hist.sum() \
                + update_hist
        return update_hist + self._upscale_histogram(orig_hist, orig_min, orig_max,
                                                     update_min, update_max)

    def forward(self, x_orig):
        """Add ``x_orig`` to the histogram (re-binning if the range grows); return it.

        The update reads and replaces the range and the histogram together, so it holds
        a lock: an observer shared by several Python threads counts every value.
        """
        x = _as_array(x_orig)
        if x.size == 0:
            return x_orig
        with _HISTOGRAM_LOCK:
            self._observe(x)
        return x_orig

    def _observe(self, x):
        x_min, x_max = _tensor_minmax(x)
        if self.min_val == np.inf or self.max_val == -np.inf:
            self.min_val[...] = x_min
            self.max_val[...] = x_max
            self.histogram = _histc(x, self.bins, x_min, x_max)
            return
        cur_min, cur_max = np.float32(self.min_val), np.float32(self.max_val)
        new_min, new_max = min(cur_min, x_min), max(cur_max, x_max)
        update = _histc(x, self.bins, new_min, new_max)
        if new_min == cur_min and new_max == cur_max:
            self.histogram = self.histogram + update
        else:
            self.histogram = self._combine_histograms(self.histogram, cur_min, cur_max,
                                                      update, new_min, new_max)
            self.min_val[...] = new_min
            self.max_val[...] = new_max

    def _non_linear_param_search(self):
        """The clipping range ``(new_min, new_max)`` minimising the L2 error (step 2)."""
        min_val, max_val = np.float32(self.min_val), np.float32(self.max_val)
        with np.errstate(over="ignore"):    # inf for a range beyond float32: see below
            bin_width32 = (max_val - min_val) / np.float32(self.bins)
        if min_val == max_val:
            return min_val, max_val
        hist32 = np.ascontiguousarray(self.histogram, dtype=np.float32)
        bin_width = (float(max_val) - float(min_val)) / self.bins
        start_bin, end_bin = _kernels.non_linear_param_search(
            hist32, _unit_binade(bin_width), self.dst_nbins)
        if np.isfinite(bin_width32):
            new_min = min_val + bin_width32 * np.float32(start_bin)
            new_max = min_val + bin_width32 * np.float32(end_bin + 1)
        else:   # a range wider than the float32 maximum: the same sums in float64
            new_min = float(min_val) + bin_width * start_bin
            new_max = float(min_val) + bin_width * (end_bin + 1)
        return np.float32(new_min), np.float32(new_max)

    def _compute_quantization_error(self, next_start_bin, next_end_bin):
        """The L2 error :math:`E(s, e)` of clipping to bins ``[s, e]`` (step 2)."""
        bin_width = (float(self.max_val) - float(self.min_val)) / self.bins
        scaled = _unit_binade(bin_width)
        err = _kernels.quantization_error(np.ascontiguousarray(self.histogram, np.float32),
                                          scaled, next_start_bin, next_end_bin,
                                          self.dst_nbins)
        # the error is quadratic in the width (see step 2)
        return err * (bin_width / scaled) ** 2 if scaled else err

    def calculate_qparams(self):
        """``(scale, zero_point)`` of the range the histogram search chose.

        The search looks for the sub-range of the histogram with the least L2
        quantization error; that range then goes through
        :func:`qlearn.quantization.qparams.calculate_qparams`.

        Returns
        -------
        scale : ndarray of float32, shape (1,)
        zero_point : ndarray of int64, shape (1,)
            NumPy arrays where PyTorch returns tensors (NumPy is qlearn's only run-time
            dependency, and the arrays go straight to ``quantize_per_tensor`` or a
            kernel); the values are PyTorch's.

        Examples
        --------
        >>> from qlearn.quantization.observer import HistogramObserver
        >>> obs = HistogramObserver()
        >>> _ = obs(np.linspace(-1, 3, 1000, dtype=np.float32))
        >>> obs.calculate_qparams()
        (array([0.01567861], dtype=float32), array([64]))
        """
        if self.min_val == np.inf and self.max_val == -np.inf:
            warnings.warn("must run observer before calling calculate_qparams. "
                          "Returning default scale and zero point ", UserWarning,
                          stacklevel=2)
            return np.array([1.0], np.float32), np.array([0], np.int64)
        if self.histogram.shape != (self.bins,):
            raise ValueError(f"the histogram has {self.histogram.shape} entries, the "
                             f"observer was built with bins={self.bins}")
        new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(new_min, new_max)

    def reset_min_max_vals(self):
        """Forget the data seen (empty histogram, ``min_val = inf``, ``max_val = -inf``)."""
        self.min_val[...] = np.inf
        self.max_val[...] = -np.inf
        self.histogram = np.zeros(self.bins, np.float64)

    def merge(self, other):
        """Add another observer's histogram, both re-binned onto the union of the ranges.

        Re-binning moves mass by up to one bin, so the merged qparams are close to (not
        always identical with) those of one observer over all the data; they are
        identical when both ranges are equal.
        """
        self._check_mergeable(other)
        if other.min_val == np.inf:
            return self
        if self.min_val == np.inf:
            self.min_val[...] = other.min_val
            self.max_val[...] = other.max_val
            self.histogram = other.histogram.copy()
            return self
        new_min = min(np.float32(self.min_val), np.float32(other.min_val))
        new_max = max(np.float32(self.max_val), np.float32(other.max_val))
        hists = []
        for obs in (self, other):
            lo, hi = np.float32(obs.min_val), np.float32(obs.max_val)
            if lo == new_min and hi == new_max:
                hists.append(obs.histogram)
            else:
                hists.append(self._combine_histograms(obs.histogram, lo, hi,
                                                      np.zeros(self.bins), new_min,
                                                      new_max))
        self.histogram = hists[0] + hists[1]
        self.min_val[...] = new_min
        self.max_val[...] = new_max
        return self

    def extra_repr(self):
        return _range_repr(self.min_val, self.max_val)


def _range_repr(min_val, max_val):
    """``min_val=..., max_val=...`` as PyTorch prints them: a per-tensor value as a
    Python float, a per-channel one as a tensor (``tensor([])`` before any data)."""
    def shown(v):
        v = np.asarray(v)
        return repr(float(v)) if v.ndim == 0 else tensor_repr(v)
    return f"min_val={shown(min_val)}, max_val={shown(max_val)}"


# --- observers that do not observe ----------------------------------------------------------
class FixedQParamsObserver(ObserverBase):
    r"""Returns the ``scale`` and ``zero_point`` it was built with, whatever it sees.

    For operators whose output range is known (sigmoid: :math:`[0, 1)` ->
    ``scale = 1/256, zero_point = 0``; tanh: :math:`[-1, 1)` ->
    ``scale = 2/256, zero_point = 128``).

    Examples
    --------
    >>> from qlearn.quantization.observer import FixedQParamsObserver
    >>> obs = FixedQParamsObserver(scale=1.0 / 256, zero_point=0)
    >>> obs.calculate_qparams()
    (array([0.00390625], dtype=float32), array([0]))
    """

    _FIXED_SHAPE = ("eps", "scale", "zero_point")

    def __init__(self, scale, zero_point, dtype=quint8, qscheme=per_tensor_affine,
                 quant_min=0, quant_max=255, is_dynamic=False, **kwargs):
        if is_dynamic:
            raise NotImplementedError("FixedQParamsObserver doesn't support dynamic "
                                      "quantization")
        _validation.check_dtype(dtype, "dtype", _QDTYPES)
        _validation.check_qscheme(qscheme, "qscheme", (per_tensor_affine,
                                                       per_tensor_symmetric))
        if kwargs:
            raise TypeError(f"FixedQParamsObserver got unexpected arguments {sorted(kwargs)}")
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        validate_qmin_qmax(quant_min, quant_max, dtype)
        self.quant_min, self.quant_max = int(quant_min), int(quant_max)
        scale = _validation.check_scale(scale)
        zero_point = _validation.check_zero_point(zero_point, self.quant_min, self.quant_max)
        self.register_buffer("scale", np.array([scale], np.float32))
        self.register_buffer("zero_point", np.array([zero_point], np.int64))
        self.qscheme = qscheme

    def forward(self, X):
        return X

    def calculate_qparams(self):
        """The fixed ``(scale, zero_point)``."""
        return self.scale, self.zero_point


class PlaceholderObserver(ObserverBase):
    """Observes nothing; carries ``dtype`` (and the range) to the quantized module.

    Used for dynamic quantization (the qparams of activations are computed at run time
    from each input) and for float16 (``dtype=numpy.float16``).  ``calculate_qparams``
    raises.

    >>> from qlearn.quantization.observer import PlaceholderObserver
    >>> PlaceholderObserver(dtype=ql.quint8, is_dynamic=True)
    PlaceholderObserver(dtype=qlearn.quint8, is_dynamic=True)
    """

    def __init__(self, dtype=np.float32, custom_op_name="", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None, is_dynamic=False):
        if compute_dtype:
            is_dynamic = True
            warnings.warn("Please use `is_dynamic` instead of `compute_dtype`.",
                          FutureWarning, stacklevel=2)
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.quant_min = quant_min
        self.quant_max = quant_max
        self.eps = FLOAT32_EPS if eps is None else eps
        self.custom_op = custom_op_name

    def forward(self, x):
        return x

    def extra_repr(self):
        dtype = self.dtype if isinstance(self.dtype, QDType) else np.dtype(self.dtype).name
        return f"dtype={dtype}, is_dynamic={self.is_dynamic}"

    def calculate_qparams(self):
        """Not defined: raises ``RuntimeError`` (the qparams come from elsewhere)."""
        raise RuntimeError("calculate_qparams should not be called for PlaceholderObserver")


class RecordingObserver(ObserverBase):
    """Keeps a copy of every tensor it sees in ``tensor_val`` (for debugging).

    >>> from qlearn.quantization.observer import RecordingObserver
    >>> obs = RecordingObserver()
    >>> _ = obs(np.ones(2, np.float32))
    >>> obs.get_tensor_value()
    [array([1., 1.], dtype=float32)]
    """

    def __init__(self, dtype=quint8):
        super().__init__(dtype=dtype, is_dynamic=False)
        self.tensor_val = []

    def forward(self, x):
        self.tensor_val.append(np.array(getattr(x, "data", x), copy=True))
        return x

    def calculate_qparams(self):
        """Not defined: raises ``RuntimeError``."""
        raise RuntimeError("calculate_qparams should not be called for RecordingObserver")

    def get_tensor_value(self):
        """The list of copies of the tensors seen, in order (``tensor_val``)."""
        return self.tensor_val


class NoopObserver(ObserverBase):
    """Observes nothing; carries ``dtype`` (default float16) to the converted module.

    >>> from qlearn.quantization.observer import NoopObserver
    >>> NoopObserver().dtype
    <class 'numpy.float16'>
    """

    def __init__(self, dtype=np.float16, custom_op_name=""):
        super().__init__(dtype=dtype, is_dynamic=False)
        self.custom_op = custom_op_name

    def forward(self, x):
        return x

    def calculate_qparams(self):
        """Not defined: raises ``RuntimeError``."""
        raise RuntimeError("calculate_qparams should not be called for NoopObserver")


class ReuseInputObserver(ObserverBase):
    """Marks an operator (reshape, ...) whose output reuses its input's observer.

    >>> from qlearn.quantization.observer import ReuseInputObserver
    >>> x = np.ones(2, np.float32)
    >>> ReuseInputObserver()(x) is x
    True
    """

    def __init__(self):
        super().__init__(quint8, is_dynamic=False)

    def forward(self, x):
        return x

    def calculate_qparams(self):
        """Not defined: raises ``RuntimeError`` (the input's observer gives the qparams)."""
        raise RuntimeError("calculate_qparams should not be called for ReuseInputObserver")


# --- defaults (PyTorch's) -------------------------------------------------------------------
# Activations restricted to [0, 127]: 7 bits, safe for x86's vpmaddubsw (see qparams)
default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = PlaceholderObserver
default_debug_observer = RecordingObserver
default_weight_observer = MinMaxObserver.with_args(dtype=qint8, qscheme=per_tensor_symmetric)
weight_observer_range_neg_127_to_127 = MinMaxObserver.with_args(
    dtype=qint8, qscheme=per_tensor_symmetric, quant_min=-127, quant_max=127, eps=2 ** -12)
default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=qint8, qscheme=per_channel_symmetric)
per_channel_weight_observer_range_neg_127_to_127 = PerChannelMinMaxObserver.with_args(
    dtype=qint8, qscheme=per_channel_symmetric, quant_min=-127, quant_max=127, eps=2 ** -12)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=quint8, quant_min=0, quant_max=255, is_dynamic=True)
default_fixed_qparams_range_neg1to1_observer = FixedQParamsObserver.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=quint8, quant_min=0, quant_max=255)
default_fixed_qparams_range_0to1_observer = FixedQParamsObserver.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=quint8, quant_min=0, quant_max=255)
default_reuse_input_observer = ReuseInputObserver
# embedding tables: one float scale and float zero point per row (PyTorch's definition)
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=quint8, qscheme=per_channel_affine_float_qparams, ch_axis=0)
# the same with 4-bit rows (quint4x2, values 0..15)
default_float_qparams_observer_4bit = PerChannelMinMaxObserver.with_args(
    dtype=quint4x2, qscheme=per_channel_affine_float_qparams, ch_axis=0)
# PyTorch's other names for the two fixed-qparams observers: "affine" is the [0, 1) range
# (sigmoid, softmax), "symmetric" the [-1, 1) range (tanh) centred on zero point 128
default_affine_fixed_qparams_observer = default_fixed_qparams_range_0to1_observer
default_symmetric_fixed_qparams_observer = default_fixed_qparams_range_neg1to1_observer


# --- saving and restoring calibration -------------------------------------------------------
def get_observer_state_dict(mod):
    """The observers' share of ``mod.state_dict()``: every entry whose key contains
    ``"activation_post_process"`` (the observers and fake quantizers ``prepare`` /
    ``prepare_qat`` / ``prepare_fx`` attach), in the same order.

    Save it after calibrating, and :func:`load_observer_state_dict` puts the statistics
    back into a freshly prepared copy of the model, so calibration need not run again.

    Parameters
    ----------
    mod : nn.Module
        A prepared model (eager or graph mode).

    Returns
    -------
    OrderedDict
        ``{key: array}``; the arrays are the observers' own buffers (not copies), as
        ``state_dict`` gives them.

    Examples
    --------
    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> m = tq.QuantWrapper(nn.Linear(3, 2)).eval()
    >>> m.qconfig = tq.default_qconfig
    >>> m = tq.prepare(m)
    >>> _ = m(np.float32([[-1.0, 0.5, 2.0]]))
    >>> sd = tq.get_observer_state_dict(m)
    >>> list(sd)[:3]   # doctest: +NORMALIZE_WHITESPACE
    ['quant.activation_post_process.eps', 'quant.activation_post_process.min_val',
     'quant.activation_post_process.max_val']
    >>> float(sd['quant.activation_post_process.max_val'])
    2.0
    """
    from ..nn.modules.module import Module
    if not isinstance(mod, Module):
        raise TypeError(f"`mod` must be an nn.Module, got {type(mod).__name__}")
    out = OrderedDict()
    for k, v in mod.state_dict().items():
        if "activation_post_process" in k:
            out[k] = v
    return out


def load_observer_state_dict(mod, obs_dict):
    """Load observer statistics saved by :func:`get_observer_state_dict` into the
    observers and fake quantizers of ``mod`` (a model prepared the same way).

    Every observer of ``mod`` reads its entries (a per-channel observer takes the saved
    number of channels); entries for other modules are ignored.

    Parameters
    ----------
    mod : nn.Module
    obs_dict : dict
        ``{key: array}``, keys as ``mod.state_dict()`` names them.

    Raises
    ------
    RuntimeError
        When an observer of ``mod`` has no entry in ``obs_dict`` (PyTorch raises a bare
        ``Exception`` with the same message).

    Examples
    --------
    >>> import qlearn.quantization as tq
    >>> from qlearn import nn
    >>> def prepared():
    ...     m = tq.QuantWrapper(nn.Linear(3, 2)).eval()
    ...     m.qconfig = tq.default_qconfig
    ...     return tq.prepare(m)
    >>> a, b = prepared(), prepared()
    >>> _ = a(np.float32([[-1.0, 0.5, 2.0]]))
    >>> tq.load_observer_state_dict(b, tq.get_observer_state_dict(a))
    >>> b.quant.activation_post_process.calculate_qparams()
    (array([0.02362205], dtype=float32), array([42]))
    """
    from ..nn.modules.module import Module
    from .fake_quantize import FakeQuantizeBase
    if not isinstance(mod, Module):
        raise TypeError(f"`mod` must be an nn.Module, got {type(mod).__name__}")
    if not isinstance(obs_dict, dict):
        raise TypeError(f"`obs_dict` must be a dict, got {type(obs_dict).__name__}")
    missing, errors = [], []
    for name, module in mod.named_modules():
        if isinstance(module, (ObserverBase, FakeQuantizeBase)):
            module._load_from_state_dict(obs_dict, name + ".", missing, [], errors)
    if errors:
        raise RuntimeError("load_observer_state_dict: " + "; ".join(errors))
    for k in missing:
        if "observer" in k or "activation_post_process" in k:
            raise RuntimeError(f"`obs_dict` has no entry for observer key {k!r}")
