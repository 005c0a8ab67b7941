r"""Range-based linear quantization (Distiller's ``range_linear``), in qlearn's convention.

A float range :math:`[\alpha, \beta]` (the *clipping range*, from the data) is mapped
linearly onto :math:`k`-bit integers.  qlearn writes every affine map one way,

.. math::

   r = S\,(q - Z), \qquad q = \operatorname{clamp}\big(\operatorname{round}(r / S) + Z,\
   q_{min},\ q_{max}\big)

(Distiller writes the inverse, :math:`q = \operatorname{round}(s\,r - z)` with
:math:`s = 1/S`, :math:`z = -Z`; the integers are the same).  The modes:

*Asymmetric* (with a zero point), unsigned :math:`q \in [0, 2^k - 1]` or signed
:math:`q \in [-2^{k-1}, 2^{k-1} - 1]`:

.. math::

   S = \frac{\max(\beta, 0) - \min(\alpha, 0)}{2^k - 1}, \qquad
   Z = q_{min} - \operatorname{round}\big(\min(\alpha, 0) / S\big)

*Symmetric* (no zero point, :math:`Z = 0`), :math:`q \in [-2^{k-1}, 2^{k-1} - 1]`:

.. math::

   S = \frac{\max(|\alpha|, |\beta|)}{(2^k - 1) / 2}
   \quad\text{or, restricted to } [-(2^{k-1}-1),\ 2^{k-1}-1]:\quad
   S = \frac{\max(|\alpha|, |\beta|)}{2^{k-1} - 1}

These are exactly the affine and symmetric equations of qlearn's one qparams function,
:func:`qlearn.quantization.qparams.calculate_qparams`, with the :math:`k`-bit range, which
is what this module calls.  Symmetric is simpler (no zero-point terms in the integer
matmul); asymmetric does not waste half the integers on a one-sided range such as a
ReLU output.

*Clipping* chooses :math:`[\alpha, \beta]`: ``"none"`` (the tensor's min and max),
``"avg"`` (the mean over the batch of each sample's min and max: outliers in one sample
count less) or ``"n_std"`` (:math:`\text{mean} \pm n\,\text{std}`, never beyond the
min and max).
"""
import numbers

import numpy as np

from .. import _validation as V
from ..autograd import Tensor
from ..dtypes import per_tensor_affine, per_tensor_symmetric, qint8, qint32, quint8
from ..fake_quant import _check_quant_range, fake_quantize_per_tensor_affine
from ..quantization.qparams import calculate_qparams
from ._ste import as_input

__all__ = ["LINEAR_QUANT_MODES", "CLIP_MODES", "quant_range", "get_tensor_min_max",
           "get_tensor_avg_min_max", "get_tensor_mean_n_stds_min_max", "get_clip_range",
           "linear_quantization_params", "linear_quantize", "linear_dequantize",
           "range_linear_quantize"]

#: Distiller's ``LinearQuantMode`` values, plus the restricted symmetric range.
LINEAR_QUANT_MODES = ("symmetric", "symmetric_restricted", "asymmetric_unsigned",
                      "asymmetric_signed")
#: Distiller's ``ClipMode`` values implemented here.
CLIP_MODES = ("none", "avg", "n_std")


def _check_bits(num_bits):
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral):
        raise TypeError(f"`num_bits` must be an integer, got {num_bits!r}")
    if not 2 <= num_bits <= 16:
        raise ValueError(f"`num_bits` must be in [2, 16], got {num_bits}")
    return int(num_bits)


def _check_mode(mode):
    if mode not in LINEAR_QUANT_MODES:
        raise ValueError(f"`mode` must be one of {', '.join(LINEAR_QUANT_MODES)}, got "
                         f"{mode!r}")
    return mode


