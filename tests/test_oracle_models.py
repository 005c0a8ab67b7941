"""Whole models through the whole workflow against PyTorch 2.13, on the same float weights.

Each architecture is written once as a function of a namespace (torch's or qlearn's), so
the two models are the same code; torch's float weights and batch-norm statistics are
copied into qlearn's. Then eager mode (fuse_modules, prepare, calibrate, convert), graph
mode (prepare_fx / convert_fx with ``get_default_qconfig_mapping``) and QAT (prepare_qat /
prepare_qat_fx, a few SGD steps on the same data, convert) run on both, and the test
compares every observer's scale and zero point, every quantized weight's integers, the
output's integers and the numeric suite's results.

What is exact and what is not, and why:

* float convolutions and linears are not bit-reproducible between torch (oneDNN / MKL,
  blocked sums) and qlearn (NumPy / own kernels): an observer fed by a float layer may see
  a min or max one float32 ulp away, hence a scale an ulp away and (rarely) a zero point one
  away. The observers are compared to ``rtol=1e-6`` / one zero-point step; then torch's
  observer state is loaded into qlearn's model (the state-dict keys are the same), so that
  ``convert`` starts from identical qparams and everything after it -- the quantized
  weights, every integer the quantized model computes, the output -- is compared with
  ``assert_array_equal``;
* QAT: the training steps are float arithmetic (gradients through fake quantization), so
  after them the weights agree to float32 rounding, not bitwise; the trained torch state
  is loaded into qlearn's prepared model before convert, and from there on the integers
  are compared exactly again;
* dynamic quantization returns float32 from int32 accumulators times float scales in
  another order than FBGEMM, so its outputs agree to a few ulps (the weights' integers
  are exact).
"""
import copy
import types

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn as nn
import qlearn.nn.functional as F
import qlearn.quantization as tq
from qlearn.quantization import numeric_suite as ns
from qlearn.quantization import quantize_fx as qfx

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


# ---- the two libraries behind one namespace -----------------------------------------------
def _ns(lib, torch=None):
    if lib == "t":
        return types.SimpleNamespace(nn=torch.nn, F=torch.nn.functional,
                                     Q=torch.ao.quantization,
                                     nnq=torch.ao.nn.quantized, torch=torch)
    import qlearn.nn.quantized as nnq
    # ``torch`` is the module, looked up at call time: qlearn's tracer records ``ql.flatten``
    # by patching the module's attribute, as torch.fx sees ``torch.flatten``
    return types.SimpleNamespace(nn=nn, F=F, Q=tq, nnq=nnq, torch=ql)


def _out(y):
    return np.asarray(getattr(y, "data", y))


def _ints(y):
    """The integers of a quantized tensor (torch's or qlearn's)."""
    r = y.int_repr()
    return r.numpy() if hasattr(r, "numpy") else np.asarray(r)


def _randomise(torch, tm):
    """Weights of order one and batch norms with non-trivial statistics, so that every
    layer's output range depends on its weights."""
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn_like(p) * (0.4 if p.dim() > 1 else 0.1))
        for m in tm.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


def _load_from_torch(qm, tm):
    tsd = tm.state_dict()
    assert sorted(qm.state_dict()) == sorted(tsd)
    result = qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tsd.items()})
    assert not result.missing_keys and not result.unexpected_keys


def _pair(build, torch, **kwargs):
    tm = build(_ns("t", torch), **kwargs)
    _randomise(torch, tm)
    qm = build(_ns("q"), **kwargs)
    _load_from_torch(qm, tm)
    return tm, qm


def _observer_qparams(model):
    return {name: mod.calculate_qparams() for name, mod in model.named_modules()
            if "activation_post_process" in name.rsplit(".", 1)[-1]
            and hasattr(mod, "calculate_qparams")}


def _same_observers(qm, tm):
    """Every observer's qparams agree (to an ulp of scale, see the module docstring); then
    torch's observer state is loaded into qlearn's so that convert starts from the same
    qparams."""
    ours, theirs = _observer_qparams(qm), _observer_qparams(tm)
    assert sorted(ours) == sorted(theirs) and ours
    for name in theirs:
        np.testing.assert_allclose(ours[name][0], theirs[name][0].numpy(), rtol=1e-6,
                                   err_msg=name)
        assert np.abs(np.asarray(ours[name][1]) - theirs[name][1].numpy()).max() <= 1, name
    tsd = tm.state_dict()
    assert sorted(qm.state_dict()) == sorted(tsd)
    qm.load_state_dict({k: v.detach().numpy() for k, v in tsd.items()})
    ours = _observer_qparams(qm)
    for name in theirs:
        np.testing.assert_array_equal(ours[name][0], theirs[name][0].numpy(), err_msg=name)
        np.testing.assert_array_equal(ours[name][1], theirs[name][1].numpy(), err_msg=name)
    return len(theirs)


