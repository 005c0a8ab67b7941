r"""Layer, group and instance normalisation (``torch.nn.functional.layer_norm``,
``group_norm`` and ``instance_norm``).

All three standardise groups of elements with the group's own mean and biased variance,

.. math::

   \hat x = \frac{x - \mathrm E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}}, \qquad
   y = \gamma\, \hat x + \beta,

and differ only in what a group is: the trailing ``normalized_shape`` dimensions of
each sample (layer norm; :math:`\gamma, \beta` elementwise over those dimensions), the
channels of one of ``num_groups`` groups with all their spatial positions (group norm;
:math:`\gamma, \beta` per channel), or one channel of one sample (instance norm, group
norm with one channel per group).  The one backward pass they share is

.. math::

   \frac{\partial L}{\partial x} = \frac{1}{\sqrt{\mathrm{Var}[x] + \epsilon}}
   \Big(g - \mathrm E[g] - \hat x\, \mathrm E[g \hat x]\Big), \qquad
   g = \frac{\partial L}{\partial \hat x},

with the expectations over each group (:class:`NormalizeFunction`); the affine step is
ordinary broadcast multiplication and addition, so :math:`\gamma` and :math:`\beta` get
:math:`\sum g\,\hat x` and :math:`\sum g` from the autograd.
"""
import numbers

import numpy as np

from ..autograd import Function
from .functional import _optional, _tensor

__all__ = ["layer_norm", "group_norm", "instance_norm"]


class NormalizeFunction(Function):
    r"""x̂ = (x - mean) / sqrt(var + eps) over ``axes`` (biased variance);
    dx = invstd (g - mean(g) - x̂ mean(g x̂)), the means over ``axes``."""

    @staticmethod
    def forward(ctx, x, axes, eps):
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = (x - mean) * invstd
        ctx.save_for_backward(xhat, invstd)
        ctx.axes = axes
        return xhat

    @staticmethod
    def backward(ctx, g):
        xhat, invstd = ctx.saved_tensors
        axes = ctx.axes
        gm = g.mean(axis=axes, keepdims=True)
        gxm = (g * xhat).mean(axis=axes, keepdims=True)
        return (g - gm - xhat * gxm) * invstd, None, None


def _eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0 \
            or not np.isfinite(eps):
        raise ValueError(f"`eps` must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _affine(y, weight, bias, shape):
    """y * weight + bias with ``weight`` / ``bias`` reshaped to broadcast as ``shape``."""
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _normalized_shape(normalized_shape, input_shape=None, who=""):
    """``normalized_shape`` (an int or a sequence of ints) as a tuple of ints; given
    ``input_shape``, checked to be its trailing dimensions.  ``who`` prefixes the
    messages (the quantized layer norm names itself)."""
    prefix = f"{who}: " if who else ""
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(int(n) for n in normalized_shape)
    except TypeError:
        raise TypeError(f"{prefix}`normalized_shape` must be an int or a sequence of ints, "
                        f"got {normalized_shape!r}") from None
    if input_shape is not None:
        k, ndim = len(shape), len(input_shape)
        if k == 0 or ndim < k or tuple(input_shape[ndim - k:]) != shape:
            raise ValueError(f"{prefix}`normalized_shape` {list(shape)} must be the trailing "
                             f"dimensions of `input`, got input of shape {input_shape}")
    return shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    r"""Layer normalisation over the trailing ``normalized_shape`` dimensions
    (``torch.nn.functional.layer_norm``):

    .. math::
        y = \frac{x - \mathrm E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta

    with the mean and the biased variance over the last ``len(normalized_shape)``
    dimensions of each sample; :math:`\gamma` is ``weight`` and :math:`\beta` ``bias``,
    both of shape ``normalized_shape`` (or None), :math:`\epsilon` is ``eps``.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.layer_norm(np.array([[1.0, 3.0], [0.0, 4.0]]), (2,)).numpy().round(3)
    array([[-1.,  1.],
           [-1.,  1.]], dtype=float32)
    """
    x = _tensor(input)
    shape = _normalized_shape(normalized_shape, x.shape)
    k = len(shape)
    w, b = _optional(weight, "weight"), _optional(bias, "bias")
    for t, name in ((w, "weight"), (b, "bias")):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"`{name}` must have shape {shape} (normalized_shape), got "
                             f"{tuple(t.shape)}")
    axes = tuple(range(x.ndim - k, x.ndim))
    xhat = NormalizeFunction.apply(x, axes, _eps(eps))
    return _affine(xhat, w, b, shape)


