r"""Batch-norm folding: one affine layer that computes what a layer and a BatchNorm do.

In eval mode a batch norm is a fixed per-channel affine map of its input,
:math:`y = \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`, with the running
mean :math:`\mu` and variance :math:`\sigma^2`.  After a convolution or a linear layer
(:math:`x = W a + b`) the two compose into one layer with

.. math::

   W'_o = W_o \, \frac{\gamma_o}{\sqrt{\sigma^2_o + \epsilon}}, \qquad
   b'_o = (b_o - \mu_o)\, \frac{\gamma_o}{\sqrt{\sigma^2_o + \epsilon}} + \beta_o

for each output channel :math:`o` (row :math:`o` of a linear weight, filter :math:`o`
of a conv weight).  The operation order is PyTorch's (``torch.nn.utils.fusion``), in
float32, so the folded weights are the same numbers.
"""
import copy

import numpy as np

from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]


def _f32(x):
    return None if x is None else np.asarray(getattr(x, "data", x), dtype=np.float32)


def _rsqrt(running_var, eps):
    # 1 / sqrt(var + eps) rounded twice in float32, as torch.rsqrt on the CPU
    return np.float32(1.0) / np.sqrt(running_var + np.float32(eps))


def _check_eval(layer, bn, who):
    for m, role in ((layer, "the layer"), (bn, "the batch norm")):
        if m.training:
            raise ValueError(f"{who} folds the batch norm's running statistics, so both "
                             f"modules must be in eval mode; {role} "
                             f"({type(m).__name__}) is in training mode: call .eval() "
                             f"first (or fuse with fuse_modules_qat for "
                             f"quantization-aware training)")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{who}: the batch norm has no running statistics "
                         f"(track_running_stats=False), there is nothing to fold")


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    r"""The folded ``(weight, bias)`` of a convolution followed by a batch norm.

    .. math::

       W' = W \, \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}, \qquad
       b' = (b - \mu)\, \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}} + \beta

    per output channel (axis 0 of the weight; axis 1 with ``transpose``, the layout of a
    transposed convolution).  :math:`W` is ``conv_w``, :math:`b` ``conv_b`` (``None``:
    zero), :math:`\mu` ``bn_rm``, :math:`\sigma^2` ``bn_rv``, :math:`\epsilon` ``bn_eps``,
    :math:`\gamma` ``bn_w`` (``None``: one), :math:`\beta` ``bn_b`` (``None``: zero).

    Returns
    -------
    (Parameter, Parameter)
        The new weight and bias (float32), each requiring gradients as ``conv_w`` does.

    Examples
    --------
    >>> from qlearn.nn.utils.fusion import fuse_conv_bn_weights
    >>> w, b = fuse_conv_bn_weights(np.ones((2, 1, 1, 1)), None, np.array([1.0, 0.0]),
    ...                             np.array([3.0, 0.0]), 1.0, np.array([4.0, 1.0]),
    ...                             np.array([0.5, 0.0]))
    >>> w.data.ravel(), b.data          # gamma / sqrt(var + eps) = 4 / 2 and 1 / 1
    (array([2., 1.], dtype=float32), array([-1.5,  0. ], dtype=float32))
    """
    w = _f32(conv_w)
    rm, rv = _f32(bn_rm), _f32(bn_rv)
    b = np.zeros_like(rm) if conv_b is None else _f32(conv_b)
    gamma = np.ones_like(rm) if bn_w is None else _f32(bn_w)
    beta = np.zeros_like(rm) if bn_b is None else _f32(bn_b)
    rsqrt = _rsqrt(rv, bn_eps)
    shape = [1] * w.ndim
    shape[1 if transpose else 0] = -1
    fused_w = w * (gamma * rsqrt).reshape(shape)
    fused_b = (b - rm) * rsqrt * gamma + beta
    requires_grad = getattr(conv_w, "requires_grad", True)
    return (Parameter(fused_w.astype(np.float32), requires_grad),
            Parameter(fused_b.astype(np.float32), requires_grad))


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    r"""The folded ``(weight, bias)`` of a linear layer followed by a batch norm.

    .. math::

       W'_{o,:} = W_{o,:}\, s_o, \quad b'_o = (b_o - \mu_o)\, s_o + \beta_o, \qquad
       s_o = \frac{\gamma_o}{\sqrt{\sigma^2_o + \epsilon}}

    (symbols as in :func:`fuse_conv_bn_weights`; the scale :math:`s` is formed first, as
    PyTorch's function does).

    Examples
    --------
    >>> from qlearn.nn.utils.fusion import fuse_linear_bn_weights
    >>> w, b = fuse_linear_bn_weights(np.ones((1, 3)), np.array([2.0]), np.array([1.0]),
    ...                               np.array([0.0]), 0.25, np.array([1.0]),
    ...                               np.array([0.0]))
    >>> w.data, b.data                 # s = 1 / sqrt(0.25) = 2
    (array([[2., 2., 2.]], dtype=float32), array([2.], dtype=float32))
    """
    w = _f32(linear_w)
    rm, rv = _f32(bn_rm), _f32(bn_rv)
    b = np.zeros_like(rm) if linear_b is None else _f32(linear_b)
    gamma = np.ones_like(rm) if bn_w is None else _f32(bn_w)
    beta = np.zeros_like(rm) if bn_b is None else _f32(bn_b)
    bn_scale = gamma * _rsqrt(rv, bn_eps)
    fused_w = w * bn_scale[:, None]
    fused_b = (b - rm) * bn_scale + beta
    requires_grad = getattr(linear_w, "requires_grad", True)
    return (Parameter(fused_w.astype(np.float32), requires_grad),
            Parameter(fused_b.astype(np.float32), requires_grad))


