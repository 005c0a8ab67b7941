"""Regression tests for inputs that once crashed qlearn or gave a silent wrong answer.

Each test names what used to happen.  The broad random search lives in tests/fuzz/.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd
from qlearn._ext import _observer as K
from qlearn.kernels import simd as simd_paths
from qlearn.quantization.observer import HistogramObserver, MinMaxObserver
from qlearn.quantization.qparams import calculate_qparams
from qlearn.reference import histc64_ref

F32_MAX = float(np.finfo(np.float32).max)

# the kernels' ``simd`` argument: the plain C loops, or the SSE2 loops (any SIMD path)
PLAIN, SSE2 = int(simd_paths.Simd.GENERIC), int(simd_paths.cpu_paths()[-1])


# --- histogram over a range near the float32 limits ---------------------------------------
@pytest.mark.parametrize("generic", [SSE2, PLAIN], ids=["sse2", "plain"])
@pytest.mark.parametrize("lo,hi", [(-F32_MAX, F32_MAX), (-1e38, 1e38), (0.0, F32_MAX),
                                   (-3e38, 1.0)])
def test_histc_wide_range_counts_every_value(generic, lo, hi, num_threads):
    # was: an out-of-bounds write (SSE2 loop; inf/inf = NaN cast to INT_MIN) and every
    # value in bin 0 (plain loop)
    rng = np.random.default_rng(0)
    x = rng.uniform(lo / 2, hi / 2, 1003).astype(np.float32)
    x[:2] = [lo, hi]
    counts = np.zeros(64, np.int64)
    K.histc(x, np.float32(lo), np.float32(hi), counts, generic, num_threads)
    np.testing.assert_array_equal(counts, histc64_ref(x, np.float32(lo), np.float32(hi), 64))


def test_histogram_observer_wide_range_gives_finite_qparams():
    x = np.array([-3e38, 0, 1, 3e38] * 100, np.float32)
    obs = HistogramObserver()
    obs(x)
    assert obs.histogram.sum() == x.size
    np.testing.assert_array_equal(np.nonzero(obs.histogram)[0], [0, 1024, 2047])
    scale, zp = obs.calculate_qparams()
    assert np.isfinite(scale).all() and scale[0] > 0
    assert 0 <= zp[0] <= 255
    # a second, wider batch re-bins the old histogram (the float64 path)
    obs(np.array([-F32_MAX, F32_MAX], np.float32))
    assert obs.histogram.sum() == x.size + 2
    assert np.isfinite(obs.calculate_qparams()[0]).all()


@pytest.mark.parametrize("scale_by", [2.0 ** -60, 2.0 ** 40, 2.0 ** 100])
def test_histogram_search_is_scale_invariant(scale_by):
    # the L2 search overflowed (width ** 3) or underflowed for extreme but finite data;
    # scaling the data by a power of two must scale the result exactly
    x = np.random.default_rng(1).laplace(size=20_000).astype(np.float32)
    a, b = HistogramObserver(), HistogramObserver()
    a(x)
    b(x * np.float32(scale_by))
    lo_a, hi_a = a._non_linear_param_search()
    lo_b, hi_b = b._non_linear_param_search()
    assert lo_b == np.float32(lo_a * scale_by) and hi_b == np.float32(hi_a * scale_by)


def test_histogram_observer_shared_by_threads_counts_everything():
    # was: lost counts (two threads replacing the histogram at once)
    obs = HistogramObserver(bins=256)
    rng = np.random.default_rng(2)
    batches = [rng.normal(scale=1 + i % 5, size=5000).astype(np.float32) for i in range(40)]

    def feed(part):
        for x in part:
            obs(x)

    threads = [threading.Thread(target=feed, args=(batches[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert obs.histogram.sum() == pytest.approx(40 * 5000)


# --- observers: an infinite scale for finite data -----------------------------------------
def test_minmax_observer_wide_range_scale_is_finite():
    obs = MinMaxObserver()
    obs(np.array([-3e38, 3e38], np.float32))
    scale, zp = obs.calculate_qparams()
    assert scale[0] == np.float32(6e38 / 255)
    assert zp[0] == 128


def test_calculate_qparams_refuses_unstorable_scale():
    with pytest.raises(ValueError, match="exceeds the float32 maximum"):
        calculate_qparams(-3e38, 3e38, ql.qint8, ql.per_tensor_affine, 0, 1, 1e-7, True)
    with pytest.raises(ValueError, match="must be finite"):
        calculate_qparams(np.array([0.0, -np.inf]), np.array([1.0, 1.0]), ql.qint8,
                          ql.per_channel_affine, -128, 127)


# --- threads ------------------------------------------------------------------------------
def test_huge_omp_num_threads_does_not_break_import():
    env = dict(os.environ, OMP_NUM_THREADS="99999999999")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", "import qlearn; print(qlearn.get_num_threads())"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 1 <= int(out.stdout) <= max(64, 4 * os.cpu_count())


# --- the QTensor constructor --------------------------------------------------------------
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(axis=5), ValueError, "`axis` must be in"),
    (dict(scales=[1.0]), ValueError, "one entry per channel"),
    (dict(zero_points=[0, 0]), ValueError, "one entry per channel"),
    (dict(scales=[1.0, -1.0, 1.0]), ValueError, "`scales` must be positive"),
    (dict(zero_points=[0, 300, 0]), ValueError, r"`zero_points` must be in \[0, 255\]"),
    (dict(scales=None), TypeError, "`scales`"),
    (dict(int_data=np.zeros((2, 3), np.int8)), TypeError, "`int_data` must have dtype uint8"),
    (dict(int_data=np.zeros((2, 3), ">u4")), TypeError, "`int_data` must have dtype"),
    (dict(int_data=[[0, 0, 0]]), TypeError, "`int_data` must be a NumPy array"),
    (dict(int_data=np.zeros((), np.uint8)), ValueError, "at least one dimension"),
    (dict(dtype=np.uint8), TypeError, "`dtype` must be"),
    (dict(qscheme="per_channel_affine"), TypeError, "`qscheme` must be"),
])
def test_qtensor_constructor_validates_per_channel(kwargs, exc, match):
    args = dict(int_data=np.zeros((2, 3), np.uint8), dtype=ql.quint8,
                qscheme=ql.per_channel_affine, scales=[1.0, 1.0, 1.0],
                zero_points=[0, 0, 0], axis=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ql.QTensor(**args)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(scale=0.0), ValueError, "`scale` must be a positive finite"),
    (dict(scale=float("nan")), ValueError, "`scale` must be a positive finite"),
    (dict(scale=1e39), ValueError, "`scale`"),
    (dict(zero_point=256), ValueError, r"`zero_point` must be in \[0, 255\]"),
    (dict(axis=0), ValueError, "are for per-channel qschemes"),
])
def test_qtensor_constructor_validates_per_tensor(kwargs, exc, match):
    args = dict(int_data=np.zeros((2, 3), np.uint8), dtype=ql.quint8,
                qscheme=ql.per_tensor_affine, scale=0.5, zero_point=3)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ql.QTensor(**args)


# --- QTensor views and indexing -----------------------------------------------------------
@pytest.fixture
def per_channel():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    return ql.quantize_per_channel(x, [0.1, 0.2, 0.3], [0, 1, 2], axis=1, dtype=ql.quint8)


@pytest.mark.parametrize("d0,d1", [(-2, -1), (-1, -2), (1, -1), (-3, 1), (0, -2)])
def test_transpose_negative_dims_follow_the_channel_axis(per_channel, d0, d1):
    # was: the channel axis not moved for negative dims (C's % with cdivision)
    t = per_channel.transpose(d0, d1)
    np.testing.assert_array_equal(t.dequantize(), np.swapaxes(per_channel.dequantize(), d0, d1))


@pytest.mark.parametrize("dims", [(-1, -2, -3), (2, 0, 1), (-2, 0, -1)])
def test_permute_negative_dims(per_channel, dims):
    t = per_channel.permute(*dims)
    np.testing.assert_array_equal(t.dequantize(), np.transpose(per_channel.dequantize(), dims))


@pytest.mark.parametrize("dims", [(0, 1), (0, 1, 1), (0, 1, 3), (0, 1, True)])
def test_permute_refuses_non_permutations(per_channel, dims):
    with pytest.raises(ValueError, match="`dims` must be a permutation"):
        per_channel.permute(*dims)


@pytest.mark.parametrize("key", [True, (slice(None), True), np.True_, (0, False)])
def test_boolean_index_on_per_channel_is_refused(per_channel, key):
    # was: True read as channel 1 while NumPy inserted a new axis
    with pytest.raises(TypeError, match="basic indexing only"):
        per_channel[key]


# --- zero points and scales at the edges ---------------------------------------------------
def test_uint64_zero_points_are_range_checked_before_conversion():
    x = np.zeros((3, 2), np.float32)
    zp = np.array([2 ** 64 - 1, 0, 0], np.uint64)    # wrapped to -1 (in qint8's range)
    with pytest.raises(ValueError, match=r"got 18446744073709551615 at channel 0"):
        ql.quantize_per_channel(x, [1.0] * 3, zp, axis=0, dtype=ql.qint8)
    q = ql.quantize_per_channel(x, [1.0] * 3, np.array([1, 2, 3], np.uint64), 0, ql.qint8)
    np.testing.assert_array_equal(q.q_per_channel_zero_points(), [1, 2, 3])


@pytest.mark.parametrize("scale", [1e39, 3.5e38, float(np.nextafter(F32_MAX, np.inf))])
def test_scale_above_float32_max_is_refused(scale):
    # was: float32(scale) = inf, inv_scale = 0: every value quantized to Z, dequantized
    # to NaN (0 * inf)
    with pytest.raises(ValueError, match="`scale` must be at most the float32 maximum"):
        ql.quantize_per_tensor([1.0, 3e38], scale, 0, ql.qint8)
    with pytest.raises(ValueError, match="`scales` must be positive finite numbers usable"):
        ql.quantize_per_channel(np.ones((2, 2)), [scale, 1.0], [0, 0], 0, ql.qint8)


@pytest.mark.parametrize("scale", [F32_MAX, 1e38, 1e-38, 3e-39])
def test_extreme_valid_scales_quantize_as_the_reference(scale):
    from qlearn import reference
    x = np.array([0.0, 1.0, -1.0, 3e38, -3e38, 1e-30, 2.5e-38], np.float32)
    for dtype in (ql.quint8, ql.qint8, ql.qint32):
        q = ql.quantize_per_tensor(x, scale, 0 if dtype.is_signed else 3, dtype)
        ref = reference.quantize_per_tensor_ref(x, scale, q.q_zero_point(), dtype.quant_min,
                                                dtype.quant_max, dtype is not ql.qint32)
        np.testing.assert_array_equal(q.int_repr(), ref)
        deq = reference.dequantize_per_tensor_ref(q.int_repr(), scale, q.q_zero_point())
        np.testing.assert_array_equal(q.dequantize(), deq)


# --- the fake-quant float32 fast path at the 2^24 boundary ----------------------------------
@pytest.mark.parametrize("simd", [True, False], ids=["simd", "generic"])
@pytest.mark.parametrize("qmin,qmax,zp", [(-2 ** 24, 2 ** 24, -2 ** 24 + 1),
                                          (-2 ** 24, 2 ** 24, 2 ** 24 - 1),
                                          (-2 ** 24, 2 ** 24 - 1, 3),
                                          (0, 2 ** 24, 1)])
def test_fake_quant_fast_path_boundary(simd, qmin, qmax, zp):
    # the float32 path was taken for |qmin|, |qmax| <= 2^24, but q - Z then reaches
    # 2^25 - 1, which float32 rounds: the documented arithmetic is (q - Z) in double
    from qlearn.kernels import simd as simd_paths
    with simd_paths.use(simd_paths.available()[-1] if simd else "generic"):
        scale = np.float32(1 / 3)
        x = np.float32([qmax, qmin, 0, 2 ** 26, -2 ** 26, 1e7, -1e7, 12345.5]) * scale
        x = np.concatenate([x] * 3)          # past one 8-wide vector
        got = ql.fake_quantize_per_tensor_affine(x, float(scale), zp, qmin, qmax).numpy()
        inv = np.float32(1) / scale
        t = np.rint(x * inv).astype(np.float64) + np.float32(zp)
        t = t.astype(np.float32).astype(np.float64)
        want = ((np.clip(t, qmin, qmax) - zp) * np.float64(scale)).astype(np.float32)
        np.testing.assert_array_equal(got, want)


# --- int8 operators with extreme but valid scales -------------------------------------------
def _qt(q, scale, zp, dtype=ql.quint8):
    return ql.QTensor(np.asarray(q, dtype.storage), dtype, ql.per_tensor_affine, scale, zp)


@pytest.mark.parametrize("sa,sb,so", [(1e20, 1e20, 1e38), (1e-20, 1e-20, 1e-38),
                                      (3e38, 3e38, 3e38), (1e-30, 1e-30, 1e-37)])
def test_qmul_extreme_scales(sa, sb, so):
    # was: Sa Sb overflowed (m = inf: NaN cast to int) or underflowed (m = 0: all Z)
    import qlearn.nn.quantized.functional as qF
    a = _qt([0, 1, 2, 3, 10, 255], sa, 2)
    b = _qt([5, 4, 3, 6, 2, 9], sb, 3)
    got = qF.mul(a, b, so, 7).int_repr()
    m = np.float64(np.float32(sa)) * np.float64(np.float32(sb)) / np.float64(np.float32(so))
    c = (a.int_repr().astype(np.float64) - 2) * (b.int_repr().astype(np.float64) - 3)
    want = np.clip(np.rint(c * m) + 7, 0, 255)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("sa,sb,so", [(3e38, 3e38, 1e38), (2e38, 1.0, 1e38)])
def test_qadd_extreme_scales(sa, sb, so):
    # was: S (q - Z) overflowed float32 and quantize raised "`input` must be finite"
    import qlearn.nn.quantized.functional as qF
    a = _qt([0, 1, 2, 3, 200], sa, 0)
    b = _qt([1, 1, 2, 0, 255], sb, 0)
    got = qF.add(a, b, so, 0).int_repr()
    r = (a.int_repr() * np.float64(np.float32(sa)) + b.int_repr() * np.float64(np.float32(sb)))
    np.testing.assert_array_equal(got, np.clip(np.rint(r / np.float64(np.float32(so))), 0, 255))


@pytest.mark.parametrize("b", [float("inf"), float("nan"), 1e300, "2", None, True])
def test_qadd_scalar_operand_is_checked(b):
    import qlearn.nn.quantized.functional as qF
    a = _qt([0, 1], 0.5, 0)
    with pytest.raises((TypeError, ValueError), match="`b`"):
        qF.add(a, b, 0.5, 0)


@pytest.mark.parametrize("sa,sw,so,bias", [(1e20, 1e20, 1e38, 1e38),
                                           (1e-20, 1e-20, 1e-38, 3e-39),
                                           (1e-22, 1e-22, 1e-38, 0.0)])
def test_linear_extreme_scales_and_bias(sa, sw, so, bias):
    # was: Sa Sw overflowed or underflowed float32 (mult inf / 0, bias_q inf / NaN)
    import qlearn.nn.quantized.functional as qF
    rng = np.random.default_rng(3)
    a = _qt(rng.integers(0, 256, (5, 16)), sa, 128)
    w = _qt(rng.integers(-5, 6, (3, 16)), sw, 0, ql.qint8)
    b = np.float32([bias, -bias, 0.0])
    got = qF.linear(a, w, b, so, 100).int_repr()
    acc = (a.int_repr().astype(np.int64) - 128) @ w.int_repr().astype(np.int64).T
    atws = np.float64(np.float32(sa)) * np.float64(np.float32(sw))
    x = (acc + b.astype(np.float64) / atws) * (atws / np.float64(np.float32(so)))
    want = np.clip(np.rint(x) + 100, 0, 255)
    assert np.abs(got.astype(np.int64) - want).max() <= 1   # float32 rounding of x


def test_linear_unrepresentable_constants_are_refused():
    import qlearn.nn.quantized.functional as qF
    a = _qt(np.ones((1, 4)), 3e38, 0)
    w = _qt(np.ones((2, 4)), 3e38, 0, ql.qint8)
    with pytest.raises(ValueError, match="requantization multiplier"):
        qF.linear(a, w, None, 1e-30, 0)
    a = _qt(np.ones((1, 4)), 1e-30, 0)
    w = _qt(np.ones((2, 4)), 1e-30, 0, ql.qint8)
    with pytest.raises(ValueError, match=r"`bias`\[0\]"):
        qF.linear(a, w, np.float32([1e30, 0]), 1.0, 0)


# --- found by the fuzz suite -----------------------------------------------------------------
@pytest.mark.parametrize("cls", ["MovingAverageMinMaxObserver",
                                 "MovingAveragePerChannelMinMaxObserver"])
def test_moving_average_of_opposite_extremes_is_finite(cls):
    # was: min + c (x_min - min) = 3e38 + 0.01 (-6e38 -> -inf) = -inf, an infinite scale
    from qlearn.quantization import observer
    obs = getattr(observer, cls)()
    obs(np.full((2, 2), F32_MAX, np.float32))
    obs(np.full((2, 2), -F32_MAX, np.float32))
    want = np.float32(F32_MAX + 0.01 * (-2 * F32_MAX))
    assert (np.asarray(obs.min_val) == want).all()
    scale, _ = obs.calculate_qparams()
    assert np.isfinite(scale).all()


def test_fused_moving_avg_fake_quantize_extremes():
    from qlearn.quantization.fake_quantize import FusedMovingAvgObsFakeQuantize
    fq = FusedMovingAvgObsFakeQuantize()
    fq(np.full(4, F32_MAX, np.float32))
    fq(np.full(4, -F32_MAX, np.float32))
    assert np.isfinite(fq.activation_post_process.min_val).all()
    assert np.isfinite(fq.scale).all()


def test_mse_observer_on_positive_data_with_few_bins():
    # was: candidate ranges [x_min, x_max k / K] below x_min: min_val > max_val raised
    from qlearn.quantization.calibrators import MSEObserver
    obs = MSEObserver(bins=1)
    obs(np.float32(1.0))
    obs(np.float32(0.5))
    scale, zp = obs.calculate_qparams()
    assert np.isfinite(scale).all() and scale[0] > 0 and zp[0] == 0


# --- errors from deep inside (OverflowError, MemoryError, ...) now name the argument ----------
def _ops():
    import qlearn.nn.quantized.functional as qF
    from qlearn.quantization import calibrators, observer
    from qlearn.quantizers import wrpn_width
    x = np.ones((1, 1, 4, 4), np.float32)
    q = ql.quantize_per_tensor(x, 0.1, 0, ql.quint8)
    w = ql.quantize_per_tensor(np.ones((1, 1, 3, 3)), 0.1, 0, ql.qint8)
    big = 10 ** 400
    return [
        ("`scale`", lambda: ql.quantize_per_tensor(x, big, 0, ql.quint8)),
        ("`scale`", lambda: qF.add(q, q, big, 0)),
        ("`b`", lambda: qF.add(q, big, 0.1, 0)),
        ("`averaging_constant`", lambda: observer.MovingAverageMinMaxObserver(
            averaging_constant=big)),
        ("`eps`", lambda: observer.MinMaxObserver(eps="a")),
        ("`bins`", lambda: observer.HistogramObserver(bins=10 ** 12)),
        ("`num_candidates`", lambda: calibrators.MSEObserver(num_candidates=10 ** 9)),
        ("`stride`", lambda: qF.conv2d(q, w, None, stride=big)),
        ("`dim`", lambda: qF.cat([q, q], big)),
        ("`dim`", lambda: qF.cat([q, q], 5)),
        ("`width_multiplier`", lambda: wrpn_width(big, 2.0)),
    ]


@pytest.mark.parametrize("i", range(11))
def test_deep_errors_are_house_style(i):
    name, fn = _ops()[i]
    with pytest.raises((ValueError, TypeError), match=name):
        fn()


def test_qcat_requantizes_huge_scales_and_refuses_0d():
    # was: S (q - Z) overflowed float32 and quantize raised "`input` must be finite"
    import qlearn.nn.quantized.functional as qF
    a = _qt([0, 1], 1.0, 0)
    b = _qt([2, 0], 3e38, 0)
    got = qF.cat([a, b], 0, 3e38, 0).int_repr()
    np.testing.assert_array_equal(got, [0, 0, 2, 0])
    with pytest.raises(ValueError, match="`tensors` must have at least one dimension"):
        qF.cat([_qt(1, 1.0, 0), _qt(2, 1.0, 0)], 0)


@pytest.mark.parametrize("name", ["PercentileObserver", "MSEObserver", "EntropyObserver"])
@pytest.mark.parametrize("qscheme", [ql.per_tensor_affine, ql.per_tensor_symmetric])
def test_calibrators_on_a_range_near_the_float32_limits(name, qscheme):
    from qlearn.quantization import calibrators
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-3e38, 3e38, 5000), [-F32_MAX, F32_MAX]]).astype(np.float32)
    obs = getattr(calibrators, name)(qscheme=qscheme, dtype=ql.qint8)
    obs(x)
    assert obs.histogram.sum() == x.size
    scale, zp = obs.calculate_qparams()
    assert np.isfinite(scale).all() and scale[0] > 0 and -128 <= zp[0] <= 127
    q = ql.quantize_per_tensor(x, float(scale[0]), int(zp[0]), ql.qint8)
    assert np.isfinite(q.dequantize()).all()


def test_max_pool_of_an_empty_plane_is_refused():
    # was: a 1x1 output of padding only (0), where PyTorch raises
    import qlearn.nn.quantized.functional as qF
    x = ql.quantize_per_tensor(np.zeros((1, 1, 0, 3)), 1.0, 0, ql.quint8)
    with pytest.raises(ValueError, match="`input` must have a non-zero height"):
        qF.max_pool2d(x, 4, None, 2)


@pytest.mark.parametrize("make, bad, exc, name", [
    (lambda v: nnq.Linear(v, 2), -1, ValueError, "in_features"),
    (lambda v: nnq.Linear(2, v), -5, ValueError, "out_features"),
    (lambda v: nnq.Linear(v, 2), 2.5, TypeError, "in_features"),
    (lambda v: nnq.Linear(v, 2), True, TypeError, "in_features"),
    (lambda v: nnqd.Linear(v, 2), -3, ValueError, "in_features"),
    (lambda v: nnq.Conv2d(v, 2, 3), 0, ValueError, "in_channels"),
    (lambda v: nnq.Conv2d(2, v, 3), 0, ValueError, "out_channels"),
    (lambda v: nnq.Conv2d(v, 2, 3), 2.5, TypeError, "in_channels"),
])
def test_quantized_layer_sizes_are_checked_by_name(make, bad, exc, name):
    # NumPy's "negative dimensions are not allowed" named no argument
    with pytest.raises(exc, match=f"`{name}` must be an integer"):
        make(bad)


def test_quantized_linear_accepts_empty_sizes_as_torch():
    assert nnq.Linear(0, 2).in_features == 0
    assert nnq.Linear(2, 0).out_features == 0
    assert nnq.Linear(np.int64(3), 2).in_features == 3



def test_unaligned_float_input_is_copied_aligned_before_the_kernels():
    # a C-contiguous float32 view at an odd byte offset: the kernels read whole floats
    # (undefined behaviour when misaligned; UBSan reports it in .ci/asan's fuzz pass)
    raw = np.zeros(4 * 37 + 1, np.uint8)
    x = raw[1:].view(np.float32)
    assert x.flags.c_contiguous and not x.flags.aligned
    x[...] = np.linspace(-3, 3, 37, dtype=np.float32)
    q = ql.quantize_per_tensor(x, 0.05, 3, ql.quint8)
    np.testing.assert_array_equal(
        q.int_repr(), ql.quantize_per_tensor(x.copy(), 0.05, 3, ql.quint8).int_repr())