def _channel_affine_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _check_channel_params(w, b, C):
    for t, name in ((w, "weight"), (b, "bias")):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"`{name}` must have shape ({C},) for an input with {C} "
                             f"channels, got {tuple(t.shape)}")


def _check_num_groups(num_groups, C, who=""):
    """``num_groups`` must be a positive int dividing the ``C`` channels; ``who``
    prefixes the messages (the quantized group norm names itself)."""
    prefix = f"{who}: " if who else ""
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) \
            or num_groups < 1:
        raise ValueError(f"{prefix}`num_groups` must be a positive int, got {num_groups!r}")
    if C % num_groups:
        raise ValueError(f"{prefix}`num_groups` must divide the {C} channels of `input`, "
                         f"got {num_groups}")


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    r"""Group normalisation (``torch.nn.functional.group_norm``): the ``C`` channels of
    an (N, C, \*) input are split into ``num_groups`` groups of ``C / num_groups``
    channels, and each group of each sample is standardised,

    .. math::
        y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,G(c)}]}{\sqrt{\mathrm{Var}[x_{n,G(c)}]
        + \epsilon}}\, \gamma_c + \beta_c

    with the mean and biased variance over the group's channels and positions;
    :math:`\gamma` (``weight``) and :math:`\beta` (``bias``) have one value per channel.

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> x = np.array([[[1.0], [3.0], [5.0], [5.0]]])          # (N, C, L) = (1, 4, 1)
    >>> F.group_norm(x, 2).numpy().ravel().round(3)
    array([-1.,  1.,  0.,  0.], dtype=float32)
    """
    x = _tensor(input)
    if x.ndim < 2:
        raise ValueError(f"`input` must be (N, C, *) with at least 2 dimensions, got shape "
                         f"{x.shape}")
    N, C = x.shape[0], x.shape[1]
    _check_num_groups(num_groups, C)
    w, b = _optional(weight, "weight"), _optional(bias, "bias")
    _check_channel_params(w, b, C)
    g = x.reshape(N, int(num_groups), -1)
    xhat = NormalizeFunction.apply(g, (2,), _eps(eps)).reshape(*x.shape)
    return _affine(xhat, w, b, _channel_affine_shape(x))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    r"""Instance normalisation (``torch.nn.functional.instance_norm``): each channel of
    each sample of an (N, C, \*) input is standardised over its positions,

    .. math::
        y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,c}]}{\sqrt{\mathrm{Var}[x_{n,c}] +
        \epsilon}}\, \gamma_c + \beta_c .

    With ``use_input_stats`` (the default) the instance statistics normalise and, when
    ``running_mean`` / ``running_var`` are given, they are updated in place with
    ``momentum`` :math:`m` from the batch average of the instance means and of the
    unbiased instance variances, :math:`\hat\mu \leftarrow (1 - m)\hat\mu + m\,
    \overline{\mu_n}`; with ``use_input_stats=False`` the running statistics normalise
    instead (as batch norm in eval mode).

    >>> import numpy as np
    >>> from qlearn.nn import functional as F
    >>> F.instance_norm(np.array([[[1.0, 3.0]], [[0.0, 10.0]]])).numpy().round(3)
    array([[[-1.,  1.]],
    <BLANKLINE>
           [[-1.,  1.]]], dtype=float32)
    """
    x = _tensor(input)
    if x.ndim < 3:
        raise ValueError(f"`input` must be (N, C, *) with at least 3 dimensions, got shape "
                         f"{x.shape}")
    C = x.shape[1]
    w, b = _optional(weight, "weight"), _optional(bias, "bias")
    _check_channel_params(w, b, C)
    eps = _eps(eps)
    shape = _channel_affine_shape(x)
    for arr, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if arr is not None and np.shape(arr) != (C,):
            raise ValueError(f"`{name}` must have shape ({C},), got {np.shape(arr)}")
    axes = tuple(range(2, x.ndim))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("`running_mean` and `running_var` are needed when "
                             "use_input_stats=False")
        rm = np.asarray(running_mean, np.float32).reshape(shape)
        rv = np.asarray(running_var, np.float32).reshape(shape)
        xhat = (x - rm) * (1.0 / np.sqrt(rv + np.float32(eps))).astype(np.float32)
        return _affine(xhat, w, b, shape)
    n = int(np.prod(x.shape[2:]))
    if n <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input "
                         f"of shape {x.shape}")
    if running_mean is not None or running_var is not None:
        mean = x.data.mean(axis=axes).mean(axis=0)
        var = x.data.var(axis=axes, ddof=1).mean(axis=0)            # unbiased
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var
    xhat = NormalizeFunction.apply(x, axes, eps)
    return _affine(xhat, w, b, shape)
