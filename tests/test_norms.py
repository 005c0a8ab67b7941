"""Float normalisation layers and the smooth / piecewise activations against torch 2.13
(forward, input and parameter gradients to rtol 1e-5) and float64 finite differences;
bad arguments raise errors that name them."""
import numpy as np
import pytest

import qlearn as ql
from qlearn import nn
from qlearn.autograd import gradcheck
from qlearn.nn import functional as F
from qlearn.nn.functional_activation import (
    ELUFunction,
    GELUFunction,
    HardsigmoidFunction,
    HardswishFunction,
    PReLUFunction,
    SiLUFunction,
)
from qlearn.nn.functional_norm import NormalizeFunction

RTOL, ATOL = 1e-5, 1e-5


def _run_both(torch, qmod, tmod, x, params=()):
    """Forward and backward through a qlearn and a torch module with the same weights
    and the same upstream gradient; returns the pairs to compare."""
    sd = {k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()}
    qmod.load_state_dict(sd)
    xq = ql.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yq, yt = qmod(xq), tmod(xt)
    g = np.random.default_rng(1).standard_normal(yt.shape).astype(np.float32)
    (yq * ql.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    pairs = [(yq.numpy(), yt.detach().numpy()), (xq.grad, xt.grad.numpy())]
    for name in params:
        pq, pt = getattr(qmod, name), getattr(tmod, name)
        pairs.append((pq.grad, pt.grad.numpy()))
    return pairs


def _assert_close(pairs, rtol=RTOL, atol=ATOL):
    for i, (a, b) in enumerate(pairs):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=rtol, atol=atol,
                                   err_msg=f"pair {i}")


# -- layer norm -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, normalized", [((4, 7), (7,)), ((2, 3, 5), (3, 5)),
                                               ((3, 2, 4, 5), (5,)), ((1, 1), (1,)),
                                               ((2, 3, 2, 3), (3, 2, 3))])
@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, False)])
def test_layer_norm_matches_torch(torch_mod, rng, shape, normalized, affine, bias):
    torch = torch_mod
    tm = torch.nn.LayerNorm(normalized, eps=1e-4, elementwise_affine=affine, bias=bias)
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-1.5, 1.5)
    qm = nn.LayerNorm(normalized, eps=1e-4, elementwise_affine=affine, bias=bias)
    assert repr(qm) == repr(tm)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    params = [n for n, _ in tm.named_parameters()]
    _assert_close(_run_both(torch, qm, tm, x, params))


