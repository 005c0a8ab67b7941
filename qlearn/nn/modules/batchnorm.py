"""``BatchNorm1d``, ``BatchNorm2d`` and ``BatchNorm3d``, and the base they share with the
instance norms."""
import numpy as np

from .. import functional as F
from ._utils import check_factory_kwargs, register_affine, reset_affine
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _NormBase(Module):
    """What batch and instance normalisation share (as PyTorch's ``_NormBase``):
    ``weight`` / ``bias`` when ``affine``, the running statistics when
    ``track_running_stats``, their resets and the repr."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        check_factory_kwargs(device, dtype)
        num_features = self._check_num_features(num_features)
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be in [0, 1] or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        register_affine(self, affine, bias, num_features)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    @staticmethod
    def _check_num_features(num_features):
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"`num_features` must be a positive int, got {num_features!r}")
        return num_features

    def reset_running_stats(self):
        """Reset ``running_mean`` to 0, ``running_var`` to 1 and ``num_batches_tracked``
        to 0 (when the statistics are tracked)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        r"""Reset the running statistics, ``weight`` :math:`\gamma` to 1 and ``bias``
        :math:`\beta` to 0."""
        self.reset_running_stats()
        reset_affine(self)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _ndims = ()

    def forward(self, input):
        x = F._tensor(input)
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__} expects "
                             f"{' or '.join(map(str, self._ndims))}-d input, got shape "
                             f"{x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got input with "
                             f"{x.shape[1]} channels (shape {x.shape})")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation over (N, C) or (N, C, L) input:
    :math:`y = \gamma (x - \mathrm E[x]) / \sqrt{\mathrm{Var}[x] + \epsilon} + \beta`
    (see :func:`qlearn.nn.functional.batch_norm`).

    >>> from qlearn import nn
    >>> bn = nn.BatchNorm1d(3)
    >>> bn(np.random.default_rng(0).normal(size=(8, 3))).shape
    (8, 3)
    """
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation over (N, C, H, W) input, per channel:
    :math:`y = \gamma (x - \mathrm E[x]) / \sqrt{\mathrm{Var}[x] + \epsilon} + \beta`.
    In training mode the batch statistics normalise and ``running_mean`` /
    ``running_var`` follow them with ``momentum`` (0.1; unbiased variance); in eval
    mode the running statistics normalise.

    >>> from qlearn import nn
    >>> bn = nn.BatchNorm2d(2)
    >>> _ = bn(np.random.default_rng(0).normal(size=(4, 2, 3, 3)))
    >>> int(bn.num_batches_tracked), bn.running_mean.shape
    (1, (2,))
    """
    _ndims = (4,)


class BatchNorm3d(_BatchNorm):
    r"""Batch normalisation over (N, C, D, H, W) input, per channel:
    :math:`y = \gamma (x - \mathrm E[x]) / \sqrt{\mathrm{Var}[x] + \epsilon} + \beta`,
    as :class:`BatchNorm2d` with one more spatial dimension.

    >>> from qlearn import nn
    >>> bn = nn.BatchNorm3d(2)
    >>> bn(np.random.default_rng(0).normal(size=(2, 2, 3, 3, 3))).shape
    (2, 2, 3, 3, 3)
    """
    _ndims = (5,)
