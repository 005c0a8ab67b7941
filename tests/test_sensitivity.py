"""Sensitivity analysis, mixed precision and the layer report on the digits CNN, and
their building blocks on small models."""
import itertools

import numpy as np
import pytest

import qlearn as ql
import qlearn.quantization as tq
from qlearn import nn
from qlearn.quantization import metrics
from qlearn.quantization.sensitivity import (
    LayerReport,
    MixedPrecisionResult,
    SensitivityTable,
    fake_quant_qconfig,
    layer_report,
    mixed_precision,
    quantizable_layers,
    quantize_layers,
    sensitivity_analysis,
)


def _numpy(out):
    return np.asarray(getattr(out, "data", out))


@pytest.fixture(scope="module")
def digits():
    """The demo's digits CNN trained for two epochs (about a second), its data, and the
    accuracy / calibration functions."""
    pytest.importorskip("sklearn")
    import qlearn.nn.functional as F
    from qlearn import optim
    from qlearn.datasets import DataLoader, load_digits
    from qlearn.demo import digits_cnn
    data = load_digits()
    ql.autograd.manual_seed(0)
    model = digits_cnn()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(2):
        model.train()
        for xb, yb in DataLoader(data.x_train, data.y_train, batch_size=64, shuffle=True,
                                 random_state=epoch):
            loss = F.cross_entropy(model(ql.tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()

    def accuracy(m):
        with ql.no_grad():
            return float((_numpy(m(data.x_test)).argmax(1) == data.y_test).mean())

    def calibrate(m):
        m(data.x_train[:96])

    return model, data, accuracy, calibrate


@pytest.fixture(scope="module")
def x86_table(digits):
    model, _, accuracy, calibrate = digits
    return sensitivity_analysis(model, tq.get_default_qconfig("x86"), calibrate, accuracy,
                                progress=False)


@pytest.fixture(scope="module")
def four_bit_table(digits):
    model, _, accuracy, calibrate = digits
    return sensitivity_analysis(model, fake_quant_qconfig(4), calibrate, accuracy,
                                progress=False)


@pytest.fixture(scope="module")
def x86_mixed(digits, x86_table):
    model, _, accuracy, calibrate = digits
    return mixed_precision(model, tq.get_default_qconfig("x86"), calibrate, accuracy,
                           sensitivity=x86_table, full_curve=True, progress=False)


# --- building blocks ----------------------------------------------------------------------
def test_quantizable_layers_and_fused_blocks():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                      nn.Linear(8, 2))
    assert quantizable_layers(m) == ["0", "4"]
    fused = tq.fuse_modules(m.eval(), [["0", "1", "2"]])
    assert quantizable_layers(fused) == ["0", "4"]          # the fused block, not its parts


def test_quantize_layers_matches_quant_wrapper_by_hand(rng):
    """One layer quantized alone gives what QuantWrapper + prepare + convert give."""
    m = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x = rng.standard_normal((20, 6)).astype(np.float32)
    q = quantize_layers(m, {"2": tq.default_qconfig, "0": None}, lambda mod: mod(x))
    assert isinstance(q[0], nn.Linear) and isinstance(q[2], tq.QuantWrapper)
    head = m[0](x).relu()
    ref = tq.QuantWrapper(nn.Linear(5, 3))
    ref.module.weight.data[...] = m[2].weight.data
    ref.module.bias.data[...] = m[2].bias.data
    ref.qconfig = tq.default_qconfig
    p = tq.prepare(ref)
    p(head)
    np.testing.assert_array_equal(_numpy(q(x)), _numpy(tq.convert(p)(head)))
    assert not hasattr(m[2], "qconfig")                     # the model is not changed


def test_quantize_layers_fake_quant(rng):
    m = nn.Sequential(nn.Linear(6, 5)).eval()
    x = rng.standard_normal((20, 6)).astype(np.float32)
    q = quantize_layers(m, {"0": fake_quant_qconfig(2)}, lambda mod: mod(x))
    out = _numpy(q(x))
    assert len(np.unique(out)) <= 4                         # 2-bit outputs: 4 levels
    assert 0 < metrics.compute_sqnr(_numpy(m(x)), out) < 20


def test_bad_input(rng):
    m = nn.Sequential(nn.Linear(6, 5)).eval()
    x = rng.standard_normal((4, 6)).astype(np.float32)
    calib = lambda mod: mod(x)  # noqa: E731
    with pytest.raises(ValueError, match="`layers` names 'fc'"):
        sensitivity_analysis(m, tq.default_qconfig, calib, lambda mod: 0.0, layers=["fc"])
    with pytest.raises(ValueError, match="no quantizable layer"):
        sensitivity_analysis(nn.Sequential(nn.ReLU()), tq.default_qconfig, calib,
                             lambda mod: 0.0)
    with pytest.raises(TypeError, match="`eval_fn` must be callable"):
        sensitivity_analysis(m, tq.default_qconfig, calib, 0.5)
    with pytest.raises(TypeError, match="`eval_fn` must return a number"):
        sensitivity_analysis(m, tq.default_qconfig, calib, lambda mod: "good",
                             progress=False)
    with pytest.raises(ValueError, match="`calibrate_fn` did not call the model"):
        sensitivity_analysis(m, tq.default_qconfig, lambda mod: None, lambda mod: 0.0)
    with pytest.raises(ValueError, match="`qconfig_dict` names 'nope'"):
        quantize_layers(m, {"nope": tq.default_qconfig}, calib)
    with pytest.raises(ValueError, match=r"`bits` must be an integer in \[2, 8\], got 9"):
        fake_quant_qconfig(9)
    with pytest.raises(TypeError, match="`model` must be a qlearn nn.Module"):
        mixed_precision({}, tq.default_qconfig, calib, lambda mod: 0.0)
    with pytest.raises(ValueError, match="no observer; run qlearn.quantization.prepare"):
        layer_report(m, x)
    m.qconfig = tq.default_qconfig
    with pytest.raises(ValueError, match="observer of '0' saw no data"):
        layer_report(tq.prepare(m), x)


# --- the digits CNN -------------------------------------------------------------------------
def test_sensitivity_table_digits(digits, x86_table, four_bit_table):
    model, data, accuracy, calibrate = digits
    table = x86_table
    assert isinstance(table, SensitivityTable) and isinstance(table, list)
    assert [r["layer"] for r in table] == ["0", "3", "8"]
    assert [r["type"] for r in table] == ["Conv2d", "Conv2d", "Linear"]
    assert sorted(r["rank"] for r in table) == [1, 2, 3]
    assert table.float_metric == accuracy(model) > 0.9
    for r in table:
        assert 25 < r["sqnr"] < 60                          # int8: about 40 dB
        assert abs(r["metric"] - r["delta"] - table.float_metric) < 1e-12
        assert abs(r["delta"]) < 0.02
    text = repr(table)
    assert "SQNR (dB)" in text and "all 3 layers quantized" in text
    assert table.to_markdown().count("\n") == 4
    # a 4-bit layer costs about 24 dB (4 bits x 6 dB) of output SQNR
    for r8, r4 in zip(table, four_bit_table):
        assert 10 < r8["sqnr"] - r4["sqnr"] < 35


def test_mixed_precision_digits_fewest_float_layers(digits, four_bit_table):
    """4-bit layers with float fallback: the float accuracy within 0.5 point with the
    fewest float layers (checked against every smaller subset)."""
    model, data, accuracy, calibrate = digits
    qc = fake_quant_qconfig(4)
    res = mixed_precision(model, qc, calibrate, accuracy, tolerance=0.005,
                          sensitivity=four_bit_table, progress=False)
    assert isinstance(res, MixedPrecisionResult)
    float_acc = accuracy(model)
    assert res.met and res.metric >= float_acc - 0.005
    assert res.metric == accuracy(res.model)
    layers = ["0", "3", "8"]
    for k in range(len(res.fallback_layers)):
        for subset in itertools.combinations(layers, k):
            plan = {n: (None if n in subset else qc) for n in layers}
            assert accuracy(quantize_layers(model, plan, calibrate)) < res.target, subset
    assert res.qconfig_dict == {n: (None if n in res.fallback_layers else qc)
                                for n in layers}
    mapping = res.qconfig_mapping
    quantized = {n: qc for n in layers if n not in res.fallback_layers}
    if isinstance(mapping, dict):
        assert mapping[""] is None and dict(mapping["module_name"]) == quantized
    else:
        assert mapping.global_qconfig is None
        assert dict(mapping.module_name_qconfigs) == quantized
    sizes = [c["size_bytes"] for c in res.curve]
    assert sizes == sorted(sizes) and res.curve[0]["fallback"] == 0
    assert "fallback" in repr(res) and res.to_markdown().startswith("| fallback")


def test_mixed_precision_int8_and_8bit_fallback(digits, x86_mixed, four_bit_table):
    model, data, accuracy, calibrate = digits
    res = x86_mixed
    assert res.met and res.metric >= accuracy(model) - 0.005
    # weights 8 bits instead of 32: about 4x smaller (biases and batch norm stay float)
    n_weights = sum(p.data.size for p in model.parameters() if p.data.ndim >= 2)
    assert res.curve[0]["size_bytes"] < 4 * sum(p.data.size for p in model.parameters()) / 3
    assert res.curve[0]["size_bytes"] >= n_weights
    low = mixed_precision(model, fake_quant_qconfig(4), calibrate, accuracy,
                          fallback_qconfig=fake_quant_qconfig(8), target=0.0,
                          sensitivity=four_bit_table, full_curve=True, progress=False)
    assert [c["fallback"] for c in low.curve] == [0, 1, 2, 3]
    assert low.fallback_layers == []                       # target 0 is met at once
    assert low.curve[-1]["size_bytes"] == res.curve[0]["size_bytes"]   # all at 8 bits


def test_graph_mode_digits(digits, x86_table):
    """graph=True: prepare_fx / convert_fx with one module_name entry per layer; the
    one-layer results are no worse than the eager wrappers' (graph mode also folds the
    batch norm and fuses the ReLU, so one quantization step replaces two)."""
    pytest.importorskip("qlearn.quantization.quantize_fx")
    model, data, accuracy, calibrate = digits
    q = quantize_layers(model, {"3": tq.get_default_qconfig("x86")}, calibrate, graph=True)
    assert type(q).__name__ == "GraphModule"
    table = sensitivity_analysis(model, tq.get_default_qconfig("x86"), calibrate, accuracy,
                                 graph=True, progress=False)
    assert [r["layer"] for r in table] == ["0", "3", "8"]
    for eager, fx in zip(x86_table, table):
        assert eager["sqnr"] - 3 < fx["sqnr"] < 70
        assert abs(fx["delta"]) < 0.02
    res = mixed_precision(model, tq.get_default_qconfig("x86"), calibrate, accuracy,
                          sensitivity=table, graph=True, progress=False)
    from qlearn.quantization import quantize_fx
    prepared = quantize_fx.prepare_fx(model, res.qconfig_mapping, (data.x_train[:2],))
    calibrate(prepared)
    np.testing.assert_allclose(accuracy(quantize_fx.convert_fx(prepared)), res.metric)


def test_layer_report_digits(digits):
    model, data, accuracy, calibrate = digits
    wrapped = tq.QuantWrapper(model)
    wrapped.qconfig = tq.default_qconfig
    prepared = tq.prepare(wrapped)
    calibrate(prepared)
    report = layer_report(prepared, data.x_test)
    assert isinstance(report, LayerReport)
    names = [r["layer"] for r in report]
    assert names[0] == "quant" and "module.0" in names and "module.8" in names
    for r in report:
        obs = prepared.get_submodule(r["layer"]).activation_post_process
        v = report.values[r["layer"]]
        assert r["n"] == v.size > 0
        assert r["clipped"] == metrics.clipping_fraction(obs, v)
        assert r["saturated"] == metrics.saturation_count(obs, v)
        # the rounded zero point moves the ends by up to half a step
        half = r["scale"] / 2 + 1e-6
        assert r["low"] <= r["min"] + half and r["max"] - half <= r["high"]
        assert 0 <= r["clipped"] < 0.05                      # held-out data, same range
    # the prepared model's observers are untouched by the report
    before = prepared.quant.activation_post_process.max_val.copy()
    layer_report(prepared, 10 * data.x_test)
    np.testing.assert_array_equal(prepared.quant.activation_post_process.max_val, before)
    assert "clipped" in repr(report)


def test_plots(digits, x86_table, x86_mixed, tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    model, data, accuracy, calibrate = digits
    table = x86_table
    ax = table.plot()
    assert len(ax.patches) == 3
    assert len(x86_mixed.plot().lines[0].get_xdata()) == 4
    wrapped = tq.QuantWrapper(model)
    wrapped.qconfig = tq.default_qconfig
    p = tq.prepare(wrapped)
    calibrate(p)
    fig = layer_report(p, data.x_test).plot(layers=["quant", "module.8"])
    fig.savefig(tmp_path / "report.png")
    plt.close("all")
