"""NaN and infinity in data being quantized: refused by name, and the refusal leaves no trace.

qlearn's rule (the design notes' error policy) is that NaN and infinity have no quantized
value, so ``quantize_per_tensor`` / ``quantize_per_channel``, the fake-quant functions and
modules, and every observer raise ``ValueError`` naming the argument, on every tensor
size and SIMD path.  PyTorch 2.13 instead clamps fake-quant inputs (``+inf`` to the top
level, NaN and ``-inf`` to the bottom one), keeps a NaN range for ever in its
MinMaxObserver, raises in its HistogramObserver, and gives NaN a kernel-dependent integer
in ``quantize_per_tensor``: a NaN in quantization-aware training is a diverged model,
which qlearn reports where it appears instead of training on.  A refused batch leaves an
observer exactly as it was, so calibration can go on with good data.
"""
import copy

import numpy as np
import pytest

import qlearn as ql
from qlearn.kernels import simd
from qlearn.quantization import calibrators
from qlearn.quantization import fake_quantize as qfq
from qlearn.quantization import observer as qobs

SIZES = [1, 2, 7, 8, 9, 31, 33, 100, 40_000]
RANGES = [(0, 255, 3), (-128, 127, 0), (0, 15, 7), (-2 ** 31, 2 ** 31 - 1, 5),
          (-2 ** 24, 2 ** 24, 0), (5, 5, 5)]


def _with_nonfinite(n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=n) * 30).astype(np.float32)
    idx = rng.integers(0, n, size=max(1, n // 3))
    x[idx] = rng.choice([np.inf, -np.inf, np.nan], size=idx.size)
    return x


@pytest.fixture(params=simd.available(), ids=lambda p: p.name.lower())
def simd_path(request):
    with simd.use(request.param):
        yield request.param


@pytest.mark.parametrize("qmin,qmax,zp", RANGES)
@pytest.mark.parametrize("n", SIZES)
def test_fake_quant_refuses_nonfinite_on_every_path(simd_path, n, qmin, qmax, zp):
    x = _with_nonfinite(n, n)
    with pytest.raises(ValueError, match="`input` must be finite"):
        ql.fake_quantize_per_tensor_affine(x, 0.25, zp, qmin, qmax)
    with pytest.raises(ValueError, match="`input` must be finite"):
        ql.fake_quantize_per_channel_affine(x.reshape(1, -1), [0.25], [zp], 0, qmin, qmax)
    finite = np.where(np.isfinite(x), x, 0).astype(np.float32)   # the same call, finite
    ql.fake_quantize_per_tensor_affine(finite, 0.25, zp, qmin, qmax)

# --- where PyTorch's answer is unusable: refused, and the refusal changes nothing --------
OBSERVERS = {
    "MinMaxObserver": qobs.MinMaxObserver,
    "MovingAverageMinMaxObserver": qobs.MovingAverageMinMaxObserver,
    "PerChannelMinMaxObserver": lambda: qobs.PerChannelMinMaxObserver(ch_axis=1),
    "MovingAveragePerChannelMinMaxObserver":
        lambda: qobs.MovingAveragePerChannelMinMaxObserver(ch_axis=0),
    "HistogramObserver": qobs.HistogramObserver,
    "PercentileObserver": calibrators.PercentileObserver,
    "MSEObserver": calibrators.MSEObserver,
    "EntropyObserver": calibrators.EntropyObserver,
    "FakeQuantize": qfq.FakeQuantize,
    "FusedMovingAvgObsFakeQuantize": qfq.FusedMovingAvgObsFakeQuantize,
    "LearnableFakeQuantize": lambda: qfq.LearnableFakeQuantize(
        observer=qobs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255),
}


def _state(mod):
    return {k: np.array(getattr(v, "data", v), copy=True)
            for k, v in mod.state_dict().items()}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", list(OBSERVERS))
def test_observer_fed_nonfinite_then_good_data(name, bad):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 6)).astype(np.float32)
    b = (rng.normal(size=(4, 6)) * 3).astype(np.float32)
    poisoned = a.copy()
    poisoned[1, 2] = bad
    ref, obs = OBSERVERS[name](), OBSERVERS[name]()
    ref(a)
    obs(a)
    before = _state(obs)
    with pytest.raises(ValueError, match="finite"):
        obs(poisoned)
    after = _state(obs)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    ref(b)
    obs(b)
    for k, v in _state(ref).items():
        np.testing.assert_array_equal(_state(obs)[k], v, err_msg=k)
    if hasattr(obs, "calculate_qparams"):
        for u, v in zip(obs.calculate_qparams(), ref.calculate_qparams()):
            np.testing.assert_array_equal(u, v)
    copy.deepcopy(obs)(b)       # still usable after a copy


@pytest.mark.parametrize("quantize", [
    lambda x: ql.quantize_per_tensor(x, 0.1, 0, ql.quint8),
    lambda x: ql.quantize_per_channel(x.reshape(1, -1), [0.1], [0], 0, ql.qint8),
    lambda x: ql.quantize_per_tensor(x, 0.1, 0, ql.quint4x2),
], ids=["per_tensor", "per_channel", "quint4x2"])
def test_quantize_refuses_nan_by_name(quantize):
    with pytest.raises(ValueError, match="`input` must be finite"):
        quantize(np.float32([0.0, np.nan, 1.0]))
