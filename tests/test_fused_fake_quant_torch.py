"""FusedMovingAvgObsFakeQuantize against torch 2.13's (``torch.fused_moving_avg_obs_fake_quant``,
whose qparams come from FBGEMM's ChooseQuantizationParams, not from its observer).

Every comparison is bit for bit: the outputs, the ``scale`` / ``zero_point`` buffers, the
running min/max and the input gradients.  No float tolerance is needed anywhere: qlearn
repeats each float32 / float64 operation of the C++ code in the same order, and the
fake-quantize kernel after it is the one already pinned to torch's by
tests/test_fake_quant_modules.py.
"""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.quantization.fake_quantize as qfq
from qlearn.quantization import observer as qobs
from qlearn.quantization.qconfig import get_default_qat_qconfig
from qlearn.quantization.qparams import calculate_qparams, calculate_qparams_fused

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# (name, observer, kwargs with qlearn's dtype/qscheme names): every qscheme the fused
# module supports, both dtypes, reduce_range and custom ranges
CONFIGS = [
    ("affine_quint8", "MovingAverageMinMaxObserver", dict(dtype="quint8")),
    ("affine_quint8_reduce", "MovingAverageMinMaxObserver",
     dict(dtype="quint8", reduce_range=True)),
    ("affine_qint8", "MovingAverageMinMaxObserver",
     dict(quant_min=-128, quant_max=127, dtype="qint8")),
    ("affine_quint8_4bit", "MovingAverageMinMaxObserver",
     dict(quant_min=0, quant_max=15, dtype="quint8")),
    ("sym_qint8", "MovingAverageMinMaxObserver",
     dict(quant_min=-128, quant_max=127, dtype="qint8", qscheme="per_tensor_symmetric")),
    ("sym_qint8_127", "MovingAverageMinMaxObserver",
     dict(quant_min=-127, quant_max=127, dtype="qint8", qscheme="per_tensor_symmetric",
          eps=2 ** -12)),
    ("sym_qint8_4bit", "MovingAverageMinMaxObserver",
     dict(quant_min=-8, quant_max=7, dtype="qint8", qscheme="per_tensor_symmetric")),
    ("sym_qint8_reduce", "MovingAverageMinMaxObserver",
     dict(quant_min=-128, quant_max=127, dtype="qint8", qscheme="per_tensor_symmetric",
          reduce_range=True)),
    ("sym_quint8", "MovingAverageMinMaxObserver",
     dict(dtype="quint8", qscheme="per_tensor_symmetric")),
    ("pc_sym_qint8", "MovingAveragePerChannelMinMaxObserver",
     dict(quant_min=-128, quant_max=127, dtype="qint8", qscheme="per_channel_symmetric")),
    ("pc_sym_qint8_127", "MovingAveragePerChannelMinMaxObserver",
     dict(quant_min=-127, quant_max=127, dtype="qint8", qscheme="per_channel_symmetric")),
    ("pc_affine_quint8", "MovingAveragePerChannelMinMaxObserver",
     dict(dtype="quint8", qscheme="per_channel_affine")),
    ("pc_affine_qint8_reduce", "MovingAveragePerChannelMinMaxObserver",
     dict(quant_min=-128, quant_max=127, dtype="qint8", qscheme="per_channel_affine",
          reduce_range=True)),
    ("pc_sym_quint8_5bit", "MovingAveragePerChannelMinMaxObserver",
     dict(quant_min=0, quant_max=31, dtype="quint8", qscheme="per_channel_symmetric")),
]
KINDS = ["normal", "zeros", "constant", "tiny", "positive", "negative", "huge"]


def _pair(torch, observer, kwargs, averaging_constant):
    kw = dict(kwargs, averaging_constant=averaging_constant)
    t_kw = {k: getattr(torch, v) if k in ("dtype", "qscheme") else v for k, v in kw.items()}
    q_kw = {k: getattr(ql, v) if k in ("dtype", "qscheme") else v for k, v in kw.items()}
    t = torch.ao.quantization.FusedMovingAvgObsFakeQuantize(
        getattr(torch.ao.quantization, observer), **t_kw)
    q = qfq.FusedMovingAvgObsFakeQuantize(getattr(qobs, observer), **q_kw)
    return t, q


def _batch(kind, rng, shape, offset, spread):
    """One batch of an awkward kind: the edge cases of the qparams rule."""
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "constant":
        return np.full(shape, offset, np.float32)
    if kind == "tiny":        # range far below the 6.1e-5 scale floor
        return (offset + rng.uniform(-1e-6, 1e-6, shape)).astype(np.float32)
    if kind == "positive":
        return rng.uniform(0, spread, shape).astype(np.float32)
    if kind == "negative":
        return -rng.uniform(0, spread, shape).astype(np.float32)
    if kind == "huge":
        return rng.normal(offset, 1e30, shape).astype(np.float32)
    return rng.normal(offset, spread, shape).astype(np.float32)


