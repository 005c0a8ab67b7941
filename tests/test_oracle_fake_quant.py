"""Fake quantization against PyTorch 2.13: the functions and their straight-through
gradients, the FakeQuantize modules through their switches, the default qconfigs.

Deliberate differences, asserted as qlearn's behaviour:

* negative ``axis`` for ``fake_quantize_per_channel_affine`` counts from the end (torch
  raises ``RuntimeError``); qlearn gives torch's result at ``axis + ndim``;
* NaN/inf inputs raise ``ValueError`` (torch maps NaN to ``quant_min``);
* float64 inputs are converted to float32 (torch keeps float64).
"""
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.quantization as tq
from qlearn.quantization import observer as qo

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

RANGES = [(0, 255), (-128, 127), (0, 15), (-8, 7), (0, 1), (-2 ** 31, 2 ** 31 - 1)]
SHAPES = [(5,), (3, 4), (2, 3, 4), (1,), (2, 0, 3), (), (4, 1, 2, 3)]


def _draw(rng, i):
    shape = SHAPES[i % len(SHAPES)]
    qmin, qmax = RANGES[i % len(RANGES)]
    scale = float(np.float32(rng.uniform(1e-3, 0.5)))
    zp = int(rng.integers(max(qmin, -1000), min(qmax, 1000) + 1))
    x = np.asarray(rng.standard_normal(shape) * rng.choice([0.1, 1.0, 10.0, 1e4]),
                   np.float32)
    if i % 3 == 0:                            # exact ties x = (k + 1/2) S
        x = np.asarray((rng.integers(-300, 300, shape) + 0.5) * np.float32(scale),
                       np.float32)
    g = np.asarray(rng.standard_normal(shape), np.float32)
    return x, g, scale, zp, qmin, qmax


def _grad(t):
    return np.asarray(t.grad.data if hasattr(t.grad, "data") else t.grad)


def test_per_tensor_function_and_gradient(torch_mod):
    torch = torch_mod
    rng = np.random.default_rng(11)
    for i in range(300):
        x, g, scale, zp, qmin, qmax = _draw(rng, i)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ty = torch.fake_quantize_per_tensor_affine(tx, scale, zp, qmin, qmax)
        ty.backward(torch.from_numpy(g))
        qx = ql.tensor(x.copy(), requires_grad=True)
        qy = ql.fake_quantize_per_tensor_affine(qx, scale, zp, qmin, qmax)
        qy.backward(ql.tensor(g))
        where = f"case {i}: shape {x.shape}, S={scale}, Z={zp}, [{qmin}, {qmax}]"
        assert qy.shape == tuple(ty.shape), where            # 0-d stays 0-d
        np.testing.assert_array_equal(qy.numpy(), ty.detach().numpy(), err_msg=where)
        np.testing.assert_array_equal(_grad(qx), tx.grad.numpy(), err_msg=where)
        # a plain array in gives the same values, no graph
        np.testing.assert_array_equal(
            ql.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax).numpy(),
            ty.detach().numpy(), err_msg=where)


def test_per_channel_function_and_gradient(torch_mod):
    torch = torch_mod
    rng = np.random.default_rng(12)
    n = 0
    for i in range(300):
        x, g, _, _, qmin, qmax = _draw(rng, i)
        if x.ndim == 0 or x.size == 0:
            continue
        axis = int(rng.integers(0, x.ndim))
        c = x.shape[axis]
        scales = rng.uniform(1e-3, 0.5, c).astype(np.float32)
        zps = rng.integers(max(qmin, -1000), min(qmax, 1000) + 1, c).astype(np.int32)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ty = torch.fake_quantize_per_channel_affine(tx, torch.from_numpy(scales),
                                                    torch.from_numpy(zps), axis, qmin, qmax)
        ty.backward(torch.from_numpy(g))
        for ax in (axis, axis - x.ndim):         # a negative axis: deliberate extension
            qx = ql.tensor(x.copy(), requires_grad=True)
            qy = ql.fake_quantize_per_channel_affine(qx, scales, zps, ax, qmin, qmax)
            qy.backward(ql.tensor(g))
            where = f"case {i}: shape {x.shape}, axis {ax}, [{qmin}, {qmax}]"
            np.testing.assert_array_equal(qy.numpy(), ty.detach().numpy(), err_msg=where)
            np.testing.assert_array_equal(_grad(qx), tx.grad.numpy(), err_msg=where)
        n += 1
        if i < 5:
            with pytest.raises(RuntimeError):
                torch.fake_quantize_per_channel_affine(
                    tx.detach(), torch.from_numpy(scales), torch.from_numpy(zps),
                    axis - x.ndim, qmin, qmax)
    assert n > 150