def _same_quantized_modules(cq, ct):
    """Same module types (by name) at the same paths, the same output qparams and the
    same weight integers (and weight qparams) for every quantized module."""
    tmods = dict(ct.named_modules())
    qmods = dict(cq.named_modules())
    compared = 0
    for name, tmod in tmods.items():
        if name == "" or not type(tmod).__module__.startswith("torch.ao.nn") \
                or name.endswith("_packed_params"):          # torch's packing holder
            continue
        assert name in qmods, name
        qmod = qmods[name]
        assert type(qmod).__name__ == type(tmod).__name__, name
        if hasattr(tmod, "scale") and hasattr(qmod, "scale"):
            assert float(qmod.scale) == float(tmod.scale), name
            assert int(qmod.zero_point) == int(tmod.zero_point), name
        if callable(getattr(tmod, "weight", None)) and callable(getattr(qmod, "weight", None)):
            tw, qw = tmod.weight(), qmod.weight()
            np.testing.assert_array_equal(_ints(qw), _ints(tw), err_msg=name)
            if "per_tensor" in str(tw.qscheme()):
                assert float(qw.q_scale()) == tw.q_scale(), name
                assert int(qw.q_zero_point()) == tw.q_zero_point(), name
            else:
                np.testing.assert_array_equal(
                    np.asarray(qw.q_per_channel_scales()),
                    tw.q_per_channel_scales().numpy().astype(np.asarray(
                        qw.q_per_channel_scales()).dtype), err_msg=name)
            compared += 1
    return compared


def _calibrate(tm, qm, xs, torch):
    with torch.no_grad():
        for x in xs:
            tm(torch.from_numpy(x))
    for x in xs:
        qm(x)


def _same_outputs(cq, ct, xs, torch):
    for x in xs:
        with torch.no_grad():
            yt = ct(torch.from_numpy(x))
        yq = cq(x)
        np.testing.assert_array_equal(_out(yq), yt.numpy())


# ---- ResNet ---------------------------------------------------------------------------------
def _resnet(L, eager=True):
    N, Q = L.nn, L.Q

    class BasicBlock(N.Module):
        def __init__(self, cin, cout, stride, fused_add_relu):
            super().__init__()
            self.conv1 = N.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = N.BatchNorm2d(cout)
            self.relu1 = N.ReLU()
            self.conv2 = N.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = N.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = N.Sequential(N.Conv2d(cin, cout, 1, stride, bias=False),
                                               N.BatchNorm2d(cout))
            self.fused_add_relu = fused_add_relu
            self.skip = L.nnq.FloatFunctional()
            self.relu2 = N.ReLU()

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if not eager:
                return self.relu2(out + identity)
            if self.fused_add_relu:
                return self.skip.add_relu(out, identity)
            return self.relu2(self.skip.add(out, identity))

    class ResNet(N.Module):
        def __init__(self):
            super().__init__()
            self.quant = Q.QuantStub()
            self.conv1 = N.Conv2d(3, 8, 3, 1, 1, bias=False)
            self.bn1 = N.BatchNorm2d(8)
            self.relu = N.ReLU()
            self.maxpool = N.MaxPool2d(3, 2, 1)
            self.layer1 = BasicBlock(8, 8, 1, True)
            self.layer2 = BasicBlock(8, 12, 2, False)
            self.avgpool = N.AdaptiveAvgPool2d((1, 1))
            self.fc = N.Linear(12, 5)
            self.dequant = Q.DeQuantStub()

        def forward(self, x):
            if eager:
                x = self.quant(x)
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer2(self.layer1(x))
            x = L.torch.flatten(self.avgpool(x), 1)
            x = self.fc(x)
            return self.dequant(x) if eager else x

    return ResNet()


RESNET_FUSE = [["conv1", "bn1", "relu"],
               ["layer1.conv1", "layer1.bn1", "layer1.relu1"], ["layer1.conv2", "layer1.bn2"],
               ["layer2.conv1", "layer2.bn1", "layer2.relu1"], ["layer2.conv2", "layer2.bn2"],
               ["layer2.downsample.0", "layer2.downsample.1"]]


def _inputs(rng, shape, n=3, scale=1.0):
    return [(rng.standard_normal(shape) * scale).astype(np.float32) for _ in range(n)]


def _eager_static(torch, build, fuse, xs, backend, **kwargs):
    """Fuse, prepare, calibrate and convert the same model in both libraries; returns
    (float torch, float qlearn, converted torch, converted qlearn)."""
    ta = torch.ao.quantization
    tm, qm = _pair(build, torch, **kwargs)
    tm.eval()
    qm.eval()
    for x in xs[:1]:
        np.testing.assert_allclose(_out(qm(x)), tm(torch.from_numpy(x)).detach().numpy(),
                                   atol=1e-4, rtol=1e-4)
    ft, fq = copy.deepcopy(tm), copy.deepcopy(qm)
    if fuse:
        tm = ta.fuse_modules(tm, fuse)
        qm = tq.fuse_modules(qm, fuse)
    tm.qconfig = ta.get_default_qconfig(backend)
    qm.qconfig = tq.get_default_qconfig(backend)
    ta.prepare(tm, inplace=True)
    tq.prepare(qm, inplace=True)
    _calibrate(tm, qm, xs, torch)
    assert _same_observers(qm, tm) > 0
    ta.convert(tm, inplace=True)
    tq.convert(qm, inplace=True)
    return ft, fq, tm, qm


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_resnet_eager(torch_x86, backend, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 12, 12))
    _, _, ct, cq = _eager_static(torch, _resnet, RESNET_FUSE, xs, backend)
    assert _same_quantized_modules(cq, ct) == 7
    _same_outputs(cq, ct, xs, torch)


