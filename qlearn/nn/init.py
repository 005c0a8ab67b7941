r"""Parameter initialisation (``torch.nn.init``), in place on a Tensor's ``.data``.

Random numbers come from qlearn's generator, :func:`qlearn.autograd.random.get_generator`.
The distributions and their bounds are PyTorch's; the numbers drawn are not.
"""
import math

import numpy as np

from ..autograd import Tensor
from ..autograd.random import get_generator

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"]


def _data(tensor):
    if isinstance(tensor, Tensor):
        return tensor.data
    if isinstance(tensor, np.ndarray) and tensor.dtype.kind == "f":
        return tensor
    raise TypeError(f"`tensor` must be a qlearn.Tensor or a float ndarray, got "
                    f"{type(tensor).__name__}")


def calculate_gain(nonlinearity, param=None):
    r"""The gain :math:`g` that keeps activations' variance stable: 1 for linear and
    sigmoid, 5/3 for tanh, :math:`\sqrt2` for relu, :math:`\sqrt{2/(1+a^2)}` for
    leaky_relu with slope :math:`a` (``param``, default 0.01).

    >>> from qlearn.nn.init import calculate_gain
    >>> round(calculate_gain("leaky_relu", 5 ** 0.5), 4)
    0.5774
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"`nonlinearity` must be one of linear, conv*, sigmoid, tanh, relu, "
                     f"leaky_relu, selu, got {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """fan_in = size(1) * receptive field, fan_out = size(0) * receptive field."""
    shape = _data(tensor).shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform_(tensor, a=0.0, b=1.0):
    r"""Fill with :math:`\mathcal U(a, b)`.

    >>> import numpy as np
    >>> from qlearn.nn.init import uniform_
    >>> w = np.zeros(4, np.float32); _ = uniform_(w, -1, 1); bool((abs(w) <= 1).all())
    True
    """
    d = _data(tensor)
    d[...] = get_generator().uniform(a, b, d.shape)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    r"""Fill with :math:`\mathcal N(\mu, \sigma^2)`, :math:`\mu` = ``mean``,
    :math:`\sigma` = ``std``.

    >>> import numpy as np
    >>> from qlearn.nn.init import normal_
    >>> round(float(normal_(np.zeros(10000, np.float32), 1.0, 0.5).std()), 1)
    0.5
    """
    d = _data(tensor)
    d[...] = get_generator().normal(mean, std, d.shape)
    return tensor


def constant_(tensor, val):
    """Fill with ``val``.

    >>> import numpy as np
    >>> from qlearn.nn.init import constant_
    >>> constant_(np.zeros(2, np.float32), 3.0)
    array([3., 3.], dtype=float32)
    """
    _data(tensor)[...] = val
    return tensor


def ones_(tensor):
    """Fill with 1.

    >>> import numpy as np
    >>> from qlearn.nn.init import ones_
    >>> ones_(np.zeros(2, np.float32))
    array([1., 1.], dtype=float32)
    """
    return constant_(tensor, 1.0)


def zeros_(tensor):
    """Fill with 0.

    >>> import numpy as np
    >>> from qlearn.nn.init import zeros_
    >>> zeros_(np.ones(2, np.float32))
    array([0., 0.], dtype=float32)
    """
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor, gain=1.0):
    r"""Glorot: :math:`\mathcal U(-b, b)`, :math:`b = g\sqrt{6/(\mathrm{fan_{in}} +
    \mathrm{fan_{out}})}`.

    >>> import numpy as np
    >>> from qlearn.nn.init import xavier_uniform_
    >>> w = xavier_uniform_(np.zeros((30, 20), np.float32))
    >>> bool(abs(w).max() <= (6 / 50) ** 0.5)
    True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if _data(tensor).size == 0:   # nothing to fill (PyTorch warns and does nothing)
        return tensor
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    r"""Glorot: :math:`\mathcal N(0, \sigma^2)`, :math:`\sigma = g\sqrt{2/(\mathrm{fan_{in}}
    + \mathrm{fan_{out}})}`.

    >>> import numpy as np
    >>> from qlearn.nn.init import xavier_normal_
    >>> round(float(xavier_normal_(np.zeros((300, 200), np.float32)).std()), 2)
    0.06
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if _data(tensor).size == 0:
        return tensor
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"`mode` must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    r"""He: :math:`\mathcal U(-b, b)`, :math:`b = g\sqrt{3/\mathrm{fan}}` with
    :math:`g` = ``calculate_gain(nonlinearity, a)``.

    Linear and Conv2d use ``a = sqrt(5)``, which gives :math:`b = 1/\sqrt{\mathrm{fan_{in}}}`:

    >>> import numpy as np
    >>> from qlearn.nn.init import kaiming_uniform_
    >>> w = np.zeros((8, 100), np.float32)
    >>> _ = kaiming_uniform_(w, a=5 ** 0.5); bool(abs(w).max() <= 0.1)
    True
    """
    fan = _fan(tensor, mode)
    if _data(tensor).size == 0:
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    r"""He: :math:`\mathcal N(0, \sigma^2)`, :math:`\sigma = g/\sqrt{\mathrm{fan}}`.

    >>> import numpy as np
    >>> from qlearn.nn.init import kaiming_normal_
    >>> w = kaiming_normal_(np.zeros((400, 200), np.float32), nonlinearity="relu")
    >>> round(float(w.std()), 2)        # sqrt(2 / 200)
    0.1
    """
    fan = _fan(tensor, mode)
    if _data(tensor).size == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))
