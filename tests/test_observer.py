"""Observers: same qparams as PyTorch 2.13, edge cases, state, merge, factories."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
from qlearn.quantization import observer as O
from qlearn.quantization.qparams import FLOAT32_EPS, calculate_qmin_qmax, calculate_qparams

TORCH_NAMES = {"quint8": "quint8", "qint8": "qint8", "qint32": "qint32"}


def to_torch_kwargs(torch, kw):
    out = {}
    for k, v in kw.items():
        if isinstance(v, (ql.QDType, ql.QScheme)):
            v = getattr(torch, v.name)
        out[k] = v
    return out


def run_both(torch, name, kw, batches):
    q = getattr(O, name)(**kw)
    t = getattr(torch.ao.quantization.observer, name)(**to_torch_kwargs(torch, kw))
    for b in batches:
        assert q(b) is b
        t(torch.from_numpy(np.asarray(b, np.float32)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qs, qz = q.calculate_qparams()
        ts, tz = t.calculate_qparams()
    return q, t, (qs, qz), (ts.numpy(), tz.numpy())


def batches_for(rng, kind, shape=(4, 6, 5), n=3):
    out = []
    for _ in range(n):
        if kind == "normal":
            x = rng.standard_normal(shape) * rng.uniform(0.01, 10) + rng.uniform(-3, 3)
        elif kind == "relu":
            x = np.maximum(rng.standard_normal(shape), 0)
        elif kind == "negative":
            x = -rng.uniform(0.5, 2.0, shape)
        elif kind == "outliers":
            x = rng.laplace(size=shape)
            x.flat[0] = 40.0
        out.append(x.astype(np.float32))
    return out


PER_TENSOR = [dict(), dict(reduce_range=True), dict(dtype=ql.qint8),
              dict(dtype=ql.qint8, reduce_range=True),
              dict(qscheme=ql.per_tensor_symmetric, dtype=ql.qint8),
              dict(qscheme=ql.per_tensor_symmetric),
              dict(quant_min=0, quant_max=127), dict(quant_min=0, quant_max=15),
              dict(dtype=ql.qint8, quant_min=-8, quant_max=7),
              dict(dtype=ql.qint8, qscheme=ql.per_tensor_symmetric, quant_min=-127,
                   quant_max=127, eps=2 ** -12),
              dict(qscheme=ql.per_tensor_symmetric, quant_min=0, quant_max=100),
              dict(quant_min=0, quant_max=255, reduce_range=True),
              dict(dtype=ql.qint32)]
KINDS = ["normal", "relu", "negative", "outliers"]


@pytest.mark.parametrize("kw", PER_TENSOR, ids=str)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["MinMaxObserver", "MovingAverageMinMaxObserver"])
def test_minmax_matches_torch(name, kw, kind, torch_mod, rng):
    _, _, (qs, qz), (ts, tz) = run_both(torch_mod, name, kw, batches_for(rng, kind))
    assert qs.dtype == np.float32 and qz.dtype == np.int64 and qs.shape == (1,)
    assert_array_equal(qs, ts)
    assert_array_equal(qz, tz)


@pytest.mark.parametrize("kw", PER_TENSOR[:-1], ids=str)   # torch's qint32 histogram is 2**32 bins
@pytest.mark.parametrize("kind", KINDS)
def test_histogram_matches_torch(kw, kind, torch_mod, rng):
    batches = batches_for(rng, kind, shape=(3, 500), n=4)
    _, _, (qs, qz), (ts, tz) = run_both(torch_mod, "HistogramObserver", kw, batches)
    np.testing.assert_allclose(qs, ts, rtol=1e-3)
    assert abs(int(qz[0]) - int(tz[0])) <= 1


@pytest.mark.parametrize("seed", range(6))
def test_histogram_growing_ranges_match_torch(seed, torch_mod):
    """Batches of different sizes and ranges: every re-binning path."""
    rng = np.random.default_rng(seed)
    batches = [(rng.standard_normal(int(rng.integers(1, 5000))) * rng.uniform(0.1, 4)
                + rng.uniform(-1, 1)).astype(np.float32) for _ in range(int(rng.integers(2, 7)))]
    batches.insert(int(rng.integers(0, 2)), np.full(7, 0.25, np.float32))  # a constant batch
    for kw in (dict(), dict(dtype=ql.qint8, qscheme=ql.per_tensor_symmetric),
               dict(bins=512, reduce_range=True)):
        q, t, (qs, qz), (ts, tz) = run_both(torch_mod, "HistogramObserver", kw, batches)
        # re-binning may put a 1/16 piece of a bin into the neighbouring bin where
        # torch's vectorised linspace rounds an edge differently: compare the CDFs
        th = t.histogram.numpy().astype(np.float64)
        assert q.histogram.sum() == pytest.approx(th.sum())
        assert np.abs(np.cumsum(q.histogram) - np.cumsum(th)).max() <= 0.01 * th.sum()
        np.testing.assert_allclose(qs, ts, rtol=1e-3)
        assert abs(int(qz[0]) - int(tz[0])) <= 1


PER_CHANNEL = [dict(), dict(qscheme=ql.per_channel_symmetric, dtype=ql.qint8),
               dict(dtype=ql.qint8), dict(reduce_range=True),
               dict(dtype=ql.qint8, qscheme=ql.per_channel_symmetric, quant_min=-127,
                    quant_max=127, eps=2 ** -12)]


@pytest.mark.parametrize("kw", PER_CHANNEL, ids=str)
@pytest.mark.parametrize("ch_axis", [0, 1, 2, -1])
@pytest.mark.parametrize("name", ["PerChannelMinMaxObserver",
                                  "MovingAveragePerChannelMinMaxObserver"])
def test_per_channel_matches_torch(name, kw, ch_axis, torch_mod, rng):
    kw = dict(kw, ch_axis=ch_axis)
    batches = batches_for(rng, "normal", shape=(3, 4, 33))
    _, _, (qs, qz), (ts, tz) = run_both(torch_mod, name, kw, batches)
    assert qs.shape == (batches[0].shape[ch_axis],)
    assert_array_equal(qs, ts)
    assert_array_equal(qz, tz)


def test_seed_003_cell(torch_mod):
    """Seed 003: three observers over two batches of a (3, 2) normal sample."""
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(2)]
    for name in ["MinMaxObserver", "MovingAverageMinMaxObserver", "HistogramObserver"]:
        _, _, (qs, qz), (ts, tz) = run_both(torch_mod, name, {}, inputs)
        assert_array_equal(qs, ts)
        assert_array_equal(qz, tz)


@pytest.mark.parametrize("name", ["MinMaxObserver", "PerChannelMinMaxObserver",
                                  "HistogramObserver", "MovingAverageMinMaxObserver"])
def test_results_do_not_depend_on_threads(name, rng):
    x = (rng.standard_normal((64, 300, 9)) ** 3).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        before = ql.get_num_threads()
        ql.set_num_threads(n)
        try:
            obs = getattr(O, name)()
            obs(x)
            obs(x[:, :10] * 2)
            results.append(obs.calculate_qparams())
        finally:
            ql.set_num_threads(before)
    for s, z in results[1:]:
        assert_array_equal(s, results[0][0])
        assert_array_equal(z, results[0][1])


# --- inputs and edge cases ----------------------------------------------------------------
ALL_STATEFUL = ["MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
                "MovingAveragePerChannelMinMaxObserver", "HistogramObserver"]


@pytest.mark.parametrize("name", ALL_STATEFUL)
def test_accepts_tensor_float64_and_lists(name):
    x64 = np.array([[-1.0, 2.0], [0.5, 3.0]])
    a, b, c = getattr(O, name)(), getattr(O, name)(), getattr(O, name)()
    t = ql.tensor(x64.astype(np.float32))
    assert a(x64) is x64
    assert b(t) is t
    c(x64.tolist())
    for other in (b, c):
        assert_array_equal(a.calculate_qparams()[0], other.calculate_qparams()[0])


@pytest.mark.parametrize("name", ALL_STATEFUL)
def test_empty_input_is_ignored(name):
    obs = getattr(O, name)()
    x = np.zeros((0, 3), np.float32)
    assert obs(x) is x
    with pytest.warns(UserWarning, match="must run observer"):
        s, z = obs.calculate_qparams()
    assert_array_equal(s, [1.0])
    assert_array_equal(z, [0])


@pytest.mark.parametrize("name", ALL_STATEFUL)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(name, bad):
    obs = getattr(O, name)()
    x = np.ones((3, 40), np.float32)
    x[2, 17] = bad
    with pytest.raises(ValueError, match="`x` must be finite"):
        obs(x)


@pytest.mark.parametrize("name", ["MinMaxObserver", "HistogramObserver"])
def test_constant_input(name, torch_mod):
    """min == max: affine range includes 0, so the scale is max/255."""
    x = np.full(10, 2.0, np.float32)
    _, _, (qs, qz), (ts, tz) = run_both(torch_mod, name, {}, [x])
    assert_array_equal(qs, ts)
    assert_array_equal(qz, tz)


def test_all_zero_input_gives_eps_scale():
    obs = O.MinMaxObserver()
    obs(np.zeros(5, np.float32))
    s, z = obs.calculate_qparams()
    assert s[0] == np.float32(np.finfo(np.float32).eps) and z[0] == 0


def test_per_channel_axis_errors():
    obs = O.PerChannelMinMaxObserver(ch_axis=2)
    with pytest.raises(ValueError, match="ch_axis.*must be in"):
        obs(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        O.PerChannelMinMaxObserver()(np.float32(1.0))
    obs = O.PerChannelMinMaxObserver(ch_axis=1)
    obs(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="number of channels"):
        obs(np.ones((2, 5), np.float32))


@pytest.mark.parametrize("kw,err,match", [
    (dict(dtype="uint8"), TypeError, "dtype"),
    (dict(qscheme=ql.per_channel_affine), ValueError, "qscheme"),
    (dict(quant_min=0), ValueError, "both"),
    (dict(quant_min=1, quant_max=10), ValueError, "contain 0"),
    (dict(quant_min=0, quant_max=300), ValueError, "inside the range"),
    (dict(dtype=ql.qint8, quant_min=-200, quant_max=7), ValueError, "inside the range"),
    (dict(eps=0.0), ValueError, "eps"),
    (dict(reduce_range=1), TypeError, "reduce_range"),
    (dict(qscheme=ql.per_tensor_symmetric, reduce_range=True), NotImplementedError,
     "symmetric"),
    (dict(foo=1), TypeError, "unexpected"),
])
def test_argument_errors(kw, err, match):
    with pytest.raises(err, match=match):
        O.MinMaxObserver(**kw)


def test_moving_average_argument_errors():
    with pytest.raises(ValueError, match="averaging_constant"):
        O.MovingAverageMinMaxObserver(averaging_constant=0.0)
    with pytest.raises(NotImplementedError, match="dynamic"):
        O.MovingAverageMinMaxObserver(is_dynamic=True)
    O.MovingAverageMinMaxObserver(averaging_constant=1, is_dynamic=True)


def test_moving_average_equation():
    c = 0.3
    obs = O.MovingAverageMinMaxObserver(averaging_constant=c)
    rng = np.random.default_rng(0)
    m = M = None
    for _ in range(5):
        x = rng.standard_normal(50).astype(np.float32)
        obs(x)
        if m is None:
            m, M = x.min(), x.max()
        else:   # m_t = m_{t-1} + c (min(x_t) - m_{t-1}), in float32
            m = np.float32(m + np.float32(c) * (x.min() - m))
            M = np.float32(M + np.float32(c) * (x.max() - M))
    assert obs.min_val == m and obs.max_val == M


# --- state, merge, reset ------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_STATEFUL)
def test_state_dict_round_trip(name, rng, tmp_path):
    a = getattr(O, name)()
    a(rng.standard_normal((4, 30)).astype(np.float32))
    a(rng.standard_normal((4, 30)).astype(np.float32) * 3)
    sd = a.state_dict()
    assert {"min_val", "max_val", "eps"} <= set(sd)
    b = getattr(O, name)()
    b.load_state_dict(sd)
    for k in sd:
        assert_array_equal(getattr(b, k), sd[k])
    assert_array_equal(a.calculate_qparams()[0], b.calculate_qparams()[0])
    assert_array_equal(a.calculate_qparams()[1], b.calculate_qparams()[1])
    # and through a file
    path = tmp_path / "obs.qlearn"
    ql.save(dict(a.state_dict()), path)
    c = getattr(O, name)()
    c.load_state_dict(ql.load(path))
    assert_array_equal(a.calculate_qparams()[0], c.calculate_qparams()[0])


@pytest.mark.parametrize("name", ALL_STATEFUL)
def test_reset(name, rng):
    obs = getattr(O, name)()
    obs(rng.standard_normal((3, 4)).astype(np.float32))
    obs.reset_min_max_vals()
    with pytest.warns(UserWarning):
        s, z = obs.calculate_qparams()
    assert s[0] == 1.0 and z[0] == 0


@pytest.mark.parametrize("name", ["MinMaxObserver", "PerChannelMinMaxObserver"])
def test_merge_of_shards_equals_one_observer(name, rng):
    data = [rng.standard_normal((8, 20)).astype(np.float32) * (i + 1) for i in range(6)]
    whole = getattr(O, name)()
    for x in data:
        whole(x)
    shards = [getattr(O, name)() for _ in range(3)]
    for i, x in enumerate(data):
        shards[i % 3](x)
    merged = getattr(O, name)()
    for s in shards:
        merged.merge(s)
    assert_array_equal(merged.calculate_qparams()[0], whole.calculate_qparams()[0])
    assert_array_equal(merged.calculate_qparams()[1], whole.calculate_qparams()[1])


def test_histogram_merge_of_shards_is_close(rng):
    data = [(rng.standard_normal(5000) * (1 + i % 3)).astype(np.float32) for i in range(6)]
    whole = O.HistogramObserver()
    for x in data:
        whole(x)
    a, b = O.HistogramObserver(), O.HistogramObserver()
    for i, x in enumerate(data):
        (a if i % 2 else b)(x)
    merged = O.HistogramObserver().merge(a).merge(b)
    assert merged.histogram.sum() == pytest.approx(whole.histogram.sum())
    assert merged.min_val == whole.min_val and merged.max_val == whole.max_val
    np.testing.assert_allclose(merged.calculate_qparams()[0], whole.calculate_qparams()[0],
                               rtol=2e-2)


def test_histogram_merge_same_range_is_exact(rng):
    x, y = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000)
    y = y.astype(np.float32)
    y[:2] = x.min(), x.max()
    y = np.clip(y, x.min(), x.max())
    whole = O.HistogramObserver()
    whole(x)
    whole(y)
    a, b = O.HistogramObserver(), O.HistogramObserver()
    a(x)
    b(y)
    assert_array_equal(a.merge(b).histogram, whole.histogram)


def test_merge_errors():
    with pytest.raises(TypeError, match="MinMaxObserver"):
        O.MinMaxObserver().merge(O.HistogramObserver())
    with pytest.raises(ValueError, match="dtype"):
        O.MinMaxObserver().merge(O.MinMaxObserver(dtype=ql.qint8))
    with pytest.raises(NotImplementedError, match="order"):
        O.MovingAverageMinMaxObserver().merge(O.MovingAverageMinMaxObserver())


# --- factories, reprs and the simple observers --------------------------------------------
def test_with_args_factory_and_repr(torch_mod):
    f = O.MinMaxObserver.with_args(quant_min=0, quant_max=127)
    a, b = f(), f()
    assert a is not b and a.quant_max == 127
    assert repr(f) == ("functools.partial(<class 'qlearn.quantization.observer.MinMaxObserver'>, "
                       "quant_min=0, quant_max=127){}")
    g = f.with_args(dtype=ql.qint8)
    assert g().dtype is ql.qint8
    tf = torch_mod.ao.quantization.observer.MinMaxObserver.with_args(quant_min=0, quant_max=127)
    assert repr(tf).replace("torch.ao.", "qlearn.") == repr(f)
    h = O.MinMaxObserver.with_callable_args(eps=lambda: 0.5)
    assert h().eps[0] == 0.5


def test_reprs_like_torch(torch_mod):
    T = torch_mod.ao.quantization.observer
    assert repr(O.MinMaxObserver()) == repr(T.MinMaxObserver())
    assert repr(O.HistogramObserver()) == repr(T.HistogramObserver())


def test_fixed_qparams_observer(torch_mod):
    for f, tf in [(O.default_fixed_qparams_range_0to1_observer,
                   torch_mod.ao.quantization.observer.default_fixed_qparams_range_0to1_observer),
                  (O.default_fixed_qparams_range_neg1to1_observer,
                   torch_mod.ao.quantization.observer.default_fixed_qparams_range_neg1to1_observer)]:
        s, z = f().calculate_qparams()
        ts, tz = tf().calculate_qparams()
        assert_array_equal(s, ts.numpy())
        assert_array_equal(z, tz.numpy())
    obs = O.FixedQParamsObserver(0.1, 3)
    x = np.ones(3, np.float32)
    assert obs(x) is x
    with pytest.raises(ValueError, match="scale"):
        O.FixedQParamsObserver(-1.0, 0)
    with pytest.raises(ValueError, match="zero_point"):
        O.FixedQParamsObserver(0.1, 300)


@pytest.mark.parametrize("cls", [O.PlaceholderObserver, O.NoopObserver, O.RecordingObserver,
                                 O.ReuseInputObserver])
def test_non_observing_observers(cls):
    obs = cls()
    x = np.arange(3, dtype=np.float32)
    assert obs(x) is x
    with pytest.raises(RuntimeError, match="should not be called"):
        obs.calculate_qparams()


def test_recording_observer_copies():
    obs = O.RecordingObserver()
    x = np.arange(3, dtype=np.float32)
    obs(x)
    x[0] = 9
    assert obs.get_tensor_value()[0][0] == 0


def test_observer_is_a_child_module():
    from qlearn import nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.activation_post_process = O.MinMaxObserver()

        def forward(self, x):
            return self.activation_post_process(x)

    m = M()
    m(np.array([1.0, -1.0], np.float32))
    assert set(m.state_dict()) == {"activation_post_process.eps",
                                   "activation_post_process.min_val",
                                   "activation_post_process.max_val"}


# --- qparams ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,rr,expected", [
    (ql.quint8, False, (0, 255)), (ql.quint8, True, (0, 127)),
    (ql.qint8, False, (-128, 127)), (ql.qint8, True, (-64, 63)),
    (ql.qint32, False, (-2 ** 31, 2 ** 31 - 1))])
def test_quant_range(dtype, rr, expected):
    assert calculate_qmin_qmax(None, None, False, dtype, rr) == expected


def test_calculate_qparams_per_channel_and_errors():
    s, z = calculate_qparams(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), ql.quint8,
                             ql.per_channel_affine, 0, 255)
    assert s.shape == z.shape == (2,)
    with pytest.raises(ValueError, match="must not exceed"):
        calculate_qparams(2.0, 1.0)


# --- property: calculate_qparams equals torch's _calculate_qparams ---------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

finite32 = st.floats(-1e6, 1e6, width=32, allow_subnormal=False)


@given(lo=finite32, hi=finite32,
       config=st.sampled_from([(ql.quint8, ql.per_tensor_affine, None, False),
                               (ql.quint8, ql.per_tensor_affine, None, True),
                               (ql.qint8, ql.per_tensor_affine, None, True),
                               (ql.qint8, ql.per_tensor_symmetric, None, False),
                               (ql.quint8, ql.per_tensor_symmetric, None, False),
                               (ql.quint8, ql.per_tensor_affine, (0, 15), False),
                               (ql.qint8, ql.per_tensor_affine, (-2, 1), False),
                               (ql.quint8, ql.per_tensor_symmetric, (0, 31), False),
                               (ql.qint8, ql.per_tensor_symmetric, (-127, 127), False)]),
       eps=st.sampled_from([FLOAT32_EPS, 2.0 ** -12, 1e-3]))
def test_calculate_qparams_equals_torch(lo, hi, config, eps):
    torch = pytest.importorskip("torch")
    dtype, qscheme, qrange, rr = config
    lo, hi = min(lo, hi), max(lo, hi)
    kw = dict(dtype=dtype, qscheme=qscheme, reduce_range=rr, eps=eps)
    if qrange:
        kw.update(quant_min=qrange[0], quant_max=qrange[1])
    mine = O.MinMaxObserver(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.ao.quantization.observer.MinMaxObserver(**to_torch_kwargs(torch, kw))
    s, z = mine._calculate_qparams(np.float32(lo), np.float32(hi))
    ts, tz = theirs._calculate_qparams(torch.tensor(lo, dtype=torch.float32),
                                       torch.tensor(hi, dtype=torch.float32))
    assert_array_equal(s, ts.numpy())
    assert_array_equal(z, tz.numpy())


@pytest.mark.parametrize("name", ALL_STATEFUL)
def test_loads_a_torch_observer_state_dict(name, torch_mod, rng):
    """A PyTorch observer's state_dict (same buffer names) loads into qlearn's."""
    batches = batches_for(rng, "outliers", shape=(4, 50))
    _, t, _, (ts, tz) = run_both(torch_mod, name, {}, batches)
    mine = getattr(O, name)()
    mine.load_state_dict(t.state_dict())
    assert isinstance(mine.min_val, np.ndarray) and mine.min_val.dtype == np.float32
    s, z = mine.calculate_qparams()
    np.testing.assert_allclose(s, ts, rtol=1e-6)
    assert_array_equal(z, tz)


@pytest.mark.parametrize("module", ["qlearn.quantization.observer",
                                    "qlearn.quantization.qconfig",
                                    "qlearn.quantization.qparams",
                                    "qlearn.quantization.calibrators", "qlearn.backends"])
def test_docstring_examples_run(module):
    import doctest
    import importlib
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, extraglobs={"np": np, "ql": ql},
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["MinMaxObserver", "MovingAverageMinMaxObserver",
                                  "PerChannelMinMaxObserver",
                                  "MovingAveragePerChannelMinMaxObserver", "HistogramObserver"])
def test_repr_is_pytorchs(torch_mod, name):
    # before any data (inf / tensor([])) and after two batches, names torch. -> qlearn.
    import torch.ao.quantization as tq
    ours, theirs = getattr(O, name)(), getattr(tq, name)()
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(5)
    for _ in range(2):
        x = rng.standard_normal((3, 8)).astype(np.float32)
        ours(x)
        theirs(torch_mod.from_numpy(x))
    assert repr(ours) == repr(theirs)
