"""FakeQuantize and friends, against torch.ao.quantization.fake_quantize (and LSQ against
torch's _LearnableFakeQuantize), plus their switches, factories and state."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.quantization.fake_quantize as qfq
from qlearn.quantization import observer as qobs

# default factories that PyTorch has under the same name, with an input shape each
DEFAULTS = [("default_fake_quant", (64,)), ("default_weight_fake_quant", (8, 5)),
            ("default_per_channel_weight_fake_quant", (6, 3, 3, 3)),
            ("default_histogram_fake_quant", (1000,)),
            ("default_fixed_qparams_range_0to1_fake_quant", (50,)),
            ("default_fixed_qparams_range_neg1to1_fake_quant", (50,))]


def _run_both(t_mod, q_mod, torch, shape, rng, steps=4):
    for step in range(steps):
        x = rng.normal(0.3 * step, 1 + step, shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_()
        yt = t_mod(xt)
        xq = ql.tensor(x, requires_grad=True)
        yq = q_mod(xq)
        g = rng.normal(size=shape).astype(np.float32)
        yt.backward(torch.from_numpy(g))
        yq.backward(g)
        assert_array_equal(np.asarray(q_mod.scale), t_mod.scale.numpy(), err_msg=f"step {step}")
        assert_array_equal(np.asarray(q_mod.zero_point), t_mod.zero_point.numpy())
        assert_array_equal(yq.numpy(), yt.detach().numpy(), err_msg=f"step {step}")
        assert_array_equal(xq.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("name,shape", DEFAULTS)
def test_defaults_match_torch(torch_mod, name, shape, rng):
    import torch.ao.quantization.fake_quantize as tfq
    _run_both(getattr(tfq, name)(), getattr(qfq, name)(), torch_mod, shape, rng)


@pytest.mark.parametrize("ctor,shape", [
    ("default_fused_act_fake_quant", (500,)),
    ("default_fused_wt_fake_quant", (8, 8)),
    ("default_fused_per_channel_wt_fake_quant", (6, 9)),
    ("fused_per_channel_wt_fake_quant_range_neg_127_to_127", (4, 9)),
])
def test_fused_and_unfused_each_equal_torch(torch_mod, ctor, shape, rng):
    """Each module equals its torch twin: the fused one torch's fused op (FBGEMM's
    ChooseQuantizationParams, qparams.calculate_qparams_fused), the unfused one torch's
    FakeQuantize with the same observer (the observers' qparams rule).  The two rules
    differ (symmetric max(-min/128, max/127) vs max(-min, max)/127.5, a 6.1e-5 scale
    floor, a float64 scale), so fused and unfused are not compared with each other;
    tests/test_fused_fake_quant_torch.py covers the fused rule in depth."""
    import torch.ao.quantization.fake_quantize as tfq
    fused = getattr(qfq, ctor)()
    t_fused = getattr(tfq, ctor)()
    obs = type(fused.activation_post_process)
    q_kw = dict(quant_min=fused.quant_min, quant_max=fused.quant_max, dtype=fused.dtype,
                qscheme=fused.qscheme, eps=float(fused.activation_post_process.eps[0]))
    t_kw = dict(quant_min=fused.quant_min, quant_max=fused.quant_max,
                dtype=getattr(torch_mod, fused.dtype.name),
                qscheme=getattr(torch_mod, fused.qscheme.name), eps=q_kw["eps"])
    if fused.is_per_channel:
        q_kw["ch_axis"] = t_kw["ch_axis"] = 0
    unfused = qfq.FakeQuantize(obs, **q_kw)
    t_obs = getattr(torch_mod.ao.quantization, obs.__name__)
    t_unfused = tfq.FakeQuantize(t_obs, **t_kw)
    for step in range(4):
        x = rng.normal(0.3 * step, 1 + step, shape).astype(np.float32)
        a, b = fused(x), unfused(x)
        ta, tb = t_fused(torch_mod.from_numpy(x)), t_unfused(torch_mod.from_numpy(x))
        assert_array_equal(a.numpy(), ta.numpy())
        assert_array_equal(fused.scale, t_fused.scale.numpy())
        assert_array_equal(fused.zero_point, t_fused.zero_point.numpy())
        assert_array_equal(b.numpy(), tb.numpy())
        assert_array_equal(unfused.scale, t_unfused.scale.numpy())


def test_fused_gradient_and_switches(rng):
    fq = qfq.FusedMovingAvgObsFakeQuantize(quant_min=0, quant_max=15)
    x = ql.tensor(rng.normal(size=100), requires_grad=True)
    fq(x).sum().backward()
    assert set(np.unique(x.grad.numpy())) <= {0.0, 1.0}
    fq.disable_observer()
    s = fq.scale.copy()
    fq(rng.normal(0, 10, 100))
    assert_array_equal(fq.scale, s)
    fq.disable_fake_quant()
    assert fq(x) is x
    with pytest.raises(ValueError, match="finite"):
        fq.enable_observer()
        fq(np.float32([0, np.nan]))
    with pytest.raises(TypeError, match="MovingAverage"):
        qfq.FusedMovingAvgObsFakeQuantize(observer=qobs.MinMaxObserver)


@pytest.mark.parametrize("per_channel", [False, True])
def test_learnable_matches_torch(torch_mod, per_channel, num_threads, rng):
    torch = torch_mod
    from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize
    if per_channel:
        t_obs = torch.ao.quantization.MovingAveragePerChannelMinMaxObserver
        q_obs = qobs.MovingAveragePerChannelMinMaxObserver
        t_kw = dict(dtype=torch.qint8, qscheme=torch.per_channel_affine, ch_axis=0)
        q_kw = dict(dtype=ql.qint8, qscheme=ql.per_channel_affine, ch_axis=0)
        shape, cl = (4, 50), 4
    else:
        t_obs = torch.ao.quantization.MovingAverageMinMaxObserver
        q_obs = qobs.MovingAverageMinMaxObserver
        t_kw, q_kw, shape, cl = dict(dtype=torch.qint8), dict(dtype=ql.qint8), (200,), -1
    t = _LearnableFakeQuantize(t_obs, quant_min=-8, quant_max=7, channel_len=cl,
                               use_grad_scaling=True, **t_kw)
    q = qfq.LearnableFakeQuantize(q_obs, quant_min=-8, quant_max=7, channel_len=cl,
                                  use_grad_scaling=True, **q_kw)
    for step in range(5):
        if step == 2:
            t.enable_param_learning()
            q.enable_param_learning()
        x = rng.normal(0.3, 1, shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_()
        xq = ql.tensor(x, requires_grad=True)
        yt, yq = t(xt), q(xq)
        g = rng.normal(size=shape).astype(np.float32)
        yt.backward(torch.from_numpy(g))
        yq.backward(g)
        assert_array_equal(q.scale.data, t.scale.detach().numpy())
        assert_array_equal(q.zero_point.data, t.zero_point.detach().numpy())
        assert_array_equal(yq.numpy(), yt.detach().numpy())
        assert_array_equal(xq.grad.numpy(), xt.grad.numpy())
        if step >= 2:
            assert_allclose(q.scale.grad.numpy(), t.scale.grad.numpy(), rtol=1e-5, atol=1e-7)
            assert_allclose(q.zero_point.grad.numpy(), t.zero_point.grad.numpy(),
                            rtol=1e-5, atol=1e-7)
            # a plain SGD step on both, so the next step starts from learned qparams
            with torch.no_grad():
                t.scale -= 0.01 * t.scale.grad
                t.zero_point -= 0.5 * t.zero_point.grad
            t.scale.grad = t.zero_point.grad = None
            q.scale.grad = q.zero_point.grad = None
            # the float32 sums differ in the last bit from torch's; start equal each step
            q.scale.data[...] = t.scale.detach().numpy()
            q.zero_point.data[...] = t.zero_point.detach().numpy()
            assert_array_equal(q.calculate_qparams()[1], t.calculate_qparams()[1].numpy())


def test_learnable_switches():
    q = qfq.LearnableFakeQuantize(qobs.MovingAverageMinMaxObserver, quant_min=0,
                                  quant_max=15)
    assert q.static_enabled[0] == 1 and q.learning_enabled[0] == 0
    q.enable_param_learning()
    assert q.scale.requires_grad and q.static_enabled[0] == 0
    q.enable_static_observation()
    x = np.float32([0.3, 1.7])
    assert q(x) is x and not q.scale.requires_grad
    assert q.bitwidth == 4
    with pytest.raises(ValueError, match="quant_min"):
        qfq.LearnableFakeQuantize(qobs.MovingAverageMinMaxObserver, quant_min=3, quant_max=3)


def test_fake_quantize_switches_with_args_and_state_dict(rng):
    factory = qfq.FakeQuantize.with_args(observer=qobs.MovingAverageMinMaxObserver,
                                         quant_min=0, quant_max=15, averaging_constant=0.5)
    a, b = factory(), factory()
    assert a is not b and a.quant_max == 15
    a(rng.normal(size=20))
    model = ql.nn.Module()
    model.fq = a
    model.apply(qfq.disable_observer)
    s = a.scale.copy()
    a(rng.normal(0, 100, size=20))
    assert_array_equal(a.scale, s)
    model.apply(qfq.disable_fake_quant)
    x = np.float32([0.123])
    assert a(x) is x
    model.apply(qfq.enable_fake_quant)
    model.apply(qfq.enable_observer)
    assert a.fake_quant_enabled[0] == 1 and a.observer_enabled[0] == 1
    b.load_state_dict(a.state_dict())
    assert_array_equal(b.scale, a.scale)
    assert_array_equal(b.zero_point, a.zero_point)
    assert "scale=" in repr(a)


def test_fake_quantize_argument_errors():
    with pytest.raises(ValueError, match="inside the range"):
        qfq.FakeQuantize(quant_min=0, quant_max=300, dtype=ql.quint8)
    with pytest.raises(ValueError, match="both"):
        qfq.FakeQuantize(quant_min=0)
    with pytest.raises(ValueError, match="quant_min"):
        qfq.FakeQuantize(quant_min=10, quant_max=2)
    with pytest.raises(TypeError, match="FixedQParamsObserver"):
        qfq.FixedQParamsFakeQuantize(qobs.MinMaxObserver)


def test_fixed_qparams_keep_their_qparams(rng):
    fq = qfq.default_fixed_qparams_range_neg1to1_fake_quant()
    fq(rng.normal(0, 10, 30))
    s, z = fq.calculate_qparams()
    assert s[0] == np.float32(2.0 / 256) and z[0] == 128