def _fx_static(torch, build, xs, backend, **kwargs):
    from torch.ao.quantization import quantize_fx as tfx
    tm, qm = _pair(build, torch, **kwargs)
    tm.eval()
    qm.eval()
    pt = tfx.prepare_fx(copy.deepcopy(tm), torch.ao.quantization.get_default_qconfig_mapping(
        backend), (torch.from_numpy(xs[0]),))
    pq = qfx.prepare_fx(copy.deepcopy(qm), tq.get_default_qconfig_mapping(backend), (xs[0],))
    _calibrate(pt, pq, xs, torch)
    assert _same_observers(pq, pt) > 0
    return tm, qm, tfx.convert_fx(pt), qfx.convert_fx(pq)


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_resnet_fx(torch_x86, backend, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 12, 12))
    _, _, ct, cq = _fx_static(torch, _resnet, xs, backend, eager=False)
    assert _same_quantized_modules(cq, ct) == 7
    _same_outputs(cq, ct, xs, torch)



# ---- MobileNetV2 ----------------------------------------------------------------------------
def _conv_bn(N, cin, cout, k=3, stride=1, groups=1, act=None):
    layers = [N.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              N.BatchNorm2d(cout)]
    return N.Sequential(*layers, act()) if act is not None else N.Sequential(*layers)


def _mobilenet_v2(L, eager=True):
    N, Q = L.nn, L.Q

    class InvertedResidual(N.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            layers = [] if expand == 1 else [_conv_bn(N, cin, hidden, 1, act=N.ReLU6)]
            layers += [_conv_bn(N, hidden, hidden, 3, stride, groups=hidden, act=N.ReLU6),
                       N.Conv2d(hidden, cout, 1, bias=False), N.BatchNorm2d(cout)]
            self.conv = N.Sequential(*layers)
            self.use_res_connect = stride == 1 and cin == cout
            self.skip_add = L.nnq.FloatFunctional()

        def forward(self, x):
            if not self.use_res_connect:
                return self.conv(x)
            return self.skip_add.add(x, self.conv(x)) if eager else x + self.conv(x)

    class MobileNetV2(N.Module):
        def __init__(self):
            super().__init__()
            self.quant = Q.QuantStub()
            self.features = N.Sequential(
                _conv_bn(N, 3, 8, 3, 2, act=N.ReLU6),
                InvertedResidual(8, 8, 1, 1),
                InvertedResidual(8, 12, 2, 4),
                InvertedResidual(12, 12, 1, 4),
                _conv_bn(N, 12, 16, 1, act=N.ReLU6))
            self.pool = N.AdaptiveAvgPool2d(1)
            self.classifier = N.Sequential(N.Dropout(0.2), N.Linear(16, 5))
            self.dequant = Q.DeQuantStub()

        def forward(self, x):
            if eager:
                x = self.quant(x)
            x = L.torch.flatten(self.pool(self.features(x)), 1)
            x = self.classifier(x)
            return self.dequant(x) if eager else x

    return MobileNetV2()


def _conv_bn_pairs(model, relu_types=()):
    """The eager fusion list: every Conv2d followed by its BatchNorm2d in a Sequential (and
    the activation after it when its type is in ``relu_types``)."""
    fuse = []
    for name, mod in model.named_modules():
        children = list(mod.named_children())
        for (a, ma), (b, mb) in zip(children, children[1:]):
            if type(ma).__name__ == "Conv2d" and type(mb).__name__ == "BatchNorm2d":
                group = [a, b]
                rest = children[[c for c, _ in children].index(b) + 1:]
                if rest and isinstance(rest[0][1], relu_types):
                    group.append(rest[0][0])
                fuse.append([f"{name}.{c}" if name else c for c in group])
    return fuse


def _mobilenet_v2_fuse(torch):
    return _conv_bn_pairs(_mobilenet_v2(_ns("t", torch)))


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_mobilenet_v2_eager(torch_x86, backend, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 16, 16))
    fuse = _mobilenet_v2_fuse(torch)
    assert len(fuse) == 10
    _, _, ct, cq = _eager_static(torch, _mobilenet_v2, fuse, xs, backend)
    assert _same_quantized_modules(cq, ct) == 11
    _same_outputs(cq, ct, xs, torch)


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_mobilenet_v2_fx(torch_x86, backend, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 16, 16))
    _, _, ct, cq = _fx_static(torch, _mobilenet_v2, xs, backend, eager=False)
    assert _same_quantized_modules(cq, ct) == 11
    _same_outputs(cq, ct, xs, torch)