def _per_channel_batch(kinds, rng, cols, offset, spread):
    return np.stack([_batch(k, rng, (cols,), offset, spread) for k in kinds])


def _assert_same(t, q, yt, yq, xt, xq, what):
    obs_t, obs_q = t.activation_post_process, q.activation_post_process
    assert_array_equal(np.asarray(q.scale), t.scale.numpy(), err_msg=f"scale, {what}")
    assert_array_equal(np.asarray(q.zero_point), t.zero_point.numpy(),
                       err_msg=f"zero_point, {what}")
    assert_array_equal(np.asarray(obs_q.min_val), obs_t.min_val.numpy(), err_msg=what)
    assert_array_equal(np.asarray(obs_q.max_val), obs_t.max_val.numpy(), err_msg=what)
    assert_array_equal(yq.numpy(), yt.detach().numpy(), err_msg=f"output, {what}")
    assert_array_equal(xq.grad.numpy(), xt.grad.numpy(), err_msg=f"gradient, {what}")


def _step(torch, t, q, x, rng):
    xt = torch.from_numpy(x.copy()).requires_grad_()
    xq = ql.tensor(x, requires_grad=True)
    yt, yq = t(xt), q(xq)
    g = rng.normal(size=x.shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    yq.backward(g)
    return yt, yq, xt, xq


@pytest.mark.parametrize("name,observer,kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fused_fake_quant_equals_torch(torch_mod, name, observer, kwargs, data):
    torch = torch_mod
    c = data.draw(st.sampled_from([0.01, 0.3, 1.0]), label="averaging_constant")
    t, q = _pair(torch, observer, kwargs, c)
    per_channel = "MovingAveragePerChannel" in observer
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="rng_state"))
    n_batches = data.draw(st.integers(1, 4), label="batches")
    channels = data.draw(st.integers(1, 5), label="channels")
    cols = data.draw(st.integers(1, 17), label="columns")
    for step in range(n_batches):
        offset = data.draw(st.floats(-3, 3), label="offset")
        spread = data.draw(st.floats(1e-3, 10), label="spread")
        if per_channel:
            kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=channels,
                                       max_size=channels), label="kinds")
            x = _per_channel_batch(kinds, rng, cols, offset, spread)
        else:
            kind = data.draw(st.sampled_from(KINDS), label="kind")
            x = _batch(kind, rng, (channels, cols), offset, spread)
        yt, yq, xt, xq = _step(torch, t, q, x, rng)
        _assert_same(t, q, yt, yq, xt, xq, f"{name}, step {step}")
    # convert reads calculate_qparams: the observer's rule, in both libraries.  (With
    # c = 1, m + (x - m) can round to just past x, so the running min may exceed the
    # max; the fused op does not mind, the observers refuse it.)
    obs_t = t.activation_post_process
    if bool((obs_t.min_val > obs_t.max_val).any()):
        with pytest.raises(AssertionError):
            t.calculate_qparams()
        with pytest.raises(ValueError, match="must not exceed"):
            q.calculate_qparams()
        return
    ts, tz = t.calculate_qparams()
    qs, qz = q.calculate_qparams()
    assert_array_equal(np.asarray(qs, np.float32).reshape(-1), ts.numpy().reshape(-1))
    assert_array_equal(np.asarray(qz).reshape(-1), tz.numpy().reshape(-1))


