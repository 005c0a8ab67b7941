"""The numeric suite and the metrics against torch.ao.ns (the same models, weights and
inputs give the same keys and values), against NumPy references, and on bad input."""
import copy

import numpy as np
import pytest

import qlearn as ql
import qlearn.quantization as tq
from qlearn import nn
from qlearn.quantization import numeric_suite as ns
from qlearn.quantization.metrics import (
    clipping_fraction,
    compute_cosine_similarity,
    compute_normalized_l2_error,
    compute_sqnr,
    representable_range,
    saturation_count,
)


# --- the same small CNN in qlearn and in torch -------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 3 * 3, 5)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(self.quant(x))))
        return self.dequant(self.fc(self.flat(x)))


def _torch_net(torch):
    tnn = torch.nn

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.quant = torch.ao.quantization.QuantStub()
            self.conv1 = tnn.Conv2d(1, 4, 3)
            self.relu = tnn.ReLU()
            self.pool = tnn.MaxPool2d(2)
            self.flat = tnn.Flatten()
            self.fc = tnn.Linear(4 * 3 * 3, 5)
            self.dequant = torch.ao.quantization.DeQuantStub()

        def forward(self, x):
            x = self.pool(self.relu(self.conv1(self.quant(x))))
            return self.dequant(self.fc(self.flat(x)))
    return TNet


def _copy_weights(tmodel, model):
    for name, value in tmodel.state_dict().items():
        target = model.get_submodule(name.rsplit(".", 1)[0])
        getattr(target, name.rsplit(".", 1)[1]).data[...] = value.detach().numpy()


def _convert_net(model, x):
    model.qconfig = tq.default_qconfig
    p = tq.prepare(model)
    p(x)
    return tq.convert(p)


@pytest.fixture
def pair(torch_mod):
    """(float qlearn, converted qlearn, float torch, converted torch, input x)."""
    torch = torch_mod
    tq_t = torch.ao.quantization
    torch.manual_seed(0)
    tf = _torch_net(torch)().eval()
    model = Net().eval()
    _copy_weights(tf, model)
    x = np.random.default_rng(3).standard_normal((6, 1, 8, 8)).astype(np.float32)
    tf.qconfig = tq_t.default_qconfig
    tp = tq_t.prepare(copy.deepcopy(tf))
    tp(torch.from_numpy(x))
    tqm = tq_t.convert(tp)
    return model, _convert_net(model, x), tf, tqm, x


def _q_close(ours, theirs, torch):
    """A qlearn QTensor and a torch quantized tensor: same qparams, integers within one."""
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.q_scale(), theirs.q_scale(), rtol=1e-6)
    assert ours.q_zero_point() == theirs.q_zero_point()
    diff = np.abs(ours.int_repr().astype(np.int64) - theirs.int_repr().numpy().astype(np.int64))
    assert diff.max() <= 1 and np.mean(diff) < 0.01


def _float(v):
    return v.numpy() if hasattr(v, "numpy") and not isinstance(v, np.ndarray) else v


# --- compare_weights ------------------------------------------------------------------------
def test_compare_weights_matches_torch(pair, torch_mod):
    import torch.ao.ns._numeric_suite as tns
    model, qm, tf, tqm, _ = pair
    ours = ns.compare_weights(model.state_dict(), qm.state_dict())
    theirs = tns.compare_weights(tf.state_dict(), tqm.state_dict())
    # qlearn's quantized Linear keeps its weight under "fc.weight", PyTorch's under
    # "fc._packed_params._packed_params"
    rename = {"fc._packed_params._packed_params": "fc.weight"}
    assert sorted(ours) == sorted(rename.get(k, k) for k in theirs)
    for tkey, tval in theirs.items():
        val = ours[rename.get(tkey, tkey)]
        assert set(val) == {"float", "quantized"}
        np.testing.assert_array_equal(val["float"], tval["float"].numpy())
        np.testing.assert_array_equal(val["quantized"].int_repr(),
                                      tval["quantized"].int_repr().numpy())
        np.testing.assert_allclose(val["quantized"].q_scale(), tval["quantized"].q_scale(),
                                   rtol=1e-7)


