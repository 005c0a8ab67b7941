"""The workflows end to end against PyTorch 2.13, on the same float weights: dynamic
quantization (Linear, LSTM, GRU), eager static (fuse, prepare, calibrate, convert) for
each backend's default qconfig, QAT (prepare_qat, train steps, convert) and graph mode
(prepare_fx / convert_fx); then the converted model exported with qlearn.onnx and run in
ONNX Runtime.

Tolerances, and why:

* dynamic modules return float32 computed from int32 accumulators times a float scale;
  torch's FBGEMM kernels order the float ops differently, so outputs agree to a few
  float32 ulps (``atol=1e-6`` relative to outputs of order 1), not bitwise;
* eager and FX static models are compared on the integers (the model's float output is
  the dequantized final integers, compared exactly);
* QAT with a fused conv-bn: torch folds the batch norm with its own float32 sqrt and
  convolution (MKL-DNN), which are not bit-reproducible in NumPy, so observers' scales
  may differ by an ulp; outputs are compared within one output step;
* ONNX Runtime against qlearn: equal integers except the operators whose bias ONNX takes
  as int32 (off by at most one LSB; see docs/export.md).
"""
import copy
import io

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.functional as F
import qlearn.quantization as tq
from qlearn.quantization import quantize_fx as qfx

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _load_from_torch(qmodel, tmodel):
    tsd = tmodel.state_dict()
    assert sorted(qmodel.state_dict()) == sorted(tsd)
    qmodel.load_state_dict({k: v.detach().numpy().copy() for k, v in tsd.items()})


def _out(y):
    return np.asarray(getattr(y, "data", y))