# ---- MobileNetV3 ----------------------------------------------------------------------------
def _mobilenet_v3(L, eager=True):
    N, Q = L.nn, L.Q

    class SqueezeExcitation(N.Module):
        def __init__(self, channels, squeeze):
            super().__init__()
            self.avgpool = N.AdaptiveAvgPool2d(1)
            self.fc1 = N.Conv2d(channels, squeeze, 1)
            self.relu = N.ReLU()
            self.fc2 = N.Conv2d(squeeze, channels, 1)
            self.scale_activation = N.Hardsigmoid()
            self.skip_mul = L.nnq.FloatFunctional()

        def forward(self, x):
            scale = self.scale_activation(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
            return self.skip_mul.mul(scale, x) if eager else scale * x

    class Block(N.Module):
        def __init__(self, cin, hidden, cout):
            super().__init__()
            self.block = N.Sequential(
                _conv_bn(N, cin, hidden, 1, act=N.Hardswish),
                _conv_bn(N, hidden, hidden, 3, groups=hidden, act=N.Hardswish),
                SqueezeExcitation(hidden, 8),
                _conv_bn(N, hidden, cout, 1))
            self.skip_add = L.nnq.FloatFunctional()

        def forward(self, x):
            return self.skip_add.add(x, self.block(x)) if eager else x + self.block(x)

    class MobileNetV3(N.Module):
        def __init__(self):
            super().__init__()
            self.quant = Q.QuantStub()
            self.stem = _conv_bn(N, 3, 8, 3, 2, act=N.Hardswish)
            self.block = Block(8, 16, 8)
            self.pool = N.AdaptiveAvgPool2d(1)
            self.classifier = N.Sequential(N.Linear(8, 16), N.Hardswish(), N.Linear(16, 5))
            self.dequant = Q.DeQuantStub()

        def forward(self, x):
            if eager:
                x = self.quant(x)
            x = L.torch.flatten(self.pool(self.block(self.stem(x))), 1)
            x = self.classifier(x)
            return self.dequant(x) if eager else x

    return MobileNetV3()


def _mobilenet_v3_fuse(torch):
    return _conv_bn_pairs(_mobilenet_v3(_ns("t", torch))) + [["block.block.2.fc1",
                                                              "block.block.2.relu"]]


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_mobilenet_v3_eager(torch_x86, backend, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 16, 16))
    fuse = _mobilenet_v3_fuse(torch)
    assert len(fuse) == 5
    _, _, ct, cq = _eager_static(torch, _mobilenet_v3, fuse, xs, backend)
    assert _same_quantized_modules(cq, ct) == 8
    _same_outputs(cq, ct, xs, torch)


@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_mobilenet_v3_fx(torch_x86, backend, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 16, 16))
    _, _, ct, cq = _fx_static(torch, _mobilenet_v3, xs, backend, eager=False)
    assert _same_quantized_modules(cq, ct) == 8
    _same_outputs(cq, ct, xs, torch)


def _hard_gate(L):
    N, F = L.nn, L.F

    class HardGate(N.Module):
        """The squeeze-excite gate written with the function (``F.hardsigmoid``) at the
        root of the model."""

        def __init__(self):
            super().__init__()
            self.conv = N.Conv2d(3, 4, 3)
            self.conv2 = N.Conv2d(4, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            return self.conv2(F.hardsigmoid(y) * y)

    return HardGate()


def test_fx_functional_hardsigmoid(torch_x86, rng):
    """F.hardsigmoid becomes quantized::hardsigmoid (qF.hardsigmoid) on the integers, and
    the qparams after it get torch's names (torch numbers the hardsigmoid's dropped
    output qparams first), so the state dicts have the same keys."""
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 8, 8), scale=3.0)
    _, _, ct, cq = _fx_static(torch, _hard_gate, xs, "x86")
    assert "qF.hardsigmoid(conv)" in cq.code
    assert sorted(cq.state_dict()) == sorted(ct.state_dict())
    _same_outputs(cq, ct, xs, torch)


# ---- a transformer encoder block (graph mode) -----------------------------------------------
def _encoder(L, act="gelu", tokens=6, d=8):
    N = L.nn

    class EncoderBlock(N.Module):
        """Pre-norm block: a token-mixing Linear (over the sequence axis) and an MLP,
        each with a residual add."""

        def __init__(self):
            super().__init__()
            self.ln1 = N.LayerNorm(d)
            self.token_mix = N.Linear(tokens, tokens)
            self.ln2 = N.LayerNorm(d)
            self.fc1 = N.Linear(d, 2 * d)
            self.act = N.GELU() if act == "gelu" else N.ReLU()
            self.fc2 = N.Linear(2 * d, d)
            self.head = N.Linear(d, 3)

        def forward(self, x):
            x = x + self.token_mix(self.ln1(x).transpose(1, 2)).transpose(1, 2)
            x = x + self.fc2(self.act(self.fc1(self.ln2(x))))
            return self.head(x)

    return EncoderBlock()


