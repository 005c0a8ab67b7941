r"""The fake-quantize *modules* (``torch.ao.quantization.fake_quantize``): an observer
plus :func:`qlearn.fake_quantize_per_tensor_affine`.

The stateless fake-quant *functions* these modules call (and their autograd Functions)
are in :mod:`qlearn.fake_quant`; this module holds the stateful ``nn.Module`` classes
that QAT inserts into a model.

During quantization-aware training each weight and activation passes through one of
these modules.  Its forward pass (1) lets the observer update its statistics and
recomputes ``scale`` and ``zero_point`` with the one qparams function
(:func:`qlearn.quantization.qparams.calculate_qparams`), then (2) returns

.. math::

   \hat x = \big(\operatorname{clamp}(\operatorname{round}(x / S) + Z,\ q_{min},\ q_{max})
   - Z\big)\, S

with the straight-through gradient :math:`\partial L/\partial x = \partial L/\partial
\hat x \cdot \mathbb{1}[q_{min} \le \operatorname{round}(x/S) + Z \le q_{max}]`.  Either
step can be switched off (``disable_observer`` freezes the qparams, ``disable_fake_quant``
makes the module the identity).  The names and defaults are those of
``torch.ao.quantization.fake_quantize``.

:class:`LearnableFakeQuantize` (PyTorch's ``_LearnableFakeQuantize``) instead makes
``scale`` and ``zero_point`` parameters trained by back-propagation (LSQ).
"""
import numbers

import numpy as np

from .. import _validation as V
from ..autograd import Tensor
from ..dtypes import (
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    quint8,
)
from ..fake_quant import (
    _fake_quantize_learnable_per_channel_affine,
    _fake_quantize_learnable_per_tensor_affine,
    fake_quantize_per_channel_affine,
    fake_quantize_per_tensor_affine,
)
from ..kernels import fake_quant as _kernels
from ..nn import Module, Parameter
from .observer import (
    FixedQParamsObserver,
    HistogramObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    _moving_average,
    _with_args,
    default_fixed_qparams_range_0to1_observer,
    default_fixed_qparams_range_neg1to1_observer,
)
from .qparams import calculate_qparams_fused

__all__ = [
    "FakeQuantizeBase", "FakeQuantize", "FixedQParamsFakeQuantize",
    "FusedMovingAvgObsFakeQuantize", "LearnableFakeQuantize",
    "disable_fake_quant", "disable_observer", "enable_fake_quant", "enable_observer",
    "default_fake_quant", "default_weight_fake_quant", "default_dynamic_fake_quant",
    "default_fixed_qparams_range_neg1to1_fake_quant",
    "default_fixed_qparams_range_0to1_fake_quant", "default_per_channel_weight_fake_quant",
    "default_histogram_fake_quant", "default_fused_act_fake_quant",
    "default_fused_wt_fake_quant", "default_fused_per_channel_wt_fake_quant",
    "fused_wt_fake_quant_range_neg_127_to_127",
    "fused_per_channel_wt_fake_quant_range_neg_127_to_127",
    "default_embedding_fake_quant", "default_affine_fixed_qparams_fake_quant",
    "default_symmetric_fixed_qparams_fake_quant",
]

_PER_CHANNEL = (per_channel_affine, per_channel_symmetric, per_channel_affine_float_qparams)
_SYMMETRIC = (per_tensor_symmetric, per_channel_symmetric)


def _data(x):
    """The ndarray behind ``x`` (a Tensor's data, cut from the graph), for observers."""
    return x.data if isinstance(x, Tensor) else x


def _buffer_repr(values):
    """A buffer printed as PyTorch prints the tensor (``tensor([1], dtype=...uint8)``)."""
    from .._printing import tensor_repr
    values = np.asarray(values)
    return tensor_repr(values, dtype_name=f"qlearn.{values.dtype.name}")


def _is_empty(X):
    return np.size(_data(X)) == 0


