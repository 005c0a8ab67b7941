"""fuse_modules / fuse_modules_qat, the BN-folding equations, the fusion-pattern table and
the quantized batch norm, against torch 2.13 with copied weights."""
from collections import OrderedDict

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.intrinsic as nni
import qlearn.nn.intrinsic.quantized as nniq
import qlearn.nn.quantized as nnq
from qlearn.nn.utils.fusion import fuse_conv_bn_weights
from qlearn.quantization import (
    fuse_conv_bn,
    fuse_conv_bn_eval,
    fuse_known_modules,
    fuse_linear_bn_eval,
    fuse_modules,
    fuse_modules_qat,
    get_default_fusion_patterns,
    get_fuser_method,
)


# -- models built twice (qlearn and torch) with the same weights ------------------------
def _randomise_bn(bn, rng):
    c = bn.num_features
    bn.weight.data[...] = rng.uniform(0.5, 1.5, c)
    bn.bias.data[...] = rng.normal(size=c)
    bn.running_mean[...] = rng.normal(size=c)
    bn.running_var[...] = rng.uniform(0.2, 3.0, c)


def block_model(rng):
    """Every supported pattern, in nested and flat positions."""
    m = nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                   nn.ReLU(), nn.Conv2d(8, 8, 3, bias=False),
                                   nn.BatchNorm2d(8), nn.Conv2d(8, 6, 1), nn.ReLU(),
                                   nn.BatchNorm2d(6), nn.ReLU())),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(6 * 5 * 5, 16)), ("bn1", nn.BatchNorm1d(16)),
        ("fc2", nn.Linear(16, 10)), ("relu2", nn.ReLU()),
    ]))
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _randomise_bn(mod, rng)
    return m


PATTERNS = [["features.0", "features.1", "features.2"], ["features.3", "features.4"],
            ["features.5", "features.6"], ["features.7", "features.8"], ["fc1", "bn1"],
            ["fc2", "relu2"]]


def to_torch(torch, m):
    tnn = torch.nn
    f = m.features
    tm = tnn.Sequential(OrderedDict([
        ("features", tnn.Sequential(tnn.Conv2d(3, 8, 3, padding=1), tnn.BatchNorm2d(8),
                                    tnn.ReLU(), tnn.Conv2d(8, 8, 3, bias=False),
                                    tnn.BatchNorm2d(8), tnn.Conv2d(8, 6, 1), tnn.ReLU(),
                                    tnn.BatchNorm2d(6), tnn.ReLU())),
        ("flatten", tnn.Flatten()),
        ("fc1", tnn.Linear(6 * 5 * 5, 16)), ("bn1", tnn.BatchNorm1d(16)),
        ("fc2", tnn.Linear(16, 10)), ("relu2", tnn.ReLU()),
    ]))
    sd = {k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()}
    tm.load_state_dict(sd)
    assert f is m.features
    return tm


def type_names(model):
    return [(name, type(mod).__name__) for name, mod in model.named_modules()]


# -- folding equations --------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (5, 3, 3, 3), (16, 1, 3, 3), (7, 4, 1, 5)])
def test_fuse_conv_bn_weights_equal_torch(torch_mod, rng, shape, bias):
    torch = torch_mod
    c = shape[0]
    w = rng.normal(size=shape).astype(np.float32)
    b = rng.normal(size=c).astype(np.float32) if bias else None
    rm = rng.normal(size=c).astype(np.float32)
    rv = rng.uniform(1e-4, 5, c).astype(np.float32)
    g = rng.normal(size=c).astype(np.float32)
    be = rng.normal(size=c).astype(np.float32)
    fw, fb = fuse_conv_bn_weights(w, b, rm, rv, 1e-5, g, be)
    t = torch.nn.utils.fusion.fuse_conv_bn_weights
    tw, tb = t(*(None if a is None else torch.from_numpy(a) for a in (w, b, rm, rv)), 1e-5,
               torch.from_numpy(g), torch.from_numpy(be))
    assert_array_equal(fw.data, tw.detach().numpy())
    assert_array_equal(fb.data, tb.detach().numpy())
    # the same folded numbers as the equations written out in float64
    scale = g.astype(np.float64) / np.sqrt(rv.astype(np.float64) + 1e-5)
    assert_allclose(fw.data, w * scale.reshape(-1, 1, 1, 1), rtol=1e-5, atol=1e-6)
    assert_allclose(fb.data, ((0 if b is None else b) - rm) * scale + be, rtol=1e-5,
                    atol=1e-5)