# ---- dynamic --------------------------------------------------------------------------
@pytest.mark.parametrize("kind, kwargs", [
    ("Linear", dict(in_features=20, out_features=16)),
    ("Linear", dict(in_features=7, out_features=1, bias=False)),
    ("LSTM", dict(input_size=5, hidden_size=4)),
    ("LSTM", dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True)),
    ("LSTM", dict(input_size=4, hidden_size=3, batch_first=True)),
    ("GRU", dict(input_size=5, hidden_size=2, batch_first=True)),
    ("GRU", dict(input_size=4, hidden_size=5, num_layers=2, bidirectional=True)),
])
def test_quantize_dynamic(torch_x86, kind, kwargs, rng):
    torch = torch_x86
    tmodel = torch.nn.Sequential(getattr(torch.nn, kind)(**kwargs))
    qmodel = nn.Sequential(getattr(nn, kind)(**kwargs))
    _load_from_torch(qmodel, tmodel)
    tq_ = torch.ao.quantization.quantize_dynamic(tmodel, {getattr(torch.nn, kind)},
                                                 dtype=torch.qint8)
    qq_ = tq.quantize_dynamic(qmodel, {getattr(nn, kind)}, dtype=ql.qint8)
    assert repr(qq_[0]) == repr(tq_[0]).replace("torch", "qlearn")
    shape = (3, kwargs["in_features"]) if kind == "Linear" else (3, 4, kwargs["input_size"])
    for scale in (0.5, 3.0):
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        with torch.no_grad():
            yt = tq_(torch.from_numpy(x))
        yq = qq_(x)
        if kind != "Linear":
            (yt, ht), (yq, hq) = yt, yq
            for a, b in zip(hq if kind == "LSTM" else (hq,), ht if kind == "LSTM" else (ht,)):
                np.testing.assert_allclose(_out(a), b.numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(_out(yq), yt.numpy(), atol=1e-6, rtol=0)
    # the quantized weights themselves are torch's integers
    if kind == "Linear":
        np.testing.assert_array_equal(qq_[0].weight().int_repr(),
                                      tq_[0].weight().int_repr().numpy())


def test_quantize_dynamic_bad_input(rng):
    m = tq.quantize_dynamic(nn.Sequential(nn.Linear(4, 3)), {nn.Linear}, dtype=ql.qint8)
    with pytest.raises(ValueError, match="finite"):
        m(np.array([[np.nan, 0, 0, 0]], np.float32))
    with pytest.raises(ValueError, match="features"):
        m(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="floating"):
        m(np.ones((2, 4), np.int64))
    assert m(np.ones((0, 4), np.float32)).shape == (0, 3)
    assert _out(m(np.ones((2, 4)))).dtype == np.float32          # float64 converted


# ---- eager static and QAT ----------------------------------------------------------------
def _cnn(lib, torch=None):
    N = torch.nn if lib == "t" else nn
    Q = torch.ao.quantization if lib == "t" else tq

    class Net(N.Module):
        def __init__(self):
            super().__init__()
            self.quant = Q.QuantStub()
            self.conv = N.Conv2d(2, 4, 3, padding=1)
            self.bn = N.BatchNorm2d(4)
            self.relu = N.ReLU()
            self.conv2 = N.Conv2d(4, 4, 3, stride=2, groups=2)
            self.relu2 = N.ReLU()
            self.pool = N.AdaptiveAvgPool2d(1)
            self.flat = N.Flatten()
            self.fc = N.Linear(4, 3)
            self.dequant = Q.DeQuantStub()

        def forward(self, x):
            x = self.relu(self.bn(self.conv(self.quant(x))))
            x = self.relu2(self.conv2(x))
            return self.dequant(self.fc(self.flat(self.pool(x))))

    return Net()


def _pair_of_cnns(torch):
    tm = _cnn("t", torch)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        tm.bn.running_mean.copy_(torch.randn(4) * 0.1)
        tm.bn.running_var.copy_(torch.rand(4) + 0.5)
    qm = _cnn("q")
    _load_from_torch(qm, tm)
    return tm.eval(), qm.eval()


FUSE = [["conv", "bn", "relu"], ["conv2", "relu2"]]


def _observer_qparams(model):
    return {name: mod.calculate_qparams() for name, mod in model.named_modules()
            if "activation_post_process" in name.rsplit(".", 1)[-1]
            and hasattr(mod, "calculate_qparams")}


def _same_observers(qm, tm):
    """The observers' qparams agree (float convolutions are not bit-reproducible, so a
    scale may differ by an ulp and a zero point by one); then torch's observer state is
    loaded into qlearn's, so that convert starts from identical qparams."""
    ours, theirs = _observer_qparams(qm), _observer_qparams(tm)
    assert sorted(ours) == sorted(theirs) and ours
    for name in theirs:
        np.testing.assert_allclose(ours[name][0], theirs[name][0].numpy(), rtol=1e-6,
                                   err_msg=name)
        assert np.abs(ours[name][1] - theirs[name][1].numpy()).max() <= 1, name
    tsd = tm.state_dict()
    assert sorted(qm.state_dict()) == sorted(tsd)
    qm.load_state_dict({k: v.numpy() for k, v in tsd.items()})
    ours = _observer_qparams(qm)
    for name in theirs:
        np.testing.assert_array_equal(ours[name][0], theirs[name][0].numpy(), err_msg=name)
        np.testing.assert_array_equal(ours[name][1], theirs[name][1].numpy(), err_msg=name)


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
def test_eager_static(torch_x86, backend, rng):
    torch = torch_x86
    tm, qm = _pair_of_cnns(torch)
    xs = [rng.standard_normal((2, 2, 8, 8)).astype(np.float32) for _ in range(4)]
    np.testing.assert_allclose(_out(qm(xs[0])), tm(torch.from_numpy(xs[0])).detach().numpy(),
                               atol=1e-5)
    ta = torch.ao.quantization
    tm = ta.fuse_modules(tm, FUSE)
    qm = tq.fuse_modules(qm, FUSE)
    assert [type(m).__name__ for m in qm.children()] == \
        [type(m).__name__ for m in tm.children()]
    tm.qconfig, qm.qconfig = ta.get_default_qconfig(backend), tq.get_default_qconfig(backend)
    ta.prepare(tm, inplace=True)
    tq.prepare(qm, inplace=True)
    for x in xs:
        tm(torch.from_numpy(x))
        qm(x)
    _same_observers(qm, tm)
    ta.convert(tm, inplace=True)
    tq.convert(qm, inplace=True)
    assert [type(m).__name__ for m in qm.children()] == \
        [type(m).__name__ for m in tm.children()]
    # 8-bit activations (qnnpack, onednn): torch's x86 kernels may saturate; allow one step
    steps = 0 if backend in ("x86", "fbgemm") else 1
    for x in xs:
        yt = tm(torch.from_numpy(x)).numpy()
        yq = _out(qm(x))
        np.testing.assert_allclose(yq, yt, atol=steps * float(tm.fc.scale) + 1e-7, rtol=0)
    np.testing.assert_array_equal(qm.conv.weight().int_repr(),
                                  tm.conv.weight().int_repr().numpy())


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_eager_qat(torch_x86, backend, rng):
    torch = torch_x86
    ta = torch.ao.quantization
    tm, qm = _pair_of_cnns(torch)
    tm, qm = tm.train(), qm.train()
    tm = ta.fuse_modules_qat(tm, FUSE)
    qm = tq.fuse_modules_qat(qm, FUSE)
    tm.qconfig = ta.get_default_qat_qconfig(backend)
    qm.qconfig = tq.get_default_qat_qconfig(backend)
    ta.prepare_qat(tm, inplace=True)
    tq.prepare_qat(qm, inplace=True)
    assert [type(m).__name__ for m in qm.children()] == \
        [type(m).__name__ for m in tm.children()]
    xs = [rng.standard_normal((2, 2, 8, 8)).astype(np.float32) for _ in range(4)]
    for x in xs:
        yt, yq = tm(torch.from_numpy(x)), qm(x)
        np.testing.assert_allclose(_out(yq), yt.detach().numpy(), atol=1e-5)
    tm.eval()
    qm.eval()
    ta.convert(tm, inplace=True)
    tq.convert(qm, inplace=True)
    for name in ("quant", "conv", "conv2", "fc"):
        assert float(getattr(qm, name).scale) == pytest.approx(
            float(getattr(tm, name).scale), rel=1e-6), name
        assert int(getattr(qm, name).zero_point) == int(getattr(tm, name).zero_point), name
    for x in xs[:2]:
        yt, yq = tm(torch.from_numpy(x)).numpy(), _out(qm(x))
        np.testing.assert_allclose(yq, yt, atol=float(tm.fc.scale) * 1.01, rtol=0)


# ---- graph mode ---------------------------------------------------------------------------
def _fx_net(lib, torch=None):
    N = torch.nn if lib == "t" else nn
    FF = torch.nn.functional if lib == "t" else F

    class Net(N.Module):
        def __init__(self):
            super().__init__()
            self.conv = N.Conv2d(2, 4, 3, padding=1)
            self.bn = N.BatchNorm2d(4)
            self.conv2 = N.Conv2d(4, 4, 1)
            self.fc = N.Linear(4 * 4 * 4, 5)

        def forward(self, x):
            y = FF.relu(self.bn(self.conv(x)))
            y = y + self.conv2(y)
            y = FF.max_pool2d(y, 2)
            return self.fc(y.reshape(y.shape[0], -1))

    return Net()


def _fx_pair(torch):
    tm = _fx_net("t", torch)
    with torch.no_grad():
        tm.bn.running_mean.copy_(torch.randn(4) * 0.1)
        tm.bn.running_var.copy_(torch.rand(4) + 0.5)
    qm = _fx_net("q")
    _load_from_torch(qm, tm)
    return tm.eval(), qm.eval()


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_fx_static(torch_x86, backend, rng):
    torch = torch_x86
    from torch.ao.quantization import quantize_fx as tfx
    tm, qm = _fx_pair(torch)
    xs = [rng.standard_normal((2, 2, 8, 8)).astype(np.float32) for _ in range(3)]
    pt = tfx.prepare_fx(copy.deepcopy(tm), {"": torch.ao.quantization.get_default_qconfig(
        backend)}, (torch.from_numpy(xs[0]),))
    pq = qfx.prepare_fx(copy.deepcopy(qm), {"": tq.get_default_qconfig(backend)}, (xs[0],))
    for x in xs:
        pt(torch.from_numpy(x))
        pq(x)
    _same_observers(pq, pt)
    ct, cq = tfx.convert_fx(pt), qfx.convert_fx(pq)
    for x in xs:
        np.testing.assert_array_equal(_out(cq(x)), ct(torch.from_numpy(x)).numpy())


def test_fx_qat(torch_x86, rng):
    torch = torch_x86
    from torch.ao.quantization import quantize_fx as tfx
    tm, qm = _fx_pair(torch)
    xs = [rng.standard_normal((2, 2, 8, 8)).astype(np.float32) for _ in range(3)]
    pt = tfx.prepare_qat_fx(copy.deepcopy(tm).train(), {
        "": torch.ao.quantization.get_default_qat_qconfig("x86")}, (torch.from_numpy(xs[0]),))
    pq = qfx.prepare_qat_fx(copy.deepcopy(qm).train(), {
        "": tq.get_default_qat_qconfig("x86")}, (xs[0],))
    for x in xs:
        np.testing.assert_allclose(_out(pq(x)), pt(torch.from_numpy(x)).detach().numpy(),
                                   atol=1e-5)
    ct, cq = tfx.convert_fx(pt.eval()), qfx.convert_fx(pq.eval())
    for x in xs:
        yt = ct(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(_out(cq(x)), yt, atol=np.abs(yt).max() / 50 + 1e-6)


def test_fx_bad_arguments(rng):
    _, qm = _fx_pair(pytest.importorskip("torch"))
    with pytest.raises((TypeError, ValueError)):
        qfx.prepare_fx(qm, "not a qconfig mapping", (np.ones((1, 2, 8, 8), np.float32),))


# ---- ONNX Runtime ---------------------------------------------------------------------------
@pytest.fixture
def ort():
    pytest.importorskip("onnx", reason="onnx is not installed")
    return pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


def _run_ort(ort, model, x, fmt):
    from qlearn import onnx as qonnx
    buf = io.BytesIO()
    qonnx.export(model, x, buf, format=fmt)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_onnx_eager_and_fx(ort, fmt, rng):
    xs = [rng.standard_normal((2, 2, 8, 8)).astype(np.float32) for _ in range(3)]
    ql.autograd.manual_seed(0)
    eager = tq.fuse_modules(_cnn("q").eval(), FUSE)
    eager.qconfig = tq.get_default_qconfig("x86")
    tq.prepare(eager, inplace=True)
    for x in xs:
        eager(x)
    tq.convert(eager, inplace=True)
    prepared = qfx.prepare_fx(_fx_net("q").eval(), {"": tq.get_default_qconfig("x86")},
                              (xs[0],))
    for x in xs:
        prepared(x)
    graph = qfx.convert_fx(prepared)
    for model in (eager, graph):
        for x in xs:
            ours = _out(model(x))
            theirs = _run_ort(ort, model, x, fmt)
            assert theirs.shape == ours.shape and theirs.dtype == np.float32
            lsb = float(model.fc.scale)
            steps = np.rint(np.abs(theirs - ours) / lsb)
            assert steps.max() <= 1, (type(model).__name__, steps.max())
            assert (steps > 0).mean() < 0.2


def test_load_state_dict_with_a_shared_submodule(torch_mod):
    """Each path to a shared module has its keys (graph mode shares one observer between
    ops that keep their input's qparams); loading them back must not call them
    unexpected (it did)."""
    torch = torch_mod
    lin, tlin = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    model, tmodel = nn.Sequential(lin, nn.ReLU(), lin), torch.nn.Sequential(tlin,
                                                                            torch.nn.ReLU(), tlin)
    assert sorted(model.state_dict()) == sorted(tmodel.state_dict())
    result = model.load_state_dict({k: v.detach().numpy() for k, v in
                                    tmodel.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(lin.weight.data, tlin.weight.detach().numpy())


def test_leaky_relu_eager_and_fx(torch_x86, rng):
    """nn.LeakyReLU is swapped for nnq.LeakyReLU with its own output observer, in eager
    and graph mode, as in torch."""
    torch = torch_x86
    ta = torch.ao.quantization
    from torch.ao.quantization import quantize_fx as tfx
    tm = torch.nn.Sequential(ta.QuantStub(), torch.nn.Conv2d(2, 3, 3), torch.nn.LeakyReLU(0.1),
                             torch.nn.Flatten(), torch.nn.Linear(48, 2), ta.DeQuantStub()).eval()
    qm = nn.Sequential(tq.QuantStub(), nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.1), nn.Flatten(),
                       nn.Linear(48, 2), tq.DeQuantStub()).eval()
    _load_from_torch(qm, tm)
    xs = [rng.standard_normal((2, 2, 6, 6)).astype(np.float32) for _ in range(3)]
    tm.qconfig, qm.qconfig = ta.get_default_qconfig("x86"), tq.get_default_qconfig("x86")
    ta.prepare(tm, inplace=True)
    tq.prepare(qm, inplace=True)
    for x in xs:
        tm(torch.from_numpy(x))
        qm(x)
    _same_observers(qm, tm)
    ta.convert(tm, inplace=True)
    tq.convert(qm, inplace=True)
    assert repr(qm[2]) == repr(tm[2]) == "QuantizedLeakyReLU(negative_slope=0.1)"
    for x in xs:
        np.testing.assert_array_equal(_out(qm(x)), tm(torch.from_numpy(x)).numpy())
    # graph mode
    tg = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.LeakyReLU(0.2)).eval()
    qg = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.2)).eval()
    _load_from_torch(qg, tg)
    pt = tfx.prepare_fx(tg, {"": ta.get_default_qconfig("x86")}, (torch.from_numpy(xs[0]),))
    pq = qfx.prepare_fx(qg, {"": tq.get_default_qconfig("x86")}, (xs[0],))
    for x in xs:
        pt(torch.from_numpy(x))
        pq(x)
    _same_observers(pq, pt)
    ct, cq = tfx.convert_fx(pt), qfx.convert_fx(pq)
    assert type(getattr(cq, "1")).__name__ == type(getattr(ct, "1")).__name__ == "LeakyReLU"
    for x in xs:
        np.testing.assert_array_equal(_out(cq(x)), ct(torch.from_numpy(x)).numpy())


