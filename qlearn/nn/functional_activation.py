r"""The smooth and piecewise activations of ``torch.nn.functional``: ``hardswish``,
``hardsigmoid``, ``elu``, ``silu``, ``gelu`` and ``prelu``, each an autograd
:class:`~qlearn.autograd.Function` with its derivative under its forward.

They are the float forms of the activations :mod:`qlearn.nn.quantized` has quantized
versions of (``nnq.Hardswish``, ``nnq.ELU``, ``qF.hardsigmoid``), so a float model that
uses them can be prepared and converted.  Each accepts a :class:`qlearn.Tensor` or a
float array and returns a Tensor.  Where PyTorch picks a value of the derivative at a
kink, qlearn picks the same one.
"""
import math
import numbers

import numpy as np

from ..autograd import Function
from .functional import _tensor

__all__ = ["hardswish", "hardsigmoid", "elu", "silu", "gelu", "prelu"]


class HardswishFunction(Function):
    r"""y = x relu6(x + 3) / 6;  dx = g * (0 for x <= -3, x/3 + 1/2 for -3 < x < 3,
    1 for x >= 3)  (PyTorch's values at the kinks)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * np.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype)
        return g * d


class HardsigmoidFunction(Function):
    r"""y = relu6(x + 3) / 6;  dx = g / 6 for -3 < x < 3, else 0"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x > -3) & (x < 3)) / 6


