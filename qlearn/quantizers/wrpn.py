r"""WRPN: Wide Reduced-Precision Networks (Mishra et al., 2017, arXiv:1709.01134).

Weights are clipped to :math:`[-1, 1]` and quantized with :math:`k - 1` bits for the
magnitude (one bit is the sign); activations are clipped to :math:`[0, 1]` and quantized
with :math:`k` bits:

.. math::

   w_q = \frac{1}{2^{k-1} - 1}\operatorname{round}\big((2^{k-1} - 1)
         \operatorname{clamp}(w, -1, 1)\big)

.. math::

   a_q = \frac{1}{2^k - 1}\operatorname{round}\big((2^k - 1)\operatorname{clamp}(a, 0, 1)\big)

(:math:`S = 1/(2^{k-1}-1)` and :math:`1/(2^k-1)`, :math:`Z = 0`, in qlearn's convention
:math:`r = S(q - Z)`).  Gradients pass straight through the rounding and are zero
outside the clipping range.

The paper recovers the accuracy lost to low precision by *widening* layers (more
filters, a width multiplier of 2 or 3); :func:`wrpn_width` gives the widened size.
"""
import numbers

from ._ste import ClipRoundSTE, as_input, check_num_bits

__all__ = ["wrpn_quantize_weight", "wrpn_quantize_activation", "wrpn_width"]


def wrpn_quantize_weight(weight, num_bits):
    r"""WRPN weights, eq. :eq:`wrpn-weight` (:math:`k \ge 2`).

    Examples
    --------
    >>> from qlearn.quantizers import wrpn_quantize_weight
    >>> wrpn_quantize_weight([-1.5, -0.4, 0.1, 0.5, 0.9], 3).numpy()   # levels k/3
    array([-1.        , -0.33333334,  0.        ,  0.6666667 ,  1.        ],
          dtype=float32)
    """
    num_bits = check_num_bits(num_bits, minimum=2)
    return ClipRoundSTE.apply(as_input(weight, "weight"), -1.0, 1.0, 1.0,
                              2.0 ** (num_bits - 1) - 1)


def wrpn_quantize_activation(input, num_bits):
    r"""WRPN activations: DoReFa's, eq. :eq:`dorefa-activation`.

    >>> from qlearn.quantizers import wrpn_quantize_activation
    >>> wrpn_quantize_activation([-0.2, 0.5, 2.0], 1).numpy()
    array([0., 0., 1.], dtype=float32)
    """
    num_bits = check_num_bits(num_bits)
    return ClipRoundSTE.apply(as_input(input), 0.0, 1.0, 1.0, 2.0 ** num_bits - 1)


def wrpn_width(channels, width_multiplier):
    """The number of channels of a layer widened by ``width_multiplier`` (rounded).

    >>> from qlearn.quantizers import wrpn_width
    >>> wrpn_width(16, 2), wrpn_width(10, 1.5)
    (32, 15)
    """
    if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) \
            or channels < 1:
        raise ValueError(f"`channels` must be a positive integer, got {channels!r}")
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, numbers.Real) \
            or not width_multiplier > 0:
        raise ValueError(f"`width_multiplier` must be a positive number, got "
                         f"{width_multiplier!r}")
    try:
        width = channels * width_multiplier
        return max(1, int(round(width)))
    except (OverflowError, ValueError):   # beyond float64, or inf
        raise ValueError(f"`channels` x `width_multiplier` must be a finite number of "
                         f"channels, got {channels!r} x {width_multiplier!r}") from None
