"""quantize_dynamic against torch 2.13: qint8 and float16 weights, Linear / LSTM / GRU,
qconfig_spec as None, a set, a dict by type and a dict by qualified name."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.quantization as tq
from qlearn import nn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::UserWarning", "ignore::FutureWarning")


def make(torch=None):
    """Linear -> ReLU -> LSTM -> GRU -> Linear as a Sequential of either library (the
    recurrent layers' outputs are tuples, so a small module chains them)."""
    lib = torch.nn if torch is not None else nn

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.fc_in = lib.Linear(6, 8)
            self.relu = lib.ReLU()
            self.lstm = lib.LSTM(8, 7, num_layers=2, bidirectional=True)
            self.gru = lib.GRU(14, 5)
            self.fc_out = lib.Linear(5, 3)

        def forward(self, x):
            y, _ = self.lstm(self.relu(self.fc_in(x)))
            y, _ = self.gru(y)
            return self.fc_out(y)

    return Net()


def twins(torch, seed=0):
    torch.manual_seed(seed)
    tm = make(torch).eval()
    qm = make().eval()
    qm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, qm


def types(model):
    return [(n, type(m).__name__) for n, m in model.named_modules()
            if not n.endswith("_packed_params") and "._all_weight_values" not in n
            and not n.endswith("_all_weight_values")]


X = np.random.default_rng(3).normal(size=(9, 4, 6)).astype(np.float32)


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_quantize_dynamic_matches_torch(torch_mod, dtype):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    tm, qm = twins(torch)
    tdt, qdt = (torch.qint8, ql.qint8) if dtype == "qint8" else (torch.float16, ql.float16)
    tq_ = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear, torch.nn.LSTM,
                                                      torch.nn.GRU}, dtype=tdt)
    qq = tq.quantize_dynamic(qm, {nn.Linear, nn.LSTM, nn.GRU}, dtype=qdt)
    assert types(qq) == types(tq_)
    assert [type(m).__module__ for m in (qq.fc_in, qq.lstm, qq.gru)] == [
        "qlearn.nn.quantized.dynamic.modules.linear",
        "qlearn.nn.quantized.dynamic.modules.rnn", "qlearn.nn.quantized.dynamic.modules.rnn"]
    if dtype == "qint8":
        tw, qw = tq_.fc_in.weight(), qq.fc_in.weight()
        assert_array_equal(qw.int_repr(), tw.int_repr().numpy())
        assert qw.q_scale() == pytest.approx(tw.q_scale(), rel=1e-7)
    else:
        assert qq.fc_in.weight().dtype == np.float16
        assert_array_equal(qq.fc_in.weight().astype(np.float32),
                           tq_.fc_in.weight().numpy())
    ty = tq_(torch.from_numpy(X)).detach().numpy()
    qy = qq(X)
    # the same integers (or float16 weights); float32 sums in another order
    np.testing.assert_allclose(qy, ty, rtol=0, atol=2e-6)
    # the float model is untouched
    assert type(qm.fc_in) is nn.Linear and type(qm.lstm) is nn.LSTM


def test_quantize_dynamic_source_model_types(torch_mod):
    """The model of "Practical Quantization in PyTorch"'s dynamic cell: Conv2d, ReLU,
    Linear, LSTM, with qconfig_spec={LSTM, Linear}: only the last two are swapped."""
    torch = torch_mod

    def create(lib):
        return lib.Sequential(lib.Conv2d(2, 64, 8), lib.ReLU(), lib.Linear(16, 10),
                              lib.LSTM(10, 10)).eval()

    tq_ = torch.ao.quantization.quantize_dynamic(create(torch.nn),
                                                 {torch.nn.LSTM, torch.nn.Linear},
                                                 dtype=torch.qint8, inplace=False)
    qq = tq.quantize_dynamic(create(nn), {nn.LSTM, nn.Linear}, dtype=ql.qint8,
                             inplace=False)
    assert types(qq) == types(tq_)
    assert repr(qq[2]) == repr(tq_[2]).replace("torch.", "qlearn.")


