"""The autograd Functions behind Distiller's quantizers (their kernels are reached through
:mod:`qlearn.kernels.quantizers`).

Each ``forward`` runs one Cython kernel; each ``backward`` sits right under it and
applies the straight-through estimator (STE): the rounding is treated as the identity,
everything else (the clip, DoReFa's ``tanh`` transform, PACT's learned clip value) is
differentiated exactly.
"""
import numbers

import numpy as np

from .. import _validation as V
from ..autograd import Function, Tensor
from ..kernels import quantizers as _quantizers

__all__ = ["check_num_bits", "as_input", "ClipRoundSTE", "PACTSTE", "DorefaWeightSTE",
           "DorefaBinaryWeightSTE"]

MAX_BITS = 16


def check_num_bits(num_bits, name="num_bits", minimum=1):
    """Return ``num_bits`` as an int in ``[minimum, 16]``."""
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {num_bits!r}")
    if not minimum <= int(num_bits) <= MAX_BITS:
        raise ValueError(f"`{name}` must be in [{minimum}, {MAX_BITS}], got {num_bits}")
    return int(num_bits)


def as_input(x, name="input"):
    """A Tensor passes through (its gradient is tracked); anything else becomes float32."""
    return x if isinstance(x, Tensor) else V.as_float32(x, name)


def _flat(x):
    return np.ascontiguousarray(x, dtype=np.float32).reshape(-1)


def _nonfinite(name="input"):
    return ValueError(f"`{name}` must be finite: it holds NaN or infinity")


class ClipRoundSTE(Function):
    r"""``x_hat = round(clamp(x, lo, hi) * levels / unit) * unit / levels`` (that is
    ``round(y / S) S`` with ``S = unit / levels``, evaluated as the equation: in double,
    ties to even, rounded once to float32);
    :math:`\partial \hat x / \partial x = \mathbb{1}[lo \le x \le hi]` (the clip's
    gradient, inclusive at both ends as ``torch.clamp``'s; STE through round)."""

    @staticmethod
    def forward(ctx, x, lo, hi, unit, levels):
        xf = _flat(x)
        out = np.empty_like(xf)
        if xf.size and _quantizers.clip_round(xf, out, lo, hi, unit, levels):
            raise _nonfinite()
        ctx.save_for_backward(xf)
        ctx.args = (np.shape(x), lo, hi)
        return out.reshape(np.shape(x))

    @staticmethod
    def backward(ctx, grad):
        (xf,) = ctx.saved_tensors
        shape, lo, hi = ctx.args
        out = np.empty_like(xf)
        if xf.size:
            _quantizers.clip_backward(xf, _flat(grad), out, lo, hi, True)
        return out.reshape(shape), None, None, None, None


class PACTSTE(Function):
    r"""PACT: ``y_q = round(clamp(x, 0, alpha) / S) S`` with ``S = alpha / (2^k - 1)``
    (``apply(x, num_bits, alpha)``).

    :math:`\partial y_q/\partial x = \mathbb{1}[0 \le x < \alpha]`,
    :math:`\partial y_q/\partial \alpha = \mathbb{1}[x \ge \alpha]` (summed over the
    elements): the STE treats the rounding, and ``S``'s dependence on ``alpha``, as
    constant, as the PACT paper and Distiller do.
    """

    @staticmethod
    def forward(ctx, x, num_bits, alpha):
        a = np.float32(np.asarray(alpha).reshape(-1)[0])
        xf = _flat(x)
        out = np.empty_like(xf)
        # unit = alpha in double: S = alpha / (2^k - 1) may underflow float32 for a tiny
        # alpha (1 / S was then inf and 0 * inf NaN)
        if xf.size and _quantizers.clip_round(xf, out, 0.0, a, float(a), 2.0 ** num_bits - 1):
            raise _nonfinite()
        ctx.save_for_backward(xf)
        ctx.args = (np.shape(x), a, np.shape(alpha))
        return out.reshape(np.shape(x))

    @staticmethod
    def backward(ctx, grad):
        (xf,) = ctx.saved_tensors
        shape, a, alpha_shape = ctx.args
        out = np.empty_like(xf)
        g_alpha = 0.0
        if xf.size:
            g_alpha = _quantizers.pact_backward(xf, _flat(grad), out, a)
        return out.reshape(shape), None, np.full(alpha_shape, g_alpha, np.float32)


class DorefaWeightSTE(Function):
    r"""DoReFa weights, :math:`k \ge 2`:
    :math:`w_q = 2\,\mathrm{quantize}_k\big(\tanh w / (2 \max|\tanh w|) + 1/2\big) - 1`.

    Backward: STE through :math:`\mathrm{quantize}_k`, the ``tanh`` transform
    differentiated exactly, including its dependence on :math:`M = \max_j |\tanh w_j|`
    (the gradient of the max shared evenly among tied maxima, as ``torch.max``):

    .. math::

       \frac{\partial L}{\partial w_j} = g_j \frac{1 - t_j^2}{M}
       - [\,|t_j| = M\,]\ \frac{\operatorname{sign}(t_j)\,(1 - t_j^2)}{n_M}
         \frac{\sum_i g_i t_i}{M^2}
    """

    @staticmethod
    def forward(ctx, w, num_bits):
        wf = _flat(w)
        t = np.empty_like(wf)
        out = np.empty_like(wf)
        big = 0.0
        if wf.size:
            big, bad = _quantizers.dorefa_weight_forward(wf, t, out, 2.0 ** num_bits - 1)
            if bad:
                raise _nonfinite("weight")
        ctx.save_for_backward(t)
        ctx.args = (np.shape(w), np.float32(big))
        return out.reshape(np.shape(w))

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved_tensors
        shape, big = ctx.args
        if t.size == 0:
            return np.zeros(shape, np.float32), None
        if big == 0:   # w == 0 everywhere: f = 1/2 is constant
            return np.zeros(shape, np.float32), None
        out = np.empty_like(t)
        dot = _quantizers.dorefa_weight_backward(t, _flat(grad), out, big)
        at_max = np.flatnonzero(np.abs(t) == big)
        tm = t[at_max]
        out[at_max] -= (np.sign(tm) * (1 - tm * tm) / len(at_max)
                        * np.float32(dot / (float(big) * float(big)))).astype(np.float32)
        return out.reshape(shape), None


class DorefaBinaryWeightSTE(Function):
    r"""DoReFa weights, :math:`k = 1`: :math:`w_q = E(|w|)\,\operatorname{sign}(w)`
    (``sign(0) = 1``), straight-through gradient (Distiller's
    ``DorefaParamsBinarizationSTE``)."""

    @staticmethod
    def forward(ctx, w):
        w = np.asarray(w, np.float32)
        if w.size and not np.isfinite(w).all():
            raise _nonfinite("weight")
        e = np.float32(np.abs(w).mean()) if w.size else np.float32(0)
        return np.where(w == 0, np.float32(1), np.sign(w)).astype(np.float32) * e

    @staticmethod
    def backward(ctx, grad):
        return grad
