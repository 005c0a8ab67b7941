"""qlearn.onnx.export: the exported models run in onnxruntime and give qlearn's integers.

Every comparison counts, per operator, the elements equal to qlearn's, off by one LSB and
worse (``qlearn.onnx.verify``); ``isolated=True`` runs each operator alone on the inputs
qlearn gave it, so a count belongs to that operator.  The only operator expected to
differ are those with an int32 bias: ONNX's QLinearConv (and, in QDQ, the Gemm fused
from DequantizeLinear nodes) takes the bias as int32 at scale Sa*Sw, qlearn (as FBGEMM)
adds it in float (docs/export.md).
"""
import importlib.util
import io

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.nn.quantized as nnq
import qlearn.nn.quantized.dynamic as nnqd
import qlearn.quantization as tq
from qlearn import nn
from qlearn.demo import digits_cnn

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install "
                           "'qlearn[export]' to run the export tests)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip "
                          "install 'qlearn[export]' to run the export tests)")

from qlearn import onnx as qonnx  # noqa: E402
from qlearn.onnx.ops import int32_bias  # noqa: E402

FORMATS = ["qdq", "qoperator"]
HAS_FX_QUANT = importlib.util.find_spec("qlearn.quantization.quantize_fx") is not None


# ---- models --------------------------------------------------------------------------
def _digits_data(n=96):
    try:
        from qlearn.datasets import load_digits
        return load_digits().x_test[:n]
    except ImportError:                     # scikit-learn ships the digits
        return np.random.default_rng(0).random((n, 1, 8, 8)).astype(np.float32)


def _float_digits_cnn():
    ql.autograd.manual_seed(0)
    m = digits_cnn().eval()
    for mod in m.modules():                 # non-trivial BN statistics to fold
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.running_mean.shape[0]
            mod.running_mean[:] = np.linspace(-0.1, 0.1, c, dtype=np.float32)
            mod.running_var[:] = np.linspace(0.5, 1.5, c, dtype=np.float32)
    return m


def _eager_digits(qconfig):
    f = _float_digits_cnn()
    tq.fuse_modules(f, [["0", "1", "2"], ["3", "4", "5"]], inplace=True)
    m = nn.Sequential(tq.QuantStub(), f, tq.DeQuantStub())
    m.qconfig = qconfig
    tq.prepare(m, inplace=True)
    x = _digits_data()
    m(x)
    tq.convert(m, inplace=True)
    return m, x


class Residual(nn.Module):
    """conv -> relu -> conv, + skip (add_relu), cat with a product, pool, linear."""

    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.skip = nnq.FloatFunctional()
        self.prod = nnq.FloatFunctional()
        self.join = nnq.FloatFunctional()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(16, 5)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        y = self.relu1(self.conv1(x))
        z = self.skip.add_relu(self.conv2(y), y)
        z = self.join.cat([z, self.prod.mul(z, y)], 1)
        return self.dequant(self.fc(self.flat(self.pool(z))))


@pytest.fixture(scope="module")
def residual():
    ql.autograd.manual_seed(1)
    m = Residual().eval()
    m.qconfig = tq.get_default_qconfig("x86")
    tq.prepare(m, inplace=True)
    x = np.random.default_rng(1).standard_normal((16, 3, 9, 7)).astype(np.float32)
    m(x)
    tq.convert(m, inplace=True)
    return m, x


@pytest.fixture(scope="module", params=["per_channel", "per_tensor"])
def eager_digits(request):
    qconfig = (tq.get_default_qconfig("x86") if request.param == "per_channel"
               else tq.default_qconfig)
    return _eager_digits(qconfig)


def _check(report, max_off_fraction):
    """Every operator within 1 LSB, and few off-by-ones; returns the counts."""
    print(report)
    for row in report.rows:
        assert row.worse == 0, f"{row.name}: {row.worse} elements off by more than 1"
        assert row.off_by_one <= max(2, max_off_fraction * row.size), row
    return report.off_by_one