@pytest.mark.parametrize("act", ["gelu", "relu"])
@pytest.mark.parametrize("backend", ["x86", "fbgemm"])
def test_transformer_block_fx(torch_x86, backend, act, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 6, 8))
    _, _, ct, cq = _fx_static(torch, _encoder, xs, backend, act=act)
    assert _same_quantized_modules(cq, ct) == 4
    _same_outputs(cq, ct, xs, torch)


# ---- QAT ------------------------------------------------------------------------------------
def _train_both(torch, tm, qm, xs, target_shape, steps=3, lr=0.02):
    """A few SGD steps on the same data; returns the losses (torch, qlearn). Dropout is
    put in eval mode in both (the two libraries draw different random masks)."""
    for model in (tm, qm):
        for m in model.modules():
            if type(m).__name__ == "Dropout":
                m.eval()
    topt = torch.optim.SGD(tm.parameters(), lr=lr)
    qopt = ql.optim.SGD(qm.parameters(), lr=lr)
    targets = np.random.default_rng(3).standard_normal((steps, *target_shape)).astype(
        np.float32)
    losses = []
    for step in range(steps):
        x = xs[step % len(xs)]
        tloss = ((tm(torch.from_numpy(x)) - torch.from_numpy(targets[step])) ** 2).mean()
        topt.zero_grad()
        tloss.backward()
        topt.step()
        qloss = ((qm(x) - targets[step]) ** 2).mean()
        qopt.zero_grad()
        qloss.backward()
        qopt.step()
        losses.append((float(tloss), float(qloss.data)))
    return losses


