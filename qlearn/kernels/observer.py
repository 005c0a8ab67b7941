r"""Observer kernels (the only importer of ``qlearn._ext._observer``).

Array level, under :mod:`qlearn.quantization.observer` and
:mod:`qlearn.quantization.calibrators`, which check the user's data.  Inputs are made
C-contiguous float32 (float64 for the histograms of the searches) here; the min/max
reductions and the histogram take the SIMD path (the SSE2 loops, or on
:attr:`~qlearn.kernels.simd.Simd.GENERIC` their plain C twins) and the thread count from
:mod:`qlearn.kernels.simd` and :mod:`qlearn.kernels.threads`, and report NaN.  Results
do not depend on either.

Examples
--------
>>> import numpy as np
>>> from qlearn.kernels import observer as ko
>>> ko.minmax(np.array([3.0, -1.0, np.nan, 2.0], np.float32))
(-1.0, 3.0, True)
"""
import numpy as np

from .._ext import _observer
from . import simd as _simd
from . import threads as _threads
from .quantize import channel_view_shape

__all__ = ["minmax", "minmax_per_channel", "histc", "quantization_error",
           "non_linear_param_search", "entropy_search", "upscale_histogram"]


def _f32(a):
    return np.asarray(a, dtype=np.float32, order="C")


def minmax(x, num_threads=None):
    """``(min, max, has_nan)`` of a non-empty array, NaN skipped (Python floats, bool)."""
    return _observer.minmax(_f32(x).reshape(-1), _simd.active(),
                            _threads.resolve_openmp(num_threads))


def minmax_per_channel(x, axis, out_min, out_max, num_threads=None):
    """``out_min[c]``, ``out_max[c]``: min and max of the slice ``c`` of ``x`` along
    ``axis`` (float32 arrays of ``x.shape[axis]``).  Returns True if ``x`` held NaN."""
    x = _f32(x)
    return bool(_observer.minmax_per_channel(
        x.reshape(channel_view_shape(x.shape, axis)), out_min, out_max, _simd.active(),
        _threads.resolve_openmp(num_threads)))


def histc(x, left, right, counts, num_threads=None):
    """``counts[b] +=`` the number of ``x`` in bin ``b`` of ``[left, right]`` (int64
    ``counts``, as ``torch.histc``: the last bin includes its right edge)."""
    _observer.histc(_f32(x).reshape(-1), np.float32(left), np.float32(right), counts,
                    _simd.active(), _threads.resolve_openmp(num_threads))


def quantization_error(hist, bin_width, start_bin, end_bin, dst_nbins):
    """HistogramObserver's L2 error of clipping ``hist`` to bins ``[start_bin, end_bin]``."""
    return _observer.quantization_error(_f32(hist), bin_width, start_bin, end_bin,
                                        dst_nbins)


def non_linear_param_search(hist, bin_width, dst_nbins):
    """HistogramObserver's search: the ``(start_bin, end_bin)`` of least L2 error."""
    return _observer.non_linear_param_search(_f32(hist), bin_width, dst_nbins)


def entropy_search(hist, levels, start):
    """The bin count ``i`` in ``[start, bins]`` of least KL divergence (EntropyObserver)."""
    return _observer.entropy_search(np.ascontiguousarray(hist, np.float64), levels, start)


def upscale_histogram(hist, orig_min, orig_max, update_min, update_max, rate, out):
    """``hist`` over ``[orig_min, orig_max]`` re-binned onto ``len(out)`` bins over
    ``[update_min, update_max]``, upsampled ``rate`` times (HistogramObserver)."""
    _observer.upscale_histogram(np.ascontiguousarray(hist, np.float64),
                                np.float32(orig_min), np.float32(orig_max),
                                np.float32(update_min), np.float32(update_max), rate, out)