def test_non_contiguous_and_float64_inputs(torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal((4, 3, 5)).transpose(2, 0, 1)          # float64, strided
    t = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x.astype(np.float32)),
                                              0.05, 3, 0, 255)
    y = ql.fake_quantize_per_tensor_affine(x, 0.05, 3, 0, 255)
    assert y.numpy().dtype == np.float32                    # converted, not rejected
    np.testing.assert_array_equal(y.numpy(), t.numpy())


BAD_FQ = [
    (dict(input=np.array([np.nan], np.float32)), ValueError, "finite"),
    (dict(input=np.array([np.inf], np.float32)), ValueError, "finite"),
    (dict(input=np.ones(2, np.int64)), TypeError, "floating"),
    (dict(input="abc"), TypeError, "input"),
    (dict(scale=0.0), ValueError, "scale"),
    (dict(scale=-1.0), ValueError, "scale"),
    (dict(scale=float("nan")), ValueError, "scale"),
    (dict(scale="s"), TypeError, "scale"),
    (dict(zero_point=300), ValueError, "zero_point"),
    (dict(zero_point=1.5), TypeError, "zero_point"),
    (dict(quant_min=255, quant_max=0), ValueError, "quant_min"),
    (dict(quant_min=0.0), TypeError, "quant_min"),
    (dict(quant_max=2 ** 40), ValueError, "quant_max"),
]


@pytest.mark.parametrize("override, exc, match", BAD_FQ)
def test_per_tensor_bad_arguments(override, exc, match):
    args = dict(input=np.ones((2, 3), np.float32), scale=0.1, zero_point=0, quant_min=0,
                quant_max=255)
    args.update(override)
    with pytest.raises(exc, match=match):
        ql.fake_quantize_per_tensor_affine(**args)


@pytest.mark.parametrize("override, exc, match", [
    (dict(scale=np.full(3, 0.1, np.float32)), ValueError, "channel"),
    (dict(scale=np.array([0.1, 0.0], np.float32)), ValueError, "scale"),
    (dict(zero_point=np.array([0, 300], np.int32)), ValueError, "zero_point"),
    (dict(axis=2), ValueError, "axis"),
    (dict(axis=0.0), TypeError, "axis"),
    (dict(input=np.float32(1.0)), ValueError, "dimension"),
    (dict(input=np.array([[np.nan, 1.0]] * 2, np.float32)), ValueError, "finite"),
])
def test_per_channel_bad_arguments(override, exc, match):
    args = dict(input=np.ones((2, 3), np.float32), scale=np.full(2, 0.1, np.float32),
                zero_point=np.zeros(2, np.int32), axis=0, quant_min=0, quant_max=255)
    args.update(override)
    with pytest.raises(exc, match=match):
        ql.fake_quantize_per_channel_affine(**args)


# ---- the modules ---------------------------------------------------------------------------
MODULES = [
    ("FakeQuantize", dict(observer="MovingAverageMinMaxObserver", quant_min=0, quant_max=255)),
    ("FakeQuantize", dict(observer="MinMaxObserver", quant_min=0, quant_max=15)),
    ("FakeQuantize", dict(observer="MovingAverageMinMaxObserver", quant_min=-128,
                          quant_max=127, dtype="qint8", qscheme="per_tensor_symmetric")),
    ("FakeQuantize", dict(observer="MovingAveragePerChannelMinMaxObserver", quant_min=-128,
                          quant_max=127, dtype="qint8", qscheme="per_channel_symmetric",
                          ch_axis=1)),
    ("FakeQuantize", dict(observer="PerChannelMinMaxObserver", quant_min=-8, quant_max=7,
                          dtype="qint8", qscheme="per_channel_affine", ch_axis=0)),
    ("FakeQuantize", dict(observer="HistogramObserver", quant_min=0, quant_max=127,
                          bins=128)),
    ("FakeQuantize", dict(averaging_constant=0.5, quant_min=0, quant_max=255)),
    ("FakeQuantize", dict()),
    ("FusedMovingAvgObsFakeQuantize", dict()),
    ("FusedMovingAvgObsFakeQuantize", dict(quant_min=0, quant_max=127)),
    ("FusedMovingAvgObsFakeQuantize", dict(averaging_constant=0.5)),
    ("FusedMovingAvgObsFakeQuantize", dict(
        observer="MovingAverageMinMaxObserver", quant_min=-128, quant_max=127,
        dtype="qint8", qscheme="per_tensor_symmetric")),
    ("FusedMovingAvgObsFakeQuantize", dict(
        observer="MovingAveragePerChannelMinMaxObserver", quant_min=-128, quant_max=127,
        dtype="qint8", qscheme="per_channel_symmetric", ch_axis=0)),
    ("FusedMovingAvgObsFakeQuantize", dict(
        observer="MovingAveragePerChannelMinMaxObserver", quant_min=0, quant_max=255,
        qscheme="per_channel_affine", ch_axis=0)),
]


