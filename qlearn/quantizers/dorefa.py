r"""DoReFa-Net (Zhou et al., 2016, arXiv:1606.06160), as Distiller implements it.

The building block rounds a value in :math:`[0, 1]` to one of :math:`2^k` levels:

.. math::

   \mathrm{quantize}_k(x) = \frac{1}{2^k - 1}\operatorname{round}\big((2^k - 1)\,x\big)

In qlearn's convention :math:`r = S (q - Z)` this is :math:`Z = 0`,
:math:`S = 1/(2^k - 1)`, :math:`q = \operatorname{round}(x / S)`, i.e. exactly
``fake_quantize_per_tensor_affine(x, S, 0, 0, 2**k - 1)`` on :math:`[0, 1]`.

*Activations* are clipped to :math:`[0, 1]` first:

.. math::

   a_q = \mathrm{quantize}_k\big(\operatorname{clamp}(a, 0, 1)\big)

*Weights* are squashed into :math:`[0, 1]` by ``tanh``, quantized, and mapped back to
:math:`[-1, 1]`:

.. math::

   f(w) = \frac{\tanh w}{2 \max |\tanh w|} + \frac12, \qquad
   w_q = 2\,\mathrm{quantize}_k\big(f(w)\big) - 1

The gradient passes straight through the rounding (STE); the clip and the ``tanh``
transform (including the max) are differentiated, as Distiller does.
"""
from ._ste import ClipRoundSTE, DorefaBinaryWeightSTE, DorefaWeightSTE, as_input, check_num_bits

__all__ = ["dorefa_quantize_activation", "dorefa_quantize_weight"]


def dorefa_quantize_activation(input, num_bits):
    r"""DoReFa activations, eq. :eq:`dorefa-activation`:
    :math:`a_q = \mathrm{quantize}_k(\operatorname{clamp}(a, 0, 1))`.

    Parameters
    ----------
    input : Tensor or array_like of float
        :math:`a`.
    num_bits : int
        :math:`k \in [1, 16]`.

    Returns
    -------
    Tensor
        Values in :math:`\{0, \frac{1}{2^k-1}, \dots, 1\}`; gradient
        :math:`\mathbb{1}[0 \le a \le 1]` (the clip's; STE through the rounding).

    Examples
    --------
    >>> from qlearn.quantizers import dorefa_quantize_activation
    >>> a = ql.tensor([-0.5, 0.2, 0.5, 0.9, 1.5], requires_grad=True)
    >>> y = dorefa_quantize_activation(a, 2)          # levels 0, 1/3, 2/3, 1
    >>> y.numpy()
    array([0.        , 0.33333334, 0.6666667 , 1.        , 1.        ],
          dtype=float32)
    >>> y.sum().backward(); a.grad.numpy()
    array([0., 1., 1., 1., 0.], dtype=float32)
    """
    num_bits = check_num_bits(num_bits)
    return ClipRoundSTE.apply(as_input(input), 0.0, 1.0, 1.0, 2.0 ** num_bits - 1)


def dorefa_quantize_weight(weight, num_bits):
    r"""DoReFa weights, eq. :eq:`dorefa-weight`:
    :math:`w_q = 2\,\mathrm{quantize}_k(\tanh w / (2\max|\tanh w|) + 1/2) - 1`.

    For ``num_bits == 1`` the paper's (and Distiller's) binarization is used instead:
    :math:`w_q = E(|w|)\,\operatorname{sign}(w)`.

    Parameters
    ----------
    weight : Tensor or array_like of float
        :math:`w` (the whole tensor: the max runs over all of it).
    num_bits : int
        :math:`k \in [1, 16]`.

    Returns
    -------
    Tensor
        Values in :math:`\{-1, -1 + \frac{2}{2^k-1}, \dots, 1\}` (for :math:`k \ge 2`);
        gradient: STE through the rounding, ``tanh`` and the max differentiated (see
        :class:`~qlearn.quantizers._ste.DorefaWeightSTE`).

    Examples
    --------
    >>> from qlearn.quantizers import dorefa_quantize_weight
    >>> w = ql.tensor([-2.0, -0.1, 0.0, 0.3, 1.0])
    >>> dorefa_quantize_weight(w, 2).numpy()     # 2 {0, 1/3, 2/3, 1} - 1
    array([-1.        , -0.3333333 ,  0.33333337,  0.33333337,  1.        ],
          dtype=float32)
    """
    num_bits = check_num_bits(num_bits)
    w = as_input(weight, "weight")
    if num_bits == 1:
        return DorefaBinaryWeightSTE.apply(w)
    return DorefaWeightSTE.apply(w, num_bits)