def quant_range(num_bits, mode):
    """``(q_min, q_max)`` of a ``num_bits`` integer for ``mode``.

    >>> from qlearn.quantizers.range_linear import quant_range
    >>> [quant_range(4, m) for m in ("symmetric", "symmetric_restricted",
    ...                              "asymmetric_unsigned", "asymmetric_signed")]
    [(-8, 7), (-7, 7), (0, 15), (-8, 7)]
    """
    k = _check_bits(num_bits)
    mode = _check_mode(mode)
    if mode == "asymmetric_unsigned":
        return 0, 2 ** k - 1
    if mode == "symmetric_restricted":
        return -(2 ** (k - 1) - 1), 2 ** (k - 1) - 1
    return -(2 ** (k - 1)), 2 ** (k - 1) - 1


def _array(x):
    return np.asarray(x.data if isinstance(x, Tensor) else x, np.float32)


def get_tensor_min_max(x):
    """``(min, max)`` of the whole tensor (clip mode ``"none"``)."""
    a = _array(x)
    return np.float32(a.min()), np.float32(a.max())


def get_tensor_avg_min_max(x, across_dim=0):
    """The mean over ``across_dim`` (the batch) of each slice's min and max (``"avg"``).

    >>> from qlearn.quantizers.range_linear import get_tensor_avg_min_max
    >>> get_tensor_avg_min_max(np.float32([[0, 1], [-2, 5]]))
    (np.float32(-1.0), np.float32(3.0))
    """
    a = np.moveaxis(_array(x), across_dim, 0).reshape(_array(x).shape[across_dim], -1)
    return np.float32(a.min(axis=1).mean()), np.float32(a.max(axis=1).mean())


def get_tensor_mean_n_stds_min_max(x, n_stds=1):
    r""":math:`\max(\min x, \bar x - n\sigma)` and :math:`\min(\max x, \bar x + n\sigma)`
    (``"n_std"``; :math:`\sigma` the unbiased standard deviation, as ``torch.std``)."""
    a = _array(x).astype(np.float64)
    mean = a.mean()
    std = a.std(ddof=1) if a.size > 1 else 0.0
    return (np.float32(max(a.min(), mean - n_stds * std)),
            np.float32(min(a.max(), mean + n_stds * std)))


def get_clip_range(x, clip_mode="none", num_stds=None):
    """The clipping range :math:`[\\alpha, \\beta]` of ``x`` for ``clip_mode``."""
    if clip_mode not in CLIP_MODES:
        raise ValueError(f"`clip_mode` must be one of {', '.join(CLIP_MODES)}, got "
                         f"{clip_mode!r}")
    if _array(x).size == 0:
        raise ValueError("`input` must not be empty to compute a clipping range")
    if clip_mode == "avg":
        return get_tensor_avg_min_max(x)
    if clip_mode == "n_std":
        if isinstance(num_stds, bool) or not isinstance(num_stds, numbers.Real) \
                or not num_stds > 0:
            raise ValueError(f"`num_stds` must be a positive number with clip_mode='n_std', "
                             f"got {num_stds!r}")
        return get_tensor_mean_n_stds_min_max(x, num_stds)
    return get_tensor_min_max(x)


def linear_quantization_params(min_val, max_val, num_bits, mode="symmetric"):
    r"""``(scale, zero_point, quant_min, quant_max)`` for the range
    ``[min_val, max_val]``, eqs. :eq:`rl-asymmetric` / :eq:`rl-symmetric`.

    Computed by :func:`qlearn.quantization.qparams.calculate_qparams` with the
    ``num_bits`` range (the one qparams function of qlearn).

    Examples
    --------
    >>> from qlearn.quantizers.range_linear import linear_quantization_params
    >>> s, z, lo, hi = linear_quantization_params(-1.0, 3.0, 4, "asymmetric_unsigned")
    >>> float(s[0]), int(z[0]), lo, hi          # S = 4 / 15, Z = 0 - round(-1 / S)
    (0.2666666805744171, 4, 0, 15)
    >>> s, z, lo, hi = linear_quantization_params(-1.0, 3.0, 4, "symmetric")
    >>> float(s[0]), int(z[0])                  # S = 3 / 7.5
    (0.4000000059604645, 0)
    """
    qmin, qmax = quant_range(num_bits, mode)
    symmetric = mode.startswith("symmetric")
    dtype = (qint8 if qmin < 0 else quint8) if num_bits <= 8 else qint32
    scale, zero_point = calculate_qparams(
        np.float32(min_val), np.float32(max_val), dtype,
        per_tensor_symmetric if symmetric else per_tensor_affine, qmin, qmax,
        has_customized_qrange=True)
    return scale, zero_point, qmin, qmax