def test_workflow_bad_arguments():
    def model():
        return nn.Sequential(tq.QuantStub(), nn.Linear(4, 3), tq.DeQuantStub())

    with pytest.raises(TypeError, match="model"):
        tq.prepare("model")
    m = model()
    m.qconfig = "x86"
    with pytest.raises(TypeError, match="QConfig"):
        tq.prepare(m)
    m = model()
    m.qconfig = tq.default_qconfig
    tq.prepare(m, inplace=True)
    with pytest.raises(ValueError, match="finite"):
        m(np.array([[np.nan] * 4], np.float32))
    with pytest.raises(RuntimeError, match="saw no data"):
        tq.convert(m)
    m(np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match="mapping"):
        tq.convert(m, mapping=3)
    tq.convert(m, inplace=True)
    with pytest.raises(ValueError, match="4 features"):
        m(np.ones((1, 5), np.float32))
    with pytest.raises(TypeError, match="mapping"):
        tq.quantize_dynamic(nn.Sequential(nn.Linear(4, 3)), {nn.Linear}, mapping=[])
    with pytest.raises(ValueError, match="dtype"):
        tq.quantize_dynamic(nn.Sequential(nn.Linear(4, 3)), {nn.Linear}, dtype=ql.quint8)
    with pytest.raises(ValueError, match="not a supported pattern"):
        tq.fuse_modules(nn.Sequential(nn.ReLU(), nn.Conv2d(1, 1, 1)), [["0", "1"]])
    with pytest.raises(ValueError, match="eval"):
        tq.fuse_modules(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)).train(),
                        [["0", "1"]])
    with pytest.raises(TypeError, match="GraphModule"):
        qfx.convert_fx(nn.Sequential(nn.Linear(4, 3)))
