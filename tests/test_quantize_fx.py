"""Graph-mode quantization against torch 2.13's FX flow: the same prepared and converted
graphs (node op / target sequences) and, with copied weights and the same calibration
data, the same output integers; QConfigMapping; the "Practical Quantization in PyTorch"
FX cells and its one-layer-at-a-time sensitivity loop with only import changes."""
import operator
import warnings

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.functional as F
import qlearn.quantization as tq
from qlearn import nn
from qlearn.fx import GraphModule
from qlearn.quantization import QConfigMapping, quantize_fx


# -- helpers -----------------------------------------------------------------------------
def _copy_weights(qmodel, tmodel):
    sd = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
    for name, p in qmodel.named_parameters():
        p.data[...] = sd[name]
    for name, b in qmodel.named_buffers():
        if isinstance(b, np.ndarray) and name in sd:
            b[...] = sd[name]


def _name(target):
    return str(getattr(target, "__name__", target)).split(".")[-1]


def _signature(gm):
    """(op, target) per node; functions by their last name, so torch.quantize_per_tensor
    and ql.quantize_per_tensor, torch.ops.quantized.add_relu and qF.add_relu compare
    equal.  torch's ``x.dequantize()`` (a float tensor) is qlearn's
    ``qfx.dequantize(x)`` (a float Tensor; QTensor.dequantize() is an ndarray): both
    read as ("call_function", "dequantize")."""
    def one(n):
        if n.op == "call_method" and n.target == "dequantize":
            return ("call_function", "dequantize")
        return (n.op, _name(n.target) if n.op == "call_function" else n.target)
    return [one(n) for n in gm.graph.nodes]


def _observer_aliases(gm):
    """Which observer names share one module (PyTorch's shared observers)."""
    names = [n.target for n in gm.graph.nodes if n.op == "call_module"
             and n.target.startswith("activation_post_process_")]
    mods = {n: gm.get_submodule(n) for n in names}
    return sorted(tuple(m for m in names if mods[m] is mods[n]) for n in names)


def _both(torch, qmodel, tmodel, qconfig_q, qconfig_t, calib, x):
    """Prepare, calibrate and convert in both libraries; returns (prepared, converted)
    pairs and the two outputs."""
    tmodel.eval()
    qmodel.eval()
    _copy_weights(qmodel, tmodel)
    tp = torch.ao.quantization.quantize_fx.prepare_fx(tmodel, qconfig_t,
                                                      (torch.from_numpy(calib[0]),))
    qp = quantize_fx.prepare_fx(qmodel, qconfig_q, (calib[0],))
    for c in calib:
        tp(torch.from_numpy(c))
        qp(c)
    # torch's convert_fx rewrites its argument in place: keep what the tests read
    tp = _Snapshot(tp)
    tc = torch.ao.quantization.quantize_fx.convert_fx(tp.gm)
    qc = quantize_fx.convert_fx(qp)
    tout = tc(torch.from_numpy(x))
    qout = qc(x)
    return (tp, qp), (tc, qc), tout, qout


class _Snapshot:
    """The graph of a torch prepared model as it was before convert_fx changed it."""

    def __init__(self, gm):
        self.gm = gm
        self.signature = _signature(gm)
        self.names = [n.name for n in gm.graph.nodes]
        self.aliases = _observer_aliases(gm)


def _as_int(out, scale, zero_point):
    return np.round(np.asarray(out, np.float64) / scale).astype(np.int64) + zero_point


@pytest.fixture
def tnn(torch_mod):
    import torch.ao.quantization.quantize_fx  # noqa: F401  (a submodule, not imported by torch)
    warnings.filterwarnings("ignore")
    return torch_mod.nn


# -- the models, written for both libraries ------------------------------------------------
def _residual_classes(torch):
    tn = torch.nn

    def make(base, mods):
        class Residual(base):
            """A digits-CNN-like model: conv-bn-relu, a residual block, pooling, fc."""

            def __init__(self):
                super().__init__()
                self.conv1 = mods.Conv2d(1, 4, 3, padding=1)
                self.bn1 = mods.BatchNorm2d(4)
                self.relu1 = mods.ReLU()
                self.conv2 = mods.Conv2d(4, 4, 3, padding=1)
                self.relu2 = mods.ReLU()
                self.pool = mods.MaxPool2d(2)
                self.fc = mods.Linear(4 * 4 * 4, 10)

            def forward(self, x):
                x = self.relu1(self.bn1(self.conv1(x)))
                x = self.relu2(self.conv2(x) + x)
                x = self.pool(x)
                x = x.reshape(x.shape[0], -1)
                return self.fc(x)
        return Residual()

    return make(nn.Module, nn), make(tn.Module, tn)


def _randomize_bn(torch, tmodel):
    with torch.no_grad():
        for m in tmodel.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def test_residual_cnn_matches_torch(torch_mod, tnn, rng):
    torch = torch_mod
    torch.manual_seed(0)
    qm, tm = _residual_classes(torch)
    _randomize_bn(torch, tm)
    calib = [rng.standard_normal((4, 1, 8, 8)).astype(np.float32) for _ in range(4)]
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    qconfig = {"": tq.get_default_qconfig("x86")}
    tqconfig = {"": torch.ao.quantization.get_default_qconfig("x86")}
    (tp, qp), (tc, qc), tout, qout = _both(torch, qm, tm, qconfig, tqconfig, calib, x)
    # prepared: conv1+bn1+relu1 fused, add+relu2 fused, the observer of pool's output is
    # the observer of its input (the same module under a second name)
    assert _signature(qp) == tp.signature
    assert [n.name for n in qp.graph.nodes] == tp.names
    assert _observer_aliases(qp) == tp.aliases
    assert type(qp.conv1).__name__ == "ConvReLU2d" and not hasattr(qp, "bn1")
    # converted: quantize_per_tensor, quantized modules, qF.add_relu, dequantize
    assert _signature(qc) == _signature(tc)
    assert [n.name for n in qc.graph.nodes] == [n.name for n in tc.graph.nodes]
    assert type(qc.fc).__name__ == "Linear" and type(qc.conv1).__name__ == "ConvReLU2d"
    assert qc.fc.zero_point == tc.fc.zero_point
    np.testing.assert_allclose(qc.fc.scale, tc.fc.scale, rtol=1e-6)
    np.testing.assert_array_equal(_as_int(qout, qc.fc.scale, qc.fc.zero_point),
                                  _as_int(tout.numpy(), qc.fc.scale, qc.fc.zero_point))
    assert "add_relu = qF.add_relu(conv2, conv1, relu2_scale_0, relu2_zero_point_0)" \
        in qc.code