def _build(lib, cls, kw, torch=None):
    mod = tq if lib == "q" else torch.ao.quantization
    obs_mod = qo if lib == "q" else torch.ao.quantization.observer
    names = ql if lib == "q" else torch
    args = {}
    for k, v in kw.items():
        if k == "observer":
            v = getattr(obs_mod, v)
        elif k in ("dtype", "qscheme"):
            v = getattr(names, v)
        args[k] = v
    return getattr(mod, cls)(**args)


def _np(v):
    return np.asarray(v.detach().numpy() if hasattr(v, "detach") else getattr(v, "data", v))


@pytest.mark.parametrize("cls, kw", MODULES, ids=[f"{c}-{i}" for i, (c, _) in
                                                   enumerate(MODULES)])
def test_module_through_its_switches(torch_mod, cls, kw):
    torch = torch_mod
    rng = np.random.default_rng(13)
    q, t = _build("q", cls, kw), _build("t", cls, kw, torch)
    for step in range(8):
        x = (rng.standard_normal((3, 4, 5)) * rng.choice([0.5, 1, 3])).astype(np.float32)
        if step == 3:
            tq.disable_observer(q)
            torch.ao.quantization.disable_observer(t)
        if step == 4:
            q.apply(tq.enable_observer)
            t.apply(torch.ao.quantization.enable_observer)
            tq.disable_fake_quant(q)
            torch.ao.quantization.disable_fake_quant(t)
        if step == 5:
            tq.enable_fake_quant(q)
            torch.ao.quantization.enable_fake_quant(t)
        if step == 6:
            q.eval()
            t.eval()
        xq = ql.tensor(x.copy(), requires_grad=True)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        yq, yt = q(xq), t(xt)
        g = rng.standard_normal(x.shape).astype(np.float32)
        yq.backward(ql.tensor(g))
        yt.backward(torch.from_numpy(g))
        where = f"step {step}"
        np.testing.assert_array_equal(_np(yq), _np(yt), err_msg=where)
        np.testing.assert_array_equal(_grad(xq), xt.grad.numpy(), err_msg=where)
        sq, zq = q.calculate_qparams()
        st, zt = t.calculate_qparams()
        np.testing.assert_array_equal(_np(sq).ravel(), _np(st).ravel(), err_msg=where)
        np.testing.assert_array_equal(_np(zq).ravel(), _np(zt).ravel(), err_msg=where)
        sd_q, sd_t = q.state_dict(), t.state_dict()
        assert sorted(sd_q) == sorted(sd_t)
        for k in sd_t:
            np.testing.assert_allclose(_np(sd_q[k]).astype(np.float64),
                                       _np(sd_t[k]).astype(np.float64), rtol=1e-6,
                                       err_msg=f"{where} {k}")


