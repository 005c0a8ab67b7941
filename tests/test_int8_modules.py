"""The quantized modules: nnq.*, nnqd.Linear / LSTM, nniq.LinearReLU / ConvReLU2d.

Each is checked against the functional op it wraps, against PyTorch's module of the same
name (with the same integer weights), for ``from_float`` from an observed float module,
its ``repr``, ``state_dict`` round trip and its errors.
"""
import collections

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from test_int8_ops import activations, assert_close_count, to_torch, weights

import qlearn as ql
import qlearn.nn.intrinsic as nni
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.nn.quantized.functional as qF
from qlearn import nn
from qlearn.nn import Module, Parameter


# ---- stand-ins: an observer and observed float modules with PyTorch's attributes --------
class StandInObserver(Module):
    """min/max observer, affine (quint8) or symmetric (qint8), as a factory result."""

    def __init__(self, dtype, reduce_range=False):
        super().__init__()
        self.dtype, self.qscheme = dtype, (ql.per_tensor_affine if dtype is ql.quint8
                                           else ql.per_tensor_symmetric)
        self.reduce_range = reduce_range
        self.lo, self.hi = 0.0, 0.0

    def forward(self, x):
        x = np.asarray(getattr(x, "data", x))
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        return x

    def calculate_qparams(self):
        if self.dtype is ql.qint8:
            s = max(-self.lo, self.hi) / 127.5
            return np.array([s], np.float32), np.array([0])
        qmax = 127 if self.reduce_range else 255
        s = (self.hi - self.lo) / qmax
        return np.array([s], np.float32), np.array([round(-self.lo / s)])


QConfig = collections.namedtuple("QConfig", "activation weight")
QCONFIG = QConfig(lambda: StandInObserver(ql.quint8, True),
                  lambda: StandInObserver(ql.qint8))


def Linear(w, b):     # a float nn.Linear holding w, b (from_float checks the type)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    lin.weight = Parameter(w)
    if b is not None:
        lin.bias = Parameter(b)
    return lin


def Conv2d(w, b, stride=1, padding=0, dilation=1, groups=1):
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], w.shape[2:], stride, padding,
                     dilation, groups, bias=b is not None)
    conv.weight = Parameter(w)
    if b is not None:
        conv.bias = Parameter(b)
    return conv


def observed(mod, x_out):
    mod.qconfig = QCONFIG
    mod.activation_post_process = QCONFIG.activation()
    mod.activation_post_process(x_out)
    return mod


# ---- nnq.Linear ---------------------------------------------------------------------------
def test_linear_module_forward_equals_functional(rng):
    x = activations(rng, (5, 12))
    w = weights(rng, (7, 12), True)
    b = rng.standard_normal(7).astype(np.float32)
    m = nnq.Linear(12, 7)
    m.set_weight_bias(w, b)
    m.scale, m.zero_point = 0.2, 30
    assert_array_equal(m(x).int_repr(), qF.linear(x, w, b, 0.2, 30).int_repr())
    assert m.weight() is w and m.bias() is not None
    assert repr(m) == ("QuantizedLinear(in_features=12, out_features=7, scale=0.2, "
                       "zero_point=30, qscheme=qlearn.per_channel_affine)")


def test_linear_module_matches_torch_module(torch_mod, rng):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    x = activations(rng, (6, 20))
    w = weights(rng, (9, 20), False)
    b = rng.standard_normal(9).astype(np.float32)
    for ours, theirs in ((nnq.Linear, torch.ao.nn.quantized.Linear),
                         (nniq.LinearReLU, torch.ao.nn.intrinsic.quantized.LinearReLU)):
        m, t = ours(20, 9), theirs(20, 9)
        m.set_weight_bias(w, b)
        t.set_weight_bias(to_torch(torch, w), torch.from_numpy(b))
        m.scale, m.zero_point = t.scale, t.zero_point = 0.05, 64
        assert_close_count(m(x).int_repr(), t(to_torch(torch, x)).int_repr().numpy())


