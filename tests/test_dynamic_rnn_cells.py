"""Float RNN / RNNCell / LSTMCell / GRUCell and the dynamically quantized cells, against
torch 2.13 (values, gradients, repr, quantize_dynamic swapping them)."""
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.quantization as tq
from qlearn import nn

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
         ("GRUCell", {})]


def _copy_params(torch, tmod, qmod):
    for k, v in tmod.state_dict().items():
        getattr(qmod, k).data[...] = v.numpy()


def _state(name, h):
    return (h, (h * 0.5).astype(np.float32)) if name == "LSTMCell" else h


def _torch_state(torch, name, hx):
    return tuple(torch.from_numpy(a) for a in hx) if name == "LSTMCell" \
        else torch.from_numpy(hx)


def _first(name, out):
    return out[0] if name == "LSTMCell" else out


@pytest.mark.parametrize("name,kw", CELLS)
@pytest.mark.parametrize("batch", [1, 5])
def test_float_cells_like_torch(name, kw, batch, torch_mod):
    rng = np.random.default_rng(batch)
    t = getattr(torch_mod.nn, name)(7, 3, **kw)
    q = getattr(nn, name)(7, 3, **kw)
    _copy_params(torch_mod, t, q)
    assert repr(q) == repr(t)
    x = rng.standard_normal((batch, 7)).astype(np.float32)
    hx = _state(name, rng.standard_normal((batch, 3)).astype(np.float32))
    xq = ql.tensor(x, requires_grad=True)
    xt = torch_mod.from_numpy(x).requires_grad_()
    oq, ot = q(xq, hx), t(xt, _torch_state(torch_mod, name, hx))
    for a, b in zip(oq if name == "LSTMCell" else [oq], ot if name == "LSTMCell" else [ot]):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    (_first(name, oq) * 1.5).sum().backward()
    (_first(name, ot) * 1.5).sum().backward()
    np.testing.assert_allclose(xq.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        np.testing.assert_allclose(getattr(q, p).grad, getattr(t, p).grad.numpy(),
                                   rtol=1e-5, atol=1e-6)
    # no hx: zeros; unbatched input
    np.testing.assert_allclose(_first(name, q(x[0])).numpy(),
                               _first(name, t(torch_mod.from_numpy(x[0]))).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_float_rnn_like_torch(nonlinearity, torch_mod):
    rng = np.random.default_rng(2)
    t = torch_mod.nn.RNN(4, 3, 2, nonlinearity, batch_first=True, bidirectional=True)
    q = nn.RNN(4, 3, 2, nonlinearity, batch_first=True, bidirectional=True)
    _copy_params(torch_mod, t, q)
    assert repr(q) == repr(t)
    x = rng.standard_normal((2, 6, 4)).astype(np.float32)
    yq, hq = q(x)
    yt, ht = t(torch_mod.from_numpy(x))
    np.testing.assert_allclose(yq.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hq.numpy(), ht.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_float_cell_errors():
    with pytest.raises(ValueError, match="`nonlinearity` must be 'tanh' or 'relu', got 'gelu'"):
        nn.RNNCell(3, 2, nonlinearity="gelu")
    with pytest.raises(ValueError, match="`hidden_size` must be a positive int, got 0"):
        nn.GRUCell(3, 0)
    with pytest.raises(ValueError, match="`input` must end in input_size=3"):
        nn.LSTMCell(3, 2)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"`hx` must have shape \(2, 2\)"):
        nn.GRUCell(3, 2)(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="1-d .unbatched. or 2-d"):
        nn.RNNCell(3, 2)(np.ones((1, 2, 3), np.float32))


def _quantized_pair(torch, name, kw, dtype_t, dtype_q, seed=0):
    t = getattr(torch.nn, name)(6, 5, **kw)
    q = getattr(nn, name)(6, 5, **kw)
    _copy_params(torch, t, q)
    qconfig_t = torch.ao.quantization.float16_dynamic_qconfig if dtype_t is torch.float16 \
        else torch.ao.quantization.default_dynamic_qconfig
    qconfig_q = tq.float16_dynamic_qconfig if dtype_q == "fp16" else tq.default_dynamic_qconfig
    t.qconfig, q.qconfig = qconfig_t, qconfig_q
    tq_ = getattr(torch.ao.nn.quantized.dynamic, name).from_float(t)
    qq = getattr(nnqd, name).from_float(q)
    return tq_, qq


@pytest.mark.parametrize("name,kw", CELLS)
@pytest.mark.parametrize("fp16", [False, True], ids=["qint8", "fp16"])
def test_dynamic_cells_like_torch(name, kw, fp16, torch_mod):
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tcell, qcell = _quantized_pair(torch_mod, name, kw,
                                       torch_mod.float16 if fp16 else torch_mod.qint8,
                                       "fp16" if fp16 else "qint8")
    assert repr(qcell) == repr(tcell)
    for batch in (1, 4):
        x = (rng.standard_normal((batch, 6)) * 2).astype(np.float32)
        hx = _state(name, rng.standard_normal((batch, 5)).astype(np.float32))
        oq = qcell(x, hx)
        ot = tcell(torch_mod.from_numpy(x), _torch_state(torch_mod, name, hx))
        pairs = zip(oq, ot) if name == "LSTMCell" else [(oq, ot)]
        for a, b in pairs:
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-5, atol=2e-6)
        # without a state
        np.testing.assert_allclose(_first(name, qcell(x)),
                                   _first(name, tcell(torch_mod.from_numpy(x))).detach().numpy(),
                                   rtol=1e-5, atol=2e-6)


def test_dynamic_cell_weights_like_torch(torch_mod):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tcell, qcell = _quantized_pair(torch_mod, "LSTMCell", {}, torch_mod.qint8, "qint8")
    w_t, b_t = tcell._packed_weight_ih.unpack() if hasattr(tcell._packed_weight_ih, "unpack") \
        else torch_mod.ops.quantized.linear_unpack(tcell._packed_weight_ih)
    sd = qcell.state_dict()
    np.testing.assert_array_equal(sd["weight_ih"].int_repr(), w_t.int_repr().numpy())
    assert sd["weight_ih"].q_scale() == pytest.approx(w_t.q_scale(), rel=1e-7)
    np.testing.assert_array_equal(sd["bias_ih"], b_t.detach().numpy())
    # the state dict round-trips
    other = nnqd.LSTMCell(6, 5)
    other.load_state_dict(sd)
    x = np.ones((2, 6), np.float32)
    np.testing.assert_array_equal(other(x)[0], qcell(x)[0])


def test_quantize_dynamic_swaps_cells(torch_mod):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNNCell(4, 4)
            self.lstm = nn.LSTMCell(4, 4)
            self.gru = nn.GRUCell(4, 4)

        def forward(self, x):
            h = self.rnn(x)
            h, _ = self.lstm(h)
            return self.gru(h)

    m = Net().eval()
    q = tq.quantize_dynamic(m)
    assert [type(c).__name__ for c in q.children()] == ["RNNCell", "LSTMCell", "GRUCell"]
    assert all(type(c).__module__.startswith("qlearn.nn.quantized.dynamic")
               for c in q.children())
    assert q(np.ones((2, 4), np.float32)).shape == (2, 4)
    q2 = tq.quantize_dynamic(m, {nn.LSTMCell}, dtype=ql.float16)
    assert type(q2.lstm) is nnqd.LSTMCell and type(q2.rnn) is nn.RNNCell
    theirs = torch_mod.ao.quantization.get_default_dynamic_quant_module_mappings()
    names = {k.__name__: v.__name__ for k, v in theirs.items()}
    for cell in ("RNNCell", "LSTMCell", "GRUCell"):
        ours = tq.get_default_dynamic_quant_module_mappings()[getattr(nn, cell)]
        assert ours.__name__ == names[cell] == cell


def test_dynamic_cell_errors():
    with pytest.raises(ValueError, match="`dtype` must be qlearn.qint8 or qlearn.float16"):
        nnqd.GRUCell(3, 2, dtype=ql.quint8)
    with pytest.raises(ValueError, match=r"`input` must be \(batch, 3\)"):
        nnqd.RNNCell(3, 2)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="`h` must have shape"):
        nnqd.LSTMCell(3, 2)(np.ones((2, 3), np.float32),
                            (np.ones((1, 2), np.float32), np.ones((2, 2), np.float32)))
    with pytest.raises(ValueError, match="`hx` must be a pair"):
        nnqd.LSTMCell(3, 2)(np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))
    cell = nn.GRUCell(3, 2, bias=False)
    cell.qconfig = tq.default_dynamic_qconfig
    with pytest.raises(ValueError, match="must have biases"):
        nnqd.GRUCell.from_float(cell)
    with pytest.raises(TypeError, match="QTensor"):
        nnqd.GRUCell(3, 2)(ql.quantize_per_tensor(np.ones((1, 3)), 0.1, 0, ql.quint8))