def _output_ints(model, x, out):
    """qlearn's integers of the tensor the final DeQuantize reads, and onnxruntime's
    float output mapped back to integers with the same (S, Z)."""
    seen = {}
    deq = [m for m in model.modules() if isinstance(m, nnq.DeQuantize)][-1]
    def keep(mod, args, out):
        seen["q"] = args[0]
    h = deq.register_forward_hook(keep)
    try:
        model(x)
    finally:
        h.remove()
    q = seen["q"]
    theirs = np.rint(out / np.float32(q.q_scale())) + q.q_zero_point()
    return q.int_repr().astype(np.int64), theirs.astype(np.int64)


# ---- the digits CNN --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_digits_cnn_eager(eager_digits, fmt):
    m, x = eager_digits
    alone = qonnx.verify(m, x, format=fmt, isolated=True)
    _check(alone, 0.002)
    # only an int32 bias differs: QLinearConv's, and in QDQ the fused Gemm's too
    with_int32_bias = ("ConvReLU2d", "Conv2d") + (("Linear",) if fmt == "qdq" else ())
    for row in alone.rows:
        if row.type_name not in with_int32_bias:
            assert row.off_by_one == 0, row
    whole = qonnx.verify(m, x, format=fmt)
    _check(whole, 0.05)
    ours, theirs = _output_ints(m, x, whole.outputs[0])
    d = np.abs(ours - theirs)
    print(f"digits CNN {fmt}: output off by one on {int((d == 1).sum())} of {d.size}")
    assert d.max() <= 1


def _check_graph_module(gm, x, fmt):
    whole = qonnx.verify(gm, x, format=fmt)
    _check(whole, 0.05)
    _check(qonnx.verify(gm, x, format=fmt, isolated=True), 0.002)
    y = gm(x)
    assert whole.outputs[0].shape == np.shape(getattr(y, "data", y))
    # the output is a dequantized tensor, compared in LSBs of its input
    assert whole.rows[-1].type_name in ("DeQuantize", ".dequantize()", "dequantize")


@pytest.mark.parametrize("fmt", FORMATS)
def test_digits_cnn_traced(eager_digits, fmt):
    """The eager-converted CNN traced by qlearn.fx: the walk follows the graph."""
    from qlearn.fx import symbolic_trace
    m, x = eager_digits
    _check_graph_module(symbolic_trace(m), x, fmt)


@pytest.mark.skipif(not HAS_FX_QUANT, reason="qlearn.quantization.quantize_fx is not "
                    "there yet")
@pytest.mark.parametrize("fmt", FORMATS)
def test_digits_cnn_fx(fmt):
    """The digits CNN converted by prepare_fx / convert_fx (no stubs, no fusion list)."""
    from qlearn.quantization import quantize_fx
    f = _float_digits_cnn()
    x = _digits_data()
    prepared = quantize_fx.prepare_fx(f, {"": tq.get_default_qconfig("x86")}, (x,))
    prepared(x)
    _check_graph_module(quantize_fx.convert_fx(prepared), x, fmt)


def test_fx_and_eager_give_the_same_onnx_graph(eager_digits):
    from qlearn.fx import symbolic_trace
    m, x = eager_digits
    a = qonnx.export(m, x, format="qoperator")
    b = qonnx.export(symbolic_trace(m), x, format="qoperator")
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
    ia = {i.name: onnx.numpy_helper.to_array(i) for i in a.graph.initializer}
    ib = [onnx.numpy_helper.to_array(i) for i in b.graph.initializer]
    assert len(ia) == len(ib)


# ---- residual model ----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_residual_model(residual, fmt):
    m, x = residual
    alone = qonnx.verify(m, x, format=fmt, isolated=True)
    _check(alone, 0.002)
    ops = [n.op_type for n in alone.model.graph.node]
    if fmt == "qoperator":
        for op in ("QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool",
                   "QLinearConv", "MatMulInteger"):
            assert op in ops
    else:
        assert {"Add", "Mul", "Concat", "GlobalAveragePool", "Conv", "Gemm"} <= set(ops)
    whole = qonnx.verify(m, x, format=fmt)
    ours, theirs = _output_ints(m, x, whole.outputs[0])
    assert np.abs(ours - theirs).max() <= 1


