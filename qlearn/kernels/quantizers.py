r"""Kernels of Distiller's quantizers (the only importer of ``qlearn._ext._quantizers``).

Array level, under :mod:`qlearn.quantizers._ste` (the autograd functions).  Inputs are
made flat C-contiguous float32 here, outputs are caller-allocated float32 arrays of the
same size; the thread count and the SIMD path are resolved here, and the forward
kernels report NaN or infinity in the input.  NumPy twins: :func:`qlearn.reference.clip_round_ref`
and its siblings.

Examples
--------
>>> import numpy as np
>>> from qlearn.kernels import quantizers as kz
>>> x = np.array([-0.3, 0.26, 0.8, 2.0], np.float32)
>>> out = np.empty(4, np.float32)
>>> kz.clip_round(x, out, 0.0, 1.0, 1.0, 3.0)
False
>>> out
array([0.        , 0.33333334, 0.6666667 , 1.        ], dtype=float32)
"""
import numpy as np

from .._ext import _quantizers
from . import simd as _simd
from . import threads as _threads

__all__ = ["clip_round", "clip_backward", "pact_backward", "dorefa_weight_forward",
           "dorefa_weight_backward"]


def _flat(a):
    return np.asarray(a, dtype=np.float32, order="C").reshape(-1)


def clip_round(x, out, lo, hi, unit, levels, num_threads=None):
    r"""``out = float32(nearbyint(clamp(x, lo, hi) levels / unit) unit / levels)``, in
    float64 (ties to even).  Returns True if ``x`` held NaN or infinity."""
    return bool(_quantizers.clip_round(_flat(x), out.reshape(-1), lo, hi, unit, levels,
                                       _simd.active(), _threads.resolve_openmp(num_threads)))


def clip_backward(x, grad, out, lo, hi, hi_inclusive=True, num_threads=None):
    r"""``out = grad`` where :math:`lo \le x \le hi` (``x < hi`` unless ``hi_inclusive``),
    else 0: the clip's gradient, with the straight-through estimator for the rounding."""
    _quantizers.clip_backward(_flat(x), _flat(grad), out.reshape(-1), lo, hi, hi_inclusive,
                              _simd.active(), _threads.resolve_openmp(num_threads))


def pact_backward(x, grad, out, alpha, num_threads=None):
    r"""PACT's gradients: ``out = grad`` where :math:`0 \le x < \alpha`, else 0; returns
    :math:`\partial L / \partial \alpha = \sum_{x \ge \alpha} grad` (float64, fixed
    order)."""
    return _quantizers.pact_backward(_flat(x), _flat(grad), out.reshape(-1), alpha,
                                     _simd.active(), _threads.resolve_openmp(num_threads))


def dorefa_weight_forward(w, t, out, levels, num_threads=None):
    r"""DoReFa's weights: ``t = tanh(w)``, ``out = 2 quantize_k(t / (2 max|t|) + 1/2) - 1``;
    returns ``(max|t|, bad)``, ``bad`` True if ``w`` held NaN or infinity."""
    big, bad = _quantizers.dorefa_weight_forward(_flat(w), t.reshape(-1), out.reshape(-1),
                                                 levels, _threads.resolve_openmp(num_threads))
    return big, bool(bad)


def dorefa_weight_backward(t, grad, out, big, num_threads=None):
    r"""The direct part of DoReFa's weight gradient, ``out = grad (1 - t^2) / M``;
    returns :math:`\sum_i grad_i t_i` (the term through ``M = max|t|``)."""
    return _quantizers.dorefa_weight_backward(_flat(t), _flat(grad), out.reshape(-1), big,
                                              _threads.resolve_openmp(num_threads))