def test_linear_from_float_uses_observers(rng):
    w = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    xf = rng.standard_normal((10, 6)).astype(np.float32)
    fl = observed(Linear(w, b), xf @ w.T + b)
    q = nnq.Linear.from_float(fl)
    s, z = fl.activation_post_process.calculate_qparams()
    assert (q.scale, q.zero_point) == (float(s[0]), int(z[0]))
    wobs = QCONFIG.weight()
    wobs(w)
    ws, wz = wobs.calculate_qparams()
    assert q.weight() == ql.quantize_per_tensor(w, float(ws[0]), int(wz[0]), ql.qint8)
    assert_array_equal(q.bias(), b)
    # the quantized layer approximates the float one
    xq = ql.quantize_per_tensor(xf, 0.02, 128, ql.quint8)
    err = np.abs(q(xq).dequantize() - (xq.dequantize() @ w.T + b)).max()
    assert err < 4 * q.scale


def test_from_float_without_observers_is_an_error(rng):
    fl = Linear(np.ones((2, 3), np.float32), None)
    with pytest.raises(ValueError, match="qconfig|activation_post_process"):
        nnq.Linear.from_float(fl)
    with pytest.raises(TypeError, match="from_float expects a qlearn.nn.Linear"):
        nnq.Linear.from_float(Conv2d(np.ones((1, 1, 1, 1), np.float32), None))


def test_linear_from_float_with_qlearn_observers_matches_torch(torch_mod, rng):
    """End to end with the real observers: the same float layer and calibration data
    converted by PyTorch and by qlearn give the same integers."""
    obs = pytest.importorskip("qlearn.quantization.observer")
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    w = rng.standard_normal((8, 16)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    xf = rng.standard_normal((32, 16)).astype(np.float32)
    qc = QConfig(lambda: obs.MinMaxObserver(dtype=ql.quint8, reduce_range=True),
                 lambda: obs.PerChannelMinMaxObserver(dtype=ql.qint8,
                                                      qscheme=ql.per_channel_symmetric))
    fl = Linear(w, b)
    fl.qconfig = qc
    fl.activation_post_process = qc.activation()
    fl.activation_post_process(xf @ w.T + b)
    q = nnq.Linear.from_float(fl)

    tq = torch.ao.quantization
    tl = torch.nn.Linear(16, 8)
    tl.weight.data, tl.bias.data = torch.from_numpy(w), torch.from_numpy(b)
    tl.qconfig = tq.QConfig(
        activation=tq.MinMaxObserver.with_args(reduce_range=True),
        weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                     qscheme=torch.per_channel_symmetric))
    tl.activation_post_process = tl.qconfig.activation()
    tl.activation_post_process(torch.from_numpy(xf @ w.T + b))
    tq_lin = torch.ao.nn.quantized.Linear.from_float(tl)
    assert np.float32(q.scale) == np.float32(tq_lin.scale)
    assert q.zero_point == tq_lin.zero_point
    assert_array_equal(q.weight().int_repr(), tq_lin.weight().int_repr().numpy())
    xq = ql.quantize_per_tensor(xf, 0.02, 64, ql.quint8)
    xq._int[...] = np.minimum(xq._int, 127)
    assert_close_count(q(xq).int_repr(), tq_lin(to_torch(torch, xq)).int_repr().numpy())


def test_float_input_error_names_module_and_quantstub(rng):
    m = nnq.Linear(3, 2)
    with pytest.raises(TypeError, match=r"QuantizedLinear.*QuantStub"):
        m(np.ones((1, 3), np.float32))
    c = nniq.ConvReLU2d(1, 1, 1)
    with pytest.raises(TypeError, match=r"QuantizedConvReLU2d.*QuantStub"):
        c(np.ones((1, 1, 2, 2), np.float32))


def test_bad_arguments_are_named(rng):
    m = nnq.Linear(3, 2)
    x = activations(rng, (1, 4))
    with pytest.raises(ValueError, match="3 features"):
        m(x)
    with pytest.raises(ValueError, match="`w` must have shape"):
        m.set_weight_bias(weights(rng, (2, 4), False), None)
    with pytest.raises(ValueError, match="`bias` must have shape"):
        m.set_weight_bias(weights(rng, (2, 3), False), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="qint8"):
        m.set_weight_bias(activations(rng, (2, 3)), None)
    m.scale = -1.0
    with pytest.raises(ValueError, match="scale"):
        m(activations(rng, (1, 3)))
    with pytest.raises(ValueError, match="groups"):
        nnq.Conv2d(3, 4, 3, groups=2)


