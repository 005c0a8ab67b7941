"""nn.Module: registries, traversal, hooks, modes, state dicts (with torch and ql.save)."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import qlearn as ql
from qlearn import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(np.ones(2, np.float32))
        self.register_buffer("steps", np.zeros((), np.int64))
        self.register_buffer("cache", np.zeros(2, np.float32), persistent=False)
        self.plain = 5

    def forward(self, x):
        self.steps += 1
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(2, 1))

    def forward(self, x):
        return self.head(self.a(x) + self.b(x))


def test_registries_and_attribute_routing():
    m = Block()
    assert list(m._parameters) == ["scale"] and list(m._modules) == ["fc"]
    assert list(m._buffers) == ["steps", "cache"] and m.plain == 5
    assert isinstance(m.fc, nn.Linear) and m.steps.shape == ()
    with pytest.raises(TypeError, match="cannot assign ndarray as parameter 'scale'"):
        m.scale = np.ones(2)
    m.scale = None
    assert m.scale is None and "scale" in m._parameters
    with pytest.raises(TypeError, match="child module 'fc'"):
        m.fc = 3
    m.steps = np.ones((), np.int64)       # assigning to a buffer name updates the buffer
    assert m._buffers["steps"] == 1
    m.fc = nn.Parameter(np.zeros(1))      # a name moves between registries on assignment
    assert "fc" in m._parameters and "fc" not in m._modules
    del m.fc
    assert "fc" not in m._parameters
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = m.nope
    assert "steps" in dir(m)
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Bad(nn.Module):
            def __init__(self):
                self.x = 1
        Bad()


def test_register_checks_names_like_torch():
    m = Block()
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", np.zeros(1))
    with pytest.raises(KeyError, match="already exists as a parameter"):
        m.register_buffer("scale", np.zeros(1))
    with pytest.raises(KeyError, match="already exists as a buffer"):
        m.register_parameter("steps", None)
    with pytest.raises(KeyError, match="without '.'"):
        m.register_buffer("a.b", None)
    with pytest.raises(TypeError, match="nn.Parameter or None"):
        m.register_parameter("w", np.zeros(1))
    with pytest.raises(TypeError, match="nn.Module or None"):
        m.add_module("w", 3)
    m.register_module("extra", None)
    assert m.extra is None and list(m.children()) == [m.fc]


def test_traversal_names_match_torch(torch_mod):
    torch = torch_mod

    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)
            self.scale = torch.nn.Parameter(torch.ones(2))
            self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
            self.register_buffer("cache", torch.zeros(2), persistent=False)

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = TBlock()
            self.b = TBlock()
            self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1))

    q, t = Net(), TNet()
    assert [n for n, _ in q.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in q.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in q.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in q.named_children()] == [n for n, _ in t.named_children()]
    assert list(q.state_dict()) == list(t.state_dict())
    assert [n for n, _ in q.named_parameters(prefix="m", recurse=False)] == \
        [n for n, _ in t.named_parameters(prefix="m", recurse=False)]
    assert q.get_submodule("head.1") is q.head[1]
    with pytest.raises(AttributeError, match="no submodule 'x'"):
        q.get_submodule("a.x")


def test_shared_parameters_and_modules_listed_once():
    lin = nn.Linear(2, 2)
    m = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(m.parameters())) == 2
    assert len(list(m.modules())) == 3
    assert len(list(m.named_modules(remove_duplicate=False))) == 4
    bn1, bn2 = nn.BatchNorm2d(2), nn.BatchNorm2d(2)
    two = nn.Sequential(bn1, bn2)
    assert len(list(two.buffers())) == 6


def test_hooks_run_modify_and_remove():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: calls.append("pre") or (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append("post") or out + 1)
    out = m(np.ones((1, 2), np.float32))
    assert calls == ["pre", "post"]
    np.testing.assert_allclose(out.numpy(), m.bias.numpy()[None] + 1)
    h1.remove()
    h2.remove()
    h2.remove()   # removing twice is harmless
    out = m(np.ones((1, 2), np.float32))
    assert calls == ["pre", "post"]
    with m.register_forward_hook(lambda mod, args, out: calls.append("ctx")):
        m(np.ones((1, 2), np.float32))
    m(np.ones((1, 2), np.float32))
    assert calls == ["pre", "post", "ctx"]
    single = m.register_forward_pre_hook(lambda mod, args: args[0] * 2)   # non-tuple result
    doubled = m(np.ones((1, 2), np.float32)).numpy()
    single.remove()
    np.testing.assert_array_equal(doubled, m(np.full((1, 2), 2.0, np.float32)).numpy())


def test_train_eval_recurse_through_overrides():
    seen = []

    class Custom(nn.Module):
        def train(self, mode=True):
            seen.append(mode)
            return super().train(mode)

    m = nn.Sequential(nn.Linear(1, 1), nn.Sequential(Custom()))
    assert m.training
    m.eval()
    assert not any(x.training for x in m.modules()) and seen == [False]
    m.train()
    assert all(x.training for x in m.modules()) and seen == [False, True]
    with pytest.raises(TypeError, match="`mode` must be a bool"):
        m.train("yes")


def test_zero_grad_apply_requires_grad():
    m = Net()
    m(np.ones((4, 3), np.float32)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    names = []
    m.apply(lambda mod: names.append(type(mod).__name__))
    assert names[-1] == "Net" and names[0] == "Linear"
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_state_dict_shares_data_and_load_round_trips():
    m, m2 = Net(), Net()
    sd = m.state_dict()
    assert "a.cache" not in sd and "a.steps" in sd
    assert sd["a.fc.weight"] is m.a.fc.weight.data     # shared, as in torch
    assert isinstance(m.state_dict(keep_vars=True)["a.fc.weight"], nn.Parameter)
    res = m2.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    for (_, p), (_, p2) in zip(m.named_parameters(), m2.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), p2.numpy())
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(m(x).numpy(), m2(x).numpy())


def test_load_state_dict_reports_problems():
    m = Net()
    sd = OrderedDict(m.state_dict())
    sd.pop("a.fc.bias")
    sd["zzz"] = np.zeros(1)
    with pytest.raises(RuntimeError, match="missing keys: a.fc.bias") as e:
        m.load_state_dict(sd)
    assert "unexpected keys: zzz" in str(e.value)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["a.fc.bias"] and unexpected == ["zzz"]
    sd = m.state_dict()
    sd["a.fc.weight"] = np.zeros((5, 5))
    with pytest.raises(RuntimeError, match="size mismatch for a.fc.weight"):
        m.load_state_dict(sd, strict=False)


def test_load_state_dict_converts_numbers_and_tensors():
    bn = nn.BatchNorm2d(3)
    sd = {k: (ql.tensor(v) if k == "running_mean" else v) for k, v in bn.state_dict().items()}
    sd["num_batches_tracked"] = 7
    sd["running_var"] = np.full(3, 2.0)              # float64 converts
    bn.load_state_dict(sd)
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 7
    assert bn.running_var.dtype == np.float32 and bn.running_var[0] == 2.0


def test_state_dict_with_torch_both_ways(torch_mod):
    torch = torch_mod
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                             torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(36, 3))
    qm = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                       nn.Linear(36, 3))
    tm(torch.randn(8, 1, 5, 5))   # move the running statistics away from their init
    qm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    tm.eval(), qm.eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(qm(x).numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    tm2 = copy.deepcopy(tm)
    qm.train()
    qm(x)
    tm2.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in qm.state_dict().items()})
    assert int(tm2[1].num_batches_tracked) == int(qm[1].num_batches_tracked)
    np.testing.assert_allclose(tm2[1].running_mean.numpy(), qm[1].running_mean)


def test_state_dict_round_trips_through_ql_save(tmp_path):
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2),
                      nn.LSTM(2, 3))
    m[1](np.random.default_rng(0).standard_normal((4, 2, 3, 3)))
    path = tmp_path / "m.qlearn"
    ql.save(m.state_dict(), path)
    loaded = ql.load(path)
    assert list(loaded) == list(m.state_dict())
    m2 = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2),
                       nn.LSTM(2, 3))
    m2.load_state_dict(loaded)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(np.asarray(m2.state_dict()[k]), np.asarray(v))
    ql.save(m.state_dict(keep_vars=True), path)          # Parameters are saved as tensors
    assert ql.load(path)["0.weight"].requires_grad


def test_deepcopy_and_repr():
    m = Net()
    c = copy.deepcopy(m)
    assert c.a.fc.weight is not m.a.fc.weight
    np.testing.assert_array_equal(c.a.fc.weight.numpy(), m.a.fc.weight.numpy())
    c.a.fc.weight.data[...] = 0
    assert m.a.fc.weight.numpy().any()
    text = repr(m)
    assert text.startswith("Net(\n  (a): Block(\n    (fc): Linear(in_features=3")
    assert "(head): Sequential(\n    (0): ReLU()" in text


def test_containers():
    s = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 1, 1)), ("act", nn.ReLU())]))
    assert s.conv is s[0] and s[-1] is s.act and len(s[:1]) == 1
    s.append(nn.Identity())
    assert len(s) == 3 and list(s._modules) == ["conv", "act", "2"]
    s[1] = nn.ReLU6()
    assert isinstance(s.act, nn.ReLU6)
    del s[2]
    assert len(s) == 2
    with pytest.raises(IndexError, match="out of range"):
        s[5]
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 1)).extend([nn.ReLU()])
    assert len(ml) == 3 and isinstance(ml[-1], nn.ReLU) and len(ml[:2]) == 2
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                     "1.bias"]
    with pytest.raises(NotImplementedError):
        ml(1)


def test_to_cpu_float_are_checks_that_return_self():
    m = nn.Linear(2, 2)
    assert m.to("cpu") is m and m.to(np.float32) is m and m.cpu() is m and m.float() is m
    assert m.to(device="cpu", dtype="float32") is m
    with pytest.raises(ValueError, match="`device`"):
        m.to("cuda")
    with pytest.raises(ValueError, match="`dtype`"):
        m.to(np.float64)
