r"""Float convolution and pooling kernels (the only importer of ``qlearn._ext._im2col``
and ``qlearn._ext._pool``).

Array level, under :mod:`qlearn.nn.functional`, which checks shapes and geometry.
Float32 or float64 inputs are made C-contiguous here and the thread count resolved;
outputs are caller-allocated arrays of the input's dtype.  A window's geometry is
``(KH, KW)`` kernel, ``(SH, SW)`` stride, ``(PH, PW)`` padding, ``(DH, DW)`` dilation.
Results do not depend on the thread count.  NumPy twins: :func:`qlearn.reference.im2col_ref`,
:func:`~qlearn.reference.max_pool2d_ref`, :func:`~qlearn.reference.avg_pool2d_ref`.

Examples
--------
>>> import numpy as np
>>> from qlearn.kernels import float_conv as kc
>>> x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
>>> cols = np.empty((4, 4), np.float32)
>>> kc.im2col(x, cols, 2, 2, 1, 1, 0, 0, 1, 1)
>>> cols[0]
array([0., 1., 3., 4.], dtype=float32)
"""
import numpy as np

from .._ext import _im2col, _pool
from . import threads as _threads

__all__ = ["im2col", "col2im", "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d"]


def im2col(x, cols, KH, KW, SH, SW, PH, PW, DH, DW, num_threads=None):
    """``cols[(c KH + i) KW + j, (n OH + oh) OW + ow] = x[n, c, oh SH - PH + i DH,
    ow SW - PW + j DW]`` (0 in the padding), for an (N, C, H, W) ``x``."""
    _im2col.im2col(np.ascontiguousarray(x), cols, KH, KW, SH, SW, PH, PW, DH, DW,
                   _threads.resolve_openmp(num_threads))


def col2im(cols, dx, KH, KW, SH, SW, PH, PW, DH, DW, num_threads=None):
    """The adjoint of :func:`im2col`: every column entry added back to the input pixel it
    was read from, into the (N, C, H, W) ``dx`` (overwritten)."""
    _im2col.col2im(np.ascontiguousarray(cols), dx, KH, KW, SH, SW, PH, PW, DH, DW,
                   _threads.resolve_openmp(num_threads))


def max_pool2d_forward(x, y, idx, KH, KW, SH, SW, PH, PW, DH, DW, num_threads=None):
    """``y`` = the max of each window, ``idx`` its flat position ``h W + w`` (the first
    arg-max; padding counts as minus infinity)."""
    _pool.max_pool2d_forward(np.ascontiguousarray(x), y, idx, KH, KW, SH, SW, PH, PW, DH,
                             DW, _threads.resolve_openmp(num_threads))


def max_pool2d_backward(g, idx, dx, num_threads=None):
    """``dx[n, c, idx[n, c, oh, ow]] += g[n, c, oh, ow]`` into the (N, C, H W) ``dx``."""
    _pool.max_pool2d_backward(np.ascontiguousarray(g), idx, dx,
                              _threads.resolve_openmp(num_threads))


def avg_pool2d(x, y, g, dx, backward, KH, KW, SH, SW, PH, PW, count_include_pad, divisor,
               adaptive, num_threads=None):
    """Average pooling: forward ``y = mean(window of x)``, or (``backward``) ``dx`` = each
    ``g`` spread evenly over its window; the divisor as PyTorch's (``divisor`` if
    nonzero, else the window, counting padding when ``count_include_pad``)."""
    _pool.avg_pool2d(np.ascontiguousarray(x), y, np.ascontiguousarray(g), dx, backward,
                     KH, KW, SH, SW, PH, PW, count_include_pad, divisor, adaptive,
                     _threads.resolve_openmp(num_threads))
