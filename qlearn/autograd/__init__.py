"""A small reverse-mode autograd over NumPy (see the "Training from scratch" docs page).

:class:`Tensor` holds an array (float32 unless made with another dtype: integer and
bool tensors never require gradients) and, when computed from tensors that require
gradients, the :class:`~qlearn.autograd.function.Node` that made it.
:meth:`Tensor.backward` walks those nodes in reverse topological order.  New operations
are :class:`Function` subclasses with a ``forward`` and a ``backward`` that compute on
NumPy arrays.
"""
from . import ops
from .function import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck
from ._restart import manual_seed
from .tensor import Size, Tensor, cat, maximum, minimum, stack, tensor, where
from . import factories, torch_functions
from .factories import *  # noqa: F401,F403 (zeros, ones, rand, arange, ...)
from .torch_functions import *  # noqa: F401,F403 (abs, round, clamp, max, ...)
from .typeinfo import finfo, iinfo

__all__ = ["Function", "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
           "set_grad_enabled", "cat", "stack", "where", "maximum", "minimum", "gradcheck",
           "manual_seed", "ops", "iinfo", "finfo", "Size"]
__all__ += factories.__all__ + torch_functions.__all__