def _after_training(torch, pt, pq, losses):
    """The losses and the trained weights agree to float32 rounding (see the module
    docstring); then torch's trained state is loaded into qlearn's model."""
    for tloss, qloss in losses:
        assert qloss == pytest.approx(tloss, rel=1e-4)
    tparams = dict(pt.named_parameters())
    for name, p in pq.named_parameters():
        np.testing.assert_allclose(p.data, tparams[name].detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    _same_observers(pq, pt)


@pytest.mark.parametrize("build, fuse_of", [
    (_resnet, lambda torch: RESNET_FUSE),
    (_mobilenet_v2, _mobilenet_v2_fuse),
    (_mobilenet_v3, _mobilenet_v3_fuse)], ids=["resnet", "mobilenet_v2", "mobilenet_v3"])
def test_qat_eager(torch_x86, build, fuse_of, rng):
    torch = torch_x86
    ta = torch.ao.quantization
    xs = _inputs(rng, (4, 3, 16, 16), n=2)
    tm, qm = _pair(build, torch)
    tm = ta.fuse_modules_qat(tm.train(), fuse_of(torch))
    qm = tq.fuse_modules_qat(qm.train(), fuse_of(torch))
    tm.qconfig = ta.get_default_qat_qconfig("x86")
    qm.qconfig = tq.get_default_qat_qconfig("x86")
    ta.prepare_qat(tm, inplace=True)
    tq.prepare_qat(qm, inplace=True)
    _after_training(torch, tm, qm, _train_both(torch, tm, qm, xs, (4, 5)))
    tm.eval()
    qm.eval()
    ct, cq = ta.convert(tm), tq.convert(qm)
    assert _same_quantized_modules(cq, ct) > 5
    _same_outputs(cq, ct, xs, torch)


@pytest.mark.parametrize("build", [_resnet, _mobilenet_v2, _mobilenet_v3],
                         ids=["resnet", "mobilenet_v2", "mobilenet_v3"])
def test_qat_fx(torch_x86, build, rng):
    torch = torch_x86
    from torch.ao.quantization import quantize_fx as tfx
    xs = _inputs(rng, (4, 3, 16, 16), n=2)
    tm, qm = _pair(build, torch, eager=False)
    pt = tfx.prepare_qat_fx(tm.train(), torch.ao.quantization.get_default_qat_qconfig_mapping(
        "x86"), (torch.from_numpy(xs[0]),))
    pq = qfx.prepare_qat_fx(qm.train(), tq.get_default_qat_qconfig_mapping("x86"), (xs[0],))
    _after_training(torch, pt, pq, _train_both(torch, pt, pq, xs, (4, 5)))
    ct, cq = tfx.convert_fx(pt.eval()), qfx.convert_fx(pq.eval())
    assert _same_quantized_modules(cq, ct) > 5
    _same_outputs(cq, ct, xs, torch)


# ---- dynamic quantization and embeddings ----------------------------------------------------
def _recurrent(L, kind="LSTM"):
    N = L.nn

    class Tagger(N.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(N, kind)(5, 6, num_layers=2, batch_first=True)
            self.fc = N.Linear(6, 3)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y)

    return Tagger()


@pytest.mark.parametrize("mode", ["eager", "fx"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_dynamic_recurrent_and_linear(torch_x86, kind, mode, rng):
    torch = torch_x86
    ta = torch.ao.quantization
    tm, qm = _pair(_recurrent, torch, kind=kind)
    tm.eval()
    qm.eval()
    xs = _inputs(rng, (2, 4, 5), scale=2.0)
    if mode == "eager":
        ct = ta.quantize_dynamic(tm, {getattr(torch.nn, kind), torch.nn.Linear},
                                 dtype=torch.qint8)
        cq = tq.quantize_dynamic(qm, {getattr(nn, kind), nn.Linear}, dtype=ql.qint8)
    else:
        from torch.ao.quantization import quantize_fx as tfx
        tmap = ta.QConfigMapping().set_object_type(torch.nn.Linear, ta.default_dynamic_qconfig) \
            .set_object_type(getattr(torch.nn, kind), ta.default_dynamic_qconfig)
        qmap = tq.QConfigMapping().set_object_type(nn.Linear, tq.default_dynamic_qconfig) \
            .set_object_type(getattr(nn, kind), tq.default_dynamic_qconfig)
        ct = tfx.convert_fx(tfx.prepare_fx(tm, tmap, (torch.from_numpy(xs[0]),)))
        cq = qfx.convert_fx(qfx.prepare_fx(qm, qmap, (xs[0],)))
    for name in ("rnn", "fc"):
        assert repr(getattr(cq, name)).replace("qlearn", "torch") == repr(getattr(ct, name))
    np.testing.assert_array_equal(_ints(cq.fc.weight()), _ints(ct.fc.weight()))
    for x in xs:
        with torch.no_grad():
            yt = ct(torch.from_numpy(x)).numpy()
        # float outputs from int32 sums times float scales, in FBGEMM's order: ulps
        np.testing.assert_allclose(_out(cq(x)), yt, rtol=0, atol=2e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_weight_only(torch_x86, mode, rng):
    torch = torch_x86
    N = {"t": torch.nn, "q": nn}

    def build(lib):
        m = N[lib].Sequential()
        m.emb = N[lib].EmbeddingBag(20, 6, mode=mode)
        return m

    tm, qm = build("t"), build("q")
    _randomise(torch, tm)
    _load_from_torch(qm, tm)
    tm.emb.qconfig = torch.ao.quantization.float_qparams_weight_only_qconfig
    qm.emb.qconfig = tq.float_qparams_weight_only_qconfig
    ct = torch.ao.quantization.convert(torch.ao.quantization.prepare(tm))
    cq = tq.convert(tq.prepare(qm))
    assert repr(cq.emb).replace("qlearn", "torch") == repr(ct.emb)
    tw, qw = ct.emb.weight(), cq.emb.weight()
    np.testing.assert_array_equal(_ints(qw), _ints(tw))
    np.testing.assert_array_equal(np.asarray(qw.q_per_channel_scales()),
                                  tw.q_per_channel_scales().numpy())
    np.testing.assert_array_equal(np.asarray(qw.q_per_channel_zero_points()),
                                  tw.q_per_channel_zero_points().numpy())
    indices = rng.integers(0, 20, 11)
    offsets = np.array([0, 3, 3, 7])
    with torch.no_grad():
        yt = ct.emb(torch.from_numpy(indices), torch.from_numpy(offsets)).numpy()
    yq = _out(cq.emb(indices, offsets))
    if mode == "sum":
        np.testing.assert_array_equal(yq, yt)
        return
    # torch quirk: its quantized EmbeddingBag passes mode=0 to quantized::embedding_bag_byte,
    # which only sums, so a converted "mean" or "max" bag sums (docs/workflow.md); qlearn
    # keeps the mode: compared with the bags of torch's dequantized rows
    rows = tw.dequantize().numpy()
    bags = np.split(indices, offsets[1:])
    ref = np.stack([getattr(rows[b], mode)(axis=0) if len(b) else np.zeros(6, np.float32)
                    for b in bags])
    np.testing.assert_allclose(yq, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(yt, np.stack([rows[b].sum(axis=0) for b in bags]),
                               rtol=1e-6, atol=1e-6)

# ---- the numeric suite ----------------------------------------------------------------------
def _values(v):
    """A logged value as a float array (quantized values dequantized)."""
    if isinstance(v, (list, tuple)):
        return [_values(e) for e in v]
    if hasattr(v, "is_quantized") and (v.is_quantized is True or (callable(v.is_quantized)
                                                                  or v.is_quantized)):
        v = v.dequantize()
    if hasattr(v, "detach"):
        v = v.detach()
    return np.asarray(v.numpy() if hasattr(v, "numpy") else getattr(v, "data", v))


def _same_logged(ours, theirs, first_sample=False):
    """The same keys; the quantized side bit for bit, the float side to float32
    rounding (float layers are not bit-reproducible between the libraries).

    ``first_sample``: torch's ShadowLogger keeps ``x[0]`` of any output with
    ``len(x) > 1`` (meant for tuples, it also cuts a batch to its first sample); qlearn's
    keeps the whole batch (docs/debugging.md), so only the first sample is compared."""
    assert sorted(ours) == sorted(theirs) and ours
    for key in theirs:
        assert sorted(ours[key]) == sorted(theirs[key]), key
        for side in theirs[key]:
            a, b = _values(ours[key][side]), _values(theirs[key][side])
            assert len(a) == len(b), (key, side)
            for u, v in zip(a, b):
                if first_sample and u.ndim and len(u) > 1:
                    u = u[0]
                assert u.shape == v.shape, (key, side)
                if side == "quantized":
                    np.testing.assert_array_equal(u, v, err_msg=f"{key} {side}")
                else:
                    np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5,
                                               err_msg=f"{key} {side}")


def _numeric_suite(torch, ft, fq, ct, cq, x, swap):
    """compare_weights, compare_model_outputs and compare_model_stub of both libraries
    on the same float and converted models."""
    import torch.ao.ns._numeric_suite as tns
    # torch's quantized Linear keeps (weight, bias) in one packed entry of its state dict,
    # qlearn's nnq.Linear has ``weight`` and ``bias`` keys (docs/workflow.md, "Differences
    # from PyTorch"): the same weight under another key
    theirs = {k.replace("._packed_params._packed_params", ".weight"): v for k, v in
              tns.compare_weights(ft.state_dict(), ct.state_dict()).items()}
    ours = ns.compare_weights(fq.state_dict(), cq.state_dict())
    assert sorted(ours) == sorted(theirs) and ours
    for key in theirs:
        np.testing.assert_array_equal(_values(ours[key]["float"]),
                                      _values(theirs[key]["float"]), err_msg=key)
        np.testing.assert_array_equal(_ints(ours[key]["quantized"]),
                                      _ints(theirs[key]["quantized"]), err_msg=key)
    tx = torch.from_numpy(x)
    _same_logged(ns.compare_model_outputs(copy.deepcopy(fq), copy.deepcopy(cq), x),
                 tns.compare_model_outputs(copy.deepcopy(ft), copy.deepcopy(ct), tx))
    tswap, qswap = swap
    _same_logged(ns.compare_model_stub(copy.deepcopy(fq), copy.deepcopy(cq), qswap, x),
                 tns.compare_model_stub(copy.deepcopy(ft), copy.deepcopy(ct), tswap, tx),
                 first_sample=True)
    return len(theirs)


@pytest.mark.parametrize("build, fuse_of, count", [
    (_resnet, lambda torch: RESNET_FUSE, 7),
    (_mobilenet_v2, _mobilenet_v2_fuse, 11),
    (_mobilenet_v3, _mobilenet_v3_fuse, 8)], ids=["resnet", "mobilenet_v2", "mobilenet_v3"])
def test_numeric_suite(torch_x86, build, fuse_of, count, rng):
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 16, 16))
    ft, fq, ct, cq = _eager_static(torch, build, fuse_of(torch), xs, "x86")
    assert _numeric_suite(torch, ft, fq, ct, cq, xs[0],
                          ({torch.nn.Linear, torch.nn.Conv2d}, {nn.Linear, nn.Conv2d})) == count


@pytest.mark.parametrize("build", [_resnet, _mobilenet_v3], ids=["resnet", "mobilenet_v3"])
def test_fx_state_dict_keys(torch_x86, build, rng):
    """A converted graph's state dict has torch's keys (the quantize nodes' scale and
    zero-point buffers included) and values, but for the packed Linear entry."""
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 16, 16))
    _, _, ct, cq = _fx_static(torch, build, xs, "x86", eager=False)
    theirs = _state_dict_from_torch(ct)
    ours = cq.state_dict()
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        if isinstance(value, ql.QTensor):
            np.testing.assert_array_equal(_ints(ours[key]), _ints(value), err_msg=key)
        elif value is not None:
            np.testing.assert_array_equal(np.asarray(getattr(ours[key], "data", ours[key])),
                                          np.asarray(value), err_msg=key)