class FxResidual(nn.Module):
    """A float residual block written with ``+``: graph mode quantizes it unchanged."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.relu1(self.conv1(x))
        z = self.relu2(self.conv2(y) + y)
        return self.fc(self.flat(self.pool(z)))


@pytest.mark.skipif(not HAS_FX_QUANT, reason="qlearn.quantization.quantize_fx is not "
                    "there yet")
@pytest.mark.parametrize("fmt", FORMATS)
def test_residual_model_fx(fmt):
    from qlearn.quantization import quantize_fx
    ql.autograd.manual_seed(5)
    f = FxResidual().eval()
    x = np.random.default_rng(5).standard_normal((8, 3, 6, 6)).astype(np.float32)
    prepared = quantize_fx.prepare_fx(f, {"": tq.get_default_qconfig("x86")}, (x,))
    prepared(x)
    gm = quantize_fx.convert_fx(prepared)
    _check(qonnx.verify(gm, x, format=fmt, isolated=True), 0.002)
    _check(qonnx.verify(gm, x, format=fmt), 0.05)


class FxReshape(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.conv, self.relu = nn.Conv2d(2, 4, 3), nn.ReLU()
        self.pool, self.fc = nn.MaxPool2d(2), nn.Linear(16, 3)

    def forward(self, x):
        y = self.pool(self.relu(self.conv(x)))
        y = y.reshape(-1, 16) if self.how == "literal" else y.reshape(y.shape[0], -1)
        return self.fc(y)


@pytest.mark.skipif(not HAS_FX_QUANT, reason="qlearn.quantization.quantize_fx is not "
                    "there yet")
@pytest.mark.parametrize("how", ["literal", "from_shape"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_fx_reshape_and_shape_arithmetic(how, fmt):
    """``x.reshape(x.shape[0], -1)``: the shape nodes become constants of the graph."""
    from qlearn.quantization import quantize_fx
    ql.autograd.manual_seed(7)
    x = np.random.default_rng(7).standard_normal((5, 2, 6, 6)).astype(np.float32)
    prepared = quantize_fx.prepare_fx(FxReshape(how).eval(),
                                      {"": tq.get_default_qconfig("x86")}, (x,))
    prepared(x)
    gm = quantize_fx.convert_fx(prepared)
    report = qonnx.verify(gm, x, format=fmt, isolated=True)
    _check(report, 0.01)
    assert "Reshape" in [n.op_type for n in report.model.graph.node]


# ---- dynamic linear --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reduce_range", [True, False])
@pytest.mark.parametrize("qconfig", ["per_tensor", "per_channel"])
def test_dynamic_linear(fmt, reduce_range, qconfig):
    ql.autograd.manual_seed(2)
    f = nn.Sequential(nn.Linear(20, 31), nn.ReLU(), nn.Linear(31, 4)).eval()
    qc = tq.default_dynamic_qconfig if qconfig == "per_tensor" else \
        tq.per_channel_dynamic_qconfig
    m = tq.quantize_dynamic(f, {nn.Linear: qc}, dtype=ql.qint8)
    for mod in m.modules():
        if isinstance(mod, nnqd.Linear):
            mod.reduce_range = reduce_range
    x = np.random.default_rng(3).standard_normal((7, 20)).astype(np.float32)
    report = qonnx.verify(m, x, format=fmt, isolated=True)
    print(report)
    for row in report.rows:   # in LSBs of the int32 accumulator: float rounding only
        assert row.max_diff < 0.05, row
    ops = [n.op_type for n in report.model.graph.node]
    if fmt == "qoperator":
        assert "MatMulInteger" in ops
        # full 8-bit activations: a uint8 weight, which onnxruntime's AVX2 kernels
        # (vpmaddubsw) cannot saturate (this test failed on an AMD Zen 3 without it)
        weights = {i.name: i.data_type for i in report.model.graph.initializer
                   if i.name.endswith(".weight_t")}
        assert weights and set(weights.values()) == {3 if reduce_range else 2}, weights
    assert ("QuantizeLinear" in ops) == reduce_range
    assert ("DynamicQuantizeLinear" in ops) == (not reduce_range)
    np.testing.assert_allclose(report.outputs[0], m(x), rtol=1e-5, atol=1e-5)


def test_dynamic_linear_3d_input():
    lin = tq.quantize_dynamic(nn.Sequential(nn.Linear(6, 5)), {nn.Linear})
    x = np.random.default_rng(4).standard_normal((2, 3, 6)).astype(np.float32)
    for fmt in FORMATS:
        report = qonnx.verify(lin, x, format=fmt)
        np.testing.assert_allclose(report.outputs[0], lin(x), rtol=1e-5, atol=1e-5)


# ---- hand-built modules: ReLU folding, ReLU6, pooling -----------------------------------
def _qconv(cls, zero_point, rng, per_channel=True):
    conv = cls(4, 6, 3, stride=2, padding=1)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32) * 0.2
    if per_channel:
        s = np.abs(w).reshape(6, -1).max(1) / 127
        qw = ql.quantize_per_channel(w, s, np.zeros(6, np.int64), 0, ql.qint8)
    else:
        qw = ql.quantize_per_tensor(w, float(np.abs(w).max() / 127), 0, ql.qint8)
    conv.set_weight_bias(qw, rng.standard_normal(6).astype(np.float32) * 0.3)
    conv.scale, conv.zero_point = 0.02, zero_point
    return conv


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("zero_point", [0, 37, 128])
def test_relu_folding(fmt, zero_point, rng):
    """A fused ReLU is the clamp at Z_o: nothing when Z_o = 0, a Clip on uint8 else."""
    m = nn.Sequential(nnq.Quantize(0.03, 11, ql.quint8),
                      _qconv(nniq.ConvReLU2d, zero_point, rng), nnq.ReLU6(),
                      nnq.MaxPool2d(2, 1), nnq.DeQuantize())
    x = rng.standard_normal((3, 4, 11, 10)).astype(np.float32)
    report = qonnx.verify(m, x, format=fmt, isolated=True)
    _check(report, 0.01)
    clips = sum(n.op_type == "Clip" for n in report.model.graph.node)
    if fmt == "qoperator":
        assert clips == (2 if zero_point else 1)   # the fused ReLU, the ReLU6


def _quantize_weight(w, scheme, rng):
    o = w.shape[0]
    amax = np.abs(w).reshape(o, -1).max(1)
    if scheme == "per_channel_symmetric":
        return ql.quantize_per_channel(w, amax / 127, np.zeros(o, np.int64), 0, ql.qint8)
    if scheme == "per_channel_affine":
        return ql.quantize_per_channel(w, amax / 100, rng.integers(-20, 21, o), 0, ql.qint8)
    if scheme == "per_tensor_affine":
        return ql.quantize_per_tensor(w, float(amax.max() / 100), 9, ql.qint8)
    return ql.quantize_per_tensor(w, float(amax.max() / 127), 0, ql.qint8)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cin, cout, k, stride, pad, dil, groups, hw", [
    (4, 6, 3, 1, 1, 1, 1, (9, 8)),
    (8, 8, 3, 2, 1, 1, 8, (9, 8)),            # depthwise, stride 2
    (6, 9, 3, 1, 2, 2, 3, (11, 7)),           # grouped, dilated
    (5, 7, 1, 1, 0, 1, 1, (5, 3)),            # 1x1
    (3, 17, 7, 2, 3, 1, 1, (20, 17)),         # a stem, odd channel count
    (1, 1, 1, 1, 0, 1, 1, (1, 1)),            # the smallest
])
@pytest.mark.parametrize("scheme", ["per_tensor_symmetric", "per_tensor_affine",
                                    "per_channel_symmetric", "per_channel_affine"])
def test_conv_shapes_and_weight_schemes(fmt, cin, cout, k, stride, pad, dil, groups, hw,
                                        scheme, rng):
    conv = nnq.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dil, groups=groups)
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32) * 0.3
    conv.set_weight_bias(_quantize_weight(w, scheme, rng),
                         rng.standard_normal(cout).astype(np.float32))
    conv.scale, conv.zero_point = 0.05, 100
    qx = ql.quantize_per_tensor(rng.standard_normal((2, cin) + hw), 0.03, 7, ql.quint8)
    _check(qonnx.verify(conv, qx, format=fmt), 0.01)


@pytest.mark.parametrize("fmt", FORMATS)
def test_quantized_linear_is_exact(fmt, rng):
    """MatMulInteger + qlearn's float epilogue reproduces nnq.Linear to the integer."""
    lin = nniq.LinearReLU(33, 17)
    w = rng.standard_normal((17, 33)).astype(np.float32) * 0.1
    lin.set_weight_bias(ql.quantize_per_channel(w, np.abs(w).max(1) / 127,
                                                np.zeros(17, np.int64), 0, ql.qint8),
                        rng.standard_normal(17).astype(np.float32))
    lin.scale, lin.zero_point = 0.05, 40
    m = nn.Sequential(nnq.Quantize(0.02, 64, ql.quint8), lin, nnq.DeQuantize())
    x = rng.standard_normal((50, 33)).astype(np.float32)
    report = qonnx.verify(m, x, format=fmt)
    print(report)
    if fmt == "qoperator":
        assert report.off_by_one == 0 and report.worse == 0
    else:
        _check(report, 0.01)