def test_qconfig_spec_forms():
    qm = make().eval()
    # None: every Linear, LSTM and GRU
    q = tq.quantize_dynamic(qm)
    assert {type(m) for m in (q.fc_in, q.lstm, q.gru, q.fc_out)} == {
        nnqd.Linear, nnqd.LSTM, nnqd.GRU}
    # a dict by type, with a per-channel qconfig
    q = tq.quantize_dynamic(qm, {nn.Linear: tq.per_channel_dynamic_qconfig})
    assert type(q.fc_in) is nnqd.Linear and type(q.lstm) is nn.LSTM
    assert q.fc_in.weight().qscheme().is_per_channel
    # a dict by qualified name: only that module
    q = tq.quantize_dynamic(qm, {"fc_out": tq.default_dynamic_qconfig})
    assert type(q.fc_out) is nnqd.Linear and type(q.fc_in) is nn.Linear
    # the whole model by "", one child excluded by name
    q = tq.quantize_dynamic(qm, {"": tq.default_dynamic_qconfig, "lstm": None})
    assert type(q.fc_in) is nnqd.Linear and type(q.lstm) is nn.LSTM
    assert type(q.gru) is nnqd.GRU
    # inplace
    m2 = make().eval()
    assert tq.quantize_dynamic(m2, {nn.GRU}, inplace=True) is m2 and type(m2.gru) is nnqd.GRU


def test_qconfig_spec_by_name_matches_torch(torch_mod):
    torch = torch_mod
    tm, qm = twins(torch)
    tq_ = torch.ao.quantization.quantize_dynamic(
        tm, {"fc_out": torch.ao.quantization.default_dynamic_qconfig,
             "lstm": torch.ao.quantization.default_dynamic_qconfig})
    qq = tq.quantize_dynamic(qm, {"fc_out": tq.default_dynamic_qconfig,
                                  "lstm": tq.default_dynamic_qconfig})
    assert types(qq) == types(tq_)
    np.testing.assert_allclose(qq(X), tq_(torch.from_numpy(X)).detach().numpy(), atol=2e-6)


def test_quantize_dynamic_bad_arguments():
    m = nn.Sequential(nn.Linear(2, 2), nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match=r"`dtype` must be qlearn.qint8 or qlearn.float16"):
        tq.quantize_dynamic(m, {nn.Linear}, dtype=ql.quint8)
    with pytest.raises(ValueError, match=r"names nn.Conv2d, which has no dynamically"):
        tq.quantize_dynamic(m, {nn.Conv2d})
    with pytest.raises(TypeError, match="`qconfig_spec` must be a set"):
        tq.quantize_dynamic(m, "Linear")
    with pytest.raises(TypeError, match="holds module classes"):
        tq.quantize_dynamic(m, {"0"})
    with pytest.raises(TypeError, match="got a QTensor"):
        q = tq.quantize_dynamic(nn.Sequential(nn.Linear(2, 2)))
        q(ql.quantize_per_tensor(np.ones((1, 2)), 0.1, 0, ql.quint8))


def test_dynamic_state_dict_roundtrip(tmp_path):
    for dtype in (ql.qint8, ql.float16):
        q = tq.quantize_dynamic(make().eval(), dtype=dtype)
        ql.save(q.state_dict(), tmp_path / "d.qlearn")
        fresh = tq.quantize_dynamic(make().eval(), dtype=dtype)
        assert not np.array_equal(fresh(X), q(X))
        fresh.load_state_dict(ql.load(tmp_path / "d.qlearn"))
        assert_array_equal(fresh(X), q(X))


def test_float16_weights_take_half_the_bytes():
    q = tq.quantize_dynamic(nn.Sequential(nn.Linear(64, 32)), dtype=ql.float16)
    assert q[0].weight().nbytes == 64 * 32 * 2
    assert repr(q[0]) == "DynamicQuantizedLinear(in_features=64, out_features=32, " \
                         "dtype=qlearn.float16)"