# ---- state dicts ----------------------------------------------------------------------------
def _qtensor_from_torch(t):
    """A torch quantized tensor as a qlearn QTensor with the same integers and qparams."""
    dtype = {"torch.quint8": ql.quint8, "torch.qint8": ql.qint8,
             "torch.qint32": ql.qint32}[str(t.dtype)]
    data = t.int_repr().numpy()
    if "per_tensor" in str(t.qscheme()):
        return ql.QTensor(data, dtype, ql.per_tensor_affine, t.q_scale(), t.q_zero_point())
    return ql.QTensor(data, dtype, ql.per_channel_affine, 1.0, 0,
                      t.q_per_channel_scales().numpy(),
                      t.q_per_channel_zero_points().numpy(), t.q_per_channel_axis())


def _state_dict_from_torch(ct):
    """torch's converted state dict in qlearn's keys and types: the same keys but for
    torch's packed Linear entry, ``(weight, bias)`` under ``_packed_params._packed_params``
    plus its ``dtype``, which qlearn keeps as ``weight`` and ``bias``."""
    out = {}
    for key, value in ct.state_dict().items():
        if key.endswith("._packed_params.dtype"):
            continue
        if key.endswith("._packed_params._packed_params"):
            prefix = key[:-len("_packed_params._packed_params")]
            weight, bias = value
            out[prefix + "weight"] = _qtensor_from_torch(weight)
            out[prefix + "bias"] = None if bias is None else bias.detach().numpy()
        elif getattr(value, "is_quantized", False):
            out[key] = _qtensor_from_torch(value)
        else:
            out[key] = value.detach().numpy() if hasattr(value, "numpy") else value
    return out