def _empty_fake_quant(X, quant_min, quant_max):
    """An empty input has no values to quantize (and its channel count need not match the
    observer's, which an empty batch does not update): the empty result, same shape."""
    return fake_quantize_per_tensor_affine(X, 1.0, quant_min, quant_min, quant_max)


def _check_int_range(quant_min, quant_max):
    """TypeError unless both ends are integers (a str or NaN would fail in a comparison
    with a message naming neither)."""
    for name, v in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be an integer, got {v!r}")


def _observer_dtype(observer, observer_kwargs):
    """The dtype the observer factory will use (for the quant_min/quant_max check)."""
    dtype = observer_kwargs.get("dtype")
    if dtype is None:
        dtype = getattr(getattr(observer, "p", None), "keywords", {}).get("dtype", quint8)
    return dtype


class FakeQuantizeBase(Module):
    """Base of the fake-quantize modules: the two on/off switches and ``with_args``.

    ``fake_quant_enabled`` and ``observer_enabled`` are one-element uint8 buffers (as in
    PyTorch, so that they travel with ``state_dict``).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", np.array([1], np.uint8))
        self.register_buffer("observer_enabled", np.array([1], np.uint8))

    def forward(self, x):
        raise NotImplementedError

    # one-element switches (and LSQ's eps); the qparams may change length (per channel)
    _SWITCHES = ("fake_quant_enabled", "observer_enabled", "static_enabled",
                 "learning_enabled", "eps")

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors):
        """Refuse entries that are not numeric arrays of a usable shape (a string or an
        object would otherwise replace the buffer and fail later, far from the cause);
        ``scale`` and ``zero_point`` may change length, as in PyTorch."""
        local = {}
        own = [(n, b, False) for n, b in self._buffers.items()]
        own += [(n, p.data, True) for n, p in self._parameters.items() if p is not None]
        for name, buf, is_param in own:
            key = prefix + name
            if key not in state_dict or not isinstance(buf, np.ndarray):
                continue
            value = state_dict[key]
            try:
                value = np.asarray(getattr(value, "data", value))
            except (TypeError, ValueError):     # a ragged list, say
                value = np.asarray(None)
            error = None
            if value.dtype.kind not in "biuf":
                error = (f"`{key}` must be a numeric array, got "
                         f"{type(state_dict[key]).__name__} of dtype {value.dtype}")
            elif name in self._SWITCHES and value.size != 1:
                error = (f"size mismatch for {key}: copying a buffer with shape "
                         f"{value.shape}, the shape in the current model is {buf.shape}")
            elif name in ("scale", "zero_point") and value.ndim > 1:
                error = (f"`{key}` must be 1-d (one entry per channel), got shape "
                         f"{value.shape}")
            if error:
                errors.append(error)
                local[key] = buf            # left as it is
            elif not is_param:
                local[key] = value.reshape(buf.shape if name in self._SWITCHES else -1
                                           ).astype(buf.dtype)
        if local:
            state_dict = {**state_dict, **local}
        super()._load_from_state_dict(state_dict, prefix, missing, unexpected, errors)

    def calculate_qparams(self, **kwargs):
        """``(scale, zero_point)`` for fake quantization; subclasses implement it (here it
        raises ``NotImplementedError``)."""
        raise NotImplementedError

    def enable_fake_quant(self, enabled=True):
        """Fake-quantize in ``forward`` (``enabled=False``: return the input as it is)."""
        self.fake_quant_enabled[0] = 1 if enabled else 0
        return self

    def disable_fake_quant(self):
        """``enable_fake_quant(False)``: ``forward`` returns its input unchanged."""
        return self.enable_fake_quant(False)

    def enable_observer(self, enabled=True):
        """Update the statistics and the qparams in ``forward`` (``False`` freezes them)."""
        self.observer_enabled[0] = 1 if enabled else 0
        return self

    def disable_observer(self):
        """``enable_observer(False)``: freeze the statistics and the qparams."""
        return self.enable_observer(False)

    with_args = classmethod(_with_args)


class FakeQuantize(FakeQuantizeBase):
    r"""Observer + fake quantization, for quantization-aware training.

    ``forward(X)``: if the observer is enabled, observe ``X`` and set
    ``scale, zero_point = calculate_qparams()``; if fake quantization is enabled, return
    :func:`~qlearn.fake_quantize_per_tensor_affine` (or the per-channel function, for a
    per-channel qscheme) of ``X`` with them, else ``X`` unchanged.

    Parameters
    ----------
    observer : observer class or factory
        Default :class:`~qlearn.quantization.observer.MovingAverageMinMaxObserver`.
    quant_min, quant_max : int or None
        The integer range, passed to the observer (give both or neither); it must lie
        inside the observer's dtype.
    is_dynamic : bool
        Passed to the observer.
    **observer_kwargs
        Further observer arguments (``dtype``, ``qscheme``, ``reduce_range``,
        ``averaging_constant``, ``ch_axis`` ...).

    Attributes
    ----------
    scale : ndarray of float32, shape (1,) or (C,)
    zero_point : ndarray of int32, same shape
    activation_post_process : the observer

    Examples
    --------
    >>> from qlearn.quantization.fake_quantize import FakeQuantize
    >>> fq = FakeQuantize(quant_min=0, quant_max=15, averaging_constant=1.0)
    >>> x = ql.tensor([-1.0, 0.0, 0.5, 2.0], requires_grad=True)
    >>> y = fq(x)
    >>> fq.scale, fq.zero_point          # S = 3 / 15, Z = 0 - round(-1 / S)
    (array([0.2], dtype=float32), array([5], dtype=int32))
    >>> y.numpy()                        # 0.5 / S = 2.5 rounds to even: 2
    array([-1. ,  0. ,  0.4,  2. ], dtype=float32)
    >>> _ = fq.disable_fake_quant()
    >>> fq(x) is x
    True
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
                 is_dynamic=False, **observer_kwargs):
        super().__init__()
        if (quant_min is None) != (quant_max is None):
            raise ValueError(f"give both `quant_min` and `quant_max` or neither, got "
                             f"quant_min={quant_min}, quant_max={quant_max}")
        if quant_min is not None:
            _check_int_range(quant_min, quant_max)
            if quant_min > quant_max:
                raise ValueError(f"`quant_min` must be <= `quant_max`, got {quant_min} > "
                                 f"{quant_max}")
            dtype = _observer_dtype(observer, observer_kwargs)
            if dtype.quant_min > quant_min or quant_max > dtype.quant_max:
                raise ValueError(f"[`quant_min`, `quant_max`] must lie inside the range of "
                                 f"{dtype!r} [{dtype.quant_min}, {dtype.quant_max}], got "
                                 f"[{quant_min}, {quant_max}]")
            observer_kwargs.update(quant_min=quant_min, quant_max=quant_max)
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        self.quant_min = self.activation_post_process.quant_min
        self.quant_max = self.activation_post_process.quant_max
        self.is_dynamic = self.activation_post_process.is_dynamic
        self.register_buffer("scale", np.array([1.0], np.float32))
        # float qparams keep float zero points (PyTorch's buffer is then float too)
        self._zp_dtype = np.float32 if getattr(self.activation_post_process.qscheme,
                                               "is_float_qparams", False) else np.int32
        self.register_buffer("zero_point", np.array([0], self._zp_dtype))
        self.dtype = self.activation_post_process.dtype
        self.qscheme = self.activation_post_process.qscheme
        self.ch_axis = getattr(self.activation_post_process, "ch_axis", -1)
        self.is_per_channel = self.qscheme in _PER_CHANNEL

    def calculate_qparams(self):
        """``(scale, zero_point)`` from the observer's statistics."""
        return self.activation_post_process.calculate_qparams()

    def _set_qparams(self, scale, zero_point):
        # a new array when the shape changes (per-channel: the first batch sets C)
        scale = np.asarray(scale, np.float32).reshape(-1)
        zero_point = np.asarray(zero_point).reshape(-1).astype(
            getattr(self, "_zp_dtype", np.int32))
        if self.scale.shape != scale.shape:
            self.scale = scale.copy()
            self.zero_point = zero_point.copy()
        else:
            self.scale[...] = scale
            self.zero_point[...] = zero_point

    def forward(self, X):
        if self.observer_enabled[0] == 1:
            self.activation_post_process(_data(X))
            self._set_qparams(*self.calculate_qparams())
        if self.fake_quant_enabled[0] == 1:
            if self.is_per_channel and _is_empty(X):
                X = _empty_fake_quant(X, self.quant_min, self.quant_max)
            elif self.is_per_channel:
                X = fake_quantize_per_channel_affine(X, self.scale, self.zero_point,
                                                     self.ch_axis, self.quant_min,
                                                     self.quant_max)
            else:
                X = fake_quantize_per_tensor_affine(X, self.scale, self.zero_point,
                                                    self.quant_min, self.quant_max)
        return X

    def extra_repr(self):
        t = _buffer_repr
        return (f"fake_quant_enabled={t(self.fake_quant_enabled)}, "
                f"observer_enabled={t(self.observer_enabled)}, quant_min={self.quant_min}, "
                f"quant_max={self.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"ch_axis={self.ch_axis}, scale={t(self.scale)}, "
                f"zero_point={t(self.zero_point)}")