@pytest.mark.parametrize("cls", ["FakeQuantize", "FusedMovingAvgObsFakeQuantize"])
def test_module_zero_dim_and_empty_inputs(torch_mod, cls):
    torch = torch_mod
    q, t = _build("q", cls, {}), _build("t", cls, {}, torch)
    for x in (np.array(0.26, np.float32), np.zeros((0, 3), np.float32),
              np.array(-1.3, np.float32)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yq, yt = q(x), t(torch.from_numpy(x))
        assert _np(yq).shape == tuple(yt.shape)
        np.testing.assert_array_equal(_np(yq), _np(yt))


def test_module_bad_input():
    for cls in (tq.FakeQuantize, tq.FusedMovingAvgObsFakeQuantize):
        with pytest.raises(ValueError, match="finite"):
            cls()(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="quant_min"):
        tq.FakeQuantize(quant_min=10, quant_max=0)
    with pytest.raises(ValueError, match="inside the range"):
        tq.FakeQuantize(quant_min=-128, quant_max=127)      # quint8 observer by default


# ---- qconfigs ------------------------------------------------------------------------------
def _norm(text):
    return (text.replace("qlearn.quantization", "torch.ao.quantization")
            .replace("qlearn.", "torch."))


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
@pytest.mark.parametrize("fn, version", [("get_default_qconfig", 0),
                                         ("get_default_qat_qconfig", 0),
                                         ("get_default_qat_qconfig", 1)])
def test_default_qconfigs(torch_mod, backend, fn, version):
    torch = torch_mod
    qc = getattr(tq, fn)(backend, version)
    tc = getattr(torch.ao.quantization, fn)(backend, version)
    rng = np.random.default_rng(14)
    for part in ("activation", "weight"):
        assert _norm(repr(getattr(qc, part))) == repr(getattr(tc, part)), part
        qm, tm = getattr(qc, part)(), getattr(tc, part)()
        assert type(qm).__name__ == type(tm).__name__
        assert _norm(repr(qm)) == repr(tm)            # buffers print as torch's tensors
        for _ in range(3):
            x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
            np.testing.assert_array_equal(_np(qm(x.copy())), _np(tm(torch.from_numpy(x))))
        if hasattr(tm, "calculate_qparams"):
            s, z = qm.calculate_qparams()
            ts, tz = tm.calculate_qparams()
            np.testing.assert_array_equal(_np(s).ravel(), ts.numpy().ravel())
            np.testing.assert_array_equal(_np(z).ravel(), tz.numpy().ravel())


def test_default_qconfig_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        tq.get_default_qconfig("arm")
    with pytest.raises(ValueError, match="version"):
        tq.get_default_qconfig("x86", 5)
    with pytest.raises(ValueError, match="version"):
        tq.get_default_qat_qconfig("x86", 2)
    with pytest.raises(TypeError, match="activation"):
        tq.QConfig(activation=1, weight=tq.MinMaxObserver)
    with pytest.raises(ValueError, match="instance"):
        tq.QConfig(activation=tq.MinMaxObserver(), weight=tq.MinMaxObserver)


NAMED = ["default_qconfig", "default_per_channel_qconfig", "default_dynamic_qconfig",
         "per_channel_dynamic_qconfig", "default_qat_qconfig", "default_qat_qconfig_v2",
         "default_dynamic_qat_qconfig", "default_debug_qconfig",
         "default_symmetric_qnnpack_qconfig", "default_symmetric_qnnpack_qat_qconfig",
         "default_per_channel_symmetric_qnnpack_qconfig",
         "default_per_channel_symmetric_qnnpack_qat_qconfig",
         "default_quint8_weight_qconfig", "default_reuse_input_qconfig",
         "float16_dynamic_qconfig", "float16_static_qconfig",
         "default_fake_quant", "default_weight_fake_quant", "default_dynamic_fake_quant",
         "default_per_channel_weight_fake_quant", "default_histogram_fake_quant",
         "default_fused_act_fake_quant", "default_fused_wt_fake_quant",
         "default_fused_per_channel_wt_fake_quant",
         "fused_wt_fake_quant_range_neg_127_to_127",
         "fused_per_channel_wt_fake_quant_range_neg_127_to_127",
         "default_fixed_qparams_range_0to1_fake_quant",
         "default_fixed_qparams_range_neg1to1_fake_quant",
         "default_observer", "default_weight_observer", "default_histogram_observer",
         "default_per_channel_weight_observer", "default_dynamic_quant_observer",
         "default_placeholder_observer", "default_debug_observer",
         "default_reuse_input_observer", "weight_observer_range_neg_127_to_127",
         "per_channel_weight_observer_range_neg_127_to_127",
         "default_fixed_qparams_range_0to1_observer",
         "default_fixed_qparams_range_neg1to1_observer",
         "UniformQuantizationObserverBase", "qconfig_equals"]


@pytest.mark.parametrize("name", NAMED)
def test_torch_ao_quantization_names_exist(torch_mod, name):
    """``torch.ao.quantization.<name>`` is ``qlearn.quantization.<name>``."""
    ours = getattr(tq, name)
    theirs = getattr(torch_mod.ao.quantization, name)
    if hasattr(theirs, "activation"):                 # a QConfig: the same factories
        for part in ("activation", "weight"):
            a, b = getattr(ours, part), getattr(theirs, part)
            assert _norm(repr(a)).replace("numpy.float16", "torch.float16") == \
                repr(b).replace("torch.float16", "torch.float16") or \
                type(a()).__name__ == type(b()).__name__, (name, part)
    elif callable(theirs) and not isinstance(theirs, type) and name != "qconfig_equals":
        assert type(ours()).__name__ == type(theirs()).__name__


@pytest.mark.parametrize("a, b", [("default_qat_qconfig", ("qnnpack", 0)),
                                  ("default_qat_qconfig", ("fbgemm", 0)),
                                  ("default_qat_qconfig_v2", ("qnnpack", 1)),
                                  ("default_qconfig", ("qnnpack", None)),
                                  ("default_per_channel_qconfig", ("fbgemm", None))])
def test_qconfig_equals(torch_mod, a, b):
    ta = torch_mod.ao.quantization

    def get(mod, backend, version):
        if version is None:
            return mod.get_default_qconfig(backend)
        return mod.get_default_qat_qconfig(backend, version)

    assert tq.qconfig_equals(getattr(tq, a), get(tq, *b)) == \
        ta.qconfig_equals(getattr(ta, a), get(ta, *b))
    rebuilt = tq.QConfig(activation=tq.default_observer, weight=tq.default_weight_observer)
    assert tq.qconfig_equals(tq.default_qconfig, rebuilt)
    assert ta.qconfig_equals(ta.default_qconfig, ta.QConfig(
        activation=ta.default_observer, weight=ta.default_weight_observer))


# ---- learnable fake quantization (LSQ) ------------------------------------------------------
def test_learnable_functions_and_gradients(torch_mod):
    from qlearn import fake_quant as qfq
    torch = torch_mod
    rng = np.random.default_rng(15)
    for i in range(120):
        shape = [(5,), (3, 4), (2, 3, 4)][i % 3]
        x = (rng.standard_normal(shape) * 2).astype(np.float32)
        qmin, qmax = [(0, 255), (-128, 127), (0, 15)][i % 3]
        gf = [1.0, 0.5][i % 2]
        g = rng.standard_normal(shape).astype(np.float32)
        per_channel = len(shape) >= 2 and i % 2 == 0
        axis = i % len(shape)
        c = shape[axis] if per_channel else 1
        s = rng.uniform(0.01, 0.3, c).astype(np.float32)
        z = rng.uniform(qmin, qmax, c).astype(np.float32)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ts = torch.from_numpy(s.copy()).requires_grad_(True)
        tz = torch.from_numpy(z.copy()).requires_grad_(True)
        qx = ql.tensor(x.copy(), requires_grad=True)
        qs = ql.tensor(s.copy(), requires_grad=True)
        qz = ql.tensor(z.copy(), requires_grad=True)
        if per_channel:
            ty = torch._fake_quantize_learnable_per_channel_affine(tx, ts, tz, axis, qmin,
                                                                   qmax, gf)
            qy = qfq._fake_quantize_learnable_per_channel_affine(qx, qs, qz, axis, qmin,
                                                                 qmax, gf)
        else:
            ty = torch._fake_quantize_learnable_per_tensor_affine(tx, ts, tz, qmin, qmax, gf)
            qy = qfq._fake_quantize_learnable_per_tensor_affine(qx, qs, qz, qmin, qmax, gf)
        ty.backward(torch.from_numpy(g))
        qy.backward(ql.tensor(g))
        where = f"case {i}: {shape}, per_channel={per_channel}"
        np.testing.assert_array_equal(qy.numpy(), ty.detach().numpy(), err_msg=where)
        np.testing.assert_array_equal(qx.grad.numpy(), tx.grad.numpy(), err_msg=where)
        # the scale and zero-point gradients are sums over the tensor: summation order
        np.testing.assert_allclose(qs.grad.numpy(), ts.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=where)
        np.testing.assert_allclose(qz.grad.numpy(), tz.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=where)


@pytest.mark.parametrize("kw", [dict(quant_min=0, quant_max=255),
                                dict(quant_min=-128, quant_max=127, dtype="qint8",
                                     qscheme="per_tensor_symmetric")])
def test_learnable_fake_quantize_module(torch_mod, kw):
    torch = torch_mod
    from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize
    tkw = {k: (getattr(torch, v) if k in ("dtype", "qscheme") else v) for k, v in kw.items()}
    qkw = {k: (getattr(ql, v) if k in ("dtype", "qscheme") else v) for k, v in kw.items()}
    t = _LearnableFakeQuantize(torch.ao.quantization.MovingAverageMinMaxObserver, **tkw)
    q = tq.LearnableFakeQuantize(tq.MovingAverageMinMaxObserver, **qkw)
    assert repr(q).replace("LearnableFakeQuantize", "_LearnableFakeQuantize", 1) == repr(t)
    rng = np.random.default_rng(16)
    for step in range(4):
        x = rng.standard_normal((3, 4)).astype(np.float32)
        if step == 2:
            t.enable_param_learning()
            q.enable_param_learning()
        np.testing.assert_array_equal(_np(q(x)), _np(t(torch.from_numpy(x))))
        np.testing.assert_array_equal(_np(q.scale), _np(t.scale))
        np.testing.assert_array_equal(_np(q.zero_point), _np(t.zero_point))
    assert sorted(q.state_dict()) == sorted(t.state_dict())
