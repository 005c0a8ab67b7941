r"""``LayerNorm`` and ``GroupNorm`` (``torch.nn.LayerNorm`` / ``torch.nn.GroupNorm``).

Both standardise with statistics of the sample itself, so training and eval mode
compute the same thing and there are no running statistics (see
:mod:`qlearn.nn.functional_norm` for the equations and the shared gradient).
"""
import numbers

from .. import functional as F
from ..functional_norm import _normalized_shape
from ._utils import check_factory_kwargs, register_affine, reset_affine
from .module import Module

__all__ = ["LayerNorm", "GroupNorm"]


class LayerNorm(Module):
    r"""Layer normalisation over the trailing ``normalized_shape`` dimensions:

    .. math::
        y = \frac{x - \mathrm E[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta

    (:func:`qlearn.nn.functional.layer_norm`).  With ``elementwise_affine`` the module
    learns ``weight`` :math:`\gamma` (ones) and ``bias`` :math:`\beta` (zeros) of shape
    ``normalized_shape``; ``bias=False`` keeps only the weight.

    >>> from qlearn import nn
    >>> ln = nn.LayerNorm(4)
    >>> ln
    LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> ln(np.arange(8.0).reshape(2, 4)).numpy().round(3)
    array([[-1.342, -0.447,  0.447,  1.342],
           [-1.342, -0.447,  0.447,  1.342]], dtype=float32)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        check_factory_kwargs(device, dtype)
        shape = _normalized_shape(normalized_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"`normalized_shape` must be non-empty positive sizes, got "
                             f"{normalized_shape!r}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        register_affine(self, elementwise_affine, bias, shape)

    def reset_parameters(self):
        r"""``weight`` :math:`\gamma` to 1, ``bias`` :math:`\beta` to 0."""
        reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    r"""Group normalisation: the ``num_channels`` channels are split into
    ``num_groups`` groups, each standardised over its channels and positions,

    .. math::
        y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,G(c)}]}{\sqrt{\mathrm{Var}[x_{n,G(c)}]
        + \epsilon}}\, \gamma_c + \beta_c

    (:func:`qlearn.nn.functional.group_norm`); with ``affine`` the per-channel
    ``weight`` :math:`\gamma` (ones) and ``bias`` :math:`\beta` (zeros) are learnt
    (``bias=False``: the weight only).

    >>> from qlearn import nn
    >>> gn = nn.GroupNorm(2, 4)
    >>> gn
    GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)
    >>> gn(np.array([[[1.0], [3.0], [5.0], [5.0]]])).numpy().ravel().round(3)
    array([-1.,  1.,  0.,  0.], dtype=float32)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        check_factory_kwargs(device, dtype)
        for v, name in ((num_groups, "num_groups"), (num_channels, "num_channels")):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"`{name}` must be a positive int, got {v!r}")
        if num_channels % num_groups:
            raise ValueError(f"`num_channels` ({num_channels}) must be divisible by "
                             f"`num_groups` ({num_groups})")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = eps, affine
        register_affine(self, affine, bias, self.num_channels)

    def reset_parameters(self):
        r"""``weight`` :math:`\gamma` to 1, ``bias`` :math:`\beta` to 0."""
        reset_affine(self)

    def forward(self, input):
        x = F._tensor(input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expects "
                             f"(N, {self.num_channels}, *) input, got shape {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")