class FixedQParamsFakeQuantize(FakeQuantize):
    """Fake quantization with fixed qparams (a
    :class:`~qlearn.quantization.observer.FixedQParamsObserver`), for operators whose
    output range is known (sigmoid, tanh).  Per tensor only.

    >>> from qlearn.quantization.fake_quantize import (
    ...     default_fixed_qparams_range_0to1_fake_quant)
    >>> fq = default_fixed_qparams_range_0to1_fake_quant()
    >>> fq.calculate_qparams()
    (array([0.00390625], dtype=float32), array([0]))
    >>> fq(np.float32([0.5, 1.2])).numpy()
    array([0.5       , 0.99609375], dtype=float32)
    """

    def __init__(self, observer):
        super().__init__(observer=observer)
        if type(self.activation_post_process) is not FixedQParamsObserver:
            raise TypeError(f"{type(self).__name__}'s observer must be a "
                            f"FixedQParamsObserver, got "
                            f"{type(self.activation_post_process).__name__}")
        self._observer_ctr = observer
        self.scale = self.activation_post_process.scale
        self.zero_point = self.activation_post_process.zero_point
        if self.qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise ValueError(f"FixedQParamsFakeQuantize supports per-tensor qschemes only, "
                             f"got {self.qscheme!r}")

    def calculate_qparams(self):
        """The fixed ``(scale, zero_point)`` of the
        :class:`~qlearn.quantization.observer.FixedQParamsObserver`."""
        return self.scale, self.zero_point

    def _set_qparams(self, scale, zero_point):
        pass   # fixed


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    r""":class:`FakeQuantize` with a moving-average min/max observer, in one call, with
    the qparams rule of PyTorch's fused op.

    ``forward(X)`` does what ``torch.fused_moving_avg_obs_fake_quant`` does:

    1. if ``observer_enabled``: one reduction kernel finds this batch's minimum and
       maximum (per tensor, or per channel) and moves the observer's running range
       toward them, :math:`m_t = m_{t-1} + c\,(\min X_t - m_{t-1})` in float32 (an
       infinite running value, that is no data yet, is replaced by the batch's);
    2. if ``fake_quant_enabled``: ``scale`` and ``zero_point`` are recomputed from the
       running range with :func:`~qlearn.quantization.qparams.calculate_qparams_fused`
       (FBGEMM's ``ChooseQuantizationParams``, *not* the observer's rule: for symmetric
       qschemes :math:`S = \max(-\alpha/128, \beta/127)`, scales floored at
       :math:`6.1 \cdot 10^{-5}`, no ``eps``) and ``X`` is fake-quantized with them;
       else ``X`` is returned unchanged and the qparams stay as they are (as in
       PyTorch, even when the observer ran).

    :meth:`calculate_qparams` is still the observer's rule: ``convert`` calls it, so a
    model trained with this module is converted with the observer's qparams, as
    PyTorch's is.  The data is read twice (the qparams of a batch depend on its
    extremes, known only after a full pass); what is fused is the Python-level work.
    Unlike PyTorch, a per-channel ``ch_axis`` other than 0 is accepted.

    The two switches are int64 buffers here (PyTorch re-registers them as ``long`` for
    this class; the other fake quantizes keep uint8).

    >>> from qlearn.quantization.fake_quantize import FusedMovingAvgObsFakeQuantize
    >>> fq = FusedMovingAvgObsFakeQuantize(quant_min=0, quant_max=15)
    >>> fq(np.float32([-1.0, 0.0, 0.5, 2.0])).numpy()
    array([-1. ,  0. ,  0.4,  2. ], dtype=float32)
    >>> w = FusedMovingAvgObsFakeQuantize(quant_min=-128, quant_max=127, dtype=ql.qint8,
    ...                                   qscheme=ql.per_tensor_symmetric)
    >>> _ = w(np.float32([-1.0, 2.54]))
    >>> w.scale, w.zero_point                # max(1 / 128, 2.54 / 127)
    (array([0.02], dtype=float32), array([0], dtype=int32))
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                 **observer_kwargs):
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        obs = self.activation_post_process
        if not isinstance(obs, (MovingAverageMinMaxObserver,
                                MovingAveragePerChannelMinMaxObserver)):
            raise TypeError("FusedMovingAvgObsFakeQuantize works only with "
                            "MovingAverageMinMaxObserver or "
                            f"MovingAveragePerChannelMinMaxObserver, got {type(obs).__name__}")
        self.register_buffer("fake_quant_enabled", np.array([1], np.int64))
        self.register_buffer("observer_enabled", np.array([1], np.int64))
        self.is_symmetric_quant = self.qscheme in _SYMMETRIC

    def _observe(self, x):
        """One kernel pass for min/max, then the moving average in float32."""
        obs = self.activation_post_process
        if x.size == 0:
            return
        if self.is_per_channel:
            if x.ndim == 0:
                raise ValueError("a per-channel fake quantize needs at least 1 dimension")
            axis = V.check_axis(self.ch_axis, x.ndim, "ch_axis")
        else:
            axis = None
        channels = 1 if axis is None else x.shape[axis]
        lo = np.empty(channels, np.float32)
        hi = np.empty(channels, np.float32)
        if _kernels.aminmax_per_channel(x, lo, hi, axis):
            raise ValueError("`X` must be finite to be observed, got NaN or infinity")
        if self.is_per_channel and obs.min_val.size == 0:
            obs.min_val, obs.max_val = lo, hi
            return
        if self.is_per_channel and obs.min_val.shape != lo.shape:
            raise ValueError(f"`X` has {lo.shape[0]} channels along axis {self.ch_axis}, "
                             f"the observer holds {obs.min_val.shape[0]}")
        if not self.is_per_channel:
            lo, hi = lo[0], hi[0]
        c = np.float32(obs.averaging_constant)
        with np.errstate(invalid="ignore"):       # inf - inf in the lanes np.where drops
            new_lo = np.where(np.isinf(obs.min_val), lo, _moving_average(obs.min_val, lo, c))
            new_hi = np.where(np.isinf(obs.max_val), hi, _moving_average(obs.max_val, hi, c))
        if self.is_per_channel:
            obs.min_val, obs.max_val = new_lo.astype(np.float32), new_hi.astype(np.float32)
        else:
            obs.min_val[...] = new_lo
            obs.max_val[...] = new_hi

    def forward(self, X):
        if self.observer_enabled[0] == 1:
            self._observe(V.as_float32(_data(X), "X"))
        if self.fake_quant_enabled[0] != 1:
            return X
        if self.is_per_channel and _is_empty(X):
            return _empty_fake_quant(X, self.quant_min, self.quant_max)
        obs = self.activation_post_process
        self._set_qparams(*calculate_qparams_fused(obs.min_val, obs.max_val, obs.quant_min,
                                                   obs.quant_max, self.is_symmetric_quant))
        if self.is_per_channel:
            return fake_quantize_per_channel_affine(X, self.scale, self.zero_point,
                                                    self.ch_axis, self.quant_min,
                                                    self.quant_max)
        return fake_quantize_per_tensor_affine(X, self.scale, self.zero_point,
                                               self.quant_min, self.quant_max)

    def extra_repr(self):
        obs = self.activation_post_process
        t = _buffer_repr
        return (f"fake_quant_enabled={t(self.fake_quant_enabled)}, "
                f"observer_enabled={t(self.observer_enabled)}, scale={t(self.scale)}, "
                f"zero_point={t(self.zero_point)}, dtype={self.dtype}, "
                f"quant_min={obs.quant_min}, quant_max={obs.quant_max}, "
                f"qscheme={self.qscheme}, reduce_range={obs.reduce_range}")


class LearnableFakeQuantize(FakeQuantizeBase):
    r"""LSQ: fake quantization whose ``scale`` and ``zero_point`` are learned
    (Esser et al., *Learned Step Size Quantization*, 2020); PyTorch's
    ``torch.ao.quantization._learnable_fake_quantize._LearnableFakeQuantize``.

    The forward value is :func:`~qlearn.fake_quantize_per_tensor_affine` with
    :math:`Z = \operatorname{clamp}(\operatorname{round}(z))`.  With
    :math:`v = x/S + Z` and :math:`g` the gradient scale, the gradients are

    .. math::

       \frac{\partial \hat x}{\partial S} = g \cdot \begin{cases}
           q_{min} - Z & \operatorname{round}(v) < q_{min} \\
           \operatorname{round}(v) - v & \text{inside} \\
           q_{max} - Z & \operatorname{round}(v) > q_{max} \end{cases}
       \qquad
       \frac{\partial \hat x}{\partial Z} = g \cdot \begin{cases}
           -S & \text{outside} \\ 0 & \text{inside} \end{cases}

    (inside, :math:`(\hat x - x)/S = \operatorname{round}(v) - v`), summed over the
    elements, and :math:`\partial \hat x / \partial x` is the STE mask.  With
    ``use_grad_scaling`` :math:`g = 1/\sqrt{N\,q_{max}}` (``N = X.numel()``), LSQ's
    gradient scale that keeps the step-size updates in proportion to the weights'.

    Parameters
    ----------
    observer : observer class or factory
        Used while ``static_enabled`` (the initial state) to set the qparams.
    quant_min, quant_max : int
        The integer range (default 0, 255).
    scale, zero_point : float
        Initial values.
    channel_len : int
        ``-1`` for one scale per tensor, else the number of channels.
    use_grad_scaling : bool
        Multiply the scale and zero-point gradients by :math:`1/\sqrt{N q_{max}}`.
    **observer_kwargs
        Passed to the observer.

    Examples
    --------
    >>> from qlearn.quantization.fake_quantize import LearnableFakeQuantize
    >>> from qlearn.quantization.observer import MovingAverageMinMaxObserver
    >>> fq = LearnableFakeQuantize(MovingAverageMinMaxObserver, quant_min=0, quant_max=15,
    ...                            scale=0.1, zero_point=0.0).enable_param_learning()
    >>> x = ql.tensor([0.12, 0.5, 2.0], requires_grad=True)
    >>> fq(x).sum().backward()
    >>> fq.scale.grad.numpy(), fq.zero_point.grad.numpy()
    (array([14.8], dtype=float32), array([-0.1], dtype=float32))
    """

    def __init__(self, observer, quant_min=0, quant_max=255, scale=1.0, zero_point=0.0,
                 channel_len=-1, use_grad_scaling=False, **observer_kwargs):
        super().__init__()
        _check_int_range(quant_min, quant_max)
        if quant_min >= quant_max:
            raise ValueError(f"`quant_min` must be strictly less than `quant_max`, got "
                             f"{quant_min} and {quant_max}")
        self.quant_min, self.quant_max = int(quant_min), int(quant_max)
        observer_kwargs["quant_min"] = quant_min
        observer_kwargs["quant_max"] = quant_max
        self.use_grad_scaling = bool(use_grad_scaling)
        if channel_len == -1:
            self.scale = Parameter(np.array([scale], np.float32))
            self.zero_point = Parameter(np.array([zero_point], np.float32))
        else:
            if not (isinstance(channel_len, int) and channel_len > 0):
                raise ValueError(f"`channel_len` must be -1 or a positive integer, got "
                                 f"{channel_len!r}")
            self.scale = Parameter(np.full(channel_len, scale, np.float32))
            self.zero_point = Parameter(np.full(channel_len, zero_point, np.float32))
        self.activation_post_process = observer(**observer_kwargs)
        obs = self.activation_post_process
        self.dtype = obs.dtype
        if obs.dtype.quant_min > quant_min or quant_max > obs.dtype.quant_max:
            raise ValueError(f"[`quant_min`, `quant_max`] must lie inside the range of "
                             f"{obs.dtype!r}, got [{quant_min}, {quant_max}]")
        self.qscheme = obs.qscheme
        self.ch_axis = getattr(obs, "ch_axis", -1)
        self.register_buffer("static_enabled", np.array([1], np.uint8))
        self.register_buffer("learning_enabled", np.array([0], np.uint8))
        self.bitwidth = int(np.log2(quant_max - quant_min + 1))
        self.register_buffer("eps", np.array([np.finfo(np.float32).eps], np.float32))

    def enable_param_learning(self):
        """Learn the qparams (no more observer estimates); fake quantization on."""
        self.toggle_qparam_learning(enabled=True).toggle_fake_quant(enabled=True)
        self.toggle_observer_update(enabled=False)
        return self

    def enable_static_estimate(self):
        """Qparams from the observer, not learned; fake quantization on."""
        self.toggle_qparam_learning(enabled=False).toggle_fake_quant(enabled=True)
        self.toggle_observer_update(enabled=True)
        return self

    def enable_static_observation(self):
        """Observe only: qparams from the observer, output = input."""
        self.toggle_qparam_learning(enabled=False).toggle_fake_quant(enabled=False)
        self.toggle_observer_update(enabled=True)
        return self

    def toggle_observer_update(self, enabled=True):
        """Set ``static_enabled``: whether ``forward`` observes the input and copies the
        observer's qparams into ``scale`` and ``zero_point``."""
        self.static_enabled[0] = int(enabled)
        return self

    def enable_observer(self, enabled=True):
        """Same as :meth:`toggle_observer_update`."""
        return self.toggle_observer_update(enabled)

    def toggle_qparam_learning(self, enabled=True):
        """Set ``learning_enabled`` and the ``requires_grad`` of the ``scale`` and
        ``zero_point`` parameters (whether back-propagation trains them)."""
        self.learning_enabled[0] = int(enabled)
        self.scale.requires_grad = bool(enabled)
        self.zero_point.requires_grad = bool(enabled)
        return self

    def toggle_fake_quant(self, enabled=True):
        """Set ``fake_quant_enabled``: whether ``forward`` fake-quantizes (else it returns
        the input unchanged)."""
        self.fake_quant_enabled[0] = int(enabled)
        return self

    def observe_quant_params(self):
        """Print the current learned scale and zero point (PyTorch's method of this name)."""
        print(f"LearnableFakeQuantize Scale: {self.scale.data}")
        print(f"LearnableFakeQuantize Zero Point: {self.zero_point.data}")

    def calculate_qparams(self):
        """``(scale, round(zero_point) clamped, as int64)``; clamps the scale to eps first."""
        np.maximum(self.scale.data, self.eps[0], out=self.scale.data)
        scale = self.scale.data.copy()
        zero_point = np.clip(np.rint(self.zero_point.data), self.quant_min,
                             self.quant_max).astype(np.int64)
        return scale, zero_point

    def forward(self, X):
        if self.static_enabled[0] == 1:
            self.activation_post_process(_data(X))
            s, z = self.activation_post_process.calculate_qparams()
            self.scale.data[...] = np.asarray(s, np.float32)
            self.zero_point.data[...] = np.asarray(z, np.float32)
        else:
            np.maximum(self.scale.data, self.eps[0], out=self.scale.data)
        if self.fake_quant_enabled[0] == 1:
            if self.qscheme in _SYMMETRIC:
                self.zero_point.data[...] = 0
            numel = int(np.size(_data(X)))
            grad_factor = (1.0 / (numel * self.quant_max) ** 0.5 if self.use_grad_scaling
                           else 1.0)
            if self.qscheme in _PER_CHANNEL:
                X = _fake_quantize_learnable_per_channel_affine(
                    X, self.scale, self.zero_point, self.ch_axis, self.quant_min,
                    self.quant_max, grad_factor)
            else:
                X = _fake_quantize_learnable_per_tensor_affine(
                    X, self.scale, self.zero_point, self.quant_min, self.quant_max,
                    grad_factor)
        return X