def test_adaptive_avg_pool_divisible(rng):
    m = nn.Sequential(nnq.Quantize(0.05, 3, ql.quint8), nnq.AdaptiveAvgPool2d((2, 3)),
                      nnq.DeQuantize())
    x = rng.random((2, 3, 4, 6)).astype(np.float32)
    for fmt in FORMATS:
        _check(qonnx.verify(m, x, format=fmt, isolated=True), 0.05)
    with pytest.raises(qonnx.UnsupportedModuleError, match="not an exact division"):
        qonnx.export(m, rng.random((2, 3, 5, 6)).astype(np.float32))


def test_quantized_input_and_output(rng):
    """A model without stubs: the graph input and output are uint8."""
    conv = _qconv(nnq.Conv2d, 5, rng, per_channel=False)
    qx = ql.quantize_per_tensor(rng.standard_normal((1, 4, 7, 7)), 0.04, 120, ql.quint8)
    proto = qonnx.export(conv, qx, format="qoperator")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    report = qonnx.verify(conv, qx, format="qoperator")
    _check(report, 0.01)


# ---- what the graph holds --------------------------------------------------------------
def _inits(proto):
    return {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}


def test_weights_are_int8_with_per_channel_scales(eager_digits):
    m, x = eager_digits
    conv = m[1][0]
    for fmt in FORMATS:
        proto = qonnx.export(m, x, format=fmt)
        inits = _inits(proto)
        w = inits["1.0.weight_quantized"]
        assert w.dtype == np.int8
        np.testing.assert_array_equal(w, conv.weight().int_repr())
        b = inits["1.0.bias_quantized"]
        assert b.dtype == np.int32
        user = [n for n in proto.graph.node if "1.0.weight_quantized" in n.input][0]
        assert user.op_type == ("QLinearConv" if fmt == "qoperator" else "DequantizeLinear")
        scale = inits[user.input[4 if fmt == "qoperator" else 1]]
        qw = conv.weight()
        if qw.qscheme() in (ql.per_channel_symmetric, ql.per_channel_affine):
            np.testing.assert_array_equal(scale, qw.q_per_channel_scales().astype(np.float32))
            if fmt == "qdq":
                assert [a.i for a in user.attribute if a.name == "axis"] == [0]
        else:
            assert scale.shape == () and scale == np.float32(qw.q_scale())