def test_fuse_conv_bn_weights_transpose_and_missing_affine(torch_mod, rng):
    torch = torch_mod
    w = rng.normal(size=(3, 4, 2, 2)).astype(np.float32)      # (in, out, kh, kw)
    rm, rv = rng.normal(size=4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    fw, fb = fuse_conv_bn_weights(w, None, rm, rv, 1e-3, None, None, transpose=True)
    tw, tb = torch.nn.utils.fusion.fuse_conv_bn_weights(
        torch.from_numpy(w), None, torch.from_numpy(rm), torch.from_numpy(rv), 1e-3, None,
        None, transpose=True)
    assert_array_equal(fw.data, tw.detach().numpy())
    assert_array_equal(fb.data, tb.detach().numpy())


@pytest.mark.parametrize("bn_features", [6, 1])
def test_fuse_linear_bn_eval_equals_torch(torch_mod, rng, bn_features):
    torch = torch_mod
    lin, bn = nn.Linear(5, 6), nn.BatchNorm1d(bn_features)
    _randomise_bn(bn, rng)
    lin.eval(), bn.eval()
    tlin, tbn = torch.nn.Linear(5, 6), torch.nn.BatchNorm1d(bn_features)
    tlin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in lin.state_dict().items()})
    tbn.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in bn.state_dict().items()})
    tlin.eval(), tbn.eval()
    fused = fuse_linear_bn_eval(lin, bn)
    tfused = torch.nn.utils.fusion.fuse_linear_bn_eval(tlin, tbn)
    assert_array_equal(fused.weight.data, tfused.weight.detach().numpy())
    assert_array_equal(fused.bias.data, tfused.bias.detach().numpy())
    if bn_features == 6:
        x = rng.normal(size=(4, 5)).astype(np.float32)
        assert_allclose(fused(x).numpy(), bn(lin(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_fuse_conv_bn_eval_leaves_inputs_and_matches_unfused(rng):
    conv, bn = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4)
    _randomise_bn(bn, rng)
    conv.eval(), bn.eval()
    w0 = conv.weight.data.copy()
    fused = fuse_conv_bn_eval(conv, bn)
    assert fused is not conv and conv.bias is None and fused.bias is not None
    assert_array_equal(conv.weight.data, w0)
    x = rng.normal(size=(2, 3, 7, 9)).astype(np.float32)
    assert_allclose(fused(x).numpy(), bn(conv(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_fold_of_training_bn_is_refused():
    conv, bn = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match="eval mode.*training mode.*fuse_modules_qat"):
        fuse_conv_bn_eval(conv, bn)
    with pytest.raises(ValueError, match="no running statistics"):
        fuse_conv_bn_eval(conv.eval(), nn.BatchNorm2d(2, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="num_features"):
        fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.BatchNorm1d(2).eval())


# -- fuse_modules on a whole model ------------------------------------------------------
def test_fuse_modules_types_weights_and_outputs_equal_torch(torch_mod, rng):
    torch = torch_mod
    m = block_model(rng).eval()
    tm = to_torch(torch, m).eval()
    fused = fuse_modules(m, PATTERNS)
    tfused = torch.ao.quantization.fuse_modules(tm, PATTERNS)
    assert type_names(fused) == type_names(tfused)
    tsd = tfused.state_dict()
    sd = fused.state_dict()
    assert list(sd) == list(tsd)
    for k in sd:
        assert_array_equal(np.asarray(sd[k]), tsd[k].numpy(), err_msg=k)
    x = rng.normal(size=(4, 3, 7, 7)).astype(np.float32)
    y, y_unfused = fused(x).numpy(), m(x).numpy()
    assert_allclose(y, y_unfused, rtol=1e-4, atol=1e-5)
    assert_allclose(y, tfused(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_fuse_modules_qat_types_equal_torch(torch_mod, rng):
    torch = torch_mod
    m = block_model(rng).train()
    tm = to_torch(torch, m).train()
    fused = fuse_modules_qat(m, PATTERNS)
    tfused = torch.ao.quantization.fuse_modules_qat(tm, PATTERNS)
    assert type_names(fused) == type_names(tfused)
    assert [k for k in fused.state_dict()] == [k for k in tfused.state_dict()]
    # the containers compute what the layers did (training mode: batch statistics)
    x = rng.normal(size=(4, 3, 7, 7)).astype(np.float32)
    m2 = block_model(np.random.default_rng(1)).train()
    m2.load_state_dict(m.state_dict())
    assert_allclose(fused(x).numpy(), m2(x).numpy(), rtol=1e-5, atol=1e-5)


def test_fuse_modules_single_list_and_identity_modes(rng):
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).eval()
    fused = fuse_modules(m, ["0", "1", "2"])
    assert [type(c) for c in fused] == [nni.ConvReLU2d, nn.Identity, nn.Identity]
    assert all(not c.training for c in fused.modules())
    assert type(fused[0][0]) is nn.Conv2d and type(fused[0][1]) is nn.ReLU
    mq = fuse_modules_qat(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), ["0", "1"])
    assert [type(c) for c in mq] == [nni.LinearReLU, nn.Identity]
    assert all(c.training for c in mq.modules())


def test_fuse_modules_inplace_false_leaves_the_model_alone(rng):
    m = block_model(rng).eval()
    before_types = type_names(m)
    before = {k: np.array(v, copy=True) for k, v in m.state_dict().items()}
    fuse_modules(m, PATTERNS)
    assert type_names(m) == before_types
    for k, v in m.state_dict().items():
        assert_array_equal(np.asarray(v), before[k])
    out = fuse_modules(m, PATTERNS, inplace=True)
    assert out is m and type(m.features[0]) is nni.ConvReLU2d


def test_fuse_modules_moves_hooks_as_torch(rng):
    calls = []
    m = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU()).eval()
    m[0].register_forward_pre_hook(lambda mod, args: calls.append(("pre", type(mod).__name__)))
    m[1].register_forward_hook(lambda mod, args, out: calls.append(("bn", "dropped")))
    m[2].register_forward_hook(lambda mod, args, out: calls.append(("post", type(mod).__name__)))
    fused = fuse_modules(m, ["0", "1", "2"])
    assert len(fused[0]._forward_pre_hooks) == 1 and len(fused[0]._forward_hooks) == 1
    fused(np.ones((1, 1, 2, 2), np.float32))
    assert calls == [("pre", "ConvReLU2d"), ("post", "ConvReLU2d")]
    assert len(m[0]._forward_pre_hooks) == 1       # inplace=False: the original keeps its hooks


def test_custom_fuser_mapping_and_fuser_func(rng):
    def fuse_lin_relu(is_qat, lin, relu):
        return nn.Sequential(lin, relu)

    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    out = fuse_modules(m, ["0", "1"], fuse_custom_config_dict={
        "additional_fuser_method_mapping": {(nn.Linear, nn.ReLU): fuse_lin_relu}})
    assert type(out[0]) is nn.Sequential and type(out[1]) is nn.Identity

    seen = []

    def my_fuser(mods, is_qat, additional):
        seen.append(([type(x).__name__ for x in mods], is_qat))
        return fuse_known_modules(mods, is_qat, additional)

    fuse_modules_qat(m, [["0", "1"]], fuser_func=my_fuser)
    assert seen == [(["Linear", "ReLU"], True)]


def test_fuse_modules_errors(rng):
    m = nn.Sequential(OrderedDict([("features", nn.Sequential(
        nn.Conv2d(1, 2, 1), nn.ReLU(), nn.BatchNorm2d(2)))]))
    with pytest.raises(ValueError, match=r"`features.9` is not a submodule of Sequential"):
        fuse_modules(m, ["features.0", "features.9"])
    with pytest.raises(ValueError, match=r"cannot fuse \(Conv2d, BatchNorm2d, ReLU\)|"
                       r"cannot fuse \(ReLU, BatchNorm2d\).*supported.*\(Conv2d, ReLU\)"):
        fuse_modules(m.eval(), ["features.1", "features.2"])
    with pytest.raises(ValueError, match="eval mode"):
        fuse_modules(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)), ["0", "1"])
    with pytest.raises(ValueError, match="same mode"):
        fuse_modules(nn.Sequential(nn.Conv2d(1, 2, 1).eval(), nn.BatchNorm2d(2)), ["0", "1"])
    with pytest.raises(ValueError, match="affine"):
        fuse_modules_qat(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2, affine=False)),
                         ["0", "1"])
    with pytest.raises(ValueError, match="num_features"):
        fuse_modules_qat(nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(3)), ["0", "1"])
    with pytest.raises(ValueError, match="twice"):
        fuse_modules(m, ["features.0", "features.0"])
    with pytest.raises(TypeError, match="modules_to_fuse"):
        fuse_modules(m, "features.0")
    with pytest.raises(TypeError, match="modules_to_fuse"):
        fuse_modules(m, [["features.0", 1]])
    # an error leaves an in-place model unchanged (names are resolved first)
    m2 = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU()).eval()
    with pytest.raises(ValueError):
        fuse_modules(m2, [["0", "1"], ["2", "3"]], inplace=True)
    assert type(m2[0]) is nn.Conv2d


