"""per_channel_affine_float_qparams: float zero points, against PyTorch 2.13 and NumPy."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
from qlearn import reference as ref
from qlearn.fake_quant_float_qparams import fake_quantize_per_channel_float_qparams

FQ = ql.per_channel_affine_float_qparams


def _torch_q(torch, x, scales, zps, axis, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales),
                                          torch.from_numpy(zps), axis,
                                          getattr(torch, dtype.name))


def _inputs(rng, shape, axis, ties):
    c = shape[axis]
    scales = (rng.uniform(0.005, 0.1, c)).astype(np.float32)
    zps = rng.uniform(-40, 300, c).astype(np.float32)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)   # many values out of range
    if ties:
        # power-of-two scales and zero points with .25 make x * (1/S) + Z = k + 0.5 exact
        scales = (2.0 ** -rng.integers(2, 7, c)).astype(np.float32)
        zps = (rng.integers(-20, 280, c) + 0.25).astype(np.float32)
        bshape = [1] * len(shape)
        bshape[axis] = -1
        k = rng.integers(-30, 290, shape).astype(np.float32)
        x = ((k + 0.5 - zps.reshape(bshape)) * scales.reshape(bshape)).astype(np.float32)
    return x, scales, zps


@pytest.mark.parametrize("dtype", [ql.quint8, ql.qint8])
@pytest.mark.parametrize("shape,axis", [((7, 5), 0), ((3, 40), 0), ((2, 3, 33), 1),
                                        ((4, 6), 1), ((5,), 0), ((2, 3, 4, 5), 3)])
@pytest.mark.parametrize("ties", [False, True])
def test_quantize_equals_torch_bit_for_bit(dtype, shape, axis, ties, torch_mod, rng):
    for _ in range(5):
        x, scales, zps = _inputs(rng, shape, axis, ties)
        ours = ql.quantize_per_channel(x, scales, zps, axis, dtype)
        theirs = _torch_q(torch_mod, x, scales, zps, axis, dtype)
        assert ours.qscheme() is FQ
        assert theirs.qscheme() is torch_mod.per_channel_affine_float_qparams
        assert_array_equal(ours.int_repr(), theirs.int_repr().numpy())
        assert_array_equal(ours.int_repr(), ref.quantize_per_channel_float_qparams_ref(
            x, scales, zps, axis, dtype.quant_min, dtype.quant_max))
        assert_array_equal(ours.dequantize(), ref.dequantize_per_channel_float_qparams_ref(
            ours.int_repr(), scales, zps, axis))
        assert_array_equal(ours.dequantize(), theirs.dequantize().numpy())
        assert_array_equal(ql.dequantize(ours), theirs.dequantize().numpy())
        assert ours.q_per_channel_zero_points().dtype == np.float32
        assert_array_equal(ours.q_per_channel_zero_points(),
                           theirs.q_per_channel_zero_points().numpy())
        assert_array_equal(ours.q_per_channel_scales(), theirs.q_per_channel_scales().numpy())


def test_ties_really_are_ties(rng):
    x, scales, zps = _inputs(rng, (4, 50), 0, True)
    t = x * (np.float32(1) / scales[:, None]) + zps[:, None]
    assert np.all(t - np.floor(t) == 0.5)


def test_large_equals_torch_at_any_thread_count(torch_mod, num_threads, rng):
    x, scales, zps = _inputs(rng, (300, 257), 0, False)
    ours = ql.quantize_per_channel(x, scales, zps, 0, ql.quint8)
    theirs = _torch_q(torch_mod, x, scales, zps, 0, ql.quint8)
    assert_array_equal(ours.int_repr(), theirs.int_repr().numpy())
    assert_array_equal(ours.dequantize(), theirs.dequantize().numpy())


@pytest.mark.parametrize("zp_dtype,scheme", [(np.float32, FQ), (np.float64, FQ),
                                             (np.float16, FQ),
                                             (np.int64, ql.per_channel_affine),
                                             (np.int32, ql.per_channel_affine)])
def test_scheme_follows_zero_point_dtype_as_torch(zp_dtype, scheme, torch_mod):
    x = np.array([[0.5827, 0.8619], [0.3827, -0.1982], [-0.8213, 0.6351]], np.float32)
    s = np.array([1e-2, 1e-3, 5e-2], np.float32)
    zp = np.zeros(3, zp_dtype)
    ours = ql.quantize_per_channel(x, s, zp, 0, ql.qint8)
    theirs = _torch_q(torch_mod, x, s, zp, 0, ql.qint8)
    assert ours.qscheme() is scheme
    assert repr(ours.qscheme()).split(".")[1] == str(theirs.qscheme()).split(".")[1]
    assert_array_equal(ours.int_repr(), theirs.int_repr().numpy())


def test_qlearn_tensors_as_qparams():
    x = ql.tensor([[0.5827, 0.8619], [0.3827, -0.1982], [-0.8213, 0.6351]])
    q = ql.quantize_per_channel(x, ql.tensor([1e-2, 1e-3, 5e-2]), ql.zeros(3),
                                dtype=ql.qint8, axis=0)
    assert q.qscheme() is FQ
    assert_array_equal(q.int_repr(), [[58, 86], [127, -128], [-16, 13]])


@pytest.mark.parametrize("zps", [[0.0, 0.0, 0.0], [3.5, -2.25, 1.0]])
@pytest.mark.parametrize("dtype", [ql.quint8, ql.qint8])
def test_prints_as_torch(zps, dtype, torch_mod):
    x = np.array([[0.5827, 0.8619], [0.3827, -0.1982], [-0.8213, 0.6351]], np.float32)
    s = np.array([1e-2, 1e-3, 5e-2], np.float32)
    zps = np.array(zps, np.float32)
    theirs = str(_torch_q(torch_mod, x, s, zps, 0, dtype)).replace("torch.", "qlearn.")
    assert repr(ql.quantize_per_channel(x, s, zps, 0, dtype)) == theirs


def test_empty_prints_as_torch(torch_mod):
    x = np.zeros((0, 3), np.float32)
    s, z = np.ones(3, np.float32), np.zeros(3, np.float32)
    theirs = str(_torch_q(torch_mod, x, s, z, 1, ql.quint8)).replace("torch.", "qlearn.")
    assert repr(ql.quantize_per_channel(x, s, z, 1, ql.quint8)) == theirs


def test_save_load_round_trip(tmp_path, rng):
    x, scales, zps = _inputs(rng, (6, 9), 0, False)
    q = ql.quantize_per_channel(x, scales, zps, 0, ql.quint8)
    ql.save({"w": q, "n": [q[1:3]]}, tmp_path / "f.qlearn")
    back = ql.load(tmp_path / "f.qlearn")
    assert back["w"] == q and back["w"].qscheme() is FQ
    assert back["n"][0] == q[1:3]
    assert back["w"].q_per_channel_zero_points().dtype == np.float32
    assert_array_equal(back["w"].dequantize(), q.dequantize())


def test_indexing_keeps_the_channels_parameters(rng):
    x, scales, zps = _inputs(rng, (6, 9), 0, False)
    q = ql.quantize_per_channel(x, scales, zps, 0, ql.quint8)
    part = q[1:4, 2:5]
    assert part.qscheme() is FQ
    assert_array_equal(part.int_repr(), q.int_repr()[1:4, 2:5])
    assert_array_equal(part.q_per_channel_zero_points(), zps[1:4])
    assert_array_equal(part.dequantize(), q.dequantize()[1:4, 2:5])
    col = q[:, 3]                     # the channel axis stays
    assert col.q_per_channel_axis() == 0 and col.shape == (6,)
    assert_array_equal(col.dequantize(), q.dequantize()[:, 3])
    assert_array_equal(q.reshape(6, 3, 3).dequantize().reshape(6, 9), q.dequantize())
    assert_array_equal(q.transpose(0, 1).dequantize(), q.dequantize().T)
    assert q.clone() == q
    with pytest.raises(ValueError, match=r"slice it \(2:3\)"):
        q[2]
    with pytest.raises(ValueError, match="integer index on the channel axis"):
        q[-1, 0]


def test_equality_compares_the_float_parameters(rng):
    x, scales, zps = _inputs(rng, (3, 4), 0, False)
    a = ql.quantize_per_channel(x, scales, zps, 0, ql.quint8)
    assert a == ql.quantize_per_channel(x, scales, zps, 0, ql.quint8)
    assert a != ql.quantize_per_channel(x, scales, zps + np.float32(1e-3), 0, ql.quint8)
    whole = ql.quantize_per_channel(x, scales, np.zeros(3, np.float32), 0, ql.quint8)
    ints = ql.quantize_per_channel(x, scales, np.zeros(3, np.int64), 0, ql.quint8)
    assert_array_equal(whole.int_repr(), ints.int_repr())
    assert whole != ints                  # different schemes, as torch.equal says


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(dtype=ql.qint32), ValueError, "qlearn.quint4x2 for float zero points"),
    (dict(scales=[0.0, 0.1, 0.1]), ValueError, "got 0.0 at channel 0"),
    (dict(scales=[0.1, -1.0, 0.1]), ValueError, "got -1.0 at channel 1"),
    (dict(scales=[0.1, np.nan, 0.1]), ValueError, "positive finite"),
    (dict(scales=[1e-60, 0.1, 0.1]), ValueError, "usable in float32"),
    (dict(zero_points=[0.5, np.nan, 0.0]), ValueError, r"`zero_points` must be finite"),
    (dict(zero_points=[1e39, 0.0, 0.0]), ValueError, r"`zero_points` must be finite"),
    (dict(zero_points=[0.5, 0.0]), ValueError, r"one entry per channel \(3\), got 2"),
    (dict(zero_points=np.zeros((3, 1))), TypeError, "1-d array of numbers"),
    (dict(scales=[0.1, 0.1]), ValueError, r"one entry per channel \(3\), got 2"),
    (dict(input=np.float32(1.0), scales=[1.0], zero_points=[0.0]), ValueError,
     "at least one dimension"),
    (dict(input=np.full((3, 2), np.inf, np.float32)), ValueError, "finite"),
    (dict(input=np.ones((3, 2), np.int32)), TypeError, "floating-point"),
    (dict(axis=2), ValueError, r"`axis` must be in \[-2, 1\]"),
    (dict(dtype="quint8"), TypeError, "dtype"),
])
def test_rejects_bad_input(kwargs, exc, match):
    args = dict(input=np.ones((3, 2), np.float32), scales=[0.1, 0.2, 0.3],
                zero_points=np.array([0.5, 0.0, -3.25]), axis=0, dtype=ql.quint8)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ql.quantize_per_channel(**args)


def test_qtensor_constructor_checks_float_qparams():
    q8 = np.zeros((2, 2), np.uint8)
    t = ql.QTensor(q8, ql.quint8, FQ, scales=[0.5, 0.25], zero_points=[1.5, -2.0], axis=0)
    assert_array_equal(t.dequantize(), [[-0.75, -0.75], [0.5, 0.5]])
    with pytest.raises(ValueError, match="qlearn.quint8, qlearn.qint8 or qlearn.quint4x2"):
        ql.QTensor(np.zeros((2, 2), np.int32), ql.qint32, FQ, scales=[0.5, 0.25],
                   zero_points=[1.5, -2.0], axis=0)
    with pytest.raises(ValueError, match="`zero_points` must be finite"):
        ql.QTensor(q8, ql.quint8, FQ, scales=[0.5, 0.25], zero_points=[np.inf, 0], axis=0)


# -- fake quantization with float zero points ------------------------------------------------

@pytest.mark.parametrize("shape,axis", [((7, 5), 0), ((2, 3, 9), 1), ((4, 33), 1)])
@pytest.mark.parametrize("qrange", [(0, 255), (-128, 127), (0, 15)])
@pytest.mark.parametrize("ties", [False, True])
def test_fake_quantize_float_zero_points_equals_torch(shape, axis, qrange, ties, torch_mod,
                                                      rng):
    torch = torch_mod
    for _ in range(3):
        x, scales, zps = _inputs(rng, shape, axis, ties)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch.fake_quantize_per_channel_affine(xt, torch.from_numpy(scales),
                                                    torch.from_numpy(zps), axis, *qrange)
        g = rng.standard_normal(shape).astype(np.float32)
        yt.backward(torch.from_numpy(g))
        xq = ql.tensor(x, requires_grad=True)
        yq = ql.fake_quantize_per_channel_affine(xq, scales, zps, axis, *qrange)
        yq.backward(ql.tensor(g))
        assert_array_equal(yq.numpy(), yt.detach().numpy())
        assert_array_equal(xq.grad.numpy(), xt.grad.numpy())


def test_fake_quantize_whole_float_zero_points_use_the_float_formula(torch_mod):
    # a tie with an odd zero point: round(x/S) + Z and round(x/S + Z) differ
    torch = torch_mod
    x = np.array([[0.25]], np.float32)
    for zp in (np.array([3.0], np.float32), np.array([3], np.int32)):
        theirs = torch.fake_quantize_per_channel_affine(
            torch.from_numpy(x), torch.tensor([0.5]), torch.from_numpy(zp), 0, 0, 15)
        ours = ql.fake_quantize_per_channel_affine(x, [0.5], zp, 0, 0, 15)
        assert_array_equal(ours.numpy(), theirs.numpy())
    assert ql.fake_quantize_per_channel_affine(x, [0.5], [3.0], 0, 0, 15).numpy()[0, 0] != \
        ql.fake_quantize_per_channel_affine(x, [0.5], [3], 0, 0, 15).numpy()[0, 0]


def test_fake_quantize_float_zero_points_rejects_bad_input():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="`zero_point` must be finite"):
        ql.fake_quantize_per_channel_affine(x, [0.1, 0.1], [np.nan, 0.5], 0, 0, 255)
    with pytest.raises(ValueError, match="`scale` must be positive"):
        ql.fake_quantize_per_channel_affine(x, [0.0, 0.1], [0.5, 0.5], 0, 0, 255)
    with pytest.raises(ValueError, match=r"one entry per channel \(2\)"):
        ql.fake_quantize_per_channel_affine(x, [0.1, 0.1], [0.5, 0.5, 0.5], 0, 0, 255)
    with pytest.raises(ValueError, match="`quant_min` must be <= `quant_max`"):
        ql.fake_quantize_per_channel_affine(x, [0.1, 0.1], [0.5, 0.5], 0, 9, 3)
    with pytest.raises(ValueError, match="finite"):
        fake_quantize_per_channel_float_qparams(np.full((2, 3), np.nan, np.float32),
                                                [0.1, 0.1], [0.5, 0.5], 0, 0, 255)
    with pytest.raises(ValueError, match="at least one dimension"):
        fake_quantize_per_channel_float_qparams(np.float32(1), [0.1], [0.5], 0, 0, 255)


# -- observers and the qconfig ------------------------------------------------------------------

@pytest.mark.parametrize("moving", [False, True])
@pytest.mark.parametrize("dtype", [ql.quint8, ql.qint8])
@pytest.mark.parametrize("reduce_range", [False, True])
def test_observers_compute_torch_float_qparams(moving, dtype, reduce_range, torch_mod, rng):
    torch = torch_mod
    from torch.ao.quantization import observer as tobs

    from qlearn.quantization import observer as qobs
    name = "MovingAveragePerChannelMinMaxObserver" if moving else "PerChannelMinMaxObserver"
    for trial in range(25):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 20)))
        x = (rng.standard_normal(shape) * rng.choice([1e-8, 1e-3, 1.0, 100.0])) \
            .astype(np.float32)
        if trial % 3 == 0:
            x = np.abs(x) + np.float32(0.5)         # rows that do not contain zero
        if trial % 5 == 0:
            x[0] = 0.3                              # a constant row: scale 1
        axis = trial % 2
        ours = getattr(qobs, name)(ch_axis=axis, dtype=dtype, qscheme=FQ,
                                   reduce_range=reduce_range)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(tobs, name)(ch_axis=axis, dtype=getattr(torch, dtype.name),
                                         qscheme=torch.per_channel_affine_float_qparams,
                                         reduce_range=reduce_range)
        for k in range(3):
            batch = x * np.float32(1 + 0.5 * k)
            ours(batch)
            theirs(torch.from_numpy(batch))
        s, z = ours.calculate_qparams()
        ts, tz = theirs.calculate_qparams()
        assert s.dtype == np.float32 and z.dtype == np.float32
        assert_array_equal(s, ts.numpy())
        assert_array_equal(z, tz.numpy())
        # and the rows' minima land on quant_min
        q = ql.quantize_per_channel(x, s, z, axis, dtype)
        t = _torch_q(torch, x, s, z, axis, dtype)
        assert_array_equal(q.int_repr(), t.int_repr().numpy())


def test_float_qparams_qconfig_is_torchs(torch_mod):
    import torch.ao.quantization as ttq

    import qlearn.quantization as tq
    from qlearn.quantization.observer import (
        PerChannelMinMaxObserver,
        PlaceholderObserver,
        default_float_qparams_observer,
    )
    qc = tq.float_qparams_weight_only_qconfig
    assert qc.activation is PlaceholderObserver
    assert qc.weight is default_float_qparams_observer
    assert repr(qc).replace("qlearn.", "torch.ao.") \
        .replace("torch.ao.quint8", "torch.quint8") \
        .replace("torch.ao.per_channel", "torch.per_channel") == \
        repr(ttq.float_qparams_weight_only_qconfig)
    obs = qc.weight()
    assert type(obs) is PerChannelMinMaxObserver
    assert (obs.dtype, obs.qscheme, obs.ch_axis) == (ql.quint8, FQ, 0)


def test_calculate_qparams_float_qparams_matches_the_equation(rng):
    from qlearn.quantization.qparams import calculate_qparams
    lo = rng.uniform(-3, 2, 20).astype(np.float32)
    hi = lo + rng.uniform(0, 4, 20).astype(np.float32)
    hi[0] = lo[0]
    s, z = calculate_qparams(lo, hi, ql.quint8, FQ, 0, 255)
    expect_s = (hi - lo) / np.float32(255)
    expect_s = np.where(expect_s > np.finfo(np.float32).eps, expect_s, np.float32(1))
    assert_array_equal(s, expect_s)
    assert_array_equal(z, (-lo) / expect_s)
    assert s[0] == 1 and z[0] == -lo[0]


def test_huge_values_saturate_where_torch_wraps_around(torch_mod):
    # |x / S + Z| >= 2**31: PyTorch truncates lrintf's result to a 32-bit int before
    # clamping (3e9 steps -> 0 in quint8); qlearn saturates (the docs say so)
    x = np.array([[30.0, 50.0, 1e12, -30.0, 22.0]], np.float32)
    s, z = np.array([1e-8], np.float32), np.zeros(1, np.float32)
    ours = ql.quantize_per_channel(x, s, z, 0, ql.quint8).int_repr()
    assert_array_equal(ours, [[255, 255, 255, 0, 255]])
    theirs = _torch_q(torch_mod, x, s, z, 0, ql.quint8).int_repr().numpy()
    assert theirs[0, 0] == 0 and theirs[0, 3] == 255          # the wrap-around