class ELUFunction(Function):
    r"""y = x for x > 0, alpha (e^x - 1) otherwise;  dx = g for x > 0, g alpha e^x
    otherwise"""

    @staticmethod
    def forward(ctx, x, alpha):
        neg = alpha * np.expm1(np.minimum(x, 0))
        ctx.save_for_backward(x, neg)
        ctx.alpha = alpha
        return np.where(x > 0, x, neg).astype(x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, neg = ctx.saved_tensors
        return g * np.where(x > 0, 1, neg + ctx.alpha).astype(x.dtype), None


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class SiLUFunction(Function):
    r"""y = x sigma(x);  dx = g sigma(x) (1 + x (1 - sigma(x)))"""

    @staticmethod
    def forward(ctx, x):
        s = _sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * s * (1 + x * (1 - s))


_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


class GELUFunction(Function):
    r"""approximate='none':  y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2,
    dx = g (Phi(x) + x phi(x)), phi(x) = e^{-x^2/2} / sqrt(2 pi);
    approximate='tanh':  y = x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3),
    dx = g ((1 + tanh u) / 2 + x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 0.044715 x^2) / 2)"""

    @staticmethod
    def forward(ctx, x, approximate):
        x64 = x.astype(np.float64)
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_PI * (x64 + 0.044715 * x64 ** 3))
            return (0.5 * x64 * (1 + t)).astype(x.dtype)
        # erf in float64 (math.erf per element): float32 GELU is then correctly rounded
        cdf = 0.5 * (1 + _erf(x64 / math.sqrt(2.0)).astype(np.float64))
        return (x64 * cdf).astype(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        x64 = x.astype(np.float64)
        if ctx.approximate == "tanh":
            t = np.tanh(_SQRT_2_PI * (x64 + 0.044715 * x64 ** 3))
            d = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * _SQRT_2_PI * (
                1 + 3 * 0.044715 * x64 ** 2)
        else:
            cdf = 0.5 * (1 + _erf(x64 / math.sqrt(2.0)).astype(np.float64))
            d = cdf + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
        return (g * d).astype(g.dtype), None


class PReLUFunction(Function):
    r"""y = x for x > 0, w x otherwise (w per channel, broadcast along axis 1);
    dx = g for x > 0, g w otherwise;  dw = sum of g x where x <= 0"""

    @staticmethod
    def forward(ctx, x, w, shape):
        wb = w.reshape(shape)
        ctx.save_for_backward(x, w)
        ctx.shape = shape
        return np.where(x > 0, x, wb * x).astype(x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        neg = x <= 0
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = np.where(neg, g * w.reshape(ctx.shape), g).astype(g.dtype)
        if ctx.needs_input_grad[1]:
            gx = np.where(neg, g * x, 0).astype(g.dtype)
            if w.size == 1:
                dw = gx.sum().reshape(w.shape)
            else:
                axes = tuple(i for i in range(x.ndim) if i != 1)
                dw = gx.sum(axis=axes).reshape(w.shape)
        return dx, dw, None


def hardswish(input, inplace=False):
    r"""Hard swish (``torch.nn.functional.hardswish``):

    .. math::  y = x \cdot \frac{\operatorname{ReLU6}(x + 3)}{6}

    >>> from qlearn.nn import functional as F
    >>> F.hardswish(np.array([-4.0, -1.0, 0.0, 1.0, 4.0])).numpy().round(4)
    array([-0.    , -0.3333,  0.    ,  0.6667,  4.    ], dtype=float32)
    """
    return HardswishFunction.apply(_tensor(input))


def hardsigmoid(input, inplace=False):
    r"""Hard sigmoid (``torch.nn.functional.hardsigmoid``):

    .. math::  y = \frac{\operatorname{ReLU6}(x + 3)}{6}

    >>> from qlearn.nn import functional as F
    >>> F.hardsigmoid(np.array([-4.0, 0.0, 1.5, 4.0])).numpy()
    array([0.  , 0.5 , 0.75, 1.  ], dtype=float32)
    """
    return HardsigmoidFunction.apply(_tensor(input))


def _real(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {v!r}")
    if not np.isfinite(v):
        raise ValueError(f"`{name}` must be a finite number, got {v!r}")
    return float(v)


def elu(input, alpha=1.0, inplace=False):
    r"""Exponential linear unit (``torch.nn.functional.elu``):

    .. math::  y = x \ (x > 0), \qquad y = \alpha\,(e^{x} - 1) \ (x \le 0)

    with :math:`\alpha` = ``alpha``.

    >>> from qlearn.nn import functional as F
    >>> F.elu(np.array([-1.0, 0.0, 2.0])).numpy().round(4)
    array([-0.6321,  0.    ,  2.    ], dtype=float32)
    """
    x = _tensor(input)
    return ELUFunction.apply(x, x.data.dtype.type(_real(alpha, "alpha")))


def silu(input, inplace=False):
    r"""Sigmoid-weighted linear unit, or swish (``torch.nn.functional.silu``):

    .. math::  y = x\, \sigma(x) = \frac{x}{1 + e^{-x}}

    >>> from qlearn.nn import functional as F
    >>> F.silu(np.array([-1.0, 0.0, 1.0])).numpy().round(4)
    array([-0.2689,  0.    ,  0.7311], dtype=float32)
    """
    return SiLUFunction.apply(_tensor(input))


def gelu(input, approximate="none"):
    r"""Gaussian error linear unit (``torch.nn.functional.gelu``):

    .. math::
        y = x\,\Phi(x) = \frac{x}{2}\Big(1 + \operatorname{erf}\frac{x}{\sqrt 2}\Big)

    or, with ``approximate="tanh"``,
    :math:`y = \frac{x}{2}\big(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3))\big)`.
    qlearn computes it in float64 and rounds once; PyTorch's float32 formula loses
    digits to the cancellation in :math:`1 + \operatorname{erf}` for :math:`x < -3`
    (absolute differences below :math:`10^{-6}`, relative ones up to a few percent
    where :math:`|y| < 10^{-5}`).

    >>> from qlearn.nn import functional as F
    >>> F.gelu(np.array([-1.0, 0.0, 1.0])).numpy().round(4)
    array([-0.1587,  0.    ,  0.8413], dtype=float32)
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(_tensor(input), approximate)


def prelu(input, weight):
    r"""Parametric ReLU (``torch.nn.functional.prelu``):

    .. math::  y = x \ (x > 0), \qquad y = a\,x \ (x \le 0)

    with :math:`a` = ``weight``: one value, or one per channel (axis 1 of ``input``).

    >>> from qlearn.nn import functional as F
    >>> F.prelu(np.array([[-2.0, 3.0]]), np.array([0.25])).numpy()
    array([[-0.5,  3. ]], dtype=float32)
    """
    x, w = _tensor(input), _tensor(weight, "weight")
    if w.ndim > 1:
        raise ValueError(f"`weight` must be 0-d or 1-d, got shape {w.shape}")
    n = w.data.size
    if n == 1:
        shape = ()
    else:
        C = x.shape[1] if x.ndim >= 2 else None
        if n != C:
            raise ValueError(f"`weight` has {n} values, but `input` of shape {x.shape} "
                             f"has {C} channels (axis 1); give one value or one per channel")
        shape = (1, C) + (1,) * (x.ndim - 2)
    return PReLUFunction.apply(x, w, shape)