# -- switches for model.apply(...) ---------------------------------------------------------

def disable_fake_quant(mod):
    """``model.apply(disable_fake_quant)``: fake-quantize modules pass inputs through."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_fake_quant()


def enable_fake_quant(mod):
    """``model.apply(enable_fake_quant)``."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_fake_quant()


def disable_observer(mod):
    """``model.apply(disable_observer)``: freeze every scale and zero point."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_observer()


def enable_observer(mod):
    """``model.apply(enable_observer)``."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_observer()


# -- defaults (PyTorch's) ------------------------------------------------------------------

#: Activations: quint8, moving-average min/max, 7-bit range (``reduce_range``).
default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=quint8,
    qscheme=per_tensor_affine, reduce_range=True)
#: Weights: qint8, symmetric per tensor.
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=qint8,
    qscheme=per_tensor_symmetric, reduce_range=False)
#: Placeholder for dynamic quantization (averaging constant 1: this batch's range).
default_dynamic_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, is_dynamic=True,
    dtype=quint8, averaging_constant=1)
#: Outputs in [-1, 1) (tanh): scale 2/256, zero point 128.
default_fixed_qparams_range_neg1to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_neg1to1_observer)
#: Outputs in [0, 1) (sigmoid): scale 1/256, zero point 0.
default_fixed_qparams_range_0to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_0to1_observer)
#: Weights: qint8, symmetric per output channel (axis 0).
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=qint8, qscheme=per_channel_symmetric, reduce_range=False, ch_axis=0)
#: Activations with a histogram observer.
default_histogram_fake_quant = FakeQuantize.with_args(
    observer=HistogramObserver, quant_min=0, quant_max=255, dtype=quint8,
    qscheme=per_tensor_affine, reduce_range=True)