def test_int32_bias_explains_every_conv_mismatch():
    """With each conv's float bias replaced by its int32 rounding (times Sa*Sw), qlearn's
    float-bias rule and QLinearConv's int32 one agree on every integer."""
    m, x = _eager_digits(tq.get_default_qconfig("x86"))
    before = qonnx.verify(m, x, format="qoperator", isolated=True)
    seen = {}
    convs = [mod for mod in m.modules() if isinstance(mod, nniq.ConvReLU2d)]
    hooks = []
    for i, conv in enumerate(convs):
        def keep(mod, args, out, i=i):
            seen[i] = args[0]
        hooks.append(conv.register_forward_hook(keep))
    m(x)
    for h in hooks:
        h.remove()
    for i, conv in enumerate(convs):
        bq, bs = int32_bias(conv.bias(), seen[i].q_scale(),
                            conv.weight().q_per_channel_scales())
        conv.set_weight_bias(conv.weight(), (bq.astype(np.float64) * bs).astype(np.float32))
    after = qonnx.verify(m, x, format="qoperator", isolated=True)
    print(before, after, sep="\n")
    assert before.off_by_one > 0
    assert after.off_by_one == 0 and after.worse == 0


def test_int32_bias_rule():
    b = np.array([0.5, -1.25, 3e-3, 0.0], np.float32)
    sa, sw = 0.02, np.array([0.01, 0.003, 0.5, 1.0], np.float32)
    q, s = int32_bias(b, sa, sw)
    ref_s = (np.float32(sa) * sw).astype(np.float32)
    np.testing.assert_array_equal(s, ref_s)
    np.testing.assert_array_equal(q, np.rint(b.astype(np.float64) / ref_s).astype(np.int32))
    assert q.dtype == np.int32
    q, _ = int32_bias(np.array([1e30], np.float32), 1e-10, 1e-10)
    assert q[0] == np.iinfo(np.int32).max