def linear_quantize(input, scale, zero_point, quant_min, quant_max):
    r"""The integers :math:`q = \operatorname{clamp}(\operatorname{round}(x/S) + Z,
    q_{min}, q_{max})` (eq. :eq:`quantize`), as int32 (any bit width up to 16).

    >>> from qlearn.quantizers.range_linear import linear_quantize, linear_dequantize
    >>> q = linear_quantize([-1.0, 0.0, 0.7, 3.0], 0.25, 4, 0, 15)
    >>> q
    array([ 0,  4,  7, 15], dtype=int32)
    >>> linear_dequantize(q, 0.25, 4)
    array([-1.  ,  0.  ,  0.75,  2.75], dtype=float32)
    """
    quant_min, quant_max = _check_quant_range(quant_min, quant_max)
    scale = V.check_scale(V._scalar(scale, "scale", "positive number"), "scale")
    zero_point = V.check_zero_point(V._scalar(zero_point, "zero_point", "integer"),
                                    quant_min, quant_max)
    x = V.as_float32(input.data if isinstance(input, Tensor) else input, "input")
    if x.size and not np.isfinite(x).all():     # NaN has no integer (its cast is UB)
        raise ValueError("`input` must be finite: it holds NaN or infinity, which have "
                         "no quantized value")
    inv = np.float32(1) / np.float32(scale)
    with np.errstate(over="ignore"):
        q = np.rint(x * inv) + np.float32(zero_point)
    return np.clip(q, quant_min, quant_max).astype(np.int32)


def linear_dequantize(q, scale, zero_point):
    r""":math:`r = S\,(q - Z)` in float32."""
    scale = V.check_scale(V._scalar(scale, "scale", "positive number"), "scale")
    zero_point = V._scalar(zero_point, "zero_point", "integer")
    if isinstance(zero_point, bool) or not isinstance(zero_point, numbers.Integral):
        raise TypeError(f"`zero_point` must be an integer, got {zero_point!r}")
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"`q` must hold integers, got dtype {q.dtype}")
    return ((np.asarray(q, np.int64) - int(zero_point)).astype(np.float32)
            * np.float32(scale)).astype(np.float32)


def range_linear_quantize(input, num_bits, mode="symmetric", clip_mode="none",
                          num_stds=None):
    r"""Fake-quantize ``input`` with a range-based linear quantizer computed from itself.

    The clipping range comes from ``clip_mode``, the qparams from
    :func:`linear_quantization_params`, and the result is
    :func:`qlearn.fake_quantize_per_tensor_affine` (straight-through gradient, zero
    outside the clipping range).

    Parameters
    ----------
    input : Tensor or array_like of float
    num_bits : int
        :math:`k \in [2, 16]`.
    mode : str
        One of :data:`LINEAR_QUANT_MODES`.
    clip_mode : str
        ``"none"``, ``"avg"`` or ``"n_std"``.
    num_stds : float
        :math:`n` for ``clip_mode="n_std"``.

    Examples
    --------
    >>> from qlearn.quantizers.range_linear import range_linear_quantize
    >>> x = np.float32([-1.0, 0.0, 0.5, 3.0])
    >>> range_linear_quantize(x, 3, "asymmetric_unsigned").numpy()   # S = 4/7, Z = 2
    array([-1.1428572,  0.       ,  0.5714286,  2.857143 ], dtype=float32)
    """
    x = as_input(input)
    lo, hi = get_clip_range(x, clip_mode, num_stds)
    scale, zero_point, qmin, qmax = linear_quantization_params(lo, hi, num_bits, mode)
    return fake_quantize_per_tensor_affine(x, scale[0], zero_point[0], qmin, qmax)
