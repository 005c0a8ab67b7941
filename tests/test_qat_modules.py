"""QAT modules (qlearn.nn.qat, qlearn.nn.intrinsic.qat) against torch 2.13's with the same
weights and data: forward values, gradients, a few SGD steps, BN-statistics freezing,
from_float / to_float, errors."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.intrinsic as nni
import qlearn.nn.intrinsic.qat as nniqat
import qlearn.nn.qat as nnqat
from qlearn.quantization import (
    QConfig,
    default_fake_quant,
    default_per_channel_weight_fake_quant,
    disable_fake_quant,
)

# The unfused FakeQuantize with a per-channel moving-average observer, in both libraries.
# (PyTorch's *fused* FusedMovingAvgObsFakeQuantize, in its default x86 QAT qconfig, picks
# a symmetric scale max(-min/128, max/127) and a 6.1e-5 floor that its own FakeQuantize
# does not; qlearn's fused module follows the unfused one.)
QCONFIG = QConfig(activation=default_fake_quant, weight=default_per_channel_weight_fake_quant)


@pytest.fixture(autouse=True)
def _seed():
    ql.manual_seed(0)        # the modules' random initialisation (copied to torch's)


def _tq(torch):
    tq = torch.ao.quantization
    return tq.QConfig(activation=tq.default_fake_quant,
                      weight=tq.default_per_channel_weight_fake_quant)


def _t(torch, a):
    return torch.from_numpy(np.array(a, np.float32))


def _copy_params(torch, qmod, tmod):
    """Copy every parameter and buffer that both modules have, qlearn -> torch."""
    tsd = tmod.state_dict()
    with torch.no_grad():
        for k, v in qmod.state_dict().items():
            if k in tsd and tsd[k].shape == np.shape(v) and tsd[k].is_floating_point():
                tsd[k].copy_(_t(torch, v))


def _params(mod):
    return dict(mod.named_parameters())


def _train_steps(torch, qmod, tmod, x_shape, steps, rng, lr=0.1):
    """Run ``steps`` SGD steps on both modules with the same data; compare every step."""
    out_shape = None
    for step in range(steps):
        x = rng.normal(size=x_shape).astype(np.float32)
        qx = ql.tensor(x, requires_grad=True)
        tx = torch.from_numpy(x).requires_grad_(True)
        qy, ty = qmod(qx), tmod(tx)
        assert_allclose(qy.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4,
                        err_msg=f"forward, step {step}")
        out_shape = out_shape or qy.shape
        g = rng.normal(size=qy.shape).astype(np.float32)
        (qy * ql.tensor(g)).sum().backward()
        (ty * torch.from_numpy(g)).sum().backward()
        assert_allclose(qx.grad.numpy(), tx.grad.numpy(), rtol=1e-3, atol=1e-4,
                        err_msg=f"input gradient, step {step}")
        tparams = dict(tmod.named_parameters())
        for name, p in _params(qmod).items():
            tp = tparams[name]
            noise = name == "bias" and getattr(getattr(qmod, "bn", None), "training", False)
            if noise:
                # a batch norm on batch statistics removes the conv bias: its gradient is
                # 0 up to float cancellation, in both libraries
                assert np.abs(p.grad.numpy()).max() < 5e-2
                assert np.abs(tp.grad.numpy()).max() < 5e-2
            else:
                assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-3, atol=1e-3,
                                err_msg=f"gradient of {name}, step {step}")
            p.data -= lr * p.grad.data
            p.grad = None
            with torch.no_grad():
                tp -= lr * tp.grad
                if not noise:
                    assert_allclose(p.data, tp.numpy(), rtol=1e-3, atol=5e-4,
                                    err_msg=f"{name} after step {step}")
                # re-synchronise: float-rounding differences of 1e-7 would otherwise move
                # a weight across a rounding boundary of its fake quantizer now and then
                tp.copy_(torch.from_numpy(p.data))
            tp.grad = None
    return out_shape


def _compare_state(torch, qmod, tmod):
    tsd = tmod.state_dict()
    for k, v in qmod.state_dict().items():
        if k.endswith(("activation_post_process.min_val", "activation_post_process.max_val",
                       "scale", "zero_point", "running_mean", "running_var", "weight", "bias",
                       "num_batches_tracked")):
            assert_allclose(np.asarray(v, np.float64), tsd[k].double().numpy(), rtol=1e-3,
                            atol=1e-4, err_msg=k)


# -- nniqat.ConvBn2d: simulated folding -----------------------------------------------------
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("conv_args", [dict(in_channels=3, out_channels=8, kernel_size=3,
                                            padding=1),
                                       dict(in_channels=4, out_channels=4, kernel_size=3,
                                            stride=2, groups=2),
                                       dict(in_channels=1, out_channels=5, kernel_size=1)])
def test_convbn2d_training_matches_torch(torch_mod, rng, relu, bias, conv_args):
    torch = torch_mod
    cls, tcls = (nniqat.ConvBnReLU2d, torch.ao.nn.intrinsic.qat.ConvBnReLU2d) if relu \
        else (nniqat.ConvBn2d, torch.ao.nn.intrinsic.qat.ConvBn2d)
    q = cls(**conv_args, bias=bias, qconfig=QCONFIG)
    t = tcls(**conv_args, bias=bias, qconfig=_tq(torch))
    assert list(q.state_dict()) == list(t.state_dict())
    _copy_params(torch, q, t)
    _train_steps(torch, q, t, (4, conv_args["in_channels"], 7, 6), 4, rng)
    _compare_state(torch, q, t)
    # frozen statistics: the running ones normalise, and they stay
    q.freeze_bn_stats(), t.freeze_bn_stats()
    rm = q.bn.running_mean.copy()
    _train_steps(torch, q, t, (3, conv_args["in_channels"], 5, 5), 2, rng)
    assert_array_equal(q.bn.running_mean, rm)
    _compare_state(torch, q, t)


def test_convbn2d_eval_mode_matches_torch(torch_mod, rng):
    torch = torch_mod
    q = nniqat.ConvBn2d(3, 6, 3, qconfig=QCONFIG)
    t = torch.ao.nn.intrinsic.qat.ConvBn2d(3, 6, 3, qconfig=_tq(torch))
    _copy_params(torch, q, t)
    _train_steps(torch, q, t, (4, 3, 6, 6), 2, rng)
    q.eval(), t.eval()
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    assert_allclose(q(x).numpy(), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                    atol=1e-4)


def test_linearbn1d_training_matches_torch(torch_mod, rng):
    torch = torch_mod
    q = nniqat.LinearBn1d(7, 5, qconfig=QCONFIG)
    t = torch.ao.nn.intrinsic.qat.LinearBn1d(7, 5, qconfig=_tq(torch))
    assert list(q.state_dict()) == list(t.state_dict())
    _copy_params(torch, q, t)
    _train_steps(torch, q, t, (6, 7), 4, rng)
    _compare_state(torch, q, t)


@pytest.mark.parametrize("kind", ["linear", "conv", "linear_relu", "conv_relu"])
def test_qat_layers_match_torch(torch_mod, rng, kind):
    torch = torch_mod
    tq = _tq(torch)
    q, t, shape = {
        "linear": (nnqat.Linear(6, 4, qconfig=QCONFIG),
                   torch.ao.nn.qat.Linear(6, 4, qconfig=tq), (5, 6)),
        "conv": (nnqat.Conv2d(2, 3, 3, padding=1, qconfig=QCONFIG),
                 torch.ao.nn.qat.Conv2d(2, 3, 3, padding=1, qconfig=tq), (2, 2, 5, 4)),
        "linear_relu": (nniqat.LinearReLU(6, 4, qconfig=QCONFIG),
                        torch.ao.nn.intrinsic.qat.LinearReLU(6, 4, qconfig=tq), (5, 6)),
        "conv_relu": (nniqat.ConvReLU2d(2, 3, 3, qconfig=QCONFIG),
                      torch.ao.nn.intrinsic.qat.ConvReLU2d(2, 3, 3, qconfig=tq),
                      (2, 2, 5, 4)),
    }[kind]
    assert list(q.state_dict()) == list(t.state_dict())
    _copy_params(torch, q, t)
    _train_steps(torch, q, t, shape, 3, rng)
    _compare_state(torch, q, t)


# -- behaviour of the simulated folding --------------------------------------------------------
def test_frozen_convbn_without_fake_quant_is_the_folded_conv(rng):
    m = nniqat.ConvBnReLU2d(3, 4, 3, bias=True, qconfig=QCONFIG)
    for _ in range(3):                                # move the running statistics
        m(rng.normal(size=(4, 3, 6, 6)))
    m.freeze_bn_stats()
    m.apply(disable_fake_quant)
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    ref = m.to_float()
    assert type(ref) is nni.ConvReLU2d and type(ref[0]) is nn.Conv2d
    assert_allclose(m(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)


def test_freeze_and_update_bn_stats(rng):
    model = nn.Sequential(nniqat.ConvBn2d(1, 2, 1, qconfig=QCONFIG), nn.ReLU(),
                          nniqat.LinearBn1d(2, 2, qconfig=QCONFIG))
    model.apply(nniqat.freeze_bn_stats)
    assert model[0].freeze_bn and model[2].freeze_bn and not model[0].bn.training
    model.train()                                     # a frozen BN stays in eval mode
    assert model[0].training and not model[0].bn.training
    before = model[0].bn.num_batches_tracked.copy()
    model[0](rng.normal(size=(3, 1, 2, 2)))
    assert_array_equal(model[0].bn.num_batches_tracked, before)
    model.apply(nniqat.update_bn_stats)
    assert not model[0].freeze_bn and model[0].bn.training
    model[0](rng.normal(size=(3, 1, 2, 2)))
    assert int(model[0].bn.num_batches_tracked) == int(before) + 1
    # built in eval mode: frozen from the start, as PyTorch's
    m = nniqat.ConvBn2d(1, 1, 1, qconfig=QCONFIG, freeze_bn=True)
    assert m.freeze_bn and not m.bn.training


def test_gradients_reach_every_parameter(rng):
    m = nniqat.ConvBnReLU2d(2, 3, 3, bias=True, qconfig=QCONFIG)
    y = m(ql.tensor(rng.normal(size=(2, 2, 5, 5)), requires_grad=True))
    y.sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
    assert np.abs(m.bn.weight.grad.numpy()).sum() > 0


# -- from_float / to_float ---------------------------------------------------------------------
def test_from_float_shares_parameters_and_types_match_torch(torch_mod):
    torch = torch_mod
    conv, bn = nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3)
    fused = nni.ConvBnReLU2d(conv, bn, nn.ReLU())
    fused.qconfig = QCONFIG
    q = nniqat.ConvBnReLU2d.from_float(fused)
    assert q.weight is conv.weight and q.bn.weight is bn.weight
    assert q.bn.running_mean is bn.running_mean
    tfused = torch.ao.nn.intrinsic.ConvBnReLU2d(torch.nn.Conv2d(2, 3, 3, bias=False),
                                               torch.nn.BatchNorm2d(3), torch.nn.ReLU())
    tfused.qconfig = _tq(torch)
    t = torch.ao.nn.intrinsic.qat.ConvBnReLU2d.from_float(tfused)
    names = [(n, type(m).__name__) for n, m in q.named_modules()]
    tnames = [(n, type(m).__name__) for n, m in t.named_modules()]
    assert names == tnames
    tf, qf = t.to_float(), q.to_float()
    assert [type(m).__name__ for m in qf.modules()] == [type(m).__name__ for m in tf.modules()]
    lin = nn.Linear(3, 2)
    lin.qconfig = QCONFIG
    ql_lin = nnqat.Linear.from_float(lin)
    assert ql_lin.weight is lin.weight and type(ql_lin.to_float()) is nn.Linear
    lr = nni.LinearReLU(nn.Linear(3, 2), nn.ReLU())
    lr.qconfig = QCONFIG
    assert type(nniqat.LinearReLU.from_float(lr).to_float()) is nni.LinearReLU
    cr = nni.ConvReLU2d(nn.Conv2d(1, 1, 1), nn.ReLU())
    cr.qconfig = QCONFIG
    assert type(nniqat.ConvReLU2d.from_float(cr).to_float()) is nni.ConvReLU2d
    lb = nni.LinearBn1d(nn.Linear(3, 2), nn.BatchNorm1d(2))
    lb.qconfig = QCONFIG
    assert type(nniqat.LinearBn1d.from_float(lb).to_float()) is nn.Linear


def test_to_float_folds_with_the_running_statistics(torch_mod, rng):
    torch = torch_mod
    q = nniqat.ConvBn2d(3, 4, 3, bias=True, qconfig=QCONFIG)
    t = torch.ao.nn.intrinsic.qat.ConvBn2d(3, 4, 3, bias=True, qconfig=_tq(torch))
    _copy_params(torch, q, t)
    _train_steps(torch, q, t, (4, 3, 5, 5), 2, rng)
    qf, tf = q.to_float(), t.to_float()
    assert_allclose(qf.weight.numpy(), tf.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert_allclose(qf.bias.numpy(), tf.bias.detach().numpy(), rtol=1e-5, atol=1e-6)
    w, b = q.fold_bn()
    assert_array_equal(w.data, qf.weight.data) and assert_array_equal(b.data, qf.bias.data)


def test_qat_module_errors():
    with pytest.raises(ValueError, match="qconfig"):
        nnqat.Linear(2, 2)
    with pytest.raises(ValueError, match="qconfig"):
        nniqat.ConvBn2d(1, 1, 1)
    with pytest.raises(ValueError, match="has no `qconfig`"):
        nnqat.Conv2d.from_float(nn.Conv2d(1, 1, 1))
    conv = nn.Conv2d(1, 1, 1)
    conv.qconfig = QCONFIG
    with pytest.raises(TypeError, match="expects a float ConvBn2d, got Conv2d"):
        nniqat.ConvBn2d.from_float(conv)
    lin = nn.Linear(1, 1)
    lin.qconfig = QCONFIG
    with pytest.raises(TypeError, match="expects a float Conv2d, got Linear"):
        nnqat.Conv2d.from_float(lin)
    with pytest.raises(TypeError, match="weight"):
        nnqat.Linear(2, 2, qconfig=object())


# -- the whole QAT path: fuse_modules_qat -> prepare_qat -> train -> convert ------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")       # torch.ao is deprecated
def test_qat_convbnrelu_model_converts_as_torch(torch_mod, rng):
    """The converted int8 conv holds the folded weights: the same integers as PyTorch's."""
    torch = torch_mod
    from collections import OrderedDict

    import qlearn.quantization as tq
    tqt = torch.ao.quantization
    q = nn.Sequential(OrderedDict(quant=tq.QuantStub(), conv=nn.Conv2d(2, 4, 3),
                                  bn=nn.BatchNorm2d(4), relu=nn.ReLU(),
                                  dequant=tq.DeQuantStub()))
    t = torch.nn.Sequential(OrderedDict(quant=tqt.QuantStub(), conv=torch.nn.Conv2d(2, 4, 3),
                                        bn=torch.nn.BatchNorm2d(4), relu=torch.nn.ReLU(),
                                        dequant=tqt.DeQuantStub()))
    q = tq.fuse_modules_qat(q, [["conv", "bn", "relu"]])
    t = tqt.fuse_modules_qat(t, [["conv", "bn", "relu"]])
    q.qconfig = QConfig(tq.FakeQuantize.with_args(reduce_range=True),
                        default_per_channel_weight_fake_quant)
    t.qconfig = tqt.QConfig(tqt.FakeQuantize.with_args(reduce_range=True),
                            tqt.default_per_channel_weight_fake_quant)
    tq.prepare_qat(q, inplace=True)
    tqt.prepare_qat(t, inplace=True)
    assert type(q.conv) is nniqat.ConvBnReLU2d
    _copy_params(torch, q, t)
    for _ in range(3):                     # observers and BN statistics move (no SGD)
        x = rng.normal(size=(4, 2, 6, 6)).astype(np.float32)
        assert_allclose(q(x).numpy(), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    cq, ct = tq.convert(q.eval()), tqt.convert(t.eval())
    assert [type(m).__name__ for m in cq.children()] == \
        [type(m).__name__ for m in ct.children()]
    assert_array_equal(cq.conv.weight().int_repr(), ct.conv.weight().int_repr().numpy())
    assert_allclose(cq.conv.bias(), ct.conv.bias().detach().numpy(), rtol=1e-6, atol=1e-7)
    assert cq.conv.scale == pytest.approx(ct.conv.scale, rel=1e-6)
    assert cq.conv.zero_point == ct.conv.zero_point
    x = rng.normal(size=(2, 2, 6, 6)).astype(np.float32)
    diff = np.abs(np.asarray(cq(x)) - ct(torch.from_numpy(x)).numpy()) / ct.conv.scale
    assert diff.max() <= 1.001 and (diff > 0.5).mean() < 0.01   # off by one step, rarely
