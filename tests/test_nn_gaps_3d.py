"""The 3-d layers closing torch.ao's gaps: ``nn.ConvTranspose3d`` (float, autograd),
``nnq.ConvTranspose3d`` (int8), ``nni.BNReLU3d`` / ``nniq.BNReLU3d`` and their fusion
patterns (eager and graph mode), each against torch 2.13 and a NumPy reference."""
import copy
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn.intrinsic as nni
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.nn.quantized as nnq
import qlearn.quantization as tq
from qlearn import nn
from qlearn.nn import functional as F
from qlearn.quantization import quantize_fx as qfx


def _to_torch(torch, q):
    """A torch per-tensor quantized tensor with ``q``'s integers and qparams."""
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(q.int_repr().copy()),
                                                   q.q_scale(), q.q_zero_point())


def _same_observers(qm, tm):
    """The observers agree to an ulp (torch's float batch norm and convolutions round
    differently); torch's state is then loaded so both converts start from the same
    qparams."""
    def qparams(model):
        return {n: m.calculate_qparams() for n, m in model.named_modules()
                if "activation_post_process" in n.rsplit(".", 1)[-1]
                and hasattr(m, "calculate_qparams")}
    ours, theirs = qparams(qm), qparams(tm)
    assert sorted(ours) == sorted(theirs) and ours
    for name in theirs:
        assert_allclose(ours[name][0], theirs[name][0].numpy(), rtol=1e-5, err_msg=name)
        assert np.abs(ours[name][1] - theirs[name][1].numpy()).max() <= 1, name
    tsd = tm.state_dict()
    assert sorted(qm.state_dict()) == sorted(tsd)
    qm.load_state_dict({k: v.numpy() for k, v in tsd.items()})


def conv_transpose3d_ref(x, w, b, stride, padding, output_padding, groups, dilation):
    """The literal scatter: every input element adds ``x * w`` at ``p*S + k*D - P``."""
    N, C = x.shape[:2]
    _, Og = w.shape[:2]
    K = w.shape[2:]
    out = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, d, op in
           zip(x.shape[2:], K, stride, padding, dilation, output_padding)]
    full = [o + 2 * p for o, p in zip(out, padding)]
    y = np.zeros((N, Og * groups, *full))
    cg = C // groups
    for c in range(C):
        g = c // cg
        for pos in itertools.product(*map(range, x.shape[2:])):
            for k in itertools.product(*map(range, K)):
                q = tuple(p * s + kk * d for p, s, kk, d in zip(pos, stride, k, dilation))
                if all(qq < f for qq, f in zip(q, full)):
                    y[(slice(None), slice(g * Og, (g + 1) * Og)) + q] += \
                        x[(slice(None), c) + pos][:, None] * w[(c, slice(None)) + k]
    y = y[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(padding, out))]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1, 1)
    return y


CASES = [
    # N, C, O, spatial, kernel, stride, padding, output_padding, groups, dilation, bias
    (2, 4, 6, (3, 4, 2), (2, 3, 1), (2, 1, 3), (1, 0, 0), (1, 0, 2), 2, (1, 2, 1), True),
    (1, 3, 2, (2, 2, 2), (3, 3, 3), 2, 1, 0, 1, 1, False),
    (1, 2, 3, (1, 1, 1), (1, 1, 1), 1, 0, 0, 1, 1, True),
    (2, 3, 3, (2, 3, 3), (2, 2, 2), (1, 2, 2), 0, (0, 1, 1), 3, 1, True),
]