def test_fused_containers_check_their_children():
    with pytest.raises(TypeError, match=r"ConvReLU2d fuses \(Conv2d, ReLU\), got \(Linear, ReLU\)"):
        nni.ConvReLU2d(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(TypeError, match="BNReLU2d"):
        nni.BNReLU2d(nn.BatchNorm1d(2), nn.ReLU())
    m = nni.ConvBnReLU2d(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU())
    assert list(m._modules) == ["0", "1", "2"] and isinstance(m, nn.Sequential)


def test_pattern_table_matches_torch_for_the_layers_qlearn_has(torch_mod):
    torch = torch_mod
    from torch.ao.quantization.fuser_method_mappings import _DEFAULT_OP_LIST_TO_FUSER_METHOD
    table = get_default_fusion_patterns()
    names = {tuple(t.__name__ for t in k) for k in table}
    tnames = {tuple(t.__name__ for t in k) for k in _DEFAULT_OP_LIST_TO_FUSER_METHOD}
    # every one of torch's patterns (BatchNorm3d + ReLU and ConvTranspose3d + BatchNorm3d
    # included), and no other
    assert names == tnames
    table.clear()                                # a copy: the default table is unchanged
    assert get_fuser_method((nn.Conv2d, nn.BatchNorm2d)).__name__ == "fuse_conv_bn"
    assert repr(get_fuser_method((nn.BatchNorm2d, nn.ReLU))) == "nni.BNReLU2d"
    assert torch is not None


def test_fuse_conv_bn_modes():
    conv, bn = nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)
    assert type(fuse_conv_bn(True, conv, bn)) is nni.ConvBn2d
    assert type(fuse_conv_bn(False, conv.eval(), bn.eval())) is nn.Conv2d


