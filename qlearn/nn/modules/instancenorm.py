r"""``InstanceNorm1d``, ``InstanceNorm2d`` and ``InstanceNorm3d``
(``torch.nn.InstanceNorm*d``): each channel of each sample standardised over its
positions (:func:`qlearn.nn.functional.instance_norm`),

.. math::
    y_{n,c} = \frac{x_{n,c} - \mathrm E[x_{n,c}]}{\sqrt{\mathrm{Var}[x_{n,c}] + \epsilon}}
    \,\gamma_c + \beta_c .

As in PyTorch, ``affine`` and ``track_running_stats`` default to False; with
``track_running_stats`` the running statistics are updated in training mode and used in
eval mode.  An input without the batch dimension ((C, L) for 1-d, (C, H, W) for 2-d, ...)
is normalised as a batch of one.
"""
import numbers

from .. import functional as F
from .batchnorm import _NormBase

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


class _InstanceNorm(_NormBase):
    _spatial = 0

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    @staticmethod
    def _check_num_features(num_features):
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) \
                or num_features < 1:
            raise ValueError(f"`num_features` must be a positive int, got {num_features!r}")
        return int(num_features)

    def forward(self, input):
        x = F._tensor(input)
        d = self._spatial
        if x.ndim not in (d + 1, d + 2):
            raise ValueError(f"{type(self).__name__} expects {d + 1}-d (unbatched) or "
                             f"{d + 2}-d input, got shape {x.shape}")
        unbatched = x.ndim == d + 1
        if unbatched:
            x = x.reshape(1, *x.shape)
        if x.shape[1] != self.num_features and self.affine:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got input with "
                             f"{x.shape[1]} channels (shape {x.shape})")
        use_input_stats = self.training or not self.track_running_stats
        # as PyTorch: momentum=None freezes the running statistics (no cumulative
        # average, unlike batch norm) and num_batches_tracked stays 0
        momentum = 0.0 if self.momentum is None else self.momentum
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_input_stats, momentum, self.eps)
        return y.reshape(*y.shape[1:]) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    r"""Instance normalisation of (N, C, L) (or unbatched (C, L)) input.

    >>> from qlearn import nn
    >>> nn.InstanceNorm1d(1)(np.array([[[1.0, 3.0]]])).numpy().round(3)
    array([[[-1.,  1.]]], dtype=float32)
    """
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    r"""Instance normalisation of (N, C, H, W) (or unbatched (C, H, W)) input.

    >>> from qlearn import nn
    >>> m = nn.InstanceNorm2d(3, affine=True)
    >>> m
    InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=False)
    >>> m(np.random.default_rng(0).normal(size=(2, 3, 4, 4))).shape
    (2, 3, 4, 4)
    """
    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    r"""Instance normalisation of (N, C, D, H, W) (or unbatched (C, D, H, W)) input.

    >>> from qlearn import nn
    >>> nn.InstanceNorm3d(2)(np.random.default_rng(0).normal(size=(1, 2, 2, 3, 3))).shape
    (1, 2, 2, 3, 3)
    """
    _spatial = 3
