"""The quantized tensor: kernels vs the NumPy reference, vs PyTorch, properties, errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

import qlearn as ql
from qlearn import reference as ref
from qlearn.kernels import simd as simd_paths

DTYPES = [ql.quint8, ql.qint8, ql.qint32]
SIZES = [0, 1, 7, 31, 32, 33, 97, 32768, 32769, 100003]


def near_ties(rng, n, scale):
    """Values within a few ulps of (k + 1/2) * scale: where rounding decisions live."""
    k = rng.integers(-300, 300, size=n)
    x = ((k + 0.5) * np.float64(scale)).astype(np.float32)
    return x + rng.integers(-2, 3, size=n).astype(np.float32) * np.spacing(x)


@pytest.fixture(params=[True, False], ids=["avx2", "generic"])
def simd(request):
    """Run a test on the AVX2 micro-kernels (where the CPU has them) and the portable loop."""
    if request.param and simd_paths.Simd.AVX2 not in simd_paths.available():
        pytest.skip("AVX2 path unavailable (CPU lacks AVX2, or QLEARN_SIMD=generic)")
    with simd_paths.use("avx2" if request.param else "generic"):
        yield request.param


def zero_points_for(dtype):
    lo, hi = dtype.quant_min, dtype.quant_max
    return sorted({0, lo, hi, 3, (lo + hi) // 2 + 1} if dtype is not ql.qint32
                  else {0, 3, -5, 1 << 20})


# -- kernels against the reference ----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=repr)
@pytest.mark.parametrize("n", SIZES)
def test_quantize_per_tensor_matches_reference(dtype, n, simd, num_threads, rng):
    scale = 0.0173
    x = near_ties(rng, n, scale)
    x[: n // 10] *= 50  # some values far outside the range: clamping
    for zp in zero_points_for(dtype):
        q = ql.quantize_per_tensor(x, scale, zp, dtype)
        expect = ref.quantize_per_tensor_ref(x, scale, zp, dtype.quant_min, dtype.quant_max,
                                             fused=dtype is not ql.qint32)
        assert q.int_repr().dtype == dtype.storage
        assert_array_equal(q.int_repr().astype(np.int64), expect, err_msg=f"zp={zp}")


@pytest.mark.parametrize("dtype", DTYPES, ids=repr)
@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 5, 7), 1),
                                        ((4, 1, 3, 3), 0), ((2, 33, 40), 2), ((64, 1100), 0)])
def test_quantize_per_channel_matches_reference(dtype, shape, axis, simd, num_threads, rng):
    C = shape[axis]
    scales = rng.uniform(0.005, 0.05, size=C)
    lo, hi = max(dtype.quant_min, -1000), min(dtype.quant_max, 1000)
    zps = rng.integers(lo, hi + 1, size=C)
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    q = ql.quantize_per_channel(x, scales, zps, axis, dtype)
    expect = ref.quantize_per_channel_ref(x, scales, zps, axis, dtype.quant_min, dtype.quant_max)
    assert_array_equal(q.int_repr().astype(np.int64), expect)
    assert_array_equal(q.dequantize(), ref.dequantize_per_channel_ref(expect, scales, zps, axis))


@pytest.mark.parametrize("dtype", DTYPES, ids=repr)
@pytest.mark.parametrize("n", SIZES)
def test_dequantize_per_tensor_matches_reference(dtype, n, simd, num_threads, rng):
    info = np.iinfo(dtype.storage)
    q_int = rng.integers(info.min, info.max, size=n, endpoint=True).astype(dtype.storage)
    zp = 3
    q = ql.QTensor(q_int, dtype, ql.per_tensor_affine, 0.1, zp)
    assert_array_equal(q.dequantize(), ref.dequantize_per_tensor_ref(q_int, 0.1, zp))


def test_results_do_not_depend_on_thread_count(rng):
    x = rng.standard_normal(300001).astype(np.float32)
    outs = []
    for n in (1, 2, 3):
        ql.set_num_threads(n)
        outs.append(ql.quantize_per_tensor(x, 0.01, 128, ql.quint8).int_repr())
    ql.set_num_threads(2)
    for o in outs[1:]:
        assert_array_equal(o, outs[0])


def test_generic_path_selected_by_environment():
    code = ("import qlearn as ql, numpy as np; from qlearn.kernels import simd;"
            "print(simd.active().name.lower());"
            "x = np.linspace(-3, 3, 1001, dtype=np.float32);"
            "print(ql.quantize_per_tensor(x, 0.02, 7, ql.qint8).int_repr().sum())")
    env = dict(os.environ, QLEARN_SIMD="generic")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == "generic"
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    assert int(out[1]) == ql.quantize_per_tensor(x, 0.02, 7, ql.qint8).int_repr().sum()


# -- against PyTorch --------------------------------------------------------------------------
TORCH_DTYPE = {"quint8": "quint8", "qint8": "qint8", "qint32": "qint32"}


@pytest.mark.parametrize("dtype", DTYPES, ids=repr)
@pytest.mark.parametrize("n", [1, 5, 8, 13, 64, 1000, 100003])
def test_quantize_per_tensor_equals_torch(dtype, n, torch_mod, rng):
    t_dtype = getattr(torch_mod, TORCH_DTYPE[dtype.name])
    for scale in (0.0173, 1 / 3, 0.1, 2.5):
        x = near_ties(rng, n, scale)
        for zp in zero_points_for(dtype):
            ours = ql.quantize_per_tensor(x, scale, zp, dtype)
            theirs = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), scale, zp, t_dtype)
            assert_array_equal(ours.int_repr(), theirs.int_repr().numpy(),
                               err_msg=f"scale={scale} zp={zp}")
            assert_array_equal(ours.dequantize(), theirs.dequantize().numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=repr)
@pytest.mark.parametrize("shape,axis", [((7, 5), 0), ((7, 5), 1), ((4, 3, 9, 9), 0),
                                        ((2, 6, 17), 1)])
def test_quantize_per_channel_equals_torch(dtype, shape, axis, torch_mod, rng):
    t_dtype = getattr(torch_mod, TORCH_DTYPE[dtype.name])
    C = shape[axis]
    scales = rng.uniform(0.003, 0.3, size=C)  # float64 scales, not float32-exact
    lo, hi = max(dtype.quant_min, -100), min(dtype.quant_max, 100)
    zps = rng.integers(lo, hi + 1, size=C)
    x = near_ties(rng, int(np.prod(shape)), 0.05).reshape(shape)
    ours = ql.quantize_per_channel(x, scales, zps, axis, dtype)
    theirs = torch_mod.quantize_per_channel(torch_mod.from_numpy(x), torch_mod.from_numpy(scales),
                                            torch_mod.from_numpy(zps), axis, t_dtype)
    assert_array_equal(ours.int_repr(), theirs.int_repr().numpy())
    assert_array_equal(ours.dequantize(), theirs.dequantize().numpy())
    assert_array_equal(ours.q_per_channel_scales(), theirs.q_per_channel_scales().numpy())


def test_seed_000_cells_equal_torch(torch_mod):
    x = np.array([[0.5827, 0.8619], [0.3827, -0.1982], [-0.8213, 0.6351]], np.float32)
    ours = ql.quantize_per_tensor(x, 1e-2, 0, ql.qint8)
    theirs = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 1e-2, 0, torch_mod.qint8)
    assert_array_equal(ours.int_repr(), theirs.int_repr().numpy())
    ours = ql.quantize_per_channel(x, [1e-2, 1e-3, 5e-2], np.zeros(3), 0, ql.qint8)
    theirs = torch_mod.quantize_per_channel(
        torch_mod.from_numpy(x), torch_mod.tensor([1e-2, 1e-3, 5e-2]), torch_mod.zeros(3), 0,
        torch_mod.qint8)
    assert_array_equal(ours.int_repr(), theirs.int_repr().numpy())


# -- properties -----------------------------------------------------------------------------
finite_floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@given(x=hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=9), elements=finite_floats),
       scale=st.floats(1e-3, 10.0), zero_point=st.integers(0, 255))
def test_round_trip_error_is_at_most_half_a_step_inside_the_range(x, scale, zero_point):
    q = ql.quantize_per_tensor(x, scale, zero_point, ql.quint8)
    s = np.float32(scale)
    lo, hi = (0 - zero_point) * s, (255 - zero_point) * s
    inside = (x >= lo) & (x <= hi)
    err = np.abs(q.dequantize() - x)[inside]
    # half a step, plus float32 rounding of x/S and of (q - Z) S, plus the rounding of
    # the float32 sum x (1/S) + Z that PyTorch (and qlearn, to match it) rounds: for
    # x = 0.99999, S = 2.00001, Z = 129 the sum 129.499995 is stored as 129.5 and goes
    # to 130 in both, one ulp of the sum (times S) past half a step
    sum_ulp = np.spacing(np.float32(np.abs(x[inside]) / s + zero_point)) * s
    assert np.all(err <= 0.5 * s * (1 + 1e-5) + 4 * np.spacing(np.abs(x[inside]) + s)
                  + sum_ulp)


@given(x=hnp.arrays(np.float32, st.integers(0, 70), elements=finite_floats),
       scale=st.floats(1e-3, 10.0), dtype=st.sampled_from(DTYPES),
       zero_point=st.integers(-128, 127))
def test_quantize_of_dequantize_is_identity(x, scale, dtype, zero_point):
    zero_point = int(np.clip(zero_point, dtype.quant_min, dtype.quant_max))
    q = ql.quantize_per_tensor(x, scale, zero_point, dtype)
    again = ql.quantize_per_tensor(q.dequantize(), scale, zero_point, dtype)
    assert_array_equal(again.int_repr(), q.int_repr())


@given(x=hnp.arrays(np.float32, st.integers(1, 200000).map(lambda n: n), elements=finite_floats)
       if False else hnp.arrays(np.float32, st.integers(0, 3000), elements=finite_floats),
       threads=st.integers(1, 4))
def test_thread_count_never_changes_the_integers(x, threads):
    ql.set_num_threads(1)
    one = ql.quantize_per_tensor(x, 0.37, 11, ql.qint8).int_repr()
    ql.set_num_threads(threads)
    try:
        assert_array_equal(ql.quantize_per_tensor(x, 0.37, 11, ql.qint8).int_repr(), one)
    finally:
        ql.set_num_threads(2)


# -- the seed 001 teaching points -------------------------------------------------------------
def test_seed_001_simple_scaling_tie_rounds_to_even():
    t = np.array([-10.0, -5.0, 0.0, 5.0, 10.0], np.float32)
    scale = (t.max() - t.min()) / 255
    q = ql.quantize_per_tensor(t, scale, 0, ql.qint8).int_repr()
    # -10 / scale is -127.5 exactly: round half to even gives -128 (the notebook's
    # torch.round(t / scale) gives -127 because its division rounds differently)
    assert_array_equal(q, [-128, -64, 0, 64, 127])


def test_float64_input_is_converted():
    x64 = np.array([0.25, -0.5, 1.0])
    q = ql.quantize_per_tensor(x64, 1 / 255, 0, ql.quint8)
    assert_array_equal(q.int_repr(), ql.quantize_per_tensor(x64.astype(np.float32), 1 / 255,
                                                            0, ql.quint8).int_repr())


def test_qlearn_tensor_input_is_accepted():
    t = ql.tensor([0.5, 1.5])
    assert_array_equal(ql.quantize_per_tensor(t, 0.5, 0, ql.quint8).int_repr(), [1, 3])


# -- the QTensor type -------------------------------------------------------------------------
def test_accessors_and_repr():
    q = ql.quantize_per_tensor(np.arange(6, dtype=np.float32).reshape(2, 3), 0.5, 2, ql.quint8)
    assert q.shape == (2, 3) and q.ndim == 2 and q.numel() == 6 and q.dtype is ql.quint8
    assert q.q_scale() == 0.5 and q.q_zero_point() == 2 and q.qscheme() is ql.per_tensor_affine
    assert q.element_size() == 1 and q.nbytes == 6 and len(q) == 2
    text = repr(q)
    assert "dtype=qlearn.quint8" in text and "scale=0.5" in text and "zero_point=2" in text
    with pytest.raises(ValueError, match="q_per_channel_scales"):
        q.q_per_channel_scales()
    qc = ql.quantize_per_channel(np.ones((2, 3)), [0.1, 0.2], [0, 1], 0, ql.qint8)
    assert qc.qscheme() is ql.per_channel_affine and qc.q_per_channel_axis() == 0
    assert_array_equal(qc.q_per_channel_zero_points(), [0, 1])
    with pytest.raises(ValueError, match="q_scale"):
        qc.q_scale()
    assert "axis=0" in repr(qc)


def test_int_repr_is_a_copy():
    q = ql.quantize_per_tensor([1.0], 1.0, 0, ql.quint8)
    q.int_repr()[0] = 99
    assert q.int_repr()[0] == 1


def test_indexing_keeps_parameters():
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    q = ql.quantize_per_tensor(x, 0.01, 5, ql.qint8)
    sub = q[1, :, ::2]
    assert sub.q_scale() == 0.01 and sub.q_zero_point() == 5
    assert_array_equal(sub.int_repr(), q.int_repr()[1, :, ::2])
    assert q[0, 0, 0].shape == ()


def test_per_channel_indexing_slices_the_parameters():
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    scales, zps = [0.01, 0.02, 0.03], [1, 2, 3]
    q = ql.quantize_per_channel(x, scales, zps, 1, ql.qint8)
    s = q[:, 1:]
    assert s.q_per_channel_axis() == 1
    assert_array_equal(s.q_per_channel_scales(), scales[1:])
    assert_array_equal(s.dequantize(), q.dequantize()[:, 1:])
    s = q[0]  # drops the axis before the channels: the channel axis moves to 0
    assert s.q_per_channel_axis() == 0
    assert_array_equal(s.dequantize(), q.dequantize()[0])
    s = q[..., 2, :]  # an integer on the channel axis: per-tensor with that channel's params
    assert s.qscheme() is ql.per_tensor_affine and s.q_scale() == 0.03 and s.q_zero_point() == 3
    assert_array_equal(s.int_repr(), q.int_repr()[:, 2, :])
    # per-tensor dequantizes in float32, per-channel in float64: equal up to one ulp
    np.testing.assert_allclose(s.dequantize(), q.dequantize()[:, 2, :], rtol=2e-7)
    with pytest.raises(TypeError, match="basic indexing"):
        q[[0, 1]]


def test_reshape_transpose_permute():
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    q = ql.quantize_per_tensor(x, 0.01, 0, ql.qint8)
    assert_array_equal(q.reshape(4, 6).dequantize(), q.dequantize().reshape(4, 6))
    assert_array_equal(q.transpose(0, 2).dequantize(), q.dequantize().transpose(2, 1, 0))
    qc = ql.quantize_per_channel(x, [0.01, 0.02, 0.03], [0, 0, 0], 1, ql.qint8)
    t = qc.transpose(1, 2)
    assert t.q_per_channel_axis() == 2
    assert_array_equal(t.dequantize(), qc.dequantize().transpose(0, 2, 1))
    p = qc.permute(1, 0, 2)
    assert p.q_per_channel_axis() == 0
    assert_array_equal(p.dequantize(), qc.dequantize().transpose(1, 0, 2))
    assert_array_equal(qc.reshape(2, 3, 2, 2).dequantize(), qc.dequantize().reshape(2, 3, 2, 2))
    with pytest.raises(ValueError, match="channel axis"):
        qc.reshape(6, 4)


def test_memory_is_a_quarter_of_float32():
    x = np.zeros((64, 64), np.float32)
    q = ql.quantize_per_tensor(x, 0.1, 0, ql.qint8)
    assert x.nbytes / q.nbytes == 4


def test_dequantize_function():
    q = ql.quantize_per_tensor([0.26], 0.5, 0, ql.qint8)
    assert_array_equal(ql.dequantize(q), [0.5])
    with pytest.raises(TypeError, match="QTensor"):
        ql.dequantize("no")


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(scale=-0.1), ValueError, r"`scale` must be a positive finite number, got -0.1"),
    (dict(scale=0.0), ValueError, "`scale` must be a positive finite number"),
    (dict(scale=float("nan")), ValueError, "`scale` must be a positive finite number"),
    (dict(scale=float("inf")), ValueError, "`scale` must be a positive finite number"),
    (dict(scale=1e-45), ValueError, "too small for float32"),
    (dict(scale="0.1"), TypeError, "`scale`"),
    (dict(scale=np.array([0.1, 0.2])), ValueError, "`scale` must be a single"),
    (dict(zero_point=300), ValueError, r"`zero_point` must be in \[0, 255\], got 300"),
    (dict(zero_point=-1), ValueError, r"`zero_point` must be in \[0, 255\], got -1"),
    (dict(zero_point=1.5), TypeError, "`zero_point` must be an integer"),
    (dict(dtype=np.uint8), TypeError, "`dtype` must be qlearn.quint8"),
    (dict(input=np.array([1, 2, 3])), TypeError, "`input` must hold floating-point"),
    (dict(input=np.array([1.0, np.nan], np.float32)), ValueError, "`input` must be finite"),
    (dict(input=np.array([np.inf] + [0.0] * 100, np.float32)), ValueError, "finite"),
    (dict(input=np.array([0.0] * 70 + [-np.inf], np.float32)), ValueError, "finite"),
    (dict(input="abc"), TypeError, "`input`"),
    (dict(input=[[1.0], [1.0, 2.0]]), TypeError, "`input`"),
])
def test_quantize_per_tensor_rejects_bad_input(kwargs, exc, match, simd):
    args = dict(input=np.ones(3, np.float32), scale=0.1, zero_point=0, dtype=ql.quint8)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ql.quantize_per_tensor(**args)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(axis=2), ValueError, r"`axis` must be in \[-2, 1\]"),
    (dict(axis=1.0), TypeError, "`axis` must be an integer"),
    (dict(scales=[0.1, 0.1]), ValueError, r"one entry per channel \(3\), got 2"),
    (dict(scales=[0.1, -1.0, 0.1]), ValueError, "got -1.0 at channel 1"),
    (dict(zero_points=[0, 0]), ValueError, "one entry per channel"),
    (dict(zero_points=[0, 200, 0]), ValueError, r"\[-128, 127\], got 200 at channel 1"),
    (dict(zero_points=[0.5, 0, 0], dtype=ql.qint32), ValueError, "float zero points"),
    (dict(zero_points=[0.5, np.inf, 0]), ValueError, "finite numbers"),
    (dict(zero_points=[[0.5, 0, 0]]), TypeError, "1-d array of numbers"),
    (dict(input=np.float32(1.0)), ValueError, "at least one dimension"),
    (dict(input=np.full((3, 2), np.nan, np.float32)), ValueError, "finite"),
])
def test_quantize_per_channel_rejects_bad_input(kwargs, exc, match):
    args = dict(input=np.ones((3, 2), np.float32), scales=[0.1, 0.2, 0.3],
                zero_points=[0, 0, 0], axis=0, dtype=ql.qint8)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ql.quantize_per_channel(**args)


def test_threads_setting_is_validated():
    with pytest.raises(ValueError, match=r"`n` must be in \[1, "):
        ql.set_num_threads(0)
    for huge in (10**6, 2**31, 10**30):   # used to die inside OpenMP or overflow
        with pytest.raises(ValueError, match="got"):
            ql.set_num_threads(huge)
    for bad in (2.0, "2", True):
        with pytest.raises(TypeError, match="`n` must be an integer"):
            ql.set_num_threads(bad)


def test_show_config_reports_build():
    with open(os.devnull, "w") as devnull:
        text = ql.show_config(file=devnull)
    assert "openmp" in text and "simd" in text and "threads" in text


def test_zero_dim_input_stays_zero_dim():
    q = ql.quantize_per_tensor(np.float32(0.5), 0.25, 0, ql.quint8)
    assert q.shape == () and q.int_repr() == 2 and q.dequantize().shape == ()


def test_qint32_dequantize_equals_torch_except_where_torch_overflows(torch_mod, rng):
    """PyTorch computes q - Z in int32 for qint32 and wraps around (2**31 - 1 - (-5)
    becomes negative); qlearn subtracts in int64 and stays exact.  Everywhere else the
    two agree to the bit."""
    q = rng.integers(-2**31, 2**31, size=20000).astype(np.int32)
    q[:3] = [2**31 - 1, -2**31, 2**31 - 2]
    for zp in (-5, 0, 7):
        ours = ql.QTensor(q, ql.qint32, ql.per_tensor_affine, 0.1, zp).dequantize()
        theirs = torch_mod._make_per_tensor_quantized_tensor(
            torch_mod.from_numpy(q), 0.1, zp).dequantize().numpy()
        overflow = (q.astype(np.int64) - zp > 2**31 - 1) | (q.astype(np.int64) - zp < -2**31)
        assert_array_equal(ours[~overflow], theirs[~overflow])
        exact = ((q.astype(np.int64) - zp).astype(np.float32) * np.float32(0.1))
        assert_array_equal(ours, exact)
        if overflow.any():
            assert np.all(np.sign(ours[overflow]) != np.sign(theirs[overflow]))


def test_quantize_allocates_only_its_output():
    """Peak memory of quantizing n float32 is the input (4n) plus the output (n): no
    float64 or boolean temporaries (NumPy reports its allocations to tracemalloc)."""
    import tracemalloc
    n = 1 << 22
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    for fn in (lambda: ql.quantize_per_tensor(x, 0.02, 128, ql.quint8),
               lambda: ql.quantize_per_channel(x.reshape(64, -1), np.full(64, 0.02),
                                               np.zeros(64, np.int64), 0, ql.qint8)):
        tracemalloc.start()
        q = fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert q.nbytes == n
        assert peak < n + 64 * 1024, f"peak {peak} bytes for an output of {n} bytes"


@pytest.mark.parametrize("n", [31, 32, 100, 32768 + 77])
def test_huge_finite_values_are_clamped_not_refused(n, simd):
    """The fused finiteness check sums the inputs; huge finite values overflow that sum
    and must fall through to the exact rescan, then quantize (clamp) normally."""
    x = np.full(n, 3e38, np.float32)
    x[::2] = -3e38
    for per_channel in (False, True):
        if per_channel:
            q = ql.quantize_per_channel(x.reshape(1, -1), [0.5], [0], 0, ql.qint8)
        else:
            q = ql.quantize_per_tensor(x, 0.5, 0, ql.qint8)
        assert_array_equal(q.int_repr().ravel(), np.where(x > 0, 127, -128))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("pos", [0, 5, 31, 32, 63, 32767, 32768, 40000])
def test_nonfinite_detected_anywhere(bad, pos, simd):
    x = np.zeros(40001, np.float32)
    x[pos] = bad
    with pytest.raises(ValueError, match="finite"):
        ql.quantize_per_tensor(x, 0.1, 0, ql.quint8)
    with pytest.raises(ValueError, match="finite"):
        ql.quantize_per_channel(x.reshape(-1, 1), [0.1], [0], 1, ql.quint8)
    x[pos] = 0
    x[pos // 2] = np.inf  # an inf and a -inf in one block sum to NaN: still caught
    x[pos // 2 + 1] = -np.inf
    with pytest.raises(ValueError, match="finite"):
        ql.quantize_per_tensor(x, 0.1, 0, ql.quint8)


@pytest.mark.parametrize("shape", [(3,), (2, 2), (0, 3), (2, 3, 4)])
def test_repr_is_pytorchs_layout(torch_mod, shape):
    # a QTensor prints as PyTorch prints a quantized tensor (names torch. -> qlearn.)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    q = ql.quantize_per_tensor(x, 0.05, 7, ql.quint8)
    t = torch_mod.quantize_per_tensor(torch_mod.from_numpy(x), 0.05, 7, torch_mod.quint8)
    assert repr(q) == repr(t).replace("torch.", "qlearn.")
    if x.ndim >= 1 and x.shape[0] > 0:
        c = x.shape[0]
        scales = np.linspace(0.01, 0.03, c)
        qc = ql.quantize_per_channel(x, scales, np.arange(c), 0, ql.qint8)
        tc = torch_mod.quantize_per_channel(torch_mod.from_numpy(x), torch_mod.from_numpy(scales),
                                            torch_mod.arange(c), 0, torch_mod.qint8)
        assert repr(qc) == repr(tc).replace("torch.", "qlearn.")