@pytest.mark.parametrize("opset", [13, 17, 21])
@pytest.mark.parametrize("fmt", FORMATS)
def test_checker_and_opsets(residual, opset, fmt):
    m, x = residual
    proto = qonnx.export(m, x, format=fmt, opset_version=opset)
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    domains = {o.domain for o in proto.opset_import}
    assert ("com.microsoft" in domains) == (fmt == "qoperator")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], m(x), atol=0.05)


def test_writes_path_and_file(tmp_path, residual):
    m, x = residual
    p = tmp_path / "residual.onnx"
    proto = qonnx.export(m, x, p, format="qdq", input_names=["pixels"],
                         output_names=["logits"])
    loaded = onnx.load(str(p))
    assert loaded.SerializeToString() == proto.SerializeToString()
    assert [i.name for i in loaded.graph.input] == ["pixels"]
    assert [o.name for o in loaded.graph.output] == ["logits"]
    buf = io.BytesIO()
    qonnx.export(m, x, buf, format="qoperator")
    assert onnx.load_from_string(buf.getvalue()).graph.node


@pytest.mark.parametrize("fmt", FORMATS)
def test_dynamic_batch(eager_digits, residual, fmt):
    """``dynamic_axes`` leaves the batch open: other batch sizes run and match qlearn."""
    axes = {"input": {0: "batch"}, "output": {0: "batch"}}
    lin = tq.quantize_dynamic(nn.Sequential(nn.Linear(6, 5)), {nn.Linear})
    cases = [eager_digits, residual,
             (lin, np.random.default_rng(6).standard_normal((2, 3, 6)).astype(np.float32))]
    for m, x in cases:
        proto = qonnx.export(m, x[:4], format=fmt, dynamic_axes=axes)
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        sess = ort.InferenceSession(proto.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        for n in (1, 7):
            xb = np.ascontiguousarray(x[:n])
            got = sess.run(None, {"input": xb})[0]
            if any(isinstance(mod, nnq.DeQuantize) for mod in m.modules()):
                ours, theirs = _output_ints(m, xb, got)
                assert np.abs(ours - theirs).max() <= 1
            else:
                np.testing.assert_allclose(got, m(xb), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        qonnx.export(lin, cases[2][1], dynamic_axes={"input": [3]})
    with pytest.raises(TypeError, match="`dynamic_axes` must be a dict"):
        qonnx.export(lin, cases[2][1], dynamic_axes=[0])


def test_model_left_in_eval_mode_as_it_was(residual):
    m, x = residual
    m.train()
    qonnx.export(m, x)
    assert all(mod.training for mod in m.modules())
    m.eval()


class TwoHeads(nn.Module):
    """Two outputs; one module called twice; a dequantized value used twice."""

    def __init__(self):
        super().__init__()
        self.quant = nnq.Quantize(0.05, 20, ql.quint8)
        self.relu = nnq.ReLU()
        self.dq = nnq.DeQuantize()

    def forward(self, x):
        q = self.quant(x)
        return self.dq(self.relu(self.relu(q))), self.dq(q)


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_outputs_and_a_module_called_twice(fmt, rng):
    m = TwoHeads()
    x = rng.standard_normal((3, 5)).astype(np.float32)
    proto = qonnx.export(m, x, format=fmt)
    assert [o.name for o in proto.graph.output] == ["output", "output_1"]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})
    for a, b in zip(got, m(x)):
        np.testing.assert_array_equal(a, b)


