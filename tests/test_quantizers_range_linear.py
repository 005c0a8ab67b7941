"""Range-based linear quantization against Distiller's formulas (its inverse-scale
convention, transcribed) and NumPy transcriptions of the clipping modes."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
from qlearn.quantizers import range_linear as rl


def distiller_asymmetric(x, k, lo, hi, signed):
    """Distiller: s = (2^k - 1) / (max - min), z = round(s min) (+ 2^(k-1) if signed),
    q = clamp(round(s x - z))."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    s = (2 ** k - 1) / (hi - lo)
    z = np.round(s * lo)
    if signed:
        z += 2 ** (k - 1)
    q = np.round(s * x.astype(np.float64) - z)
    qmin, qmax = (-(2 ** (k - 1)), 2 ** (k - 1) - 1) if signed else (0, 2 ** k - 1)
    return np.clip(q, qmin, qmax)


def distiller_symmetric(x, k, sat, restrict):
    n = 2 ** (k - 1) - 1 if restrict else (2 ** k - 1) / 2
    q = np.round(n / sat * x.astype(np.float64))
    lim = 2 ** (k - 1) - 1
    return np.clip(q, -lim if restrict else -lim - 1, lim)


@pytest.mark.parametrize("k", [2, 4, 8, 12])
@pytest.mark.parametrize("mode", ["asymmetric_unsigned", "asymmetric_signed", "symmetric",
                                  "symmetric_restricted"])
def test_integers_match_distiller(k, mode, rng):
    x = rng.normal(0.7, 2, 20_000).astype(np.float32)
    lo, hi = rl.get_tensor_min_max(x)
    s, z, qmin, qmax = rl.linear_quantization_params(lo, hi, k, mode)
    q = rl.linear_quantize(x, s[0], z[0], qmin, qmax)
    if mode.startswith("asym"):
        want = distiller_asymmetric(x, k, float(lo), float(hi), mode == "asymmetric_signed")
    else:
        want = distiller_symmetric(x, k, max(-float(lo), float(hi)), mode.endswith("restricted"))
    # the scale is S in float32 here and 1/S in float64 in the transcription: the
    # integers may differ by one at a float rounding boundary, nowhere else
    diff = np.abs(q - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert q.min() >= qmin and q.max() <= qmax


def test_symmetric_has_zero_point_zero_and_asymmetric_uses_the_whole_range(rng):
    x = rng.uniform(0, 5, 1000).astype(np.float32)          # one-sided, a ReLU output
    s, z, _, _ = rl.linear_quantization_params(*rl.get_tensor_min_max(x), 4, "symmetric")
    assert z[0] == 0
    q_sym = rl.linear_quantize(x, s[0], z[0], -8, 7)
    s, z, _, _ = rl.linear_quantization_params(*rl.get_tensor_min_max(x), 4,
                                               "asymmetric_unsigned")
    q_asym = rl.linear_quantize(x, s[0], z[0], 0, 15)
    assert len(np.unique(q_sym)) <= 9 < len(np.unique(q_asym))   # half the codes wasted


def test_clip_modes(rng):
    x = rng.normal(0, 1, (8, 100)).astype(np.float32)
    x[0, 0] = 40.0                                           # an outlier
    assert rl.get_clip_range(x, "none") == (x.min(), x.max())
    lo, hi = rl.get_clip_range(x, "avg")
    assert_allclose([lo, hi], [x.min(axis=1).mean(), x.max(axis=1).mean()], rtol=1e-6)
    lo, hi = rl.get_clip_range(x, "n_std", num_stds=2)
    m, sd = x.astype(np.float64).mean(), x.astype(np.float64).std(ddof=1)
    assert_allclose([lo, hi], [max(x.min(), m - 2 * sd), min(x.max(), m + 2 * sd)], rtol=1e-6)
    assert hi < 40.0 / 4


def test_range_linear_quantize_is_fake_quant_with_ste(rng):
    x = rng.normal(0, 1, 500).astype(np.float32)
    xt = ql.tensor(x, requires_grad=True)
    y = rl.range_linear_quantize(xt, 4, "asymmetric_signed", "n_std", num_stds=1.5)
    lo, hi = rl.get_clip_range(x, "n_std", 1.5)
    s, z, qmin, qmax = rl.linear_quantization_params(lo, hi, 4, "asymmetric_signed")
    want = rl.linear_dequantize(rl.linear_quantize(x, s[0], z[0], qmin, qmax), s[0], z[0])
    assert_array_equal(y.numpy(), want)
    y.sum().backward()
    t = np.rint(x * (np.float32(1) / s[0])) + z[0]
    assert_array_equal(xt.grad.numpy(), ((t >= qmin) & (t <= qmax)).astype(np.float32))
    assert 0 < xt.grad.numpy().sum() < x.size


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        rl.quant_range(4, "sym")
    with pytest.raises(ValueError, match="num_bits"):
        rl.quant_range(1, "symmetric")
    with pytest.raises(ValueError, match="clip_mode"):
        rl.get_clip_range(np.ones(3), "gauss")
    with pytest.raises(ValueError, match="num_stds"):
        rl.get_clip_range(np.ones(3), "n_std")
