"""Reference modules (the convolutions, the embeddings), eager ``convert(...,
is_reference=True)`` and the dynamic mapping's fused and weight-only entries, each
against torch 2.13 and a NumPy reference."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn.intrinsic as nni
import qlearn.nn.intrinsic.quantized.dynamic as nniqd
import qlearn.nn.qat as nnqat
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.nn.quantized.reference as nnqr
import qlearn.quantization as tq
from qlearn import nn


def _np(x):
    return np.asarray(getattr(x, "data", x))


def _torch_qparams(torch, qp):
    """``weight_qparams`` with qlearn's scheme and dtype objects replaced by torch's."""
    out = dict(qp)
    out["qscheme"] = getattr(torch, qp["qscheme"].name)
    out["dtype"] = getattr(torch, qp["dtype"].name)
    for k in ("scale", "zero_point"):
        v = np.asarray(qp[k])
        out[k] = torch.from_numpy(v.copy()) if v.ndim else v.item()
    return out


PER_TENSOR = {"qscheme": ql.per_tensor_affine, "dtype": ql.qint8, "scale": 0.02,
              "zero_point": 3}


def _per_channel(n, axis, rng):
    return {"qscheme": ql.per_channel_affine, "dtype": ql.qint8,
            "scale": rng.uniform(0.005, 0.03, n).astype(np.float32),
            "zero_point": rng.integers(-3, 4, n).astype(np.int64), "axis": axis}


CONVS = [
    # name, args, input shape, per-channel axis (output channels of the weight)
    ("Conv1d", (4, 6, 3), (2, 4, 9), 0),
    ("Conv3d", (2, 4, (1, 2, 3)), (1, 2, 3, 4, 5), 0),
    ("ConvTranspose1d", (4, 6, 3, 2, 1, 1, 2), (2, 4, 5), 1),
    ("ConvTranspose2d", (4, 3, (2, 3), 2), (1, 4, 3, 4), 1),
    ("ConvTranspose3d", (2, 4, 2, (1, 2, 1)), (1, 2, 2, 3, 2), 1),
]


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name, args, shape, axis", CONVS, ids=[c[0] for c in CONVS])
def test_reference_convs_like_torch(torch_mod, name, args, shape, axis, per_channel):
    torch = torch_mod
    rng = np.random.default_rng(len(shape) + args[1])
    tf = getattr(torch.nn, name)(*args)
    qf = getattr(nn, name)(*args)
    qf.load_state_dict({k: v.detach().numpy().copy() for k, v in tf.state_dict().items()})
    n = tf.weight.shape[axis]
    qp = _per_channel(n, axis, rng) if per_channel else PER_TENSOR
    tr = getattr(torch.ao.nn.quantized.reference, name).from_float(
        tf, _torch_qparams(torch, qp))
    qr = getattr(nnqr, name).from_float(qf, qp)
    assert repr(qr) == repr(tr)
    assert sorted(qr.state_dict()) == sorted(tr.state_dict())
    assert_array_equal(qr.get_weight(), tr.get_weight().detach().numpy())
    x = rng.standard_normal(shape).astype(np.float32)
    ty = tr(torch.from_numpy(x)).detach().numpy()
    assert_allclose(_np(qr(x)), ty, rtol=1e-5, atol=1e-5)
    # the float layer with the quantized-dequantized weight, written out
    w = qf.weight.data
    s = np.asarray(qp["scale"], np.float32)
    z = np.asarray(qp["zero_point"])
    if per_channel:
        bshape = [1] * w.ndim
        bshape[axis] = -1
        s, z = s.reshape(bshape), z.reshape(bshape)
    q = np.clip(np.rint(w / s) + z, -128, 127)
    assert_allclose(qr.get_weight(), (q - z) * s, rtol=1e-6, atol=1e-7)
    # a QTensor input is dequantized first
    xq = ql.quantize_per_tensor(x, 0.05, 128, ql.quint8)
    assert_allclose(_np(qr(xq)), _np(qr(xq.dequantize())), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["Embedding", "EmbeddingBag"])
def test_reference_embeddings_like_torch(torch_mod, name):
    torch = torch_mod
    rng = np.random.default_rng(2)
    kw = {"mode": "sum"} if name == "EmbeddingBag" else {}
    tf, qf = getattr(torch.nn, name)(7, 5, **kw), getattr(nn, name)(7, 5, **kw)
    qf.load_state_dict({k: v.detach().numpy().copy() for k, v in tf.state_dict().items()})
    obs = tq.float_qparams_weight_only_qconfig.weight()
    obs(qf.weight.data)
    from qlearn.nn.quantized.reference.modules.utils import weight_qparams_of
    qp = weight_qparams_of(obs)
    assert qp["qscheme"] is ql.per_channel_affine_float_qparams
    tr = getattr(torch.ao.nn.quantized.reference, name).from_float(
        tf, _torch_qparams(torch, qp))
    qr = getattr(nnqr, name).from_float(qf, qp)
    assert repr(qr) == repr(tr)
    assert sorted(qr.state_dict()) == sorted(tr.state_dict())
    assert_allclose(qr.get_weight(), tr.get_weight().detach().numpy(), rtol=1e-6, atol=1e-7)
    idx = rng.integers(0, 7, 6)
    if name == "Embedding":
        ours, theirs = qr(idx), tr(torch.from_numpy(idx))
    else:
        off = np.array([0, 2, 5])
        ours, theirs = qr(idx, off), tr(torch.from_numpy(idx), torch.from_numpy(off))
    assert_allclose(_np(ours), theirs.detach().numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match=f"`mod` must be an nn.{name}"):
        getattr(nnqr, name).from_float(nn.Linear(2, 2), qp)


def _model(lib, torch=None):
    N = torch.nn if lib == "t" else nn
    Q = torch.ao.quantization if lib == "t" else tq

    class Net(N.Module):
        def __init__(self):
            super().__init__()
            self.quant = Q.QuantStub()
            self.conv = N.Conv1d(2, 4, 3)
            self.up = N.ConvTranspose1d(4, 3, 2, stride=2)
            self.fc = N.Linear(10, 5)
            self.relu = N.ReLU()
            self.dequant = Q.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.relu(self.fc(self.up(self.conv(self.quant(x))))))

    return Net()


@pytest.mark.parametrize("qconfig", ["default", "x86"])
def test_eager_convert_is_reference_like_torch(torch_mod, qconfig, rng):
    torch = torch_mod
    ta = torch.ao.quantization
    tm, qm = _model("t", torch).eval(), _model("q").eval()
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    if qconfig == "default":
        tm.qconfig, qm.qconfig = ta.default_qconfig, tq.default_qconfig
    else:
        tm.qconfig, qm.qconfig = ta.get_default_qconfig("x86"), tq.get_default_qconfig("x86")
        # torch refuses per-channel weights for a transposed convolution
        tm.up.qconfig, qm.up.qconfig = ta.default_qconfig, tq.default_qconfig
    pt, pq = ta.prepare(tm), tq.prepare(qm)
    x = rng.standard_normal((3, 2, 7)).astype(np.float32)
    pt(torch.from_numpy(x))
    pq(x)
    rt, rq = ta.convert(pt, is_reference=True), tq.convert(pq, is_reference=True)
    assert [type(m).__name__ for _, m in rq.named_children()] == \
        [type(m).__name__ for _, m in rt.named_children()]
    assert [repr(m) for _, m in list(rq.named_children())[1:]] == \
        [repr(m) for _, m in list(rt.named_children())[1:]]
    assert sorted(rq.state_dict()) == sorted(rt.state_dict())
    for name in ("conv", "up", "fc"):
        r, t = getattr(rq, name), getattr(rt, name)
        assert r.weight_qscheme.name == str(t.weight_qscheme).split(".")[-1]
        assert_allclose(r.weight_scale, t.weight_scale.numpy(), rtol=1e-6)
        assert_array_equal(r.weight_zero_point, t.weight_zero_point.numpy())
        assert_array_equal(r.get_weight(), t.get_weight().detach().numpy())
    # torch's eager reference model does not run (its reference conv refuses the
    # quantized input); qlearn's computes the float layers on the dequantized input
    with pytest.raises(RuntimeError):
        rt(torch.from_numpy(x))
    s = float(np.asarray(rq.quant.scale).reshape(-1)[0])
    z = int(np.asarray(rq.quant.zero_point).reshape(-1)[0])
    assert_allclose(s, float(rt.quant.scale), rtol=1e-6)
    xd = torch.from_numpy(ql.quantize_per_tensor(x, s, z, ql.quint8).dequantize())
    F = torch.nn.functional
    want = F.relu(rt.fc(rt.up(rt.conv(xd)))).detach().numpy()
    assert_allclose(_np(rq(x)), want, rtol=1e-5, atol=1e-5)


def test_eager_convert_is_reference_keeps_unmapped_layers_float(rng):
    m = nn.Sequential(tq.QuantStub(), nn.Linear(3, 3), tq.DeQuantStub(), nn.LayerNorm(3))
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m.eval())
    p(rng.standard_normal((4, 3)).astype(np.float32))
    r = tq.convert(p, is_reference=True)
    assert [type(c) for c in r] == [nnq.Quantize, nnqr.Linear, nnq.DeQuantize, nn.LayerNorm]
    assert not hasattr(r[3], "activation_post_process") and not hasattr(r[3], "qconfig")
    assert r(np.ones((2, 3), np.float32)).shape == (2, 3)
    # without is_reference the LayerNorm is converted as before
    assert type(tq.convert(p)[3]) is nnq.LayerNorm


# ---- dynamic ---------------------------------------------------------------------------------
def test_dynamic_linear_relu_like_torch(torch_mod, rng):
    torch = torch_mod
    ta = torch.ao.quantization
    tm = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    qm = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    tm = ta.fuse_modules(tm.eval(), [["0", "1"]])
    qm = tq.fuse_modules(qm.eval(), [["0", "1"]])
    td = ta.quantize_dynamic(tm, {torch.ao.nn.intrinsic.LinearReLU, torch.nn.Linear})
    qd = tq.quantize_dynamic(qm, {nni.LinearReLU, nn.Linear})
    assert type(qd[0]) is nniqd.LinearReLU and type(qd[2]) is nnqd.Linear
    assert repr(qd[0]).replace("qlearn.", "torch.") == repr(td[0])
    assert_array_equal(qd[0].weight().int_repr(), td[0].weight().int_repr().numpy())
    for shape in [(4, 6), (1, 6), (3, 2, 6)]:
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
        ty = td(torch.from_numpy(x)).numpy()
        assert_allclose(qd(x), ty, rtol=0, atol=2e-6)
        # the fused layer: the dynamic linear, then max(., 0)
        y0 = qd[0](x)
        lin = nnqd.Linear(6, 5)
        lin.set_weight_bias(qd[0].weight(), qd[0].bias())
        assert_array_equal(y0, np.maximum(lin(x), 0))
        assert_allclose(y0, td[0](torch.from_numpy(x)).numpy(), rtol=0, atol=2e-6)
    with pytest.raises(TypeError, match="expects a qlearn.nn.intrinsic.LinearReLU"):
        nniqd.LinearReLU.from_float(nn.Linear(2, 2))


def test_dynamic_linear_relu_float16(rng):
    m = tq.quantize_dynamic(tq.fuse_modules(nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval(),
                                            [["0", "1"]]), {nni.LinearReLU}, dtype=np.float16)
    assert type(m[0]) is nniqd.LinearReLU and m[0].weight().dtype == np.float16
    x = rng.standard_normal((5, 4)).astype(np.float32)
    w = m[0].weight().astype(np.float32)
    assert_allclose(m(x), np.maximum(x @ w.T + m[0].bias(), 0), rtol=1e-6, atol=1e-6)


def test_dynamic_embedding_entries_like_torch(torch_mod, rng):
    torch = torch_mod
    ta = torch.ao.quantization
    tm = torch.nn.Sequential(torch.nn.Embedding(10, 4))
    qm = nn.Sequential(nn.Embedding(10, 4))
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    td = ta.quantize_dynamic(tm, {torch.nn.Embedding: ta.float_qparams_weight_only_qconfig})
    qd = tq.quantize_dynamic(qm, {nn.Embedding: tq.float_qparams_weight_only_qconfig})
    assert type(qd[0]) is nnq.Embedding and type(td[0]).__name__ == "Embedding"
    idx = rng.integers(0, 10, 7)
    assert_allclose(_np(qd(idx)), td(torch.from_numpy(idx)).numpy(), rtol=1e-6, atol=1e-6)


def test_dynamic_mapping_converts_a_qat_linear(rng):
    """PyTorch's dynamic mapping names nnqat.Linear; qlearn's ``from_float`` takes it with
    a fresh weight observer of its qconfig (the one PyTorch's would build)."""
    lin = nn.Linear(5, 3)
    lin.qconfig = tq.default_dynamic_qconfig
    qat = nnqat.Linear.from_float(lin)
    qat.weight.data[...] += 0.01                    # as if trained
    q = nnqd.Linear.from_float(qat)
    ref = nn.Linear(5, 3)
    ref.weight.data[...], ref.bias.data[...] = qat.weight.data, qat.bias.data
    ref.qconfig = tq.default_dynamic_qconfig
    want = nnqd.Linear.from_float(ref)
    assert_array_equal(q.weight().int_repr(), want.weight().int_repr())
    assert q.weight().q_scale() == want.weight().q_scale()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    assert_array_equal(q(x), want(x))
    m = nn.Sequential(qat)
    assert type(tq.quantize_dynamic(m, {nnqat.Linear})[0]) is nnqd.Linear