# -- quantized batch norm -----------------------------------------------------------------
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 32, 4, 4), (3, 37, 3, 2)])
@pytest.mark.parametrize("zps", [(0, 128), (128, 0), (255, 77)])
def test_quantized_batch_norm_equals_torch(torch_mod, rng, shape, relu, zps):
    torch = torch_mod
    c = shape[1]
    bn = nn.BatchNorm2d(c).eval()
    _randomise_bn(bn, rng)
    x = rng.normal(size=shape).astype(np.float32) * 2
    zin, zout = zps
    sin, sout = 0.031, 0.047
    qx = ql.quantize_per_tensor(x, sin, zin, ql.quint8)
    cls, tcls = (nniq.BNReLU2d, torch.ao.nn.intrinsic.quantized.BNReLU2d) if relu else \
        (nnq.BatchNorm2d, torch.ao.nn.quantized.BatchNorm2d)
    q = cls(c, eps=bn.eps)
    t = tcls(c, eps=bn.eps)
    for name in ("weight", "bias"):
        getattr(q, name).data[...] = getattr(bn, name).data
        getattr(t, name).data = torch.from_numpy(getattr(bn, name).data.copy())
    q.running_mean[...], q.running_var[...] = bn.running_mean, bn.running_var
    t.running_mean.copy_(torch.from_numpy(bn.running_mean))
    t.running_var.copy_(torch.from_numpy(bn.running_var))
    q.scale, q.zero_point = np.array(sout, np.float32), np.array(zout, np.int64)
    t.scale, t.zero_point = torch.tensor(sout), torch.tensor(zout)
    tq = torch.quantize_per_tensor(torch.from_numpy(x), sin, zin, torch.quint8)
    assert_array_equal(qx.int_repr(), tq.int_repr().numpy())
    got, want = q(qx), t(tq)
    assert_array_equal(got.int_repr(), want.int_repr().numpy())
    assert got.q_scale() == pytest.approx(want.q_scale()) and got.q_zero_point() == zout