def test_layer_norm_functional_matches_torch(torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    w, b = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(
        (4, 6)).astype(np.float32)
    got = F.layer_norm(x, [4, 6], w, b, eps=1e-3).numpy()
    want = torch.nn.functional.layer_norm(torch.from_numpy(x), [4, 6], torch.from_numpy(w),
                                          torch.from_numpy(b), eps=1e-3).numpy()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(F.layer_norm(x, 6).numpy(),
                               torch.nn.functional.layer_norm(torch.from_numpy(x),
                                                              [6]).numpy(), rtol=RTOL,
                               atol=ATOL)


# -- group norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape, groups", [((2, 6, 5, 3), 3), ((3, 4, 7), 1), ((2, 4, 7), 4),
                                           ((1, 6, 2, 2, 3), 2), ((4, 5), 5), ((3, 2), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(torch_mod, rng, shape, groups, affine):
    torch = torch_mod
    C = shape[1]
    tm = torch.nn.GroupNorm(groups, C, eps=1e-3, affine=affine)
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-1.5, 1.5)
    qm = nn.GroupNorm(groups, C, eps=1e-3, affine=affine)
    assert repr(qm) == repr(tm)
    x = (rng.standard_normal(shape) * 2 - 0.5).astype(np.float32)
    params = [n for n, _ in tm.named_parameters()]
    _assert_close(_run_both(torch, qm, tm, x, params))


def test_group_norm_without_bias_matches_torch(torch_mod, rng):
    torch = torch_mod
    tm = torch.nn.GroupNorm(2, 4, bias=False)
    qm = nn.GroupNorm(2, 4, bias=False)
    assert repr(qm) == repr(tm) and qm.bias is None
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    _assert_close(_run_both(torch, qm, tm, x, ["weight"]))


# -- instance norm ------------------------------------------------------------------------
@pytest.mark.parametrize("cls, shape", [("InstanceNorm1d", (3, 4, 9)),
                                        ("InstanceNorm2d", (2, 3, 5, 4)),
                                        ("InstanceNorm3d", (2, 2, 3, 4, 3)),
                                        ("InstanceNorm1d", (4, 9)),          # unbatched
                                        ("InstanceNorm2d", (3, 5, 4))])
@pytest.mark.parametrize("affine, track", [(False, False), (True, False), (True, True),
                                           (False, True)])
def test_instance_norm_matches_torch(torch_mod, rng, cls, shape, affine, track):
    torch = torch_mod
    C = shape[1] if len(shape) == int(cls[-2]) + 2 else shape[0]
    tm = getattr(torch.nn, cls)(C, eps=1e-4, momentum=0.3, affine=affine,
                                track_running_stats=track)
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-1.5, 1.5)
    qm = getattr(nn, cls)(C, eps=1e-4, momentum=0.3, affine=affine,
                          track_running_stats=track)
    assert repr(qm) == repr(tm)
    x = (rng.standard_normal(shape) * 2 + 0.3).astype(np.float32)
    params = [n for n, _ in tm.named_parameters()]
    _assert_close(_run_both(torch, qm, tm, x, params))
    if track:   # the running statistics followed the batch, then normalise in eval
        np.testing.assert_allclose(qm.running_mean, tm.running_mean.numpy(), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(qm.running_var, tm.running_var.numpy(), rtol=1e-5)
        qm.eval()
        tm.eval()
        _assert_close(_run_both(torch, qm, tm, x, params))


def test_instance_norm_momentum_none_freezes_running_stats(torch_mod, rng):
    torch = torch_mod
    tm = torch.nn.InstanceNorm1d(3, momentum=None, track_running_stats=True)
    qm = nn.InstanceNorm1d(3, momentum=None, track_running_stats=True)
    for _ in range(3):
        x = rng.standard_normal((2, 3, 6)).astype(np.float32)
        qm(x)
        tm(torch.from_numpy(x))
    np.testing.assert_allclose(qm.running_var, tm.running_var.numpy(), rtol=1e-5)
    assert int(qm.num_batches_tracked) == int(tm.num_batches_tracked) == 0


# -- batch norm 3d ------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_3d_matches_torch(torch_mod, rng, training):
    torch = torch_mod
    tm = torch.nn.BatchNorm3d(3)
    with torch.no_grad():
        tm.weight.uniform_(0.5, 1.5)
        tm.bias.uniform_(-1, 1)
        tm.running_mean.uniform_(-1, 1)
        tm.running_var.uniform_(0.5, 2)
    qm = nn.BatchNorm3d(3)
    assert repr(qm) == repr(tm)
    qm.train(training)
    tm.train(training)
    x = rng.standard_normal((2, 3, 3, 4, 2)).astype(np.float32)
    _assert_close(_run_both(torch, qm, tm, x, ["weight", "bias"]))
    np.testing.assert_allclose(qm.running_var, tm.running_var.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="5-d input"):
        qm(x[0])


# -- the normalisation gradient against finite differences (float64) ----------------------
@pytest.mark.parametrize("shape, axes", [((3, 5), (1,)), ((2, 3, 4), (1, 2)),
                                         ((2, 3, 4), (2,))])
def test_normalize_function_gradcheck(rng, shape, axes):
    x = rng.standard_normal(shape)
    assert gradcheck(NormalizeFunction, (x, axes, 1e-3), wrt=[0])


# -- activations ----------------------------------------------------------------------------
ACTIVATIONS = [("Hardswish", {}), ("Hardsigmoid", {}), ("ELU", {}), ("ELU", {"alpha": 0.3}),
               ("SiLU", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"})]


@pytest.mark.parametrize("name, kwargs", ACTIVATIONS)
def test_activation_matches_torch(torch_mod, rng, name, kwargs):
    torch = torch_mod
    x = (rng.standard_normal((5, 7, 3)) * 4).astype(np.float32)
    x.flat[:6] = [-3.0, 3.0, 0.0, -6.0, 6.0, -0.5]      # the kinks of the hard ones
    tm, qm = getattr(torch.nn, name)(**kwargs), getattr(nn, name)(**kwargs)
    assert repr(qm) == repr(tm)
    _assert_close(_run_both(torch, qm, tm, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_parameters, shape", [(1, (4, 3, 5)), (3, (4, 3, 5)),
                                                   (3, (2, 3)), (1, (7,)), (2, (2, 2, 3, 3))])
def test_prelu_matches_torch(torch_mod, rng, num_parameters, shape):
    torch = torch_mod
    tm = torch.nn.PReLU(num_parameters, init=0.1)
    with torch.no_grad():
        tm.weight.uniform_(-0.5, 0.5)
    qm = nn.PReLU(num_parameters, init=0.1)
    assert repr(qm) == repr(tm)
    x = rng.standard_normal(shape).astype(np.float32)
    _assert_close(_run_both(torch, qm, tm, x, ["weight"]))


def test_functional_activations_match_torch(torch_mod, rng):
    torch = torch_mod
    tF = torch.nn.functional
    x = (rng.standard_normal(300) * 5).astype(np.float32)
    xt = torch.from_numpy(x)
    for ours, theirs in [(F.hardswish(x), tF.hardswish(xt)),
                         (F.hardsigmoid(x), tF.hardsigmoid(xt)),
                         (F.elu(x, 0.7), tF.elu(xt, 0.7)), (F.silu(x), tF.silu(xt)),
                         (F.gelu(x), tF.gelu(xt)),
                         (F.gelu(x, approximate="tanh"), tF.gelu(xt, approximate="tanh")),
                         (F.prelu(x, np.array([0.2], np.float32)),
                          tF.prelu(xt, torch.tensor([0.2])))]:
        # atol: PyTorch's float32 GELU cancels digits in 1 + erf(x / sqrt 2) for x < -3
        # (qlearn's is computed in float64), absolute differences below 1e-6
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn, args", [(HardswishFunction, ()), (HardsigmoidFunction, ()),
                                      (ELUFunction, (0.7,)), (SiLUFunction, ()),
                                      (GELUFunction, ("none",)), (GELUFunction, ("tanh",))])
def test_activation_gradcheck(rng, fn, args):
    x = rng.uniform(-5, 5, 40)
    x = x[np.abs(np.abs(x) - 3) > 1e-3]           # away from the hard kinks at +-3
    x = x[np.abs(x) > 1e-3]                        # and from 0
    assert gradcheck(fn, (x, *args), wrt=[0])


def test_prelu_gradcheck(rng):
    x = rng.standard_normal((3, 2, 4))
    x[np.abs(x) < 1e-3] = 0.5
    w = np.array([0.3, -0.2])
    assert gradcheck(PReLUFunction, (x, w, (1, 2, 1)), wrt=[0, 1])


# -- bad input ----------------------------------------------------------------------------
def test_bad_arguments_name_the_argument():
    x = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match="`normalized_shape`"):
        F.layer_norm(x, (4,))
    with pytest.raises(ValueError, match="`weight` must have shape"):
        F.layer_norm(x, (3,), np.ones(4))
    with pytest.raises(ValueError, match="`eps`"):
        F.layer_norm(x, (3,), eps=-1)
    with pytest.raises(ValueError, match="`num_groups` must divide"):
        F.group_norm(x, 3)
    with pytest.raises(ValueError, match="`num_groups` must be a positive int"):
        F.group_norm(x, 0)
    with pytest.raises(ValueError, match="`bias` must have shape"):
        F.group_norm(x, 2, None, np.ones(3))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        F.instance_norm(x[0])
    with pytest.raises(ValueError, match="`running_mean`"):
        F.instance_norm(x, use_input_stats=False)
    with pytest.raises(ValueError, match="`num_channels` .* divisible"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\) expects"):
        nn.GroupNorm(2, 4)(np.zeros((2, 6, 3), np.float32))
    with pytest.raises(ValueError, match="InstanceNorm2d expects"):
        nn.InstanceNorm2d(4)(x[0])
    with pytest.raises(ValueError, match="`normalized_shape`"):
        nn.LayerNorm(())
    with pytest.raises(ValueError, match="`approximate`"):
        F.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="`alpha` must be a finite"):
        F.elu(x, float("inf"))
    with pytest.raises(ValueError, match="`weight` has 3 values"):
        F.prelu(x, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="`num_parameters`"):
        nn.PReLU(0)
    with pytest.raises(TypeError, match="QTensor"):
        F.layer_norm(ql.quantize_per_tensor(x, 0.1, 0, ql.quint8), (3,))