#: Fused version of ``default_fake_quant`` (full 8-bit range, as PyTorch's).
default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=quint8)
#: Fused version of ``default_weight_fake_quant``.
default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=qint8,
    qscheme=per_tensor_symmetric)
#: Fused version of ``default_per_channel_weight_fake_quant``.
default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=qint8, qscheme=per_channel_symmetric)
#: Embedding tables: quint8 rows with float qparams, this batch's range (averaging 1).
default_embedding_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, qscheme=per_channel_affine_float_qparams,
    dtype=quint8, quant_min=0, quant_max=255, ch_axis=0, averaging_constant=1)
#: Fused weights restricted to [-127, 127].
fused_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-127, quant_max=127, dtype=qint8,
    qscheme=per_tensor_symmetric, eps=2 ** -12)
#: Fused per-channel weights restricted to [-127, 127].
fused_per_channel_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127,
    dtype=qint8, qscheme=per_channel_symmetric, eps=2 ** -12)
#: PyTorch's other names for the two fixed-qparams fake quantizers ([0, 1) and [-1, 1)).
default_affine_fixed_qparams_fake_quant = default_fixed_qparams_range_0to1_fake_quant
default_symmetric_fixed_qparams_fake_quant = default_fixed_qparams_range_neg1to1_fake_quant
