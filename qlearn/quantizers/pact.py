r"""PACT: Parameterized Clipping Activation (Choi et al., 2018, arXiv:1805.06085).

Like DoReFa's activation quantizer, but the upper clipping value :math:`\alpha` is a
parameter learned with the network:

.. math::

   y = \operatorname{clamp}(x, 0, \alpha), \qquad
   y_q = \operatorname{round}\Big(y\,\frac{2^k - 1}{\alpha}\Big)\,\frac{\alpha}{2^k - 1}

that is :math:`S = \alpha / (2^k - 1)`, :math:`Z = 0` in qlearn's convention
:math:`r = S (q - Z)`.  The gradients (straight-through for the rounding):

.. math::

   \frac{\partial y_q}{\partial x} = \begin{cases} 1 & 0 \le x < \alpha \\
                                                   0 & \text{otherwise} \end{cases}
   \qquad
   \frac{\partial L}{\partial \alpha} = \sum_{i:\ x_i \ge \alpha}
                                        \frac{\partial L}{\partial y_{q,i}}

A larger :math:`\alpha` clips less but quantizes more coarsely; the loss decides.
"""
import numbers

import numpy as np

from ..autograd import Tensor
from ..nn import Module, Parameter
from ._ste import PACTSTE, as_input, check_num_bits

__all__ = ["pact_quantize", "PACTReLU"]


def _check_alpha(alpha):
    arr = np.asarray(alpha.data if isinstance(alpha, Tensor) else alpha)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise TypeError(f"`alpha` must be a positive number or a one-element Tensor, got "
                        f"{alpha!r}")
    a = float(arr.reshape(-1)[0])
    if not (np.isfinite(a) and a > 0 and np.float32(a) > 0):
        raise ValueError(f"`alpha` must be a positive finite number, got {a}")


def pact_quantize(input, num_bits, alpha):
    r"""PACT, eq. :eq:`pact-forward`, with the gradients of eq. :eq:`pact-backward`.

    ``num_bits`` comes second, as in every qlearn quantizer (``dorefa_quantize_activation(x,
    num_bits)``); both may be passed by keyword.  The rounding is the equation's, evaluated
    in double (exact ties round half to even, and a tiny ``alpha`` is as valid as any).

    Parameters
    ----------
    input : Tensor or array_like of float
        :math:`x` (the pre-activation: PACT replaces the ReLU).
    num_bits : int
        :math:`k \in [1, 16]`.
    alpha : Tensor or float
        :math:`\alpha > 0`, the clipping value; a one-element Tensor that requires grad
        receives :math:`\partial L / \partial \alpha`.

    Returns
    -------
    Tensor

    Examples
    --------
    >>> from qlearn.quantizers import pact_quantize
    >>> x = ql.tensor([-1.0, 0.3, 1.4, 2.5, 7.0], requires_grad=True)
    >>> alpha = ql.tensor([3.0], requires_grad=True)
    >>> y = pact_quantize(x, 2, alpha)                  # levels 0, 1, 2, 3
    >>> y.numpy()
    array([0., 0., 1., 2., 3.], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad.numpy(), alpha.grad.numpy()             # x >= alpha feeds alpha
    (array([0., 1., 1., 1., 0.], dtype=float32), array([1.], dtype=float32))
    """
    num_bits = check_num_bits(num_bits)
    _check_alpha(alpha)
    if not isinstance(alpha, Tensor):
        alpha = np.float32([float(np.asarray(alpha).reshape(-1)[0])])
    return PACTSTE.apply(as_input(input), num_bits, alpha)


class PACTReLU(Module):
    r"""A ReLU replaced by PACT: ``pact_quantize(x, num_bits, self.alpha)``.

    Parameters
    ----------
    num_bits : int
        :math:`k`, the activation bits.
    alpha_init : float
        The initial clipping value :math:`\alpha` (Distiller's ``act_clip_init_val``
        default, 8.0).

    Attributes
    ----------
    alpha : Parameter, shape (1,)

    Examples
    --------
    >>> from qlearn.quantizers import PACTReLU
    >>> act = PACTReLU(num_bits=2, alpha_init=3.0)
    >>> act(np.float32([-1.0, 1.4, 9.0])).numpy()
    array([0., 1., 3.], dtype=float32)
    >>> act
    PACTReLU(num_bits=2, alpha=3.0)
    """

    def __init__(self, num_bits=4, alpha_init=8.0):
        super().__init__()
        self.num_bits = check_num_bits(num_bits)
        if isinstance(alpha_init, bool) or not isinstance(alpha_init, numbers.Real):
            raise TypeError(f"`alpha_init` must be a positive number, got {alpha_init!r}")
        _check_alpha(alpha_init)
        self.alpha = Parameter(np.array([alpha_init], np.float32))

    def forward(self, x):
        return pact_quantize(x, self.num_bits, self.alpha)

    def extra_repr(self):
        return f"num_bits={self.num_bits}, alpha={float(self.alpha.data[0])!r}"