def test_compare_weights_fused_float_keys(torch_mod):
    """A fused float model keeps ``conv.0.weight``; its quantized twin ``conv.weight``."""
    model = nn.Sequential(tq.QuantStub(), nn.Conv2d(1, 3, 3), nn.ReLU(), tq.DeQuantStub())
    model.eval()
    fused = tq.fuse_modules(model, [["1", "2"]])
    fused.qconfig = tq.default_qconfig
    p = tq.prepare(fused)
    p(np.random.default_rng(0).random((2, 1, 6, 6), dtype=np.float32))
    qm = tq.convert(p)
    wt = ns.compare_weights(fused.state_dict(), qm.state_dict())
    assert list(wt) == ["1.weight"]
    np.testing.assert_array_equal(wt["1.weight"]["float"], fused[1][0].weight.data)


def test_compare_weights_bad_input(pair):
    model, qm, *_ = pair
    other = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(ValueError, match="'conv1.weight' has no matching weight"):
        ns.compare_weights(other.state_dict(), qm.state_dict())
    wrong = Net()
    wrong.fc = nn.Linear(36, 7)
    with pytest.raises(ValueError, match=r"'fc.weight' has shape \(5, 36\).*\(7, 36\)"):
        ns.compare_weights(wrong.state_dict(), qm.state_dict())
    with pytest.raises(ValueError, match="no quantized weight.*converted"):
        ns.compare_weights(model.state_dict(), model.state_dict())
    with pytest.raises(TypeError, match="`float_dict` must be a state dict"):
        ns.compare_weights(model, qm.state_dict())


# --- compare_model_outputs -----------------------------------------------------------------
def test_compare_model_outputs_matches_torch(pair, torch_mod):
    import torch.ao.ns._numeric_suite as tns
    from torch.ao.ns.fx import utils as tu
    torch = torch_mod
    model, qm, tf, tqm, x = pair
    ours = ns.compare_model_outputs(model, qm, x)
    theirs = tns.compare_model_outputs(copy.deepcopy(tf), copy.deepcopy(tqm),
                                       torch.from_numpy(x))
    assert list(ours) == list(theirs) == ["quant.stats", "conv1.stats", "fc.stats"]
    for key, tval in theirs.items():
        assert len(ours[key]["float"]) == len(tval["float"]) == 1
        np.testing.assert_allclose(_float(ours[key]["float"][0]),
                                   tval["float"][0].detach().numpy(), rtol=1e-5, atol=1e-5)
        _q_close(ours[key]["quantized"][0], tval["quantized"][0], torch)
        np.testing.assert_allclose(
            compute_sqnr(ours[key]["float"][0], ours[key]["quantized"][0]),
            float(tu.compute_sqnr(tval["float"][0],
                                                    tval["quantized"][0])), rtol=1e-3)


def test_compare_model_outputs_fused_matches_torch(torch_mod):
    """A fused ConvReLU2d is logged as one unit (its output after the ReLU), as
    PyTorch's prepare observes a fused module."""
    import torch.ao.ns._numeric_suite as tns
    from torch.ao.ns.fx import utils as tu
    torch = torch_mod
    tq_t = torch.ao.quantization
    torch.manual_seed(1)
    tf = _torch_net(torch)().eval()
    model = Net().eval()
    _copy_weights(tf, model)
    tf = tq_t.fuse_modules(tf, [["conv1", "relu"]])
    model = tq.fuse_modules(model, [["conv1", "relu"]])
    x = np.random.default_rng(4).standard_normal((5, 1, 8, 8)).astype(np.float32)
    tf.qconfig = tq_t.default_qconfig
    tp = tq_t.prepare(copy.deepcopy(tf))
    tp(torch.from_numpy(x))
    tqm = tq_t.convert(tp)
    ours = ns.compare_model_outputs(copy.deepcopy(model), _convert_net(model, x), x)
    theirs = tns.compare_model_outputs(copy.deepcopy(tf), tqm, torch.from_numpy(x))
    assert list(ours) == list(theirs) == ["quant.stats", "conv1.stats", "fc.stats"]
    for key, tval in theirs.items():
        f = _float(ours[key]["float"][0])
        np.testing.assert_allclose(f, tval["float"][0].detach().numpy(), rtol=1e-5,
                                   atol=1e-5)
        assert key != "conv1.stats" or f.min() >= 0            # after the fused ReLU
        np.testing.assert_allclose(
            compute_sqnr(ours[key]["float"][0], ours[key]["quantized"][0]),
            float(tu.compute_sqnr(tval["float"][0], tval["quantized"][0])), rtol=1e-3)


