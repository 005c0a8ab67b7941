"""NaN and infinity where PyTorch 2.13 defines the result: fake quantization.

``torch.fake_quantize_per_tensor_affine`` clamps with ``fmax``/``fmin``: ``+inf`` gives
the top level ``(q_max - Z) S``, ``-inf`` and NaN the bottom one, with STE mask 0, for
every tensor size and SIMD path.  qlearn used to refuse them (``ValueError``); it now
returns PyTorch's values.  Per channel, NaN and ``-inf`` give PyTorch's bottom level too;
``+inf`` saturates to the top level, as qlearn's per-channel path does for every
``|x / S| >= 2**63`` (PyTorch's per-channel kernel converts those to ``int64``, which is
undefined, and returns the bottom level).

Where PyTorch's result is not usable, qlearn still refuses with a ``ValueError`` naming
the argument, and the refused call leaves no trace: observers fed NaN (PyTorch's
MinMaxObserver then holds NaN for ever; its HistogramObserver raises), and
``quantize_per_tensor`` of NaN (PyTorch's integer depends on the kernel path).
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
def test_fake_quant_per_tensor_nonfinite_as_torch(torch_mod, simd_path, n, qmin, qmax, zp):
    x = _with_nonfinite(n, n + qmax)
    xt = torch_mod.tensor(x, requires_grad=True)
    yt = torch_mod.fake_quantize_per_tensor_affine(xt, 0.1, zp, qmin, qmax)
    yt.sum().backward()
    xq = ql.tensor(x, requires_grad=True)
    yq = ql.fake_quantize_per_tensor_affine(xq, 0.1, zp, qmin, qmax)
    yq.sum().backward()
    np.testing.assert_array_equal(yq.numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(xq.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("qmin,qmax,zp", RANGES[:3])
@pytest.mark.parametrize("shape,axis", [((1, 40), 0), ((40, 1), 0), ((3, 13), 1),
                                        ((2, 3, 7), -2)])
def test_fake_quant_per_channel_nonfinite(torch_mod, simd_path, shape, axis, qmin, qmax,
                                          zp):
    x = _with_nonfinite(int(np.prod(shape)), 7).reshape(shape)
    c = shape[axis]
    sc = np.linspace(0.05, 0.3, c).astype(np.float32)
    zps = np.full(c, zp, np.int32)
    xt = torch_mod.tensor(x, requires_grad=True)
    yt = torch_mod.fake_quantize_per_channel_affine(
        xt, torch_mod.tensor(sc), torch_mod.tensor(zps), axis % len(shape), qmin, qmax)
    yt.sum().backward()
    xq = ql.tensor(x, requires_grad=True)
    yq = ql.fake_quantize_per_channel_affine(xq, sc, zps, axis, qmin, qmax)
    yq.sum().backward()
    keep = ~np.isposinf(x)               # +inf: PyTorch's undefined int64 conversion
    np.testing.assert_array_equal(yq.numpy()[keep], yt.detach().numpy()[keep])
    np.testing.assert_array_equal(xq.grad.numpy(), xt.grad.numpy())
    # +inf saturates to the top level of its channel, as any |x / S| >= 2**63 does
    top = np.moveaxis(np.broadcast_to(((qmax - zps) * sc.astype(np.float64)).astype(
        np.float32), np.moveaxis(x, axis, -1).shape), -1, axis)
    np.testing.assert_array_equal(yq.numpy()[~keep], top[~keep])


def test_fake_quantize_modules_with_a_frozen_observer_clamp_nonfinite(torch_mod):
    tq = torch_mod.ao.quantization
    x = np.float32([np.inf, -np.inf, np.nan, 0.3, 1e30, -2.0])
    pairs = [(qfq.FakeQuantize(), tq.FakeQuantize()),
             (qfq.FusedMovingAvgObsFakeQuantize(), tq.FusedMovingAvgObsFakeQuantize())]
    for ours, theirs in pairs:
        ours(np.float32([-1, 2]))
        theirs(torch_mod.tensor([-1.0, 2.0]))
        ours.disable_observer()
        theirs.disable_observer()
        got = ours(x)
        np.testing.assert_array_equal(np.asarray(getattr(got, "data", got)),
                                      theirs(torch_mod.tensor(x)).numpy())
    ours = qfq.FixedQParamsFakeQuantize(qobs.FixedQParamsObserver.with_args(
        scale=1 / 256.0, zero_point=0))
    theirs = tq.FixedQParamsFakeQuantize(tq.FixedQParamsObserver.with_args(
        scale=1 / 256.0, zero_point=0))
    got = ours(x)
    np.testing.assert_array_equal(np.asarray(getattr(got, "data", got)),
                                  theirs(torch_mod.tensor(x)).numpy())


def test_learnable_fake_quant_nonfinite_gives_finite_gradients():
    # PyTorch's LSQ result for non-finite input changes with the tensor size; qlearn
    # gives the per-tensor clamp and finite scale / zero-point gradients
    from qlearn.fake_quant import _fake_quantize_learnable_per_tensor_affine as lsq
    x = ql.tensor(np.float32([np.inf, -np.inf, np.nan, 1.0, 3e38]), requires_grad=True)
    s = ql.tensor([0.1], requires_grad=True)
    z = ql.tensor([3.0], requires_grad=True)
    y = lsq(x, s, z, 0, 255)
    np.testing.assert_array_equal(
        y.numpy(), ql.fake_quantize_per_tensor_affine(x.numpy(), 0.1, 3, 0, 255).numpy())
    y.sum().backward()
    assert np.isfinite(s.grad.numpy()).all() and np.isfinite(z.grad.numpy()).all()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1, 0])


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
