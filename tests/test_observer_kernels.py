"""The observer kernels (pyx/_observer.pyx) against plain NumPy references."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from qlearn._ext import _observer as K
from qlearn.kernels import simd as simd_paths
from qlearn.reference import (
    histc_ref,
    quantization_error_ref,
    upscale_histogram_ref,
)

# the kernels' ``simd`` argument: the plain C loops, or the SSE2 loops (any SIMD path)
PLAIN, SSE2 = int(simd_paths.Simd.GENERIC), int(simd_paths.cpu_paths()[-1])


SIZES = [1, 3, 15, 16, 17, 65535, 65536, 65537, 200_003]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("generic", [SSE2, PLAIN], ids=["sse2", "plain"])
def test_minmax(n, generic, num_threads, rng):
    x = rng.standard_normal(n).astype(np.float32)
    lo, hi, nan = K.minmax(x, generic, num_threads)
    assert (lo, hi, nan) == (float(x.min()), float(x.max()), False)


@pytest.mark.parametrize("pos", [0, 7, 16, 65540, 99_999])
@pytest.mark.parametrize("generic", [SSE2, PLAIN], ids=["sse2", "plain"])
def test_minmax_reports_nan_anywhere(pos, generic, num_threads):
    x = np.zeros(100_000, np.float32)
    x[pos] = np.nan
    assert K.minmax(x, generic, num_threads)[2] is True


@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 17), 1),
                                        ((7, 5, 3), 2), ((1000, 3), 1), ((3, 70000), 0),
                                        ((4, 8, 16, 16), 1), ((2, 3, 5, 7), 3),
                                        ((40000, 5), 0), ((1, 1), 0),
                                        ((2, 64, 1024), 1), ((300, 4096), 1),
                                        ((100, 3000, 2), 1), ((70000, 5), 1),
                                        ((5, 3, 7, 3000), 3), ((20000, 7), 0)])
@pytest.mark.parametrize("generic", [SSE2, PLAIN], ids=["sse2", "plain"])
def test_minmax_per_channel(shape, axis, generic, num_threads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:]))
    lo = np.full(shape[axis], 123.0, np.float32)   # sentinel: every entry must be written
    hi = np.full(shape[axis], 123.0, np.float32)
    nan = K.minmax_per_channel(x.reshape(outer, shape[axis], inner), lo, hi, generic,
                               num_threads)
    other = tuple(i for i in range(len(shape)) if i != axis)
    assert_array_equal(lo, x.min(axis=other))
    assert_array_equal(hi, x.max(axis=other))
    assert nan is False


def test_minmax_per_channel_nan(num_threads):
    x = np.zeros((3, 4, 20), np.float32)
    x[2, 1, 19] = np.nan
    lo, hi = np.empty(4, np.float32), np.empty(4, np.float32)
    assert K.minmax_per_channel(x, lo, hi, SSE2, num_threads) is True
    y = np.zeros((3, 4, 1), np.float32)
    y[1, 3, 0] = np.nan
    assert K.minmax_per_channel(y, lo, hi, SSE2, num_threads) is True


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("bins", [1, 7, 2048])
@pytest.mark.parametrize("generic", [SSE2, PLAIN], ids=["sse2", "plain"])
def test_histc(n, bins, generic, num_threads, rng):
    x = rng.standard_normal(n).astype(np.float32)
    left, right = np.float32(-1.5), np.float32(x.max())  # some elements fall outside
    counts = np.zeros(bins, np.int64)
    K.histc(x, left, right, counts, generic, num_threads)
    assert_array_equal(counts, histc_ref(x, bins, left, right))


@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=300),
       st.integers(1, 64))
def test_histc_property(values, bins):
    x = np.array(values, np.float32)
    lo, hi = np.float32(x.min()), np.float32(x.max())
    if lo == hi:
        hi = np.float32(lo + 1)
    counts = np.zeros(bins, np.int64)
    K.histc(x, lo, hi, counts, SSE2, 2)
    assert_array_equal(counts, histc_ref(x, bins, lo, hi))
    assert counts.sum() == x.size


@pytest.mark.parametrize("start,end", [(0, 2047), (10, 2000), (500, 600), (0, 0), (7, 8)])
def test_quantization_error(start, end, rng):
    hist = rng.integers(0, 1000, 2048).astype(np.float32)
    got = K.quantization_error(hist, 0.013, start, end, 256)
    assert got == pytest.approx(quantization_error_ref(hist, 0.013, start, end, 256),
                                rel=1e-5)


@pytest.mark.parametrize("seed", range(8))
def test_non_linear_search_matches_torch(seed, torch_mod):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(5000) * rng.uniform(0.1, 5)
    hist = np.histogram(np.concatenate([x, [x.max() * 4]]), bins=2048)[0].astype(np.float32)
    from torch.ao.quantization.observer import HistogramObserver
    obs = HistogramObserver()
    obs.histogram = torch_mod.from_numpy(hist)
    obs.min_val, obs.max_val = torch_mod.tensor(-2.0), torch_mod.tensor(30.0)
    t_min, t_max = obs._non_linear_param_search()
    start, end = K.non_linear_param_search(hist, 32.0 / 2048, 256)
    width = np.float32(32.0) / np.float32(2048)
    assert np.float32(-2.0) + width * np.float32(start) == t_min.item()
    assert np.float32(-2.0) + width * np.float32(end + 1) == t_max.item()


@pytest.mark.parametrize("bins", [1, 7, 2048])
@pytest.mark.parametrize("ranges", [(-1.0, 1.0, -3.0, 1.5), (0.0, 2.0, 0.0, 2.5),
                                    (0.25, 0.5, -10.0, 40.0), (1e-3, 2e-3, -1e-3, 2e-3)])
def test_upscale_histogram(bins, ranges, rng):
    hist = rng.integers(0, 50, bins).astype(np.float64)
    out = np.full(bins, -1.0)
    K.upscale_histogram(hist, *map(np.float32, ranges), 16, out)
    assert_array_equal(out, upscale_histogram_ref(hist, *ranges))
    assert out.sum() == pytest.approx(hist.sum())


def test_upscale_histogram_matches_torch(torch_mod, rng):
    from torch.ao.quantization.observer import HistogramObserver
    obs = HistogramObserver()
    hist = rng.integers(0, 50, 2048).astype(np.float32)
    r = [torch_mod.tensor(v) for v in (-1.0, 1.0, -3.0, 1.5)]
    theirs = obs._upscale_histogram(torch_mod.from_numpy(hist), *r).numpy()
    out = np.empty(2048)
    K.upscale_histogram(hist.astype(np.float64), *map(np.float32, (-1.0, 1.0, -3.0, 1.5)),
                        16, out)
    # torch's vectorised linspace may round an edge differently: compare the CDFs
    assert np.abs(np.cumsum(out) - np.cumsum(theirs)).max() <= 1.0