def test_state_dict_round_trip(rng, tmp_path):
    m = nnq.Linear(5, 3)
    m.set_weight_bias(weights(rng, (3, 5), True), rng.standard_normal(3).astype(np.float32))
    m.scale, m.zero_point = 0.3, 12
    sd = m.state_dict()
    assert set(sd) == {"weight", "bias", "scale", "zero_point"}
    m2 = nnq.Linear(5, 3)
    m2.load_state_dict(sd)
    x = activations(rng, (4, 5))
    assert_array_equal(m2(x).int_repr(), m(x).int_repr())
    path = tmp_path / "linear.qlearn"
    ql.save(sd, str(path))
    m3 = nnq.Linear(5, 3)
    m3.load_state_dict(ql.load(str(path)))
    assert_array_equal(m3(x).int_repr(), m(x).int_repr())
    c = nnq.Conv2d(2, 4, 3, padding=1)
    c.set_weight_bias(weights(rng, (4, 2, 3, 3), False), None)
    c2 = nnq.Conv2d(2, 4, 3, padding=1)
    c2.load_state_dict(c.state_dict())
    x = activations(rng, (1, 2, 5, 5))
    assert_array_equal(c2(x).int_repr(), c(x).int_repr())


# ---- nnq.Conv2d / nniq.ConvReLU2d ---------------------------------------------------------
@pytest.mark.parametrize("groups", [1, 4])
def test_conv_modules_match_torch(torch_mod, rng, groups):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    x = activations(rng, (2, 8, 9, 10))
    w = weights(rng, (8, 8 // groups, 3, 3), True)
    b = rng.standard_normal(8).astype(np.float32)
    for ours, theirs in ((nnq.Conv2d, torch.ao.nn.quantized.Conv2d),
                         (nniq.ConvReLU2d, torch.ao.nn.intrinsic.quantized.ConvReLU2d)):
        m = ours(8, 8, 3, stride=2, padding=1, groups=groups)
        t = theirs(8, 8, 3, stride=2, padding=1, groups=groups)
        m.set_weight_bias(w, b)
        t.set_weight_bias(to_torch(torch, w), torch.from_numpy(b))
        m.scale, m.zero_point = t.scale, t.zero_point = 0.04, 20
        assert_close_count(m(x).int_repr(), t(to_torch(torch, x)).int_repr().numpy())
        assert repr(m) == repr(t).replace("torch.", "qlearn.")


def test_conv_from_float(rng):
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    fl = observed(Conv2d(w, np.zeros(6, np.float32), stride=(2, 2), padding=(1, 1)),
                  rng.standard_normal((2, 6, 4, 4)))
    q = nnq.Conv2d.from_float(fl)
    assert q.stride == (2, 2) and q.padding == (1, 1) and q.kernel_size == (3, 3)
    y = q(activations(rng, (1, 3, 8, 8)))
    assert y.shape == (1, 6, 4, 4)


# ---- small modules -----------------------------------------------------------------------
def test_quantize_dequantize_relu_pool_modules(rng):
    xf = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    q = nnq.Quantize(0.05, 128, ql.quint8)(xf)
    assert q == ql.quantize_per_tensor(xf, 0.05, 128, ql.quint8)
    assert_array_equal(nnq.DeQuantize()(q), q.dequantize())
    assert_array_equal(nnq.ReLU()(q).int_repr(), np.maximum(q.int_repr(), 128))
    assert nnq.ReLU6()(q).dequantize().max() <= 6.0
    assert nnq.MaxPool2d(2)(q).shape == (1, 2, 3, 3)
    assert nnq.AdaptiveAvgPool2d(1)(q).shape == (1, 2, 1, 1)
    with pytest.raises(TypeError, match="QuantStub"):
        nnq.ReLU()(xf)


def test_float_functional_and_qfunctional(rng):
    ff = nnq.FloatFunctional()
    ff.activation_post_process = StandInObserver(ql.quint8)
    a = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
    assert_array_equal(ff.add(a, a), a + a)
    assert_array_equal(ff.add_relu(a, a), np.maximum(a + a, 0))
    assert_array_equal(ff.cat([a, a], 1), np.concatenate([a, a], 1))
    qf = nnq.QFunctional.from_float(ff)
    assert qf.scale > 0
    qa = ql.quantize_per_tensor(a, 0.01, 128, ql.quint8)
    assert_array_equal(qf.add(qa, qa).int_repr(),
                       qF.add(qa, qa, qf.scale, qf.zero_point).int_repr())
    assert_array_equal(qf.mul(qa, qa).int_repr(),
                       qF.mul(qa, qa, qf.scale, qf.zero_point).int_repr())
    assert qf.cat([qa, qa], 0).shape == (6, 4)
    assert qf.add_relu(qa, qa).int_repr().min() >= qf.zero_point


# ---- dynamic ------------------------------------------------------------------------------
def test_dynamic_linear_matches_torch(torch_mod, rng):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    w = weights(rng, (10, 24), False)
    b = rng.standard_normal(10).astype(np.float32)
    m = nnqd.Linear(24, 10)
    m.set_weight_bias(w, b)
    t = torch.ao.nn.quantized.dynamic.Linear(24, 10)
    t.set_weight_bias(to_torch(torch, w), torch.from_numpy(b))
    x = rng.standard_normal((3, 5, 24)).astype(np.float32)
    got, want = m(x), t(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape == (3, 5, 10)
    a_scale = (max(x.max(), 0) - min(x.min(), 0)) / 127
    assert np.abs(got - want).max() <= 4 * a_scale * w.q_scale()
    assert repr(m) == repr(t).replace("torch.", "qlearn.")


def test_dynamic_linear_from_float(rng):
    w = rng.standard_normal((4, 6)).astype(np.float32)
    fl = Linear(w, None)
    fl.qconfig = QCONFIG
    q = nnqd.Linear.from_float(fl)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    assert np.abs(q(x) - x @ w.T).max() < 0.1
    with pytest.raises(TypeError, match="float `input`"):
        q(ql.quantize_per_tensor(x, 0.1, 128, ql.quint8))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("bidirectional,num_layers,batch_first",
                         [(False, 1, False), (True, 2, True)])
def test_dynamic_lstm_matches_torch(torch_mod, rng, bidirectional, num_layers, batch_first):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    torch.manual_seed(0)
    fl = torch.nn.LSTM(6, 5, num_layers=num_layers, bidirectional=bidirectional,
                       batch_first=batch_first)
    tq = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(fl), {torch.nn.LSTM},
                                                dtype=torch.qint8)[0]
    obs = pytest.importorskip("qlearn.quantization.observer")
    qc = QConfig(None, lambda: obs.MinMaxObserver(dtype=ql.qint8,
                                                  qscheme=ql.per_tensor_symmetric))

    f = nn.LSTM(6, 5, num_layers=num_layers, bidirectional=bidirectional,
                batch_first=batch_first)
    f.load_state_dict({k: v.detach().numpy() for k, v in fl.state_dict().items()})
    f.qconfig = qc
    m = nnqd.LSTM.from_float(f)
    x = rng.standard_normal((4, 3, 6) if not batch_first else (3, 4, 6)).astype(np.float32)
    y, (h, c) = m(x)
    ty, (th, tc) = tq(torch.from_numpy(x))
    assert y.shape == tuple(ty.shape) and h.shape == tuple(th.shape)
    # one activation scale for the input projection of the whole sequence, as torch:
    # the float results agree to float32 rounding
    assert np.abs(y - ty.detach().numpy()).max() < 1e-5
    assert np.abs(c - tc.detach().numpy()).max() < 1e-5


def LinearReLU(lin):     # a fused float module: children (linear, relu)
    return nni.LinearReLU(lin, nn.ReLU())


def test_fused_from_float_clamps_at_zero_point(rng):
    w = rng.standard_normal((5, 8)).astype(np.float32)
    xf = rng.standard_normal((20, 8)).astype(np.float32)
    fused = LinearReLU(Linear(w, None))
    observed(fused, np.maximum(xf @ w.T, 0))
    q = nniq.LinearReLU.from_float(fused)
    assert repr(q).startswith("QuantizedLinearReLU(in_features=8, out_features=5")
    xq = ql.quantize_per_tensor(xf, 0.02, 128, ql.quint8)
    y = q(xq)
    assert y.int_repr().min() >= q.zero_point
    plain = nnq.Linear(8, 5)
    plain.set_weight_bias(q.weight(), None)
    plain.scale, plain.zero_point = q.scale, q.zero_point
    assert_array_equal(y.int_repr(), np.maximum(plain(xq).int_repr(), q.zero_point))