def _lst(v):
    return [v] * 3 if isinstance(v, int) else list(v)


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_conv_transpose3d_float_matches_torch_and_reference(torch_mod, case):
    torch = torch_mod
    N, C, Co, S, K, stride, padding, op, groups, dilation, bias = case
    rng = np.random.default_rng(Co + sum(S))
    x = rng.normal(size=(N, C) + S)
    tm = torch.nn.ConvTranspose3d(C, Co, K, stride, padding, op, groups, bias,
                                  dilation).double()
    qm = nn.ConvTranspose3d(C, Co, K, stride, padding, op, groups, bias, dilation)
    assert repr(qm) == repr(tm)
    qm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tx = torch.tensor(x, requires_grad=True)
    ty = tm(tx)
    g = rng.normal(size=ty.shape)
    ty.backward(torch.tensor(g))
    qx = ql.tensor(x.astype(np.float32), requires_grad=True)
    qy = qm(qx)
    qy.backward(g.astype(np.float32))
    assert_allclose(qy.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert_allclose(qx.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert_allclose(qm.weight.grad, tm.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    if bias:
        assert_allclose(qm.bias.grad, tm.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    ref = conv_transpose3d_ref(x, qm.weight.data.astype(np.float64),
                               None if qm.bias is None else qm.bias.data.astype(np.float64),
                               _lst(stride), _lst(padding), _lst(op), groups, _lst(dilation))
    assert_allclose(qy.numpy(), ref, rtol=1e-5, atol=1e-5)
    # the functional form and an unbatched input
    yf = F.conv_transpose3d(x[0], qm.weight, qm.bias, stride, padding, op, groups, dilation)
    assert_allclose(yf.numpy(), ref[0], rtol=1e-5, atol=1e-5)


def test_conv_transpose3d_output_size_like_torch(torch_mod):
    torch = torch_mod
    tm = torch.nn.ConvTranspose3d(2, 3, 3, stride=(2, 3, 1), padding=1)
    qm = nn.ConvTranspose3d(2, 3, 3, stride=(2, 3, 1), padding=1)
    x = np.ones((1, 2, 3, 3, 4), np.float32)
    for size in [(5, 7, 4), (6, 9, 4), (6, 8, 4)]:
        assert qm(x, output_size=size).shape == \
            tuple(tm(torch.from_numpy(x), output_size=size).shape)
    with pytest.raises(ValueError, match="`output_size`"):
        qm(x, output_size=(7, 7, 4))


def test_conv_transpose3d_gradcheck():
    from qlearn.autograd import gradcheck
    from qlearn.nn.functional_conv_transpose import ConvTransposeNdFunction
    rng = np.random.default_rng(7)
    args = [rng.standard_normal((1, 2, 2, 3, 2)), rng.standard_normal((2, 2, 2, 1, 2)),
            rng.standard_normal(4), (2, 1, 2), (1, 0, 0), (1, 2, 1), (1, 0, 1), 2]
    assert gradcheck(ConvTransposeNdFunction, args, atol=1e-5, rtol=1e-5)


def test_conv_transpose3d_bad_input():
    with pytest.raises(ValueError, match="`weight` must be 5-d"):
        F.conv_transpose3d(np.ones((1, 2, 3, 3, 3)), np.ones((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="`input` must be 5-d"):
        F.conv_transpose3d(np.ones((2, 3, 3)), np.ones((2, 2, 3, 3, 3)))
    with pytest.raises(ValueError, match="`output_padding` must be smaller"):
        nn.ConvTranspose3d(2, 2, 3, output_padding=(0, 1, 0))(np.ones((1, 2, 2, 2, 2)))
    with pytest.raises(ValueError, match="`padding_mode` must be 'zeros'"):
        nn.ConvTranspose3d(2, 2, 3, padding_mode="circular")
    with pytest.raises(ValueError, match="must be 5-d"):
        nnq.ConvTranspose3d(2, 2, 3)(ql.quantize_per_tensor(np.ones((1, 2, 3, 3)), 0.1, 0,
                                                            ql.quint8))


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_int8_conv_transpose3d_bit_equal_to_torch(torch_x86, case):
    torch = torch_x86
    torch.backends.quantized.engine = "fbgemm"
    N, C, Co, S, K, stride, padding, op, groups, dilation, bias = case
    rng = np.random.default_rng(Co + sum(S))
    x = rng.normal(size=(N, C) + S).astype(np.float32)
    w = (rng.normal(size=(C, Co // groups) + K) * 0.3).astype(np.float32)
    b = rng.normal(size=Co).astype(np.float32) if bias else None
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
    sx = float(np.float32((hi - lo) / 127))
    qx = ql.quantize_per_tensor(x, sx, int(np.rint(-lo / sx)), ql.quint8)
    qw = ql.quantize_per_tensor(w, float(np.abs(w).max() / 127), 2, ql.qint8)
    packed = torch.ops.quantized.conv_transpose3d_prepack(
        _to_torch(torch, qw), None if b is None else torch.from_numpy(b), _lst(stride),
        _lst(padding), _lst(op), _lst(dilation), groups)
    ty = torch.ops.quantized.conv_transpose3d(_to_torch(torch, qx), packed, 0.04, 77)
    m = nnq.ConvTranspose3d(C, Co, K, stride, padding, op, groups, bias, dilation)
    m.set_weight_bias(qw, b)
    m.scale, m.zero_point = 0.04, 77
    y = m(qx)
    assert y.shape == tuple(ty.shape)
    assert_array_equal(y.int_repr(), ty.int_repr().numpy())
    # the exact integer reference: requantize the float64 accumulator of the integers
    acc = conv_transpose3d_ref(qx.int_repr() - float(qx.q_zero_point()),
                               qw.int_repr() - 2.0, None, _lst(stride), _lst(padding),
                               _lst(op), groups, _lst(dilation))
    real = acc * sx * qw.q_scale() + (0 if b is None else b.reshape(1, -1, 1, 1, 1))
    want = np.clip(np.rint(real / 0.04) + 77, 0, 255)
    assert np.abs(y.int_repr().astype(int) - want).max() <= 1
    tm = torch.ao.nn.quantized.ConvTranspose3d(C, Co, K, stride, padding, op, groups, bias,
                                               dilation)
    assert repr(nnq.ConvTranspose3d(C, Co, K, stride, padding, op, groups, bias,
                                    dilation)) == repr(tm)
    assert sorted(m.state_dict()) == sorted(tm.state_dict())


def _upsampler(lib, torch=None, overlap=True):
    """ConvTranspose3d -> BatchNorm3d -> ReLU (``overlap``: both the transposed-conv-bn
    and the bn-relu patterns match the batch norm) or ConvTranspose3d -> ReLU ->
    BatchNorm3d -> ReLU (one pattern each)."""
    N = torch.nn if lib == "t" else nn
    Q = torch.ao.quantization if lib == "t" else tq
    up = N.ConvTranspose3d(2, 3, 3, stride=2, padding=1, output_padding=1)
    mid = [N.BatchNorm3d(3), N.ReLU()] if overlap else [N.ReLU(), N.BatchNorm3d(3), N.ReLU()]
    return N.Sequential(Q.QuantStub(), up, *mid, Q.DeQuantStub())


def _run_workflow(torch, mode, overlap, rng):
    torch.backends.quantized.engine = "fbgemm"
    ta = torch.ao.quantization
    from torch.ao.quantization import quantize_fx as tfx
    tm, qm = _upsampler("t", torch, overlap).eval(), _upsampler("q", None, overlap).eval()
    bn = [m for m in tm if isinstance(m, torch.nn.BatchNorm3d)][0]
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    xs = [rng.standard_normal((2, 2, 2, 3, 2)).astype(np.float32) for _ in range(3)]
    if mode == "eager":
        groups = [["1", "2"]] if overlap else [["3", "4"]]
        tm, qm = ta.fuse_modules(tm, groups), tq.fuse_modules(qm, groups)
        assert [type(c).__name__ for c in qm] == [type(c).__name__ for c in tm]
        tm.qconfig, qm.qconfig = ta.default_qconfig, tq.default_qconfig
        pt, pq = ta.prepare(tm), tq.prepare(qm)
    else:
        pt = tfx.prepare_fx(tm, {"": ta.default_qconfig}, (torch.from_numpy(xs[0]),))
        pq = qfx.prepare_fx(qm, {"": tq.default_qconfig}, (xs[0],))
    for x in xs:
        pt(torch.from_numpy(x))
        pq(x)
    _same_observers(pq, pt)
    ct = ta.convert(pt) if mode == "eager" else tfx.convert_fx(pt)
    cq = tq.convert(pq) if mode == "eager" else qfx.convert_fx(pq)
    assert nnq.ConvTranspose3d in {type(m) for m in cq.modules()}
    assert sorted(type(m).__name__ for m in cq.modules() if m is not cq) == \
        sorted(type(m).__name__ for m in ct.modules() if m is not ct)
    for x in xs:
        y = cq(x)
        assert_array_equal(getattr(y, "numpy", lambda: y)(),
                           ct(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("overlap", [True, False], ids=["convt-bn-relu", "convt-relu-bn-relu"])
@pytest.mark.parametrize("mode", ["eager", "fx"])
def test_convtranspose3d_bn_relu_workflow_bit_equal_to_torch(torch_x86, mode, overlap, rng):
    """Eager: the fused groups are named, so ConvTranspose3d + BatchNorm3d folds (or
    BatchNorm3d + ReLU becomes BNReLU3d), as in torch.  Graph mode matches from the last
    node back, as torch's fuse does: with the overlap, BatchNorm3d + ReLU becomes
    BNReLU3d and the transposed conv stays alone; the same modules and integers as
    torch's."""
    _run_workflow(torch_x86, mode, overlap, rng)


# ---- BNReLU3d -------------------------------------------------------------------------------
def test_bnrelu3d_float_container():
    bn, relu = nn.BatchNorm3d(3), nn.ReLU()
    m = nni.BNReLU3d(bn, relu)
    assert m[0] is bn and m[1] is relu
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 2, 2)).astype(np.float32)
    assert_array_equal(m(x).numpy(), np.maximum(bn(x).numpy(), 0))
    with pytest.raises(TypeError, match=r"BNReLU3d fuses \(BatchNorm3d, ReLU\), got "
                                        r"\(BatchNorm2d, ReLU\)"):
        nni.BNReLU3d(nn.BatchNorm2d(3), nn.ReLU())


def _bn_relu(lib, torch=None, c=4):
    N = torch.nn if lib == "t" else nn
    Q = torch.ao.quantization if lib == "t" else tq
    return N.Sequential(Q.QuantStub(), N.BatchNorm3d(c), N.ReLU(), Q.DeQuantStub())


@pytest.mark.parametrize("mode", ["eager", "eager_qat", "fx"])
def test_bnrelu3d_workflow_bit_equal_to_torch(torch_x86, mode, rng):
    torch = torch_x86
    ta = torch.ao.quantization
    from torch.ao.quantization import quantize_fx as tfx
    tm, qm = _bn_relu("t", torch).eval(), _bn_relu("q").eval()
    with torch.no_grad():
        tm[1].running_mean.uniform_(-0.5, 0.5)
        tm[1].running_var.uniform_(0.5, 2.0)
        tm[1].weight.uniform_(-1.5, 1.5)
        tm[1].bias.uniform_(-0.5, 0.5)
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    xs = [rng.standard_normal((2, 4, 3, 2, 5)).astype(np.float32) for _ in range(3)]
    qc_t, qc_q = ta.get_default_qconfig("x86"), tq.get_default_qconfig("x86")
    if mode.startswith("eager"):
        fuse_t = ta.fuse_modules_qat if mode == "eager_qat" else ta.fuse_modules
        fuse_q = tq.fuse_modules_qat if mode == "eager_qat" else tq.fuse_modules
        if mode == "eager_qat":
            tm.train()
            qm.train()
        tf, qf = fuse_t(tm, [["1", "2"]]), fuse_q(qm, [["1", "2"]])
        assert type(qf[1]) is nni.BNReLU3d and type(tf[1]).__name__ == "BNReLU3d"
        tf.eval()
        qf.eval()
        tf.qconfig, qf.qconfig = qc_t, qc_q
        pt, pq = ta.prepare(tf), tq.prepare(qf)
    else:
        pt = tfx.prepare_fx(tm, {"": qc_t}, (torch.from_numpy(xs[0]),))
        pq = qfx.prepare_fx(qm, {"": qc_q}, (xs[0],))
        assert nni.BNReLU3d in {type(m) for m in pq.modules()}
    for x in xs:
        pt(torch.from_numpy(x))
        pq(x)
    _same_observers(pq, pt)
    ct = ta.convert(pt) if mode.startswith("eager") else tfx.convert_fx(pt)
    cq = tq.convert(pq) if mode.startswith("eager") else qfx.convert_fx(pq)
    found = [m for m in cq.modules() if type(m) is nniq.BNReLU3d]
    assert len(found) == 1
    assert repr(found[0]) == repr([m for m in ct.modules()
                                   if type(m).__name__ == "BNReLU3d"][0])
    for x in xs:
        y = cq(x)
        assert_array_equal(getattr(y, "numpy", lambda: y)(), ct(torch.from_numpy(x)).numpy())


def test_quantized_bnrelu3d_op_bit_equal_to_torch_and_reference(torch_mod):
    torch = torch_mod
    rng = np.random.default_rng(11)
    C = 3
    x = rng.normal(size=(2, C, 2, 3, 4)).astype(np.float32)
    w, b = rng.normal(size=C).astype(np.float32), rng.normal(size=C).astype(np.float32)
    mean, var = rng.normal(size=C).astype(np.float32), rng.uniform(0.5, 2, C).astype(np.float32)
    for zp in (0, 128, 255):
        qx = ql.quantize_per_tensor(x, 0.02, zp, ql.quint8)
        m = nniq.BNReLU3d(C, eps=1e-3)
        m.weight.data[...], m.bias.data[...] = w, b
        m.running_mean[...], m.running_var[...] = mean, var
        m.scale, m.zero_point = 0.03, 40
        y = m(qx)
        ty = torch.ops.quantized.batch_norm3d_relu(
            _to_torch(torch, qx), *(torch.from_numpy(a) for a in (w, b, mean, var)),
            1e-3, 0.03, 40)
        assert_array_equal(y.int_repr(), ty.int_repr().numpy())
        real = (qx.dequantize() - mean.reshape(1, -1, 1, 1, 1)) / np.sqrt(
            var.reshape(1, -1, 1, 1, 1) + 1e-3) * w.reshape(1, -1, 1, 1, 1) \
            + b.reshape(1, -1, 1, 1, 1)
        want = np.clip(np.rint(np.maximum(real, 0) / 0.03) + 40, 0, 255)
        assert np.abs(y.int_repr().astype(int) - want).max() <= 1
        assert y.int_repr().min() >= 40


def test_quantized_bnrelu3d_errors():
    m = nniq.BNReLU3d(2)
    with pytest.raises(ValueError, match="expects a 5-d"):
        m(ql.quantize_per_tensor(np.ones((1, 2, 3, 3)), 0.1, 0, ql.quint8))
    with pytest.raises(TypeError, match="expects a float BNReLU3d, got BNReLU2d"):
        nniq.BNReLU3d.from_float(nni.BNReLU2d(nn.BatchNorm2d(2), nn.ReLU()))
    with pytest.raises(TypeError, match="expects a float BNReLU2d, got BNReLU3d"):
        nniq.BNReLU2d.from_float(nni.BNReLU3d(nn.BatchNorm3d(2), nn.ReLU()))


def test_fusion_table_like_torch(torch_mod):
    from torch.ao.quantization.fuser_method_mappings import _DEFAULT_OP_LIST_TO_FUSER_METHOD
    ours = {tuple(t.__name__ for t in k) for k in tq.get_default_fusion_patterns()}
    theirs = {tuple(t.__name__ for t in k) for k in _DEFAULT_OP_LIST_TO_FUSER_METHOD}
    assert ours == theirs
    fused = tq.fuse_modules(nn.Sequential(nn.ConvTranspose3d(2, 3, 2), nn.BatchNorm3d(3))
                            .eval(), [["0", "1"]])
    assert type(fused[0]) is nn.ConvTranspose3d and type(fused[1]) is nn.Identity
    with pytest.raises(ValueError, match="not supported for quantization-aware"):
        tq.fuse_modules_qat(copy.deepcopy(nn.Sequential(nn.ConvTranspose3d(2, 3, 2),
                                                        nn.BatchNorm3d(3))), [["0", "1"]])