def test_input_returned_as_output():
    proto = qonnx.export(nn.Identity(), np.ones((2, 2), np.float32))
    assert [n.op_type for n in proto.graph.node] == ["Identity"]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"input": np.eye(2, dtype=np.float32)})[0],
                                  np.eye(2))


def test_without_onnx_installed(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install onnx"):
        qonnx.export(nn.Identity(), np.ones(2, np.float32))


# ---- errors --------------------------------------------------------------------------
class Swish(nn.Module):
    def forward(self, x):
        return x


def test_unsupported_module_named():
    m = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Identity(), Swish()))
    with pytest.raises(qonnx.UnsupportedModuleError) as exc:
        qonnx.export(m, np.ones((2, 4), np.float32))
    msg = str(exc.value)
    assert "'1.1'" in msg and "test_onnx_export.Swish" in msg
    assert isinstance(exc.value, TypeError)


def test_unsupported_lstm_and_prepared_model():
    lstm = tq.quantize_dynamic(nn.Sequential(nn.LSTM(3, 4)), {nn.LSTM})
    with pytest.raises(qonnx.UnsupportedModuleError, match=r"'0' of type .*LSTM"):
        qonnx.export(lstm, np.ones((5, 1, 3), np.float32))
    m = nn.Sequential(tq.QuantStub(), nn.Linear(3, 2), tq.DeQuantStub())
    m.qconfig = tq.default_qconfig
    tq.prepare(m, inplace=True)
    with pytest.raises(qonnx.UnsupportedModuleError, match="convert"):
        qonnx.export(m, np.ones((2, 3), np.float32))


class Hidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.b(self.a(x) * 2.0)


def test_arithmetic_outside_modules_is_reported():
    with pytest.raises(ValueError, match="qlearn.fx"):
        qonnx.export(Hidden(), np.ones((2, 3), np.float32))


def test_bad_arguments(residual):
    m, x = residual
    with pytest.raises(ValueError, match="`format` must be one of"):
        qonnx.export(m, x, format="tflite")
    for opset in (12, True, "17"):
        with pytest.raises(ValueError, match="`opset_version` must be"):
            qonnx.export(m, x, opset_version=opset)
    with pytest.raises(TypeError, match="`example_input` must be an array"):
        qonnx.export(m, object())