def test_resnet_state_dict_round_trip(torch_x86, rng, tmp_path):
    """A converted qlearn model loads torch's converted state dict (keys translated as
    above) and then computes torch's integers; ``ql.save`` / ``ql.load`` keep it exactly."""
    torch = torch_x86
    xs = _inputs(rng, (2, 3, 12, 12))
    _, _, ct, cq = _eager_static(torch, _resnet, RESNET_FUSE, xs, "x86")
    # another qlearn model, converted from other weights and data: every value differs
    _, _, _, other = _eager_static(torch, _resnet, RESNET_FUSE,
                                   _inputs(np.random.default_rng(7), (2, 3, 12, 12),
                                           scale=2.0), "x86")
    theirs = _state_dict_from_torch(ct)
    assert sorted(theirs) == sorted(cq.state_dict())
    result = other.load_state_dict(theirs)
    assert not result.missing_keys and not result.unexpected_keys
    _same_quantized_modules(other, ct)
    _same_outputs(other, ct, xs, torch)
    ql.save(other.state_dict(), tmp_path / "resnet.qlearn")
    _, _, _, again = _eager_static(torch, _resnet, RESNET_FUSE, xs[1:], "x86")
    again.load_state_dict(ql.load(tmp_path / "resnet.qlearn"))
    _same_outputs(again, ct, xs, torch)


# ---- the default qconfig mappings -----------------------------------------------------------
def _describe(factory):
    """An observer or fake quantizer, made from ``factory``, as comparable plain values."""
    m = factory()
    inner = getattr(m, "activation_post_process", m)
    fields = [type(m).__name__, type(inner).__name__]
    for obj in (m, inner):
        for attr in ("dtype", "qscheme", "quant_min", "quant_max", "reduce_range"):
            value = getattr(obj, attr, None)
            # (qlearn's float dtypes are NumPy's types, torch's torch.float16 ...)
            text = getattr(value, "__name__", None) or str(value)
            fields.append(None if value is None else text.rsplit(".", 1)[-1])
    scale = getattr(inner, "scale", None)
    fields.append(None if scale is None or callable(scale) else float(np.asarray(
        scale.detach().numpy() if hasattr(scale, "detach") else scale).reshape(-1)[0]))
    return fields


@pytest.mark.parametrize("qat", [False, True], ids=["ptq", "qat"])
@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
def test_default_qconfig_mapping_is_torchs(torch_mod, backend, qat):
    """The same object types in the same order, each with the same observers (types,
    dtypes, ranges, fixed scales) as torch's default mapping."""
    ta = torch_mod.ao.quantization
    ours = (tq.get_default_qat_qconfig_mapping if qat else tq.get_default_qconfig_mapping)(
        backend)
    theirs = (ta.get_default_qat_qconfig_mapping if qat else ta.get_default_qconfig_mapping)(
        backend)

    def name(k):
        return getattr(k, "__name__", k)

    assert [name(k) for k in ours.object_type_qconfigs] == \
        [name(k) for k in theirs.object_type_qconfigs]
    pairs = [("global", ours.global_qconfig, theirs.global_qconfig)] + [
        (name(k), q, t) for (k, q), t in zip(ours.object_type_qconfigs.items(),
                                             theirs.object_type_qconfigs.values())]
    for key, q, t in pairs:
        assert _describe(q.activation) == _describe(t.activation), (key, "activation")
        assert _describe(q.weight) == _describe(t.weight), (key, "weight")


def test_quantize_state_dict_bad_scale():
    """torch's 1-element ``scale`` loads; more than one value is refused, naming the key."""
    import qlearn.nn.quantized as nnq
    m = nn.Sequential(nnq.Quantize(0.5, 3, ql.quint8))
    m.load_state_dict({"0.scale": np.array([0.25]), "0.zero_point": np.array([7])})
    assert (m[0].scale, m[0].zero_point) == (0.25, 7)
    with pytest.raises(ValueError, match=r"`0\.scale` must hold one value, got shape \(2,\)"):
        m.load_state_dict({"0.scale": np.array([0.25, 0.5]), "0.zero_point": np.array(7)})
    q = ql.quantize_per_tensor(ql.zeros(2, 3, 1, 1), 0.1, 4, ql.quint8)
    assert ql.flatten(q, 1).is_quantized and ql.reshape(q, (2, 3)).q_zero_point() == 4
