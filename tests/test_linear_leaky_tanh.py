"""nni / nniq LinearLeakyReLU and LinearTanh against torch 2.13's oneDNN operators
(quantized::linear_leaky_relu / linear_tanh exist only for that engine).  Activations
are 7-bit, as in every comparison of int8 operators with PyTorch."""
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.intrinsic as nni
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.quantization as tq
from qlearn import nn


@pytest.fixture
def onednn(torch_mod):
    before = torch_mod.backends.quantized.engine
    torch_mod.backends.quantized.engine = "onednn"
    yield torch_mod
    torch_mod.backends.quantized.engine = before


def _weights(rng, n, k, per_channel, torch):
    w = (rng.standard_normal((n, k)) * 0.3).astype(np.float32)
    if per_channel:
        s = (np.abs(w).max(1) / 127).astype(np.float64)
        tw = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(s),
                                        torch.zeros(n, dtype=torch.long), 0, torch.qint8)
        qw = ql.quantize_per_channel(w, s, np.zeros(n, np.int64), 0, ql.qint8)
    else:
        tw = torch.quantize_per_tensor(torch.from_numpy(w), 0.0123, 0, torch.qint8)
        qw = ql.quantize_per_tensor(w, 0.0123, 0, ql.qint8)
    return tw, qw


@pytest.mark.parametrize("kind", ["leaky", "tanh"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (64, 37, 29), (3, 5, 130, 16)],
                         ids=["1x1x1", "64x37x29", "3x5x130x16"])
@pytest.mark.parametrize("bias", [True, False])
def test_modules_like_torch_onednn(kind, per_channel, shape, bias, onednn):
    torch = onednn
    rng = np.random.default_rng(sum(shape))
    *lead, k, n = shape
    x = rng.standard_normal((*lead, k)).astype(np.float32) * 3
    sx, zx = 0.07, 30                       # 7-bit: integers in [0, 127]
    tx = torch.quantize_per_tensor(torch.from_numpy(x), sx, zx, torch.quint8)
    tx = torch.quantize_per_tensor(torch.clamp(tx.dequantize(), -zx * sx, (127 - zx) * sx),
                                   sx, zx, torch.quint8)
    qx = ql.quantize_per_tensor(tx.dequantize().numpy(), sx, zx, ql.quint8)
    np.testing.assert_array_equal(qx.int_repr(), tx.int_repr().numpy())
    tw, qw = _weights(rng, n, k, per_channel, torch)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    tb = torch.from_numpy(b) if bias else None
    if kind == "leaky":
        tm = torch.ao.nn.intrinsic.quantized.LinearLeakyReLU(k, n, 0.1, bias=bias)
        qm = nniq.LinearLeakyReLU(k, n, 0.1, bias=bias)
        so, zo = 0.05, 100
    else:
        tm = torch.ao.nn.intrinsic.quantized.LinearTanh(k, n, bias=bias)
        qm = nniq.LinearTanh(k, n, bias=bias)
        so, zo = 2 / 256, 128
    tm.set_weight_bias(tw, tb)
    qm.set_weight_bias(qw, b)
    tm.scale, tm.zero_point = so, zo
    qm.scale, qm.zero_point = so, zo
    assert repr(qm).replace("qlearn.", "torch.") == repr(tm)
    ref = tm(tx).int_repr().numpy()
    out = qm(qx)
    assert out.q_scale() == so and out.q_zero_point() == zo
    got = out.int_repr()
    off = np.abs(got.astype(int) - ref.astype(int))
    # tanh is computed by a different library: allow a rare off-by-one (counted)
    assert off.max() <= (0 if kind == "leaky" else 1)
    assert (off > 0).mean() <= 0.002, f"{int((off > 0).sum())} of {off.size} differ"


@pytest.mark.parametrize("kind", ["leaky", "tanh"])
def test_eager_workflow_like_torch_onednn(kind, onednn):
    torch = onednn
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((6, 8)) * 0.4).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    x = rng.standard_normal((32, 8)).astype(np.float32)

    def torch_model():
        lin = torch.nn.Linear(8, 6)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        act = torch.nn.LeakyReLU(0.2) if kind == "leaky" else torch.nn.Tanh()
        fused = (torch.ao.nn.intrinsic.LinearLeakyReLU if kind == "leaky"
                 else torch.ao.nn.intrinsic.LinearTanh)(lin, act)
        return torch.ao.quantization.QuantWrapper(fused).eval()

    def qlearn_model():
        lin = nn.Linear(8, 6)
        lin.weight.data[...] = w
        lin.bias.data[...] = b
        fused = nni.LinearLeakyReLU(lin, nn.LeakyReLU(0.2)) if kind == "leaky" \
            else nni.LinearTanh(lin, nn.Tanh())
        return tq.QuantWrapper(fused).eval()

    tm = torch_model()
    tm.qconfig = torch.ao.quantization.get_default_qconfig("x86")
    qm = qlearn_model()
    qm.qconfig = tq.get_default_qconfig("x86")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.ao.quantization.prepare(tm)
        tm(torch.from_numpy(x))
        tm = torch.ao.quantization.convert(tm)
        ref = tm(torch.from_numpy(x)).numpy()
    qm = tq.prepare(qm)
    qm(x)
    qm = tq.convert(qm)
    assert type(qm.module).__name__ == type(tm.module).__name__
    assert type(qm.module) is (nniq.LinearLeakyReLU if kind == "leaky" else nniq.LinearTanh)
    assert qm.module.scale == pytest.approx(tm.module.scale, rel=1e-6)
    assert qm.module.zero_point == tm.module.zero_point
    out = np.asarray(qm(x))
    step = tm.module.scale
    assert np.abs(out - ref).max() <= step * 1.001
    assert np.mean(np.abs(out - ref) > step / 2) <= 0.01   # integers, off by one rarely
    if kind == "leaky":
        assert qm.module.negative_slope == pytest.approx(0.2)


def test_mappings_like_torch(torch_mod):
    theirs = torch_mod.ao.quantization.get_default_static_quant_module_mappings()
    t_names = {k.__name__: v.__name__ for k, v in theirs.items()
               if k.__module__.endswith("fused")}
    ours = tq.get_default_static_quant_module_mappings()
    for name in ("LinearLeakyReLU", "LinearTanh"):
        assert ours[getattr(nni, name)] is getattr(nniq, name)
        assert t_names[name] == name
    # PyTorch's x86 / fbgemm fusion table has neither pattern (only its oneDNN one)
    from torch.ao.quantization.fuser_method_mappings import _DEFAULT_OP_LIST_TO_FUSER_METHOD
    for pattern in ((torch_mod.nn.Linear, torch_mod.nn.LeakyReLU),
                    (torch_mod.nn.Linear, torch_mod.nn.Tanh)):
        assert pattern not in _DEFAULT_OP_LIST_TO_FUSER_METHOD
    assert (nn.Linear, nn.LeakyReLU) not in tq.get_default_fusion_patterns()


def test_errors():
    with pytest.raises(TypeError, match="LinearTanh fuses"):
        nni.LinearTanh(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(TypeError, match="`negative_slope` must be a number"):
        nniq.LinearLeakyReLU(2, 2, "a")
    m = nniq.LinearTanh(3, 2)
    with pytest.raises(ValueError, match="`input` must have 3 features"):
        m(ql.quantize_per_tensor(np.ones((2, 4)), 0.1, 0, ql.quint8))
    with pytest.raises(TypeError):
        m(np.ones((2, 3), np.float32))
