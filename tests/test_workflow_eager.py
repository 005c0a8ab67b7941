"""The eager workflow end to end against torch 2.13: fuse, stubs, prepare, calibrate,
convert (static per-tensor and per-channel), prepare_qat + training + convert, with the
same weights and inputs.  Checked after each step: the module tree (qualified names and
class names), the observers' and quantized modules' qparams, the weight integers and the
output integers of the converted models."""
import copy

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.quantization as tq
from qlearn import nn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::UserWarning", "ignore::FutureWarning")


# ---- one model, written once for both libraries -----------------------------------------
def make_net(torch=None):
    """A conv-bn-relu CNN with a residual add (FloatFunctional), pooling and a
    linear-relu head, as a torch module (``torch`` given) or a qlearn one."""
    if torch is not None:
        lib, stubs = torch.nn, torch.ao.quantization
        FloatFunctional = torch.ao.nn.quantized.FloatFunctional
    else:
        lib, stubs, FloatFunctional = nn, tq, nnq.FloatFunctional

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.quant = stubs.QuantStub()
            self.conv1 = lib.Conv2d(3, 8, 3, padding=1)
            self.bn1 = lib.BatchNorm2d(8)
            self.relu1 = lib.ReLU()
            self.conv2 = lib.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = lib.BatchNorm2d(8)
            self.relu2 = lib.ReLU()
            self.skip = FloatFunctional()
            self.pool = lib.MaxPool2d(2)
            self.flatten = lib.Flatten()
            self.fc1 = lib.Linear(8 * 5 * 5, 16)
            self.relu3 = lib.ReLU()
            self.fc2 = lib.Linear(16, 5)
            self.dequant = stubs.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.relu1(self.bn1(self.conv1(x)))
            y = self.relu2(self.bn2(self.conv2(x)))
            x = self.skip.add(x, y)
            x = self.flatten(self.pool(x))
            x = self.fc2(self.relu3(self.fc1(x)))
            return self.dequant(x)

    return Net()


FUSE = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]]


def twin_models(torch, seed=0):
    """A torch model with non-trivial batch-norm statistics and its qlearn copy."""
    torch.manual_seed(seed)
    tm = make_net(torch)
    with torch.no_grad():
        for bn in (tm.bn1, tm.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    qm = make_net()
    qm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, qm


def tree(model):
    """The module tree as (qualified name, class name) pairs (torch's quantized Linear
    keeps its packed weight in a child module, qlearn's in an attribute)."""
    return [(name, type(m).__name__) for name, m in model.named_modules()
            if not name.endswith("_packed_params")]


def calibration_data(n=4, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(4, 3, 10, 10)).astype(np.float32) for _ in range(n)]