def test_quantized_batch_norm_from_float_and_errors(rng):
    bn = nn.BatchNorm2d(3).eval()
    _randomise_bn(bn, rng)
    from qlearn.quantization.observer import MinMaxObserver
    bn.activation_post_process = MinMaxObserver()
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    bn.activation_post_process(bn(x).numpy())
    q = nnq.BatchNorm2d.from_float(bn)
    s, z = bn.activation_post_process.calculate_qparams()
    assert float(q.scale) == pytest.approx(float(s[0])) and int(q.zero_point) == int(z[0])
    y = q(ql.quantize_per_tensor(x, 0.02, 128, ql.quint8)).dequantize()
    assert_allclose(y, bn(x).numpy(), atol=2.5 * float(s[0]) + 0.03)
    fused = nni.BNReLU2d(bn, nn.ReLU())
    fused.activation_post_process = bn.activation_post_process
    assert type(nniq.BNReLU2d.from_float(fused)) is nniq.BNReLU2d
    with pytest.raises(TypeError, match="BNReLU2d"):
        nniq.BNReLU2d.from_float(bn)
    with pytest.raises(TypeError, match="QuantStub"):
        q(x)
    with pytest.raises(ValueError, match="4-d"):
        q(ql.quantize_per_tensor(np.zeros((2, 3)), 0.1, 0, ql.quint8))
    with pytest.raises(ValueError, match="3 channels|shape"):
        q(ql.quantize_per_tensor(np.zeros((1, 2, 2, 2)), 0.1, 0, ql.quint8))


def test_failed_inplace_fusion_keeps_the_hooks():
    m = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))     # training mode
    m[0].register_forward_pre_hook(lambda mod, args: None)
    m[1].register_forward_hook(lambda mod, args, out: None)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_modules(m, ["0", "1"], inplace=True)
    assert len(m[0]._forward_pre_hooks) == 1 and len(m[1]._forward_hooks) == 1
    assert type(m[0]) is nn.Conv2d


def test_quantized_batch_norm_state_dict_round_trip(rng, tmp_path):
    q = nniq.BNReLU2d(5, eps=1e-3)
    _randomise_bn(q, rng)
    q.scale, q.zero_point = np.array(0.04, np.float32), np.array(17, np.int64)
    path = str(tmp_path / "bn.qlearn")
    ql.save(q.state_dict(), path)
    fresh = nniq.BNReLU2d(5, eps=1e-3)
    fresh.load_state_dict(ql.load(path))
    x = ql.quantize_per_tensor(rng.normal(size=(2, 5, 3, 3)), 0.03, 120, ql.quint8)
    assert_array_equal(fresh(x).int_repr(), q(x).int_repr())
    assert fresh(x).q_zero_point() == 17 and bool((fresh(x).int_repr() >= 17).all())