def fuse_conv_bn_eval(conv, bn, transpose=False):
    r"""A new ``Conv2d`` computing ``bn(conv(x))`` of two eval-mode modules.

    The weight and bias are folded with :func:`fuse_conv_bn_weights`:

    .. math::

       W' = W \, \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}, \qquad
       b' = (b - \mu)\, \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}} + \beta

    where :math:`\mu, \sigma^2` are ``bn.running_mean``, ``bn.running_var``,
    :math:`\gamma, \beta` are ``bn.weight``, ``bn.bias`` and :math:`\epsilon` is
    ``bn.eps``.  The result always has a bias (:math:`b = 0` when ``conv`` had none).
    ``conv`` and ``bn`` are left unchanged.

    Parameters
    ----------
    conv : nn.Conv2d
        In eval mode.
    bn : nn.BatchNorm2d
        In eval mode, with running statistics.
    transpose : bool
        The weight's output channels are on axis 1 (a transposed convolution).

    Raises
    ------
    ValueError
        If either module is in training mode (batch statistics cannot be folded), the
        batch norm keeps no running statistics, or its ``num_features`` is neither the
        convolution's ``out_channels`` nor 1.

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_conv_bn_eval
    >>> conv, bn = nn.Conv2d(3, 4, 3).eval(), nn.BatchNorm2d(4).eval()
    >>> bn.running_mean[:] = [0.5, -1.0, 2.0, 0.0]; bn.running_var[:] = [4.0, 1.0, 0.25, 9.0]
    >>> fused = fuse_conv_bn_eval(conv, bn)
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 5, 5))
    >>> bool(np.allclose(fused(x).numpy(), bn(conv(x)).numpy(), atol=1e-5))
    True
    """
    _check_eval(conv, bn, "fuse_conv_bn_eval")
    out = getattr(conv, "out_channels", None)
    if out is not None and bn.num_features not in (out, 1):
        raise ValueError(f"fuse_conv_bn_eval: `bn.num_features` must equal the "
                         f"convolution's `out_channels` ({out}) or be 1, got "
                         f"{bn.num_features}")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
        bn.bias, transpose)
    return fused


def fuse_linear_bn_eval(linear, bn):
    r"""A new ``Linear`` computing ``bn(linear(x))`` of two eval-mode modules.

    Folded with :func:`fuse_linear_bn_weights`:
    :math:`W' = W \gamma / \sqrt{\sigma^2 + \epsilon}`,
    :math:`b' = (b - \mu) \gamma / \sqrt{\sigma^2 + \epsilon} + \beta` per output
    feature.  ``bn.num_features`` must equal ``linear.out_features`` (or be 1, a batch
    norm that broadcasts over every feature).

    Examples
    --------
    >>> from qlearn import nn
    >>> from qlearn.quantization import fuse_linear_bn_eval
    >>> lin, bn = nn.Linear(4, 3).eval(), nn.BatchNorm1d(3).eval()
    >>> bn.running_var[:] = [0.5, 2.0, 4.0]
    >>> x = np.random.default_rng(0).normal(size=(6, 4))
    >>> bool(np.allclose(fuse_linear_bn_eval(lin, bn)(x).numpy(), bn(lin(x)).numpy(),
    ...                  atol=1e-6))
    True
    """
    _check_eval(linear, bn, "fuse_linear_bn_eval")
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise ValueError(f"fuse_linear_bn_eval: `bn.num_features` must equal "
                         f"`linear.out_features` ({linear.out_features}) or be 1, got "
                         f"{bn.num_features}")
    fused = copy.deepcopy(linear)
    rm, rv, gamma, beta = bn.running_mean, bn.running_var, bn.weight, bn.bias
    if bn.num_features == 1 and linear.out_features != 1:
        n = linear.out_features
        rm, rv = np.broadcast_to(rm, (n,)), np.broadcast_to(rv, (n,))
        gamma = None if gamma is None else np.broadcast_to(_f32(gamma), (n,))
        beta = None if beta is None else np.broadcast_to(_f32(beta), (n,))
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, rm, rv, bn.eps, gamma, beta)
    return fused