def _mlp_classes(torch):
    def make(base, mods, functional, lib):
        class MLP(base):
            """Linear-ReLU (fused), F.relu after a linear (fused), a cat, a product
            with a ReLU after it, a reshape."""

            def __init__(self):
                super().__init__()
                self.fc1 = mods.Linear(6, 8)
                self.relu = mods.ReLU()
                self.fc2 = mods.Linear(8, 8)
                self.fc3 = mods.Linear(16, 5)

            def forward(self, x):
                a = self.relu(self.fc1(x))
                b = functional.relu(self.fc2(a))
                y = lib.cat([a, b], 1)
                y = functional.relu(y * y)
                return self.fc3(y.reshape(y.shape[0], -1))
        return MLP()

    return (make(nn.Module, nn, F, ql),
            make(torch.nn.Module, torch.nn, torch.nn.functional, torch))


def test_mlp_with_cat_and_mul_relu_matches_torch(torch_mod, tnn, rng):
    torch = torch_mod
    torch.manual_seed(1)
    qm, tm = _mlp_classes(torch)
    calib = [rng.standard_normal((8, 6)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((32, 6)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(
        torch, qm, tm, {"": tq.get_default_qconfig("x86")},
        {"": torch.ao.quantization.get_default_qconfig("x86")}, calib, x)
    assert _signature(qp) == tp.signature
    # cat's inputs share one observer; so do the outputs of cat, reshape and the scalar add
    assert _observer_aliases(qp) == tp.aliases
    # converted: PyTorch writes mul+relu as one quantized.mul_relu call; qlearn writes
    # qF.mul then qF.relu, the same integers since quantize(max(r, 0)) = max(quantize(r), Z)
    t_ops = [t for op, t in _signature(tc) if op == "call_function"]
    q_ops = [t for op, t in _signature(qc) if op == "call_function"]
    assert t_ops == ["quantize_per_tensor", "cat", "mul_relu", "getattr", "getitem",
                     "dequantize"]
    assert q_ops == ["quantize_per_tensor", "cat", "mul", "relu", "getattr", "getitem",
                     "dequantize"]
    s, z = qc.fc3.scale, qc.fc3.zero_point
    assert z == tc.fc3.zero_point
    np.testing.assert_array_equal(_as_int(qout, s, z), _as_int(tout.numpy(), s, z))


def test_none_qconfig_keeps_a_node_float(torch_mod, tnn, rng):
    torch = torch_mod
    torch.manual_seed(2)
    qm, tm = _residual_classes(torch)
    calib = [rng.standard_normal((4, 1, 8, 8)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    qd = {"": tq.get_default_qconfig("x86"), "module_name": [("fc", None)]}
    td = {"": torch.ao.quantization.get_default_qconfig("x86"), "module_name": [("fc", None)]}
    (tp, qp), (tc, qc), tout, qout = _both(torch, qm, tm, qd, td, calib, x)
    assert _signature(qp) == tp.signature
    assert _signature(qc) == _signature(tc)
    assert type(qc.fc) is nn.Linear                # still float
    ops = [(n.op, _name(n.target)) for n in qc.graph.nodes]
    i = ops.index(("call_module", "fc"))
    assert ops[i - 1] == ("call_function", "dequantize")
    # the fc is float in both: compare the dequantized input it received, via the output
    np.testing.assert_allclose(qout.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_practical_quantization_static_cell(torch_mod, tnn, rng):
    """The FX GRAPH cell, with `torch` imports changed to qlearn ones."""
    torch = torch_mod
    backend = "fbgemm"
    m = nn.Sequential(nn.Conv2d(2, 64, 3), nn.ReLU(), nn.Conv2d(64, 128, 3), nn.ReLU())
    t = torch.nn.Sequential(torch.nn.Conv2d(2, 64, 3), torch.nn.ReLU(),
                            torch.nn.Conv2d(64, 128, 3), torch.nn.ReLU())
    _copy_weights(m, t)
    m.eval()
    t.eval()
    qconfig_dict = {"": tq.get_default_qconfig(backend)}
    model_prepared = quantize_fx.prepare_fx(m, qconfig_dict)
    t_prepared = torch.ao.quantization.quantize_fx.prepare_fx(
        t, {"": torch.ao.quantization.get_default_qconfig(backend)},
        (torch.rand(1, 2, 28, 28),))
    for _ in range(3):
        x = rng.random((1, 2, 28, 28), dtype=np.float32)
        model_prepared(x)
        t_prepared(torch.from_numpy(x))
    assert _signature(model_prepared) == _signature(t_prepared)
    model_quantized = quantize_fx.convert_fx(model_prepared)
    t_quantized = torch.ao.quantization.quantize_fx.convert_fx(t_prepared)
    assert _signature(model_quantized) == _signature(t_quantized)
    x = rng.random((2, 2, 28, 28), dtype=np.float32)
    conv = getattr(model_quantized, "2")
    s, z = conv.scale, conv.zero_point
    got = _as_int(model_quantized(x), s, z)
    want = _as_int(t_quantized(torch.from_numpy(x)).numpy(), s, z)
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).sum())
    assert getattr(model_quantized, "0").weight().element_size() == 1
    assert not np.shares_memory(m[0].weight.data, getattr(model_prepared, "0")[0].weight.data)


def test_practical_quantization_sensitivity_loop(torch_mod, tnn, rng):
    """ONE-AT-A-TIME SENSITIVITY ANALYSIS: quantize one layer through "module_name"."""
    torch = torch_mod
    backend = "fbgemm"
    model = nn.Sequential(nn.Conv2d(2, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU()).eval()
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3), torch.nn.ReLU(),
                                 torch.nn.Conv2d(8, 4, 3), torch.nn.ReLU()).eval()
    _copy_weights(model, tmodel)
    x = rng.random((2, 2, 12, 12), dtype=np.float32)
    results = {}
    for quantized_layer, _ in model.named_modules():
        qconfig_dict = {"": None,
                        "module_name": [(quantized_layer, tq.get_default_qconfig(backend))]}
        model_prepared = quantize_fx.prepare_fx(model, qconfig_dict)
        model_prepared(x)
        model_quantized = quantize_fx.convert_fx(model_prepared)
        tq_dict = {"": None, "module_name": [
            (quantized_layer, torch.ao.quantization.get_default_qconfig(backend))]}
        tp = torch.ao.quantization.quantize_fx.prepare_fx(tmodel, tq_dict,
                                                          (torch.from_numpy(x),))
        tp(torch.from_numpy(x))
        tconv = torch.ao.quantization.quantize_fx.convert_fx(tp)
        assert _signature(model_quantized) == _signature(tconv), quantized_layer
        out = model_quantized(x)
        results[quantized_layer] = out.numpy() if hasattr(out, "numpy") else out
        np.testing.assert_allclose(results[quantized_layer],
                                   tconv(torch.from_numpy(x)).detach().numpy(), atol=0.02)
    ref = model(x).numpy()
    assert set(results) == {"", "0", "1", "2", "3"}
    np.testing.assert_array_equal(results[""], ref)      # nothing quantized
    assert not np.array_equal(results["2"], ref)          # one layer quantized
    # the float model was never modified
    assert type(model[0]) is nn.Conv2d and not hasattr(model[0], "qconfig")


def _lstm_classes(torch):
    def make(base, mods):
        class Tagger(base):
            def __init__(self):
                super().__init__()
                self.fc_in = mods.Linear(6, 8)
                self.lstm = mods.LSTM(8, 5)
                self.fc_out = mods.Linear(5, 3)

            def forward(self, x):
                out, (h, c) = self.lstm(self.fc_in(x))
                return self.fc_out(out + h)
        return Tagger()
    return make(nn.Module, nn), make(torch.nn.Module, torch.nn)


def test_lstm_dynamic_matches_torch(torch_mod, tnn, rng):
    torch = torch_mod
    torch.manual_seed(3)
    qm, tm = _lstm_classes(torch)
    _copy_weights(qm, tm)
    x = rng.standard_normal((7, 2, 6)).astype(np.float32)
    qd = {"": tq.default_dynamic_qconfig}
    td = {"": torch.ao.quantization.default_dynamic_qconfig}
    qp = quantize_fx.prepare_fx(qm.eval(), qd)
    tp = torch.ao.quantization.quantize_fx.prepare_fx(tm.eval(), td, (torch.from_numpy(x),))
    assert _signature(qp) == _signature(tp)
    qc = quantize_fx.convert_fx(qp)
    tc = torch.ao.quantization.quantize_fx.convert_fx(tp)      # (changes tp in place)
    assert _signature(qc) == _signature(tc)
    assert [type(getattr(qc, n)).__name__ for n in ("fc_in", "lstm", "fc_out")] == \
        ["Linear", "LSTM", "Linear"]
    assert type(qc.lstm).__module__.startswith("qlearn.nn.quantized.dynamic")
    np.testing.assert_allclose(np.asarray(qc(x)), tc(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_practical_quantization_dynamic_cell(torch_mod, tnn):
    """The FX dynamic cell (its Conv2d kernel written as 8: qlearn's Conv2d needs a
    pair or an int, as PyTorch's forward does)."""
    def create_model():
        m = nn.Sequential(nn.Conv2d(2, 64, 8), nn.ReLU(), nn.Linear(16, 10), nn.LSTM(10, 10))
        m.eval()
        return m

    m = create_model()
    qconfig_dict = {"": tq.default_dynamic_qconfig}
    model_prepared = quantize_fx.prepare_fx(m, qconfig_dict)
    model_quantized = quantize_fx.convert_fx(model_prepared)
    assert [type(getattr(model_quantized, k)).__name__ for k in ("0", "2", "3")] == \
        ["ConvReLU2d", "Linear", "LSTM"]
    assert _signature(model_quantized) == [
        ("placeholder", "input"), ("call_module", "0"), ("call_module", "2"),
        ("call_module", "3"), ("output", "output")]


def test_prepare_qat_fx_structure_and_convert(torch_mod, tnn, rng):
    torch = torch_mod
    qm, tm = _residual_classes(torch)
    _copy_weights(qm, tm)
    qm.train()
    tm.train()
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    qp = quantize_fx.prepare_qat_fx(qm, tq.get_default_qat_qconfig_mapping("x86"), (x,))
    tp = torch.ao.quantization.quantize_fx.prepare_qat_fx(
        tm, torch.ao.quantization.get_default_qat_qconfig_mapping("x86"),
        (torch.from_numpy(x),))
    assert _signature(qp) == _signature(tp)
    assert type(qp.conv1).__name__ == type(tp.conv1).__name__ == "ConvBnReLU2d"
    assert type(qp.conv1).__module__.startswith("qlearn.nn.intrinsic.qat")
    for _ in range(2):
        qp(x)
        tp(torch.from_numpy(x))
    qp.eval()
    tp.eval()
    qc = quantize_fx.convert_fx(qp)
    tc = torch.ao.quantization.quantize_fx.convert_fx(tp)
    assert _signature(qc) == _signature(tc)
    assert type(qc.conv1).__name__ == "ConvReLU2d"


# -- QConfigMapping --------------------------------------------------------------------------
def test_qconfig_mapping_precedence_and_dict_round_trip():
    a, b, c, d = (tq.default_qconfig, tq.default_per_channel_qconfig,
                  tq.get_default_qconfig("qnnpack"), tq.default_dynamic_qconfig)
    qm = (QConfigMapping().set_global(a).set_object_type(nn.Linear, b)
          .set_module_name_regex(r"body.*", c).set_module_name("body.head", None)
          .set_module_name_object_type_order("body", operator.add, 1, d))
    assert qm.qconfig_for_module("x", nn.Conv2d) is a
    assert qm.qconfig_for_module("x", nn.Linear) is b
    assert qm.qconfig_for_module("body.fc", nn.Linear) is c
    assert qm.qconfig_for_module("body.head.fc", nn.Linear) is None     # inherited name
    assert qm.qconfig_for_call(operator.add, "body", nn.Module, 0) is c
    assert qm.qconfig_for_call(operator.add, "body", nn.Module, 1) is d
    back = QConfigMapping.from_dict(qm.to_dict())
    assert back.to_dict() == qm.to_dict()
    assert qm.to_dict()["module_name_object_type_order"] == [("body", operator.add, 1, d)]
    assert "QConfigMapping (" in repr(qm) and "body.head: None" in repr(qm)


def test_qconfig_mapping_matches_torch_lookup(torch_mod, tnn):
    """torch's mapping gives the same qconfig key for the same structure of entries."""
    torch = torch_mod
    from torch.ao.quantization.fx.qconfig_mapping_utils import (
        _maybe_adjust_qconfig_for_module_type_or_name,
    )
    labels = ["global", "type", "regex", "name"]
    tm = torch.ao.quantization.QConfigMapping()
    tqs = {k: torch.ao.quantization.QConfig(
        activation=torch.ao.quantization.MinMaxObserver.with_args(quant_max=i + 100),
        weight=torch.ao.quantization.default_weight_observer) for i, k in enumerate(labels)}
    qqs = {k: tq.QConfig(activation=tq.MinMaxObserver, weight=tq.default_weight_observer)
           for k in labels}
    qm = QConfigMapping()
    tm.set_global(tqs["global"]).set_object_type(torch.nn.Linear, tqs["type"]) \
        .set_module_name_regex("a.*", tqs["regex"]).set_module_name("a.b", tqs["name"])
    qm.set_global(qqs["global"]).set_object_type(nn.Linear, qqs["type"]) \
        .set_module_name_regex("a.*", qqs["regex"]).set_module_name("a.b", qqs["name"])
    inv_t = {id(v): k for k, v in tqs.items()}
    inv_q = {id(v): k for k, v in qqs.items()}
    for name in ("x", "a", "a.b", "a.b.c", "ab", "b.a"):
        for ttype, qtype in ((torch.nn.Linear, nn.Linear), (torch.nn.Conv2d, nn.Conv2d)):
            t = _maybe_adjust_qconfig_for_module_type_or_name(tm, ttype, name,
                                                              tm.global_qconfig)
            q = qm.qconfig_for_module(name, qtype)
            assert inv_t[id(t)] == inv_q[id(q)], (name, ttype)


def test_default_qconfig_mappings():
    qm = tq.get_default_qconfig_mapping("x86")
    assert qm.global_qconfig.activation.p.keywords["reduce_range"] is True
    assert qm.object_type_qconfigs["reshape"] is tq.qconfig.default_reuse_input_qconfig
    sig = qm.object_type_qconfigs[nn.Sigmoid].activation()
    assert type(sig).__name__ == "FixedQParamsObserver"
    qat = tq.get_default_qat_qconfig_mapping("x86")
    assert type(qat.object_type_qconfigs[F.tanh].activation()).__name__ == \
        "FixedQParamsFakeQuantize"
    with pytest.raises(ValueError, match="backend"):
        tq.get_default_qconfig_mapping("arm9000")


def test_qconfig_mapping_errors():
    with pytest.raises(TypeError, match="`qconfig` must be a QConfig or None"):
        QConfigMapping().set_global("x86")
    with pytest.raises(ValueError, match="unknown keys"):
        QConfigMapping.from_dict({"": None, "module_names": []})
    with pytest.raises(ValueError, match="not a valid regex"):
        QConfigMapping().set_module_name_regex("(", None)
    with pytest.raises(ValueError, match="`index` must be an int >= 0"):
        QConfigMapping().set_module_name_object_type_order("a", nn.Linear, -1, None)


# -- errors and edge cases -------------------------------------------------------------------
def test_convert_errors():
    m = nn.Sequential(nn.Linear(3, 3)).eval()
    p = quantize_fx.prepare_fx(m, {"": tq.default_qconfig})
    with pytest.raises(RuntimeError, match="saw no data"):
        quantize_fx.convert_fx(p)
    with pytest.raises(TypeError, match="returned by prepare_fx"):
        quantize_fx.convert_fx(m)
    with pytest.raises(TypeError, match="`qconfig_mapping` must be"):
        quantize_fx.prepare_fx(m, "x86")
    with pytest.raises(ValueError, match="`backend_config`"):
        quantize_fx.prepare_fx(m, {"": None}, backend_config={})
    with pytest.raises(ValueError, match="unsupported keys"):
        quantize_fx.prepare_fx(m, {"": None}, prepare_custom_config={"standalone": 1})


def test_fuse_fx_and_non_traceable_modules(rng):
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.bn = nn.BatchNorm1d(4)
            self.branchy = Branchy()

        def forward(self, x):
            return self.branchy(self.bn(self.fc(x)))

    m = Net().eval()
    fused = quantize_fx.fuse_fx(m, {"non_traceable_module_class": [Branchy]})
    assert isinstance(fused, GraphModule)
    assert [(n.op, n.target) for n in fused.graph.nodes] == [
        ("placeholder", "x"), ("call_module", "fc"), ("call_module", "branchy"),
        ("output", "output")]
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(fused(x).numpy(), m(x).numpy(), rtol=1e-5, atol=1e-6)
    p = quantize_fx.prepare_fx(m, {"": tq.default_qconfig},
                               prepare_custom_config={"non_traceable_module_name": ["branchy"]})
    p(x)
    q = quantize_fx.convert_fx(p)
    assert type(q.branchy) is Branchy
    assert q(x).shape == (3, 4)


def test_scalar_add_mul_match_torch(torch_mod, tnn, rng):
    """``x + 1.0`` and ``x * 0.5``: the output shares the input's observer; convert
    writes qF.add_scalar / qF.mul_scalar, which keep the integers and move the zero point
    (add) or the scale (mul), as PyTorch's quantized scalar ops."""
    torch = torch_mod

    def make(base, mods):
        class Scalar(base):
            def __init__(self):
                super().__init__()
                self.fc1 = mods.Linear(6, 8)
                self.fc2 = mods.Linear(8, 5)

            def forward(self, x):
                return self.fc2((self.fc1(x) + 1.0) * 0.5)
        return Scalar()

    torch.manual_seed(4)
    qm, tm = make(nn.Module, nn), make(torch.nn.Module, torch.nn)
    calib = [rng.standard_normal((8, 6)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((64, 6)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(
        torch, qm, tm, {"": tq.get_default_qconfig("x86")},
        {"": torch.ao.quantization.get_default_qconfig("x86")}, calib, x)
    assert _signature(qp) == tp.signature and _observer_aliases(qp) == tp.aliases
    rename = {"add_scalar": "add", "mul_scalar": "mul"}
    assert [(op, rename.get(t, t)) for op, t in _signature(qc)] == _signature(tc)
    assert [n.name for n in qc.graph.nodes] == [n.name for n in tc.graph.nodes]
    s, z = qc.fc2.scale, qc.fc2.zero_point
    np.testing.assert_array_equal(_as_int(qout, s, z), _as_int(tout.numpy(), s, z))


@pytest.mark.parametrize("scale,zero_point", [(0.02, 0), (0.0137, 77), (0.05, 128),
                                              (0.3, 255)])
def test_scalar_ops_against_torch(torch_mod, rng, scale, zero_point):
    """qF.add_scalar / mul_scalar against torch.ops.quantized.add / mul with a number:
    the same output qparams; the same integers, except the requantizing branch of add
    (the number pushes the zero point out of [0, 255]), off by one on < 0.2 % (counted)."""
    torch = torch_mod
    import qlearn.nn.quantized.functional as qF
    x = (rng.standard_normal(2000) * 2).astype(np.float32)
    tqx = torch.quantize_per_tensor(torch.from_numpy(x), scale, zero_point, torch.quint8)
    qx = ql.quantize_per_tensor(x, scale, zero_point, ql.quint8)
    off = total = 0
    numbers = [0.0, 1.0, -1.0, 0.013, -0.37, 3.3, 10.0, -10.0, 0.5, -2.5]
    for c in numbers + [float(np.float32(c)) for c in numbers]:    # doubles, float32s
        for tf, qf in ((torch.ops.quantized.add, qF.add_scalar),
                       (torch.ops.quantized.mul, qF.mul_scalar)):
            want, got = tf(tqx, c), qf(qx, c)
            assert got.q_zero_point() == want.q_zero_point(), (tf, c)
            np.testing.assert_allclose(got.q_scale(), want.q_scale(), rtol=1e-12)
            d = np.abs(got.int_repr().astype(int) - want.int_repr().numpy().astype(int))
            assert d.max() <= 1
            if qf is qF.mul_scalar or 0 <= zero_point - round(c / scale) <= 255:
                assert d.max() == 0, (tf, c)
            off += int((d > 0).sum())
            total += d.size
    print(f"scalar ops at S={scale}, Z={zero_point}: {off} of {total} off by one")
    assert off <= 0.002 * total, (off, total)


def _pooling_classes(torch):
    def make(base, mods, functional, flat_owner):
        class Pooling(base):
            """Functional max pooling, adaptive average pooling (module and function),
            flatten (module and function), dropout and a sigmoid (fixed qparams)."""

            def __init__(self):
                super().__init__()
                self.conv = mods.Conv2d(3, 6, 3)
                self.relu = mods.ReLU()
                self.pool = mods.AdaptiveAvgPool2d((2, 2))
                self.flat = mods.Flatten()
                self.drop = mods.Dropout(0.2)
                self.fc = mods.Linear(6, 4)
                self.fc2 = mods.Linear(24, 4)
                self.sig = mods.Sigmoid()

            def forward(self, x):
                x = functional.max_pool2d(self.relu(self.conv(x)), 2)
                y = self.fc2(self.flat(self.pool(x)))
                x = functional.adaptive_avg_pool2d(x, 1)
                x = self.drop(flat_owner.flatten(x, 1))
                return self.sig(self.fc(x)) + y
        return Pooling()
    return make(nn.Module, nn, F, F), make(torch.nn.Module, torch.nn, torch.nn.functional,
                                           torch)


def test_pooling_flatten_dropout_sigmoid_match_torch(torch_mod, tnn, rng):
    torch = torch_mod
    torch.manual_seed(5)
    qm, tm = _pooling_classes(torch)
    calib = [rng.standard_normal((4, 3, 10, 10)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((8, 3, 10, 10)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(
        torch, qm, tm, tq.get_default_qconfig_mapping("x86"),
        torch.ao.quantization.get_default_qconfig_mapping("x86"), calib, x)
    assert _signature(qp) == tp.signature
    assert _observer_aliases(qp) == tp.aliases
    # converted: the same, except that PyTorch runs the sigmoid on the quantized tensor
    # (fixed qparams 1/256, 0) where qlearn, which has no quantized sigmoid, computes it
    # in float between a dequantize and a quantize with those fixed qparams
    q_sig = [s for s in _signature(qc) if s[0] != "get_attr"]
    i = q_sig.index(("call_module", "sig"))
    assert q_sig[i - 1] == ("call_function", "dequantize")
    assert q_sig[i + 1] == ("call_function", "quantize_per_tensor")
    del q_sig[i + 1], q_sig[i - 1]
    assert q_sig == [s for s in _signature(tc) if s[0] != "get_attr"]
    assert type(qc.drop).__name__ == "Dropout" and type(qc.drop).__module__.startswith(
        "qlearn.nn.quantized")
    sig_q = [n for n in qc.graph.nodes if n.op == "get_attr" and n.target.startswith("sig")]
    assert [getattr(qc, n.target) for n in sig_q] == [1.0 / 256.0, 0]
    # the output integers of the final add: equal but for the sigmoid's rounding
    s, z = qc._scale_0, qc._zero_point_0
    diff = np.abs(_as_int(qout, s, z) - _as_int(tout.numpy(), s, z))
    print("pooling model: max diff", diff.max(), "differing", (diff > 0).sum(), "of", diff.size)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05


def test_object_type_order_and_regex_entries_match_torch(torch_mod, tnn, rng):
    """set_module_name_object_type_order picks the second add only; a regex picks the
    linears whose names match; everything else stays float, as in PyTorch."""
    torch = torch_mod

    def make(base, mods):
        class Two(base):
            def __init__(self):
                super().__init__()
                self.fc_a = mods.Linear(4, 4)
                self.fc_b = mods.Linear(4, 4)
                self.head = mods.Linear(4, 2)

            def forward(self, x):
                y = self.fc_a(x) + x
                z = self.fc_b(y) + y
                return self.head(z)
        return Two()

    qm, tm = make(nn.Module, nn), make(torch.nn.Module, torch.nn)
    qq, tqq = tq.get_default_qconfig("x86"), torch.ao.quantization.get_default_qconfig("x86")
    qmap = (QConfigMapping().set_module_name_object_type_order("", operator.add, 1, qq)
            .set_module_name_regex("fc_.*", qq))
    tmap = (torch.ao.quantization.QConfigMapping()
            .set_module_name_object_type_order("", operator.add, 1, tqq)
            .set_module_name_regex("fc_.*", tqq))
    calib = [rng.standard_normal((8, 4)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((16, 4)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(torch, qm, tm, qmap, tmap, calib, x)
    assert _signature(qp) == tp.signature
    assert _signature(qc) == _signature(tc)
    assert type(qc.head) is nn.Linear and type(qc.fc_b).__module__.startswith(
        "qlearn.nn.quantized")
    np.testing.assert_allclose(np.asarray(qout), tout.detach().numpy(), rtol=1e-5,
                               atol=1e-5)


def test_eager_style_digits_net_matches_torch(torch_mod, tnn, rng):
    """The demo's DigitsNet, written for eager mode (QuantStub / DeQuantStub and a
    FloatFunctional residual add), through graph mode: the stubs leave no node and the
    FloatFunctional add becomes an add-relu, as in PyTorch's FX flow."""
    torch = torch_mod
    from qlearn.demo import DigitsNet
    ttq, tn = torch.ao.quantization, torch.nn

    class TDigitsNet(tn.Module):
        def __init__(self, c):
            super().__init__()
            self.quant = ttq.QuantStub()
            self.conv1, self.bn1, self.relu1 = tn.Conv2d(1, c, 3, padding=1), \
                tn.BatchNorm2d(c), tn.ReLU()
            self.conv2, self.bn2, self.relu2 = tn.Conv2d(c, c, 3, padding=1), \
                tn.BatchNorm2d(c), tn.ReLU()
            self.skip = tn.quantized.FloatFunctional()
            self.relu3 = tn.ReLU()
            self.pool = tn.MaxPool2d(2)
            self.flatten = tn.Flatten()
            self.fc = tn.Linear(c * 16, 10)
            self.dequant = ttq.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.relu1(self.bn1(self.conv1(x)))
            x = self.relu3(self.skip.add(x, self.relu2(self.bn2(self.conv2(x)))))
            x = self.fc(self.flatten(self.pool(x)))
            return self.dequant(x)

    torch.manual_seed(6)
    tm = TDigitsNet(6)
    _randomize_bn(torch, tm)
    qm = DigitsNet(width=6)
    calib = [rng.standard_normal((8, 1, 8, 8)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(
        torch, qm, tm, {"": tq.get_default_qconfig("x86")},
        {"": ttq.get_default_qconfig("x86")}, calib, x)
    assert _signature(qp) == tp.signature and _observer_aliases(qp) == tp.aliases
    assert _signature(qc) == _signature(tc)
    assert [n.name for n in qc.graph.nodes] == [n.name for n in tc.graph.nodes]
    s, z = qc.fc.scale, qc.fc.zero_point
    np.testing.assert_array_equal(_as_int(qout, s, z), _as_int(tout.numpy(), s, z))
    # plain symbolic_trace keeps the stubs and the FloatFunctional's observer slot
    from qlearn.fx import symbolic_trace
    targets = [n.target for n in symbolic_trace(qm).graph.nodes if n.op == "call_module"]
    assert targets[0] == "quant" and "skip.activation_post_process" in targets


def test_converted_state_dict_round_trip(rng, tmp_path):
    """The quantize nodes' scale / zero point are buffers of the GraphModule (as in
    PyTorch), so a converted model saved with ql.save loads bit-exactly into another
    converted model of the same structure."""
    from qlearn.demo import DigitsNet
    m = DigitsNet(width=4).eval()
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)

    def converted(data):
        p = quantize_fx.prepare_fx(m, {"": tq.get_default_qconfig("x86")})
        p(data)
        return quantize_fx.convert_fx(p)

    a, b = converted(x), converted(3 * x)
    assert "conv1_input_scale_0" in a.state_dict()
    assert not np.array_equal(a(x), b(x))
    path = str(tmp_path / "digits_fx.qlearn")
    ql.save(a.state_dict(), path)
    b.load_state_dict(ql.load(path))
    np.testing.assert_array_equal(a(x), b(x))


# -- torch-namespace functions and Tensor methods after a dequantize -----------------------
def _flatten_classes(torch):
    def make(base, mods, ns):
        class Net(base):
            def __init__(self):
                super().__init__()
                self.conv = mods.Conv2d(1, 4, 3)
                self.relu = mods.ReLU()
                self.fc1 = mods.Linear(4 * 6 * 6, 12)
                self.fc2 = mods.Linear(12, 3)

            def forward(self, x):
                y = ns.flatten(self.relu(self.conv(x)), 1)   # shares relu's observer
                z = self.fc1(y).flatten(1)       # float in both: a Tensor method after dq
                z = z.view(z.shape[0], -1).reshape(z.shape[0], 12)
                return self.fc2(z)
        return Net()
    return make(nn.Module, nn, ql), make(torch.nn.Module, torch.nn, torch)


def test_torch_flatten_and_methods_after_dequantize_match_torch(torch_mod, tnn, rng):
    """ql.flatten is quantized as torch.flatten (the output shares its input's observer,
    the integers pass through); x.flatten(1) after a quantized Linear runs in float on
    the dequantized value, a qlearn.Tensor, as in torch."""
    torch = torch_mod
    torch.manual_seed(3)
    qm, tm = _flatten_classes(torch)
    calib = [rng.standard_normal((4, 1, 8, 8)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((9, 1, 8, 8)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(
        torch, qm, tm, {"": tq.get_default_qconfig("x86")},
        {"": torch.ao.quantization.get_default_qconfig("x86")}, calib, x)
    assert _signature(qp) == tp.signature
    assert _observer_aliases(qp) == tp.aliases
    # (the qparams' get_attr names differ: qlearn numbers them per module path)
    assert [s for s in _signature(qc) if s[0] != "get_attr"] == \
        [s for s in _signature(tc) if s[0] != "get_attr"]
    flat = [n for n in qc.graph.nodes if n.name == "flatten"][0]
    assert flat.target is F.flatten and flat.args[1:] == (1, -1)
    assert isinstance(qout, ql.Tensor)
    s, z = qc.fc2.scale, qc.fc2.zero_point
    np.testing.assert_array_equal(_as_int(qout, s, z), _as_int(tout.numpy(), s, z))


def test_dequantize_node_gives_a_float_tensor():
    """The graph's dequantize is a float Tensor (torch's x.dequantize() is a tensor);
    a float input passes through; anything else is refused, naming the type."""
    from qlearn.quantization.fx import dequantize
    q = ql.quantize_per_tensor(np.array([[0.3, -1.2]], np.float32), 0.1, 128, ql.quint8)
    d = dequantize(q)
    assert isinstance(d, ql.Tensor) and d.dtype == ql.float32
    np.testing.assert_array_equal(d.numpy(), q.dequantize())
    t = ql.tensor([1.0, 2.0])
    assert dequantize(t) is t
    assert isinstance(dequantize(np.ones(2, np.float32)), ql.Tensor)
    with pytest.raises(TypeError, match="`input` must be a QTensor or a float tensor, got "
                                        "ndarray of int64"):
        dequantize(np.ones(2, np.int64))


def test_converted_model_traces_again(rng):
    """symbolic_trace of a convert_fx model records its dequantize (as torch re-traces
    x.dequantize()) and computes the same output."""
    from qlearn.fx import symbolic_trace
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 36, 3))
    m.eval()
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    p = quantize_fx.prepare_fx(m, {"": tq.get_default_qconfig("x86")}, (x,))
    p(x)
    c = quantize_fx.convert_fx(p)
    again = symbolic_trace(c)
    assert [s[0] for s in _signature(again)] == [s[0] for s in _signature(c)]
    assert [s for s in _signature(again) if s[0] == "call_function"] == \
        [s for s in _signature(c) if s[0] == "call_function"]
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(c(x)))


def _share_float_classes(torch):
    def make(base, mods, ns, functional):
        class Net(base):
            def __init__(self):
                super().__init__()
                self.conv = mods.Conv2d(2, 4, 3, padding=1)
                self.pool = mods.AvgPool2d(2)
                self.ht = mods.Hardtanh(-0.5, 0.7)
                self.fc = mods.Linear(4, 3)

            def forward(self, x):
                y = ns.clamp(self.conv(x), -0.8, 0.9)
                y = functional.hardtanh(self.ht(self.pool(y)), -0.6, 0.6).detach()
                y = functional.avg_pool2d(y, 1)          # qF.avg_pool2d on the integers
                y = y.clamp(-0.4, 0.5).unsqueeze(1).squeeze(1)
                y = y.mean(3).mean(2, keepdim=True).squeeze(2)
                return self.fc(ns.mean(y.unsqueeze(0), 0))
        return Net()
    return (make(nn.Module, nn, ql, F),
            make(torch.nn.Module, torch.nn, torch, torch.nn.functional))


def test_share_ops_without_qtensor_kernels_match_torch(torch_mod, tnn, rng):
    """clamp, mean, squeeze, unsqueeze, detach, hardtanh, AvgPool2d: PyTorch's output
    shares the input's observer; qlearn computes them in float between a dequantize and
    a quantize at those same qparams (F.avg_pool2d on the integers, qF.avg_pool2d), and
    gets PyTorch's integers."""
    torch = torch_mod
    torch.manual_seed(4)
    qm, tm = _share_float_classes(torch)
    calib = [rng.standard_normal((4, 2, 8, 8)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((16, 2, 8, 8)).astype(np.float32)
    (tp, qp), (tc, qc), tout, qout = _both(
        torch, qm, tm, {"": tq.get_default_qconfig("x86")},
        {"": torch.ao.quantization.get_default_qconfig("x86")}, calib, x)
    assert _signature(qp) == tp.signature
    assert _observer_aliases(qp) == tp.aliases
    assert len(tp.aliases[1]) == 15          # one observer, conv's output to fc's input
    # every quantize after the float share ops carries the conv's output qparams
    scales = {float(getattr(qc, n.args[1].target)) for n in qc.graph.nodes
              if n.op == "call_function" and n.target is ql.quantize_per_tensor}
    assert len(scales) == 2                  # the input's, and the conv output's
    s, z = qc.fc.scale, qc.fc.zero_point
    np.testing.assert_array_equal(_as_int(qout, s, z), _as_int(tout.numpy(), s, z))


# -- weight-only modules (nn.Embedding under float_qparams_weight_only_qconfig) -----------

def _embedding_models(torch):
    import torch.nn as tnn

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc = nn.Embedding(10, 4), nn.Linear(4, 2)

        def forward(self, idx):
            return self.fc(self.emb(idx))

    class Theirs(tnn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc = tnn.Embedding(10, 4), tnn.Linear(4, 2)

        def forward(self, idx):
            return self.fc(self.emb(idx))

    ours, theirs = Ours().eval(), Theirs().eval()
    with torch.no_grad():
        theirs.emb.weight.copy_(torch.from_numpy(ours.emb.weight.numpy().copy()))
        theirs.fc.weight.copy_(torch.from_numpy(ours.fc.weight.numpy().copy()))
        theirs.fc.bias.copy_(torch.from_numpy(ours.fc.bias.numpy().copy()))
    return ours, theirs


def test_embedding_weight_only_then_static_linear_equals_torch(torch_mod):
    # No observer around the weight-only embedding; the linear observes its float output
    # with its own qconfig: PyTorch's graph, names and numbers.
    from torch.ao.quantization import QConfigMapping as TorchMapping
    from torch.ao.quantization import float_qparams_weight_only_qconfig as torch_fq
    from torch.ao.quantization import get_default_qconfig as torch_default
    from torch.ao.quantization import quantize_fx as torch_fx

    ours, theirs = _embedding_models(torch_mod)
    idx = np.array([[1, 2, 3], [9, 0, 9]])
    mapping = (tq.QConfigMapping().set_global(tq.get_default_qconfig("x86"))
               .set_object_type(nn.Embedding, tq.float_qparams_weight_only_qconfig))
    prepared = quantize_fx.prepare_fx(ours, mapping, (idx,))
    emb = next(n for n in prepared.graph.nodes if n.target == "emb")
    assert emb.args[0].op == "placeholder"                  # no observer on the indices
    assert [u.target for u in emb.users] == ["activation_post_process_0"]
    assert type(prepared.activation_post_process_0).__name__ == "HistogramObserver"
    prepared(idx)
    converted = quantize_fx.convert_fx(prepared)
    assert isinstance(converted.emb, ql.nn.quantized.Embedding)
    t_mapping = (TorchMapping().set_global(torch_default("x86"))
                 .set_object_type(torch_mod.nn.Embedding, torch_fq))
    t_prepared = torch_fx.prepare_fx(theirs, t_mapping, (torch_mod.tensor(idx),))
    t_prepared(torch_mod.tensor(idx))
    t_converted = torch_fx.convert_fx(t_prepared)
    assert [n.name for n in converted.graph.nodes] == [n.name for n in t_converted.graph.nodes]
    t_idx = torch_mod.tensor(idx)
    np.testing.assert_array_equal(converted.emb(idx).numpy(), t_converted.emb(t_idx).numpy())
    # The calibration ran the float Linear, whose float32 sums are not bit-equal to
    # torch's (another summation order), so the output observer's scale may be one ulp
    # apart: the outputs then agree to that ulp times the integer, not bit for bit.
    out_scale = float(converted.fc.scale)
    np.testing.assert_allclose(converted(idx).numpy(), t_converted(t_idx).numpy(),
                               rtol=0, atol=out_scale * 1e-6 * 256)