@pytest.mark.parametrize("name,observer,kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_switches_equal_torch(torch_mod, name, observer, kwargs, rng):
    """Observer off / fake quant off in every combination: torch's fused op recomputes
    the qparams only while fake quantization is on (from the frozen range if the
    observer is off) and keeps them, stale, while it is off."""
    torch = torch_mod
    t, q = _pair(torch, observer, kwargs, 0.3)
    plan = [(1, 1), (1, 0), (1, 0), (0, 1), (1, 1), (0, 0), (0, 1), (1, 1)]
    for step, (obs_on, fq_on) in enumerate(plan):
        for m in (t, q):
            m.enable_observer(bool(obs_on))
            m.enable_fake_quant(bool(fq_on))
        x = rng.normal(0.5 * step - 1, 1 + step, (3, 7)).astype(np.float32)
        yt, yq, xt, xq = _step(torch, t, q, x, rng)
        _assert_same(t, q, yt, yq, xt, xq, f"{name}, step {step} {obs_on}{fq_on}")
    assert q.fake_quant_enabled.dtype == np.int64 == t.fake_quant_enabled.numpy().dtype
    assert q.observer_enabled.dtype == np.int64


def test_fake_quant_without_any_observation_equals_torch(torch_mod):
    """Fake quantization on before any data was observed: the range is (inf, -inf)."""
    torch = torch_mod
    for observer, kw in [("MovingAverageMinMaxObserver", dict(dtype="quint8")),
                         ("MovingAverageMinMaxObserver",
                          dict(quant_min=-128, quant_max=127, dtype="qint8",
                               qscheme="per_tensor_symmetric"))]:
        t, q = _pair(torch, observer, kw, 0.01)
        t.disable_observer()
        q.disable_observer()
        x = np.float32([[-1.0, 0.0, 0.3, 2.0]])
        yt, yq, xt, xq = _step(torch, t, q, x, np.random.default_rng(0))
        _assert_same(t, q, yt, yq, xt, xq, str(kw))


def _oracle_qparams(torch, lo, hi, qmin, qmax, symmetric):
    """torch's fused op on a two-element batch [lo, hi] with averaging constant 1."""
    s = torch.tensor([1.0])
    z = torch.tensor([0], dtype=torch.int32)
    torch.fused_moving_avg_obs_fake_quant(
        torch.tensor([lo, hi], dtype=torch.float32), torch.tensor([1]), torch.tensor([1]),
        torch.tensor(float("inf")), torch.tensor(float("-inf")), s, z, 1.0, qmin, qmax,
        0, False, symmetric)
    return s.numpy(), z.numpy()


RANGES = [(0, 255), (0, 127), (-128, 127), (-64, 63), (-127, 127), (-8, 7), (0, 15),
          (0, 1), (-1, 0), (-3, 250)]


@pytest.mark.parametrize("qmin,qmax", RANGES)
@pytest.mark.parametrize("symmetric", [False, True])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lo=st.floats(-1e4, 1e4), width=st.sampled_from([0.0, 1e-7, 3e-5, 1e-3, 1.0,
                                                                  77.0, 1e5]))
def test_calculate_qparams_fused_equals_torch(torch_mod, qmin, qmax, symmetric, lo, width):
    """The qparams function alone, on ranges around every branch: zero and tiny widths
    (the 0.1 and the 6.1e-5 floors), one-sided and two-sided ranges."""
    if symmetric and qmax - qmin < 2:
        pytest.skip("no symmetric 1-bit range (torch divides by q_+ = 0)")
    lo = float(np.float32(lo))
    hi = float(np.float32(lo + width))
    ts, tz = _oracle_qparams(torch_mod, lo, hi, qmin, qmax, symmetric)
    qs, qz = calculate_qparams_fused(lo, hi, qmin, qmax, symmetric)
    assert_array_equal(qs, ts)
    assert_array_equal(qz, tz)


def test_calculate_qparams_fused_edges():
    # symmetric: max(-min / 128, max / 127), not the observers' max(-min, max) / 127.5
    s, z = calculate_qparams_fused(np.float32([-1.0, -1.0]), np.float32([1.0, 0.5]),
                                   -128, 127, True)
    assert_array_equal(s, np.float32([1 / 127, 1 / 128]))
    assert_array_equal(z, [0, 0])
    obs_s, _ = calculate_qparams(-1.0, 1.0, ql.qint8, ql.per_tensor_symmetric, -128, 127)
    assert obs_s[0] == np.float32(1 / 127.5) != s[0]
    # one-sided symmetric data is quantized affinely
    s, z = calculate_qparams_fused(0.0, 1.0, -128, 127, True)
    assert (s[0], z[0]) == (np.float32(1 / 255), -128)
    # all zero: scale 0.1, zero point from the cheaper end
    assert calculate_qparams_fused(0.0, 0.0, 0, 255)[1][0] == 0
    assert calculate_qparams_fused(0.0, 0.0, -128, 127)[1][0] == 127
    # the 6.1e-5 floor widens a two-sided range: the zero point follows the new ends
    s, z = calculate_qparams_fused(-1e-4, 1e-3, 0, 255)
    assert s[0] == np.float32(6.1e-5) and z[0] == round(1e-4 / (1.1e-3 / 255))
    # per channel: arrays in, arrays out
    s, z = calculate_qparams_fused(np.float32([-2, 0, 0]), np.float32([2, 0, 1e-9]), 0, 255)
    assert s.shape == z.shape == (3,) and s.dtype == np.float32 and z.dtype == np.int64


def test_calculate_qparams_fused_bad_input():
    with pytest.raises(ValueError, match="`quant_min` must be less than `quant_max`"):
        calculate_qparams_fused(0.0, 1.0, 5, 5)
    with pytest.raises(TypeError, match="`quant_max` must be an integer"):
        calculate_qparams_fused(0.0, 1.0, 0, 2.5)
    with pytest.raises(ValueError, match="same shape"):
        calculate_qparams_fused(np.zeros(2), np.zeros(3), 0, 255)
    with pytest.raises(ValueError, match="symmetric range needs"):
        calculate_qparams_fused(-1.0, 1.0, 0, 1, symmetric=True)