def test_compare_model_outputs_logs_every_call(pair):
    model, qm, _, _, x = pair
    ns.prepare_model_outputs(model, qm)
    for batch in (x[:2], x[2:]):
        model(batch)
        qm(batch)
    act = ns.get_matching_activations(model, qm)
    assert [len(v["quantized"]) for v in act.values()] == [2, 2, 2]
    assert act["fc.stats"]["quantized"][1].shape == (4, 5)


def test_compare_model_outputs_float_functional(torch_mod):
    """QFunctional results go through the logger, as PyTorch's do."""
    class Add(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.fc = nn.Linear(4, 4)
            self.ff = nn.quantized.FloatFunctional() if hasattr(nn, "quantized") else None

        def forward(self, x):
            x = self.quant(x)
            return self.dequant(self.ff.add(self.fc(x), x))

    import qlearn.nn.quantized as nnq
    m = Add()
    m.ff = nnq.FloatFunctional()
    m.qconfig = tq.default_qconfig
    x = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    p = tq.prepare(m)
    p(x)
    qm = tq.convert(p)
    act = ns.compare_model_outputs(m, qm, x)
    assert list(act) == ["quant.stats", "fc.stats", "ff.stats"]
    assert compute_sqnr(act["ff.stats"]["float"][0], act["ff.stats"]["quantized"][0]) > 25


def test_compare_model_outputs_bad_input(pair):
    model, qm, _, _, x = pair
    with pytest.raises(ValueError, match=r"module 'conv1' \(nn.Conv2d\) of `float_model`"):
        ns.compare_model_outputs(copy.deepcopy(model), qm, np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="prepared .* but not converted"):
        prepared = tq.prepare(model)
        ns.compare_model_outputs(copy.deepcopy(model), prepared, x)
    with pytest.raises(ValueError, match="`q_model` is not a quantized model: it has no "
                                         "quantized module"):
        ns.compare_model_outputs(copy.deepcopy(model), copy.deepcopy(model), x)
    with pytest.raises(ValueError, match="`float_model` holds quantized modules"):
        ns.compare_model_outputs(_convert_net(copy.deepcopy(model), x), copy.deepcopy(model), x)
    with pytest.raises(TypeError, match="`q_model` must be a qlearn nn.Module"):
        ns.compare_model_outputs(model, qm.state_dict(), x)


# --- compare_model_stub ----------------------------------------------------------------------
def test_compare_model_stub_matches_torch(pair, torch_mod):
    import torch.ao.ns._numeric_suite as tns
    torch = torch_mod
    model, qm, tf, tqm, x = pair
    ours = ns.compare_model_stub(model, qm, {nn.Conv2d, nn.Linear}, x)
    theirs = tns.compare_model_stub(copy.deepcopy(tf), copy.deepcopy(tqm),
                                    {torch.nn.Conv2d, torch.nn.Linear}, torch.from_numpy(x))
    assert list(ours) == list(theirs) == ["conv1.stats", "fc.stats"]
    assert type(qm.conv1).__name__ == "Shadow" and type(qm.fc).__name__ == "Shadow"
    for key, tval in theirs.items():
        f, q = ours[key]["float"][0], ours[key]["quantized"][0]
        assert f.shape[0] == x.shape[0]          # the whole batch (torch keeps sample 0)
        np.testing.assert_allclose(_float(f)[0], tval["float"][0].numpy(), rtol=1e-4,
                                   atol=1e-4)
        tq0 = tval["quantized"][0]
        np.testing.assert_allclose(q.dequantize()[0], tq0.dequantize().numpy(),
                                   atol=1.01 * tq0.q_scale())
    # the shadowed model still returns the quantized model's output
    out = qm(x)
    assert out.shape == (6, 5)


def test_compare_model_stub_bad_input(pair):
    model, qm, _, _, x = pair
    with pytest.raises(ValueError, match="no module of `q_model` was shadowed"):
        ns.compare_model_stub(model, qm, {nn.LSTM}, x)
    with pytest.raises(TypeError, match="`module_swap_list` must be a set or list"):
        ns.compare_model_stub(model, qm, nn.Linear, x)
    with pytest.raises(ValueError, match=r"module 'fc.orig_module' \(nnq.Linear\) of `q_model`"):
        ns.compare_model_stub(model, qm, {nn.Linear}, np.zeros((2, 1, 10, 10), np.float32))


def test_shadow_float_functional_ops():
    import qlearn.nn.quantized as nnq
    qf = nnq.QFunctional()
    qf.scale, qf.zero_point = 0.05, 0
    s = ns.Shadow(qf, nnq.FloatFunctional(), ns.ShadowLogger)
    a = ql.quantize_per_tensor(np.array([1.0, 2.0], np.float32), 0.05, 0, ql.quint8)
    out = s.add(a, a)
    np.testing.assert_allclose(out.dequantize(), [2.0, 4.0])
    s.mul_scalar(a, 2.0)
    s.cat([a, a], 0)
    assert len(s.logger.stats["float"]) == len(s.logger.stats["quantized"]) == 3
    np.testing.assert_allclose(_float(s.logger.stats["float"][0]), [2.0, 4.0])


def test_get_logger_dict_prefix_and_root():
    m = nn.Sequential(nn.Sequential(nn.Linear(2, 2)))
    m[0][0].activation_post_process = ns.OutputLogger()
    assert list(ns.get_logger_dict(m, "model")) == ["model.0.0.stats"]
    leaf = nn.Linear(2, 2)
    leaf.logger = ns.OutputLogger()
    assert list(ns.get_logger_dict(leaf)) == ["stats"]
    with pytest.raises(TypeError, match="`mod` must be a qlearn nn.Module"):
        ns.get_logger_dict({})


# --- metrics -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4, 5)])
def test_metrics_match_torch(torch_mod, rng, shape):
    from torch.ao.ns.fx import utils as tu
    torch = torch_mod
    x = rng.standard_normal(shape).astype(np.float32)
    y = x + 0.05 * rng.standard_normal(shape).astype(np.float32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    np.testing.assert_allclose(compute_sqnr(x, y), float(tu.compute_sqnr(tx, ty)), rtol=1e-5)
    np.testing.assert_allclose(compute_normalized_l2_error(x, y),
                               float(tu.compute_normalized_l2_error(tx, ty)), rtol=1e-5)
    np.testing.assert_allclose(compute_cosine_similarity(x, y),
                               float(tu.compute_cosine_similarity(tx, ty)), rtol=1e-5)
    # a quantized tensor is dequantized first, as in torch
    q = ql.quantize_per_tensor(y, 0.01, 128, ql.quint8)
    tqy = torch.quantize_per_tensor(ty, 0.01, 128, torch.quint8)
    np.testing.assert_allclose(compute_sqnr(x, q), float(tu.compute_sqnr(tx, tqy)), rtol=1e-4)
    # tuples: one value per pair
    both = compute_sqnr((x, x), (y, q))
    theirs = tu.compute_sqnr((tx, tx), (ty, tqy))
    np.testing.assert_allclose(both, [float(t) for t in theirs], rtol=1e-4)


def test_metrics_inputs_and_edge_cases():
    x = np.array([3.0, 4.0])
    assert compute_sqnr(x, x) == np.inf
    assert compute_sqnr(ql.tensor(x), x.astype(np.float32)) == np.inf
    np.testing.assert_allclose(compute_normalized_l2_error(x, [3.0, 3.0]), 0.2)
    np.testing.assert_allclose(10 ** (-compute_sqnr(x, [3.0, 3.0]) / 20), 0.2)
    assert compute_cosine_similarity(np.zeros(3), np.ones(3)) == 0.0
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        compute_sqnr(x, np.ones(3))
    with pytest.raises(ValueError, match="same number of elements"):
        compute_cosine_similarity(x, np.ones(3))
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        compute_sqnr([x, x], [x])
    with pytest.raises(TypeError, match="`y` must be a real-valued array"):
        compute_sqnr(x, "ab")


def _clip_ref(x, scale, zp, qmin, qmax):
    v = x.astype(np.float64) / scale + zp
    return (np.mean((v < qmin - 0.5001) | (v > qmax + 0.5001)),
            np.count_nonzero((v < qmin) | (v > qmax)))


@pytest.mark.parametrize("reduce_range", [False, True])
def test_clipping_matches_torch_fake_quant_mask(torch_mod, rng, reduce_range):
    torch = torch_mod
    obs = tq.MinMaxObserver(reduce_range=reduce_range)
    obs(rng.standard_normal(1000).astype(np.float32))
    x = (2 * rng.standard_normal(5001)).astype(np.float32)      # wider: tails clipped
    (scale,), (zp,) = obs.calculate_qparams()
    _, mask = torch.ops.aten.fake_quantize_per_tensor_affine_cachemask(
        torch.from_numpy(x), float(scale), int(zp), obs.quant_min, obs.quant_max)
    frac = clipping_fraction(obs, x)
    assert 0.05 < frac < 0.9
    assert saturation_count(obs, x) >= frac * x.size
    np.testing.assert_allclose(frac, 1 - mask.numpy().mean(), atol=1 / x.size)
    ref_frac, ref_sat = _clip_ref(x, scale, zp, obs.quant_min, obs.quant_max)
    assert frac == ref_frac
    assert saturation_count(obs, x) == ref_sat
    lo, hi = representable_range(obs)
    inside = (x >= lo[0] - scale / 2) & (x <= hi[0] + scale / 2)
    assert abs(frac - (1 - inside.mean())) < 2 / x.size        # up to half-step ties


def test_clipping_per_channel_and_fake_quantize(rng):
    w = rng.standard_normal((3, 4, 5)).astype(np.float32) * np.float32([[[0.1]], [[1]], [[10]]])
    obs = tq.PerChannelMinMaxObserver(ch_axis=0, dtype=ql.qint8,
                                      qscheme=ql.per_channel_symmetric)
    obs(w)
    assert clipping_fraction(obs, w) == 0.0
    # a symmetric range puts each channel's largest |w| half a step beyond Q_max (it
    # rounds to 128 and is clamped to 127): saturated, not clipped
    assert 1 <= saturation_count(obs, w) <= 6
    scale, zp = obs.calculate_qparams()
    w2 = 2 * w
    v = w2 / scale.reshape(3, 1, 1).astype(np.float64) + zp.reshape(3, 1, 1)
    assert clipping_fraction(obs, w2) == np.mean((v < -128.5001) | (v > 127.5001)) > 0
    with pytest.raises(ValueError, match="has 4 channels along axis 0"):
        clipping_fraction(obs, w[:, :, 0].T)
    fq = tq.FakeQuantize(quant_min=0, quant_max=15)
    fq(np.linspace(0, 1, 50, dtype=np.float32))
    assert clipping_fraction(fq, np.array([0.5, 2.0])) == 0.5
    with pytest.raises(TypeError, match="`observer` must be an observer"):
        clipping_fraction(np.ones(3), np.ones(3))