def assert_same_qparams(tc, qc):
    """Every converted module's output (scale, zero_point) and weight integers equal,
    up to float32 rounding of the observed ranges: the scale to 1e-5 relative, an
    integer off by one (a value at a rounding tie) in fewer than 1 % of the weights."""
    tmods, qmods = dict(tc.named_modules()), dict(qc.named_modules())
    checked = 0
    for name, t in tmods.items():
        if not hasattr(t, "scale"):
            continue
        q = qmods[name]
        assert float(q.scale) == pytest.approx(float(t.scale), rel=1e-5), name
        assert int(q.zero_point) == int(t.zero_point), name
        if hasattr(t, "weight") and callable(t.weight):
            tw, qw = t.weight(), q.weight()
            diff = np.abs(qw.int_repr().astype(int) - tw.int_repr().numpy().astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01, name
            if qw.qscheme().is_per_channel:
                np.testing.assert_allclose(qw.q_per_channel_scales(),
                                           tw.q_per_channel_scales().numpy(), rtol=1e-6)
            else:
                assert qw.q_scale() == pytest.approx(tw.q_scale(), rel=1e-6)
        checked += 1
    return checked


def count_steps(qy, ty, scale):
    """How many outputs differ, in quantization steps of the output scale."""
    steps = np.rint(np.abs(qy - ty) / scale).astype(int)
    return steps.max(), int((steps > 0).sum())


# ---- static post-training quantization ----------------------------------------------------
@pytest.mark.parametrize("qconfig_name", ["per_tensor", "per_channel"])
def test_static_ptq_matches_torch(torch_mod, qconfig_name):
    torch = torch_mod
    torch.backends.quantized.engine = "x86"
    tm, qm = twin_models(torch)
    tm.eval()
    qm.eval()
    tf = torch.ao.quantization.fuse_modules(tm, FUSE)
    qf = tq.fuse_modules(qm, FUSE)
    assert tree(qf) == tree(tf)
    if qconfig_name == "per_tensor":
        tf.qconfig, qf.qconfig = torch.ao.quantization.default_qconfig, tq.default_qconfig
    else:
        tf.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        qf.qconfig = tq.get_default_qconfig("x86")
    tp, qp = torch.ao.quantization.prepare(tf), tq.prepare(qf)
    assert tree(qp) == tree(tp)
    for x in calibration_data():
        tp(torch.from_numpy(x))
        qp(x)
    # the observers saw the same data: the same ranges, to float32 rounding (the float
    # convolutions of the prepared models sum in different orders)
    tobs, qobs = {}, {}
    import importlib
    importlib.import_module("torch.ao.quantization.quantize")._get_observer_dict(tp, tobs)
    tq.get_observer_dict(qp, qobs)
    assert sorted(tobs) == sorted(qobs)
    for key in tobs:
        for attr in ("min_val", "max_val"):
            assert float(getattr(qobs[key], attr)) == pytest.approx(
                float(getattr(tobs[key], attr)), rel=1e-5, abs=1e-6), (key, attr)
    tc, qc = torch.ao.quantization.convert(tp), tq.convert(qp)
    assert tree(qc) == tree(tc)
    assert assert_same_qparams(tc, qc) == 6     # quant, conv1, conv2, skip, fc1, fc2
    x = calibration_data(1, seed=7)[0]
    worst, n_diff = count_steps(qc(x), tc(torch.from_numpy(x)).numpy(), qc.fc2.scale)
    assert worst <= 1 and n_diff <= 2, (worst, n_diff)
    # nothing was changed in the float models
    assert not hasattr(qf.conv1, "activation_post_process")
    assert not hasattr(qf, "_qlearn_call_guard")
    assert type(qf.skip) is nnq.FloatFunctional


def test_quantize_one_call_matches_prepare_convert(torch_mod):
    tm, qm = twin_models(torch_mod)
    qm = tq.fuse_modules(qm.eval(), FUSE)
    qm.qconfig = tq.get_default_qconfig("x86")
    data = calibration_data()
    q1 = tq.quantize(qm, tq.default_eval_fn, [data])
    p = tq.prepare(qm)
    tq.default_eval_fn(p, data)
    q2 = tq.convert(p)
    x = calibration_data(1, seed=3)[0]
    assert_array_equal(q1(x), q2(x))
    assert type(qm.conv1).__name__ == "ConvReLU2d" and type(q1.conv1).__name__ == "ConvReLU2d"
    assert type(q1.conv1).__module__.startswith("qlearn.nn.intrinsic.quantized")


# ---- QAT ----------------------------------------------------------------------------------
def _qat_twins(torch, model_fn, fuse, seed=0):
    torch.backends.quantized.engine = "x86"
    torch.manual_seed(seed)
    tm = model_fn(torch)
    qm = model_fn(None)
    qm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tm.train()
    qm.train()
    tf = torch.ao.quantization.fuse_modules_qat(tm, fuse)
    qf = tq.fuse_modules_qat(qm, fuse)
    assert tree(qf) == tree(tf)
    # FakeQuantize (version 0): torch's fused per-channel kernel behind version 1's
    # FusedMovingAvgObsFakeQuantize takes a symmetric scale of max(-min / 128,
    # max / 127), not its observer's max(-min, max) / 127.5
    tf.qconfig = torch.ao.quantization.get_default_qat_qconfig("x86", version=0)
    qf.qconfig = tq.get_default_qat_qconfig("x86", version=0)
    tp, qp = torch.ao.quantization.prepare_qat(tf), tq.prepare_qat(qf)
    assert tree(qp) == tree(tp)
    return tp, qp


def _train_both(torch, tp, qp, x_shape, y_shape, steps=4, seed=5):
    topt = torch.optim.SGD(tp.parameters(), lr=0.05)
    qopt = ql.optim.SGD(qp.parameters(), lr=0.05)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        x = rng.normal(size=x_shape).astype(np.float32)
        target = rng.normal(size=y_shape).astype(np.float32)
        tloss = ((tp(torch.from_numpy(x)) - torch.from_numpy(target)) ** 2).mean()
        topt.zero_grad()
        tloss.backward()
        topt.step()
        qloss = ((qp(x) - target) ** 2).mean()
        qopt.zero_grad()
        qloss.backward()
        qopt.step()
        losses.append((float(tloss), float(qloss.data)))
    tp.eval()
    qp.eval()
    return losses


def _conv_stack(torch):
    lib = torch.nn if torch is not None else nn
    stubs = torch.ao.quantization if torch is not None else tq
    return lib.Sequential(stubs.QuantStub(), lib.Conv2d(2, 8, 3), lib.BatchNorm2d(8),
                          lib.ReLU(), lib.Conv2d(8, 4, 3), lib.ReLU(), stubs.DeQuantStub())


def test_qat_conv_stack_matches_torch_exactly(torch_mod):
    """Conv-BN-ReLU and Conv-ReLU, prepare_qat, four SGD steps, convert: the same tree
    after each step, the same qparams and weight integers, the same output integers."""
    torch = torch_mod
    tp, qp = _qat_twins(torch, _conv_stack, [["1", "2", "3"], ["4", "5"]])
    for tloss, qloss in _train_both(torch, tp, qp, (6, 2, 10, 10), (6, 4, 6, 6)):
        assert qloss == pytest.approx(tloss, rel=1e-5)
    tc, qc = torch.ao.quantization.convert(tp), tq.convert(qp)
    assert tree(qc) == tree(tc)
    assert [type(m).__name__ for m in qc] == ["Quantize", "ConvReLU2d", "Identity",
                                              "Identity", "ConvReLU2d", "Identity",
                                              "DeQuantize"]
    assert assert_same_qparams(tc, qc) == 3
    x = np.random.default_rng(11).random((3, 2, 10, 10), dtype=np.float32)
    # The integers, not the dequantized floats: the output scale comes from the ranges
    # the observers saw in training, through float convolutions that sum in another
    # order in torch and qlearn, so it may differ in its last bit (seen on an AMD Zen 3,
    # where FBGEMM runs torch's x86 engine: 0.011763007 against 0.011763006).
    qs, ts = float(qc[4].scale), float(tc[4].scale)
    assert qs == pytest.approx(ts, rel=1e-6)
    assert_array_equal(np.rint(qc(x) / qs), np.rint(tc(torch.from_numpy(x)).numpy() / ts))


def test_qat_residual_net_close_to_torch(torch_mod):
    """The residual CNN with pooling and a linear head: the same trees, the first loss
    equal; afterwards the runs may drift apart (on CPUs where torch's float32 sqrt is not
    correctly rounded one weight gradient of conv1 differs, see below), so the check is a
    bound."""
    torch = torch_mod
    tp, qp = _qat_twins(torch, make_net_for_qat, FUSE)
    losses = _train_both(torch, tp, qp, (8, 3, 10, 10), (8, 5))
    assert losses[0][1] == pytest.approx(losses[0][0], rel=1e-5)
    for tloss, qloss in losses:
        assert qloss == pytest.approx(tloss, rel=2e-2)
    tc, qc = torch.ao.quantization.convert(tp), tq.convert(qp)
    assert tree(qc) == tree(tc)
    tmods, qmods = dict(tc.named_modules()), dict(qc.named_modules())
    for name in ("quant", "conv1", "conv2", "skip", "fc1", "fc2"):
        assert float(qmods[name].scale) == pytest.approx(float(tmods[name].scale), rel=2e-2)
    x = np.random.default_rng(12).normal(size=(6, 3, 10, 10)).astype(np.float32)
    worst, _ = count_steps(qc(x), tc(torch.from_numpy(x)).numpy(), tmods["fc2"].scale)
    assert worst <= 2


def _torch_sqrt_is_correctly_rounded(torch, model):
    """Whether torch's float32 sqrt of every batch norm's ``running_var + eps`` is
    NumPy's (correctly rounded).  torch 2.13's vectorized sqrt is not always, and where
    it misses depends on the CPU it dispatches to: on an AMD Zen 4, sqrt(0.50320756) gave
    0.7093712 (correct: 0.70937127), in a channel of bn1 whose largest folded weight then
    lands on the other side of 127.5, so the gradients differ; on an Intel Xeon
    (Sapphire Rapids class) sqrt(0.74986655) gives 0.8659483 (correct: 0.8659484) in a
    channel with no weight at a rounding boundary, and the gradients agree.  So the test
    below fails only if the gradients differ although torch's sqrt was exact."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            v = m.running_var.detach() + m.eps
            ours = np.sqrt(v.numpy().astype(np.float32))
            if not np.array_equal(torch.sqrt(v).numpy(), ours):
                return False
    return True


def test_qat_residual_net_first_step_gradients_equal(torch_mod):
    torch = torch_mod
    tp, qp = _qat_twins(torch, make_net_for_qat, FUSE)
    x = np.random.default_rng(5).normal(size=(8, 3, 10, 10)).astype(np.float32)
    (tp(torch.from_numpy(x)) ** 2).mean().backward()
    (qp(x) ** 2).mean().backward()
    try:
        for (name, t), (_, q) in zip(tp.named_parameters(), qp.named_parameters()):
            np.testing.assert_allclose(q.grad.data, t.grad.numpy(), atol=1e-6,
                                       err_msg=name)
    except AssertionError:
        if _torch_sqrt_is_correctly_rounded(torch, tp):
            raise
        pytest.xfail("torch's float32 sqrt is not correctly rounded on this CPU: a batch "
                     "norm's scale factor differs by one ulp in a channel whose largest "
                     "folded weight lands on the other side of 127.5, so the STE masks it "
                     "out in torch (gradient 0) and not in qlearn")


def make_net_for_qat(torch):
    tm = make_net(torch)
    if torch is not None:
        with torch.no_grad():
            for bn in (tm.bn1, tm.bn2):
                bn.running_var.uniform_(0.5, 2.0)
    return tm


def test_quantize_qat_one_call():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 3), nn.ReLU(), tq.DeQuantStub())
    m.qconfig = tq.get_default_qat_qconfig("x86")
    data = [np.random.default_rng(i).normal(size=(5, 4)).astype(np.float32) for i in range(3)]

    def train(model, batches):
        opt = ql.optim.SGD(model.parameters(), lr=0.01)
        for x in batches:
            loss = (model(x) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()

    q = tq.quantize_qat(m, train, [data])
    assert [type(c).__name__ for c in q] == ["Quantize", "Linear", "ReLU", "DeQuantize"]
    assert type(q[1]) is nnq.Linear and type(m[1]) is nn.Linear
    assert q(data[0]).shape == (5, 3)


# ---- qconfig propagation, inplace, wrappers -----------------------------------------------
def test_inplace_false_leaves_the_float_model_untouched():
    m = nn.Sequential(tq.QuantStub(), nn.Conv2d(2, 3, 3), nn.ReLU(), tq.DeQuantStub())
    m.qconfig = tq.default_qconfig
    before = {k: np.array(v) for k, v in m.state_dict().items()}
    p = tq.prepare(m)
    p(np.random.default_rng(0).normal(size=(2, 2, 5, 5)).astype(np.float32))
    q = tq.convert(p)
    for name, mod in m.named_modules():
        assert "activation_post_process" not in mod._modules, name
        assert not mod._forward_hooks and not mod._forward_pre_hooks, name
    for k, v in m.state_dict().items():
        assert_array_equal(v, before[k])
    assert type(m[1]) is nn.Conv2d and type(q[1]) is nnq.Conv2d
    assert p[1].weight is not m[1].weight
    # the prepared model is untouched by convert(inplace=False) too
    assert type(p[1]) is nn.Conv2d and "activation_post_process" in p[1]._modules


def test_inplace_true_returns_the_same_object():
    m = tq.QuantWrapper(nn.Linear(3, 2))
    m.qconfig = tq.default_qconfig
    assert tq.prepare(m, inplace=True) is m
    m(np.ones((2, 3), np.float32))
    assert tq.convert(m, inplace=True) is m
    assert type(m.module) is nnq.Linear and not hasattr(m, "qconfig")


def test_qconfig_none_keeps_a_child_float():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 4), tq.DeQuantStub(), nn.Linear(4, 2))
    m.qconfig = tq.default_qconfig
    m[3].qconfig = None
    p = tq.prepare(m)
    assert "activation_post_process" not in p[3]._modules
    p(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    q = tq.convert(p)
    assert [type(c) for c in q] == [nnq.Quantize, nnq.Linear, nnq.DeQuantize, nn.Linear]
    assert q(np.ones((3, 4), np.float32)).shape == (3, 2)


def test_child_qconfig_overrides_the_parent():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(4, 4), nn.Linear(4, 2), tq.DeQuantStub())
    m.qconfig = tq.default_qconfig
    m[2].qconfig = tq.default_per_channel_qconfig
    p = tq.prepare(m)
    p(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    q = tq.convert(p)
    # the weight QTensors are affine with zero point 0, as torch's
    assert not q[1].weight().qscheme().is_per_channel
    assert q[2].weight().qscheme().is_per_channel


def test_propagate_qconfig_by_name_and_type():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    tq.propagate_qconfig_(m, {nn.Linear: tq.default_qconfig,
                              "1": tq.default_per_channel_qconfig, "1.1": None})
    assert m[0].qconfig is tq.default_qconfig
    assert m[1].qconfig is tq.default_per_channel_qconfig
    assert m[1][0].qconfig is tq.default_qconfig        # its type's entry wins over "1"
    assert m[1][1].qconfig is None
    assert m.qconfig is None


def test_propagate_qconfig_matches_torch(torch_mod):
    torch = torch_mod
    tmods = torch.nn.Sequential(torch.nn.Linear(2, 2),
                                torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))
    qmods = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    tqc, qqc = torch.ao.quantization.default_qconfig, tq.default_qconfig
    tpc, qpc = torch.ao.quantization.default_per_channel_qconfig, tq.default_per_channel_qconfig
    torch.ao.quantization.propagate_qconfig_(tmods, {torch.nn.Linear: tqc, "1": tpc,
                                                     "1.1": None})
    tq.propagate_qconfig_(qmods, {nn.Linear: qqc, "1": qpc, "1.1": None})

    def code(qconfig):      # torch wraps each qconfig in a new QConfig: compare kinds
        if qconfig is None:
            return "none"
        return "per_channel" if "PerChannel" in repr(qconfig.weight) else "default"

    assert ([code(m.qconfig) for m in qmods.modules()]
            == [code(m.qconfig) for m in tmods.modules()])


def test_bad_qconfig_is_named():
    m = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"`0` \(nn.Linear\) must be a QConfig"):
        tq.propagate_qconfig_(m, {"0": "x86"})
    with pytest.raises(TypeError, match="qconfig_dict"):
        tq.propagate_qconfig_(m, ["x86"])


def test_quant_wrapper_and_add_quant_dequant():
    lin = nn.Linear(3, 2)
    lin.qconfig = tq.default_qconfig
    w = tq.QuantWrapper(lin)
    assert [n for n, _ in w.named_children()] == ["quant", "dequant", "module"]
    assert w.quant.qconfig is tq.default_qconfig
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    m[0].qconfig = tq.default_qconfig
    m = tq.add_quant_dequant(m)
    assert type(m[0]) is tq.QuantWrapper and type(m[1]) is nn.ReLU
    p = tq.prepare(m)
    p(np.ones((2, 3), np.float32))
    q = tq.convert(p)
    assert type(q[0].module) is nnq.Linear and q(np.ones((2, 3), np.float32)).shape == (2, 3)
    with pytest.raises(TypeError, match="`module` must be an nn.Module"):
        tq.QuantWrapper(3)


def test_get_observer_dict_and_swap_module():
    m = nn.Sequential(tq.QuantStub(), nn.Linear(2, 2))
    m.add_module("2", nnq.FloatFunctional())     # not called by Sequential: no forward
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    d = {}
    tq.get_observer_dict(p, d)
    assert sorted(d) == ["0.activation_post_process", "1.activation_post_process",
                         "2.activation_post_process"]
    p[1](p[0](np.ones((1, 2), np.float32)))
    new = tq.swap_module(p[1], tq.get_default_static_quant_module_mappings())
    assert type(new) is nnq.Linear
    same = tq.swap_module(nn.ReLU6(), tq.get_default_static_quant_module_mappings())
    assert type(same) is nn.ReLU6       # no qconfig: not swapped


def test_non_leaf_observer_list_and_allow_list():
    m = nn.Sequential(tq.QuantStub(), nn.Sequential(nn.Linear(2, 2)), nn.Tanh())
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m, allow_list={nn.Tanh, tq.QuantStub})
    assert "activation_post_process" in p[2]._modules
    assert "activation_post_process" not in p[1][0]._modules
    p = tq.prepare(m, observer_non_leaf_module_list={nn.Sequential})
    assert "activation_post_process" in p[1]._modules


def test_float_functional_becomes_qfunctional_and_matches_qF(rng):
    class Add(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant1, self.quant2 = tq.QuantStub(), tq.QuantStub()
            self.f = nnq.FloatFunctional()
            self.dequant = tq.DeQuantStub()

        def forward(self, a, b):
            return self.dequant(self.f.add_relu(self.quant1(a), self.quant2(b)))

    m = Add()
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    a, b = (rng.normal(size=(3, 7)).astype(np.float32) for _ in range(2))
    p(a, b)
    q = tq.convert(p)
    assert type(q.f) is nnq.QFunctional and type(m.f) is nnq.FloatFunctional
    qa, qb = q.quant1(a), q.quant2(b)
    expected = ql.nn.quantized.functional.add_relu(qa, qb, q.f.scale, q.f.zero_point)
    assert_array_equal(q(a, b), expected.dequantize())


def test_ptq_of_the_copy_is_independent_of_later_float_changes():
    m = tq.QuantWrapper(nn.Linear(3, 2))
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m)
    p(np.ones((1, 3), np.float32))
    q = tq.convert(p)
    y = q(np.ones((1, 3), np.float32)).numpy().copy()
    m.module.weight.data[...] = 100
    p.module.weight.data[...] = 100
    assert_array_equal(q(np.ones((1, 3), np.float32)), y)
    assert copy.deepcopy(q)(np.ones((1, 3), np.float32)).tolist() == y.tolist()


# ---- save / load -------------------------------------------------------------------------
def _converted(data_scale):
    m = make_net()
    m.eval()
    m = tq.fuse_modules(m, FUSE)
    m.qconfig = tq.get_default_qconfig("x86")
    p = tq.prepare(m)
    for x in calibration_data():
        p(x * data_scale)
    return tq.convert(p)


def test_state_dict_saves_and_loads_bit_exactly(tmp_path):
    q = _converted(1.0)
    path = tmp_path / "converted.qlearn"
    ql.save(q.state_dict(), path)
    fresh = _converted(3.0)        # other weights' qparams: everything must be loaded
    x = calibration_data(1, seed=9)[0]
    assert not np.array_equal(fresh(x), q(x))
    result = fresh.load_state_dict(ql.load(path))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert_array_equal(fresh(x), q(x))
    assert fresh.quant.scale == q.quant.scale and fresh.skip.scale == q.skip.scale


# ---- custom modules ----------------------------------------------------------------------
class _Scale(nn.Module):
    """A float module the mappings do not know: y = 2 x."""

    def forward(self, x):
        return x * 2


class _ObservedScale(nn.Module):
    def forward(self, x):
        return x * 2

    @classmethod
    def from_float(cls, mod):
        return cls()


class _QuantizedScale(nn.Module):
    """The int8 form: the same integers, twice the scale."""

    def __init__(self, scale, zero_point):
        super().__init__()
        self.scale, self.zero_point = scale, zero_point

    def forward(self, q):
        return ql.QTensor(q.int_repr(), q.dtype, q.qscheme(), q.q_scale() * 2,
                          q.q_zero_point())

    @classmethod
    def from_observed(cls, mod):
        s, z = mod.activation_post_process.calculate_qparams()
        return cls(float(s[0]), int(z[0]))


def test_custom_module_classes():
    m = nn.Sequential(tq.QuantStub(), _Scale(), tq.DeQuantStub())
    m.qconfig = tq.default_qconfig
    p = tq.prepare(m, prepare_custom_config_dict={
        "float_to_observed_custom_module_class": {_Scale: _ObservedScale}})
    assert type(p[1]) is _ObservedScale and "activation_post_process" in p[1]._modules
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    p(x)
    q = tq.convert(p, convert_custom_config_dict={
        "observed_to_quantized_custom_module_class": {_ObservedScale: _QuantizedScale}})
    assert type(q[1]) is _QuantizedScale
    np.testing.assert_allclose(q(x), 2 * x, atol=2 * q[0].scale)


def test_static_batch_norm_and_bn_relu_match_torch(torch_mod):
    """A batch norm that cannot be folded (after an add) stays a quantized BatchNorm2d;
    BN + ReLU fuse into BNReLU2d: both against torch."""
    torch = torch_mod
    torch.backends.quantized.engine = "x86"

    def build(t):
        lib = t.nn if t is not None else nn
        stubs = t.ao.quantization if t is not None else tq
        ff = t.ao.nn.quantized.FloatFunctional if t is not None else nnq.FloatFunctional

        class M(lib.Module):
            def __init__(self):
                super().__init__()
                self.quant, self.dequant = stubs.QuantStub(), stubs.DeQuantStub()
                self.conv_a = lib.Conv2d(3, 4, 3, padding=1)
                self.conv_b = lib.Conv2d(3, 4, 1)
                self.add = ff()
                self.bn1, self.bn2, self.relu = lib.BatchNorm2d(4), lib.BatchNorm2d(4), lib.ReLU()

            def forward(self, x):
                x = self.quant(x)
                y = self.bn1(self.add.add(self.conv_a(x), self.conv_b(x)))
                return self.dequant(self.relu(self.bn2(y)))
        return M()

    torch.manual_seed(3)
    tm, qm = build(torch), build(None)
    with torch.no_grad():
        for bn in (tm.bn1, tm.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    qm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tm.eval()
    qm.eval()
    tf = torch.ao.quantization.fuse_modules(tm, [["bn2", "relu"]])
    qf = tq.fuse_modules(qm, [["bn2", "relu"]])
    tf.qconfig, qf.qconfig = torch.ao.quantization.default_qconfig, tq.default_qconfig
    tp, qp = torch.ao.quantization.prepare(tf), tq.prepare(qf)
    assert tree(qp) == tree(tp)
    for x in calibration_data():
        tp(torch.from_numpy(x))
        qp(x)
    tc, qc = torch.ao.quantization.convert(tp), tq.convert(qp)
    assert tree(qc) == tree(tc)
    assert [type(m).__name__ for m in (qc.bn1, qc.bn2, qc.relu)] == ["BatchNorm2d",
                                                                     "BNReLU2d", "Identity"]
    x = calibration_data(1, seed=4)[0]
    worst, n_diff = count_steps(qc(x), tc(torch.from_numpy(x)).numpy(), qc.bn2.scale)
    assert worst <= 1 and n_diff <= x.size // 1000


def test_subpackages_are_attributes_of_qlearn():
    """``import qlearn as ql`` then ``ql.nn``, ``ql.optim``, ... as after ``import torch``
    (checked in a fresh interpreter, where nothing has imported them yet)."""
    import subprocess
    import sys
    code = ("import qlearn as ql, sys; assert 'qlearn.quantization' not in sys.modules; "
            "print(ql.nn.Linear.__name__, ql.optim.SGD.__name__, "
            "ql.quantization.prepare.__name__, ql.quantizers.__name__, "
            "ql.datasets.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["Linear", "SGD", "prepare", "qlearn.quantizers", "qlearn.datasets"]
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        ql.nonexistent  # noqa: B018


def test_qat_default_qconfig_trees_match_torch(torch_mod):
    """The default QAT qconfig (version 1, FusedMovingAvgObsFakeQuantize): the same
    trees after prepare_qat and convert, and a converted model that runs."""
    torch = torch_mod
    tm, qm = twin_models(torch)
    tf = torch.ao.quantization.fuse_modules_qat(tm.train(), FUSE)
    qf = tq.fuse_modules_qat(qm.train(), FUSE)
    tf.qconfig = torch.ao.quantization.get_default_qat_qconfig("x86")
    qf.qconfig = tq.get_default_qat_qconfig("x86")
    tp, qp = torch.ao.quantization.prepare_qat(tf), tq.prepare_qat(qf)
    assert tree(qp) == tree(tp)
    x = calibration_data(1)[0]
    tp(torch.from_numpy(x))
    qp(x)
    tc, qc = torch.ao.quantization.convert(tp.eval()), tq.convert(qp.eval())
    assert tree(qc) == tree(tc)
    assert qc(x).shape == (4, 5)


def test_fused_per_channel_weight_fake_quant_scale_equals_torch(torch_mod):
    """torch's fused kernel takes a symmetric scale of max(-min / 128, max / 127), its
    observer max(-min, max) / 127.5; qlearn's fused module follows the fused kernel."""
    torch = torch_mod
    w = np.random.default_rng(0).normal(size=(8, 27)).astype(np.float32)
    t = torch.ao.quantization.get_default_qat_qconfig("x86").weight()
    q = tq.get_default_qat_qconfig("x86").weight()
    t(torch.from_numpy(w))
    q(w)
    assert_array_equal(np.asarray(q.scale), t.scale.numpy())