# ---- the default factories and qconfigs ---------------------------------------------------
FUSED_DEFAULTS = ["default_fused_act_fake_quant", "default_fused_wt_fake_quant",
                  "default_fused_per_channel_wt_fake_quant",
                  "fused_wt_fake_quant_range_neg_127_to_127",
                  "fused_per_channel_wt_fake_quant_range_neg_127_to_127"]


def _repr_fields(module):
    """The ``key=`` names of a module's repr, in order (the values print differently:
    tensors in torch, arrays in qlearn)."""
    text = re.sub(r"tensor\((.*?)(, dtype=[\w.]+)?\)", r"\1", repr(module))
    return re.findall(r"(\w+)=", text)


def _partial_summary(factory, lib):
    """A fake-quant factory as plain text: class, observer and keyword values."""
    kw = dict(factory.p.keywords)
    out = {"class": factory.p.func.__name__}
    for k, v in kw.items():
        out[k] = v.__name__ if isinstance(v, type) else str(v).replace(lib, "LIB")
    return out


@pytest.mark.parametrize("name", FUSED_DEFAULTS)
def test_fused_defaults_equal_torch(torch_mod, name, rng):
    torch = torch_mod
    import torch.ao.quantization.fake_quantize as tfq
    tf, qf = getattr(tfq, name), getattr(qfq, name)
    assert _partial_summary(qf, "qlearn") == _partial_summary(tf, "torch")
    t, q = tf(), qf()
    assert _repr_fields(q) == _repr_fields(t)
    shape = (6, 11)
    for step in range(4):
        x = rng.normal(0.2 * step, 1 + step, shape).astype(np.float32)
        yt, yq, xt, xq = _step(torch, t, q, x, rng)
        _assert_same(t, q, yt, yq, xt, xq, f"{name}, step {step}")


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
@pytest.mark.parametrize("version", [0, 1])
def test_default_qat_qconfig_equals_torch(torch_mod, backend, version, rng):
    torch = torch_mod
    tq_ = torch.ao.quantization.get_default_qat_qconfig(backend, version=version)
    qq = get_default_qat_qconfig(backend, version=version)
    for part in ("activation", "weight"):
        tf, qf = getattr(tq_, part), getattr(qq, part)
        assert _partial_summary(qf, "qlearn") == _partial_summary(tf, "torch"), part
        t, q = tf(), qf()
        assert type(q).__name__ == type(t).__name__
        assert _repr_fields(q) == _repr_fields(t)
        for step in range(3):
            x = rng.normal(0.3 * step, 1 + step, (4, 9)).astype(np.float32)
            yt, yq, xt, xq = _step(torch, t, q, x, rng)
            _assert_same(t, q, yt, yq, xt, xq, f"{backend} {part}, step {step}")


def test_state_dict_from_torch_and_other_channel_axis(torch_mod, rng):
    """torch's state dict loads (int64 switches, per-channel buffers); a ch_axis other
    than 0 (which torch's fused op refuses) equals torch's on the transposed data."""
    torch = torch_mod
    t = torch.ao.quantization.default_fused_per_channel_wt_fake_quant()
    q = qfq.default_fused_per_channel_wt_fake_quant()
    t(torch.from_numpy(rng.normal(size=(4, 6)).astype(np.float32)))
    q.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    assert {k: np.asarray(v).dtype for k, v in q.state_dict().items()} == \
        {k: v.numpy().dtype for k, v in t.state_dict().items()}
    x = rng.normal(1.0, 2.0, (4, 6)).astype(np.float32)
    yt, yq, xt, xq = _step(torch, t, q, x, rng)
    _assert_same(t, q, yt, yq, xt, xq, "after load_state_dict")

    t = torch.ao.quantization.default_fused_per_channel_wt_fake_quant()
    q = qfq.FusedMovingAvgObsFakeQuantize(qobs.MovingAveragePerChannelMinMaxObserver,
                                          quant_min=-128, quant_max=127, dtype=ql.qint8,
                                          qscheme=ql.per_channel_symmetric, ch_axis=1)
    for step in range(3):
        x = rng.normal(0.5 * step, 1 + step, (7, 3)).astype(np.float32)
        yq = q(x)
        yt = t(torch.from_numpy(np.ascontiguousarray(x.T)))
        assert_array_equal(yq.numpy(), yt.numpy().T)
        assert_array_equal(q.scale, t.scale.numpy())
        assert_array_equal(q.zero_point, t.zero_point.numpy())
