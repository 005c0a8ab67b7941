"""Optimisers and schedules against torch.optim, step by step."""
import numpy as np
import pytest

import qlearn as ql
from qlearn import nn, optim
from qlearn.optim import lr_scheduler


def _run(torch_mod, q_cls, t_cls, kwargs, steps=6, seed=0, groups=False):
    """Minimise a fixed non-quadratic loss with both libraries; return both weights."""
    torch = torch_mod
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    b0 = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    qw, qb = nn.Parameter(w0.copy()), nn.Parameter(b0.copy())
    tw = torch.nn.Parameter(torch.tensor(w0))
    tb = torch.nn.Parameter(torch.tensor(b0))
    if groups:
        qopt = q_cls([{"params": [qw]}, {"params": qb, "lr": 0.01}], **kwargs)
        topt = t_cls([{"params": [tw]}, {"params": tb, "lr": 0.01}], **kwargs)
    else:
        qopt, topt = q_cls([qw, qb], **kwargs), t_cls([tw, tb], **kwargs)
    for _ in range(steps):
        qopt.zero_grad()
        topt.zero_grad()
        ((ql.tensor(x) @ qw + qb).tanh() ** 2).sum().backward()
        ((torch.tensor(x) @ tw + tb).tanh() ** 2).sum().backward()
        qopt.step()
        topt.step()
    return (qw, qb), (tw, tb), qopt, topt


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=1e-2),
    dict(lr=0.1, weight_decay=0.1), dict(lr=0.1, momentum=0.9, maximize=True),
])
def test_sgd_matches_torch(kwargs, torch_mod):
    (qw, qb), (tw, tb), _, _ = _run(torch_mod, optim.SGD, torch_mod.optim.SGD, kwargs)
    np.testing.assert_allclose(qw.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(qb.numpy(), tb.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
@pytest.mark.parametrize("kwargs", [
    dict(lr=0.01), dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True), dict(lr=0.01, maximize=True),
])
def test_adam_matches_torch(cls, kwargs, torch_mod):
    (qw, qb), (tw, tb), _, _ = _run(torch_mod, getattr(optim, cls),
                                    getattr(torch_mod.optim, cls), kwargs, steps=10)
    np.testing.assert_allclose(qw.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(qb.numpy(), tb.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_param_groups_match_torch(torch_mod):
    (qw, qb), (tw, tb), qopt, _ = _run(torch_mod, optim.SGD, torch_mod.optim.SGD,
                                       dict(lr=0.1, momentum=0.9), groups=True)
    np.testing.assert_allclose(qb.numpy(), tb.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert [g["lr"] for g in qopt.param_groups] == [0.1, 0.01]
    assert "Parameter Group 1" in repr(qopt)


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)), ("MultiStepLR", dict(milestones=[2, 5, 5])),
    ("ExponentialLR", dict(gamma=0.9)), ("CosineAnnealingLR", dict(T_max=5)),
    ("CosineAnnealingLR", dict(T_max=3, eta_min=0.01)),
    ("LambdaLR", dict(lr_lambda=lambda e: 1 / (e + 1))),
])
def test_schedulers_match_torch(name, kwargs, torch_mod):
    torch = torch_mod
    qopt = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.5, momentum=0.9)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5, momentum=0.9)
    qs = getattr(lr_scheduler, name)(qopt, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(12):
        np.testing.assert_allclose(qs.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
        assert qopt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], 1e-12)
        qopt.step(), topt.step()
        qs.step(), ts.step()


def test_state_dicts_round_trip_and_resume(tmp_path):
    w = nn.Parameter(np.ones(3, np.float32))
    opt = optim.Adam([w], lr=0.1)
    sched = lr_scheduler.StepLR(opt, 2)
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        sched.step()
    path = tmp_path / "opt.qlearn"
    ql.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, path)
    saved = ql.load(path)
    w2 = nn.Parameter(w.numpy().copy())
    opt2 = optim.Adam([w2], lr=0.1)
    opt2.load_state_dict(saved["opt"])
    sched2 = lr_scheduler.StepLR(opt2, 2)
    sched2.load_state_dict(saved["sched"])
    for o, p in ((opt, w), (opt2, w2)):
        o.zero_grad()
        (p * p).sum().backward()
        o.step()
    np.testing.assert_array_equal(w.numpy(), w2.numpy())
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_zero_grad_skips_missing_grads_and_errors():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=1.0)
    (a * 2).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [1, 1])       # no grad: untouched
    np.testing.assert_array_equal(a.numpy(), [-1, -1])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), [0, 0])
    opt.zero_grad()
    assert a.grad is None
    assert opt.step(closure=lambda: 3.0) == 3.0
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="`lr` must be >= 0"):
        optim.SGD([a], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="`betas`"):
        optim.Adam([a], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="qlearn Tensors"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(TypeError, match="qlearn Optimizer"):
        lr_scheduler.StepLR(object(), 2)
