"""Percentile, MSE and entropy calibrators: known answers, and they beat MinMax on
heavy-tailed data (the numbers are printed with ``pytest -s``)."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
from qlearn.quantization import calibrators as C
from qlearn.quantization import observer as O
from qlearn.reference import entropy_search_ref

CALIBRATORS = [C.PercentileObserver, C.MSEObserver, C.EntropyObserver]
SCHEMES = [(ql.quint8, ql.per_tensor_affine), (ql.qint8, ql.per_tensor_symmetric)]


def quantization_mse(x, obs):
    """Mean squared error of quantizing then dequantizing x with obs's qparams."""
    s, z = obs.calculate_qparams()
    q = ql.quantize_per_tensor(x, float(s[0]), int(z[0]), dtype=obs.dtype)
    return float(np.mean((q.dequantize() - x) ** 2))


def heavy_tailed(kind, n=300_000, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "laplace":
        return rng.laplace(size=n).astype(np.float32)
    if kind == "laplace+outliers":      # 1 in 100 000 values is an outlier 15..25 b out
        x = rng.laplace(size=n).astype(np.float32)
        k = n // 100_000
        x[:k] = rng.choice([-1, 1], k) * rng.uniform(15, 25, k)
        return x
    if kind == "gaussian+outliers":
        x = rng.standard_normal(n).astype(np.float32)
        k = n // 100_000
        x[:k] = rng.choice([-1, 1], k) * rng.uniform(8, 12, k)
        return x
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["laplace+outliers", "gaussian+outliers"])
@pytest.mark.parametrize("dtype,qscheme", SCHEMES, ids=["affine", "symmetric"])
def test_each_calibrator_beats_minmax_on_heavy_tails(kind, dtype, qscheme):
    x = heavy_tailed(kind)
    minmax = O.MinMaxObserver(dtype=dtype, qscheme=qscheme)
    minmax(x)
    base = quantization_mse(x, minmax)
    report = [f"{kind} {qscheme.name}: MinMax {base:.3e}"]
    for cls in CALIBRATORS:
        obs = cls(dtype=dtype, qscheme=qscheme)
        for part in np.array_split(x, 3):     # in batches, as calibration runs
            obs(part)
        err = quantization_mse(x, obs)
        report.append(f"{cls.__name__} {err:.3e}")
        assert err < base, (cls.__name__, err, base)
    print("; ".join(report))


def test_gaussian_numbers():
    """On Gaussian data the gains are small; MSE's search is never worse than MinMax."""
    x = np.random.default_rng(1).standard_normal(300_000).astype(np.float32)
    for dtype, qscheme in SCHEMES:
        minmax = O.MinMaxObserver(dtype=dtype, qscheme=qscheme)
        minmax(x)
        base = quantization_mse(x, minmax)
        obs = C.MSEObserver(dtype=dtype, qscheme=qscheme)
        obs(x)
        assert quantization_mse(x, obs) <= base
        print(qscheme.name, "MinMax", base, "MSE", quantization_mse(x, obs))


def test_percentile_known_answer():
    # uniform on [0, 1): the p-th percentile is p; symmetric: of |x|
    x = np.linspace(0, 1, 100_001, dtype=np.float32)
    obs = C.PercentileObserver(percentile=90.0)
    obs(x)
    s, z = obs.calculate_qparams()
    assert z[0] == 0
    assert s[0] * 255 == pytest.approx(0.9, abs=1e-3)
    y = np.linspace(-1, 1, 200_001, dtype=np.float32)
    sym = C.PercentileObserver(percentile=50.0, dtype=ql.qint8, qscheme=ql.per_tensor_symmetric)
    sym(y)
    assert sym.calculate_qparams()[0][0] * 127.5 == pytest.approx(0.5, abs=1e-3)
    aff = C.PercentileObserver(percentile=95.0)
    aff(y)                                  # clips 5% on each side: [-0.9, 0.9]
    s, z = aff.calculate_qparams()
    assert s[0] * 255 == pytest.approx(1.8, abs=2e-3)
    assert C.PercentileObserver(percentile=100.0).forward(y) is y


def test_percentile_100_is_minmax():
    x = np.random.default_rng(2).standard_normal(10_000).astype(np.float32)
    a, b = C.PercentileObserver(percentile=100.0), O.MinMaxObserver()
    a(x)
    b(x)
    np.testing.assert_allclose(a.calculate_qparams()[0], b.calculate_qparams()[0], rtol=1e-5)


def test_mse_symmetric_optimum_for_uniform_data():
    # uniform data: no tails to trade, the best range is (nearly) the full one
    x = np.random.default_rng(3).uniform(-1, 1, 200_000).astype(np.float32)
    obs = C.MSEObserver(dtype=ql.qint8, qscheme=ql.per_tensor_symmetric)
    obs(x)
    assert obs.calculate_qparams()[0][0] * 127.5 > 0.97


def test_entropy_relu_keeps_zero_point_zero():
    x = np.maximum(np.random.default_rng(4).standard_normal(100_000), 0).astype(np.float32)
    x[:3] = 40.0
    obs = C.EntropyObserver()
    obs(x)
    s, z = obs.calculate_qparams()
    assert z[0] == 0 and s[0] * 255 < 10


@pytest.mark.parametrize("cls", CALIBRATORS)
def test_interface(cls, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.laplace(size=(50, 40)).astype(np.float32)
    obs = cls()
    assert obs(x) is x
    obs(ql.tensor(x * 2))
    s, z = obs.calculate_qparams()
    assert s.dtype == np.float32 and z.dtype == np.int64 and s.shape == z.shape == (1,)
    # state_dict round trip
    other = cls()
    other.load_state_dict(obs.state_dict())
    assert_array_equal(other.calculate_qparams()[0], s)
    # merge of shards: same range, histograms combined
    a, b = cls(), cls()
    a(x)
    b(x * 2)
    merged = cls().merge(a).merge(b)
    assert merged.min_val == obs.min_val and merged.max_val == obs.max_val
    assert merged.histogram.sum() == pytest.approx(obs.histogram.sum())
    np.testing.assert_allclose(merged.calculate_qparams()[0], s, rtol=0.05)
    # no data yet, constant data, errors
    with pytest.warns(UserWarning):
        assert cls().calculate_qparams()[0][0] == 1.0
    c = cls()
    c(np.full(10, 3.0, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.calculate_qparams()[0][0] == pytest.approx(3.0 / 255)
    with pytest.raises(ValueError, match="finite"):
        cls()(np.array([1.0, np.nan], np.float32))
    assert "functools.partial" in repr(cls.with_args(bins=256))


def test_argument_errors():
    with pytest.raises(ValueError, match="percentile"):
        C.PercentileObserver(percentile=0)
    with pytest.raises(ValueError, match="num_candidates"):
        C.MSEObserver(num_candidates=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [128, 256, 8])
def test_entropy_kernel_matches_numpy_reference(seed, levels):
    from qlearn._ext import _observer as K
    rng = np.random.default_rng(seed)
    x = np.abs(rng.laplace(size=20_000) if seed % 2 else rng.standard_normal(20_000))
    x[:seed] = rng.uniform(10, 30, seed)
    hist = np.histogram(x, bins=1024)[0].astype(np.float64)
    assert K.entropy_search(hist, levels, levels) == entropy_search_ref(hist, levels)
