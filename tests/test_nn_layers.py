"""Float layers: Cython kernels against NumPy references (at 1 and 2 threads), each
layer's Function against float64 finite differences, each module against torch with the
same weights (outputs and gradients to 1e-4 relative)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import qlearn as ql
from qlearn import nn
from qlearn._ext import _im2col, _pool
from qlearn.autograd import gradcheck
from qlearn.nn import functional as F
from qlearn.reference import im2col_ref, max_pool2d_forward_ref

CONV_GEOMS = [  # (N, C, H, W, Cout, KH, KW, stride, padding, dilation, groups)
    (2, 3, 7, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (1, 4, 9, 9, 6, 3, 2, (2, 1), (0, 1), (1, 1), 2),
    (3, 2, 8, 7, 2, 3, 3, (1, 2), (2, 2), (2, 1), 2),
    (2, 4, 5, 5, 4, 1, 1, (1, 1), (0, 0), (1, 1), 4),
    (1, 1, 3, 3, 1, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (8, 16, 32, 32, 8, 3, 3, (1, 1), (1, 1), (1, 1), 1),   # large enough to run in parallel
]


@pytest.mark.parametrize("geom", CONV_GEOMS)
def test_im2col_col2im_match_reference_and_threads(geom, num_threads, rng):
    N, C, H, W, _, KH, KW, S, P, D, _ = geom
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    ref = im2col_ref(x, KH, KW, S, P, D)
    cols = np.full(ref.shape, np.nan, np.float32)           # sentinel: every cell written
    _im2col.im2col(x, cols, KH, KW, *S, *P, *D, num_threads)
    np.testing.assert_array_equal(cols, ref)
    # col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>
    c = rng.standard_normal(ref.shape)
    dx = np.full(x.shape, np.nan)
    _im2col.col2im(c, dx, KH, KW, *S, *P, *D, num_threads)
    np.testing.assert_allclose((im2col_ref(x.astype(np.float64), KH, KW, S, P, D) * c).sum(),
                               (x * dx).sum(), rtol=1e-10)
    dx1 = np.empty_like(dx)
    _im2col.col2im(c, dx1, KH, KW, *S, *P, *D, 1)
    np.testing.assert_array_equal(dx, dx1)                   # same sums at any thread count


@pytest.mark.parametrize("K, S, P", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
                                     ((3, 2), (1, 2), (1, 0))])
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (16, 64, 33, 32)])   # serial, parallel
def test_max_pool_kernel_matches_reference(K, S, P, shape, num_threads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    ref = max_pool2d_forward_ref(x, K, S, P)[0]
    y = np.full(ref.shape, np.nan, np.float32)
    idx = np.full(ref.shape, -7, np.int64)
    _pool.max_pool2d_forward(x, y, idx, *K, *S, *P, 1, 1, num_threads)
    np.testing.assert_array_equal(y, ref)
    flat = x.reshape(shape[0], shape[1], -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.reshape(*idx.shape[:2], -1), 2)
                                  .reshape(ref.shape), ref)


@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (16, 64, 33, 32)])
def test_avg_pool_kernel_threads_agree(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    outs = []
    for threads in (1, 2):
        before = ql.get_num_threads()
        ql.set_num_threads(threads)
        try:
            outs.append((F.avg_pool2d(x, 3, 2, 1).numpy(), F.adaptive_avg_pool2d(x, 5).numpy()))
        finally:
            ql.set_num_threads(before)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# -- each hand-written backward in float64 against finite differences --------------------
def test_linear_function_gradcheck(rng):
    assert gradcheck(F.LinearFunction, [rng.standard_normal((2, 3, 4)),
                                        rng.standard_normal((5, 4)), rng.standard_normal(5)])
    assert gradcheck(F.LinearFunction, [rng.standard_normal((3, 4)),
                                        rng.standard_normal((2, 4))])


@pytest.mark.parametrize("geom", CONV_GEOMS[:5])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_function_gradcheck(geom, bias, rng):
    N, C, H, W, Cout, KH, KW, S, P, D, G = geom
    args = [rng.standard_normal((N, C, H, W)), rng.standard_normal((Cout, C // G, KH, KW)),
            rng.standard_normal(Cout) if bias else None, S, P, D, G]
    assert gradcheck(F.Conv2dFunction, args, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape, axes", [((6, 3), (0,)), ((4, 3, 5), (0, 2)),
                                         ((3, 2, 4, 3), (0, 2, 3))])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_batch_norm_function_gradcheck(shape, axes, batch_stats, rng):
    C = shape[1]
    stats = [None, None] if batch_stats else [rng.standard_normal(C), 0.5 + rng.random(C)]
    args = [rng.standard_normal(shape), rng.standard_normal(C), rng.standard_normal(C),
            *stats, 1e-5, axes, batch_stats]
    assert gradcheck(F.BatchNormFunction, args, wrt=[0, 1, 2], atol=1e-5, rtol=1e-5)
    args[1] = args[2] = None   # affine=False
    assert gradcheck(F.BatchNormFunction, args, wrt=[0], atol=1e-5, rtol=1e-5)


def test_pooling_functions_gradcheck(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    assert gradcheck(F.MaxPool2dFunction, [x, (3, 2), (2, 2), (1, 1), (1, 1), (4, 3)])
    assert gradcheck(F.MaxPool2dFunction, [x, (2, 2), (1, 1), (0, 0), (2, 2), (5, 4)])
    assert gradcheck(F.AvgPool2dFunction, [x, (3, 3), (2, 2), (1, 1), False, 0, False, (4, 3)])
    assert gradcheck(F.AvgPool2dFunction, [x, (3, 3), (2, 2), (1, 1), True, 5, False, (4, 3)])
    assert gradcheck(F.AvgPool2dFunction, [x, (1, 1), (1, 1), (0, 0), False, 0, True, (3, 4)])


def test_nll_function_gradcheck(rng):
    logp = rng.standard_normal((5, 4))
    t = np.array([0, 3, 1, -100, 2])
    w = rng.random(4) + 0.5
    for red in ("mean", "sum", "none"):
        assert gradcheck(F.NLLLossFunction, [logp, t, w, -100, red], wrt=[0])
        assert gradcheck(F.NLLLossFunction, [logp, t, None, -100, red], wrt=[0])


# -- modules against torch ---------------------------------------------------------------
def _copy_from_torch(qm, tm):
    qm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})


def assert_close(actual, desired, rtol=1e-4, atol=1e-5, err_msg=""):
    """Elementwise ``rtol``, plus an absolute slack of 1e-5 of the largest magnitude:
    float32 sums over thousands of terms cancel, so tiny entries of a large gradient
    carry absolute (not relative) rounding error."""
    desired = np.asarray(desired)
    scale = float(np.abs(desired).max()) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=max(atol, 1e-5 * scale),
                               err_msg=err_msg)


def check_against_torch(torch, qm, tm, *inputs, rng, rtol=1e-4, atol=1e-5, grad_input=True):
    """Same weights -> same output, input gradient and parameter gradients."""
    _copy_from_torch(qm, tm)
    assert [n for n, _ in qm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(qm.state_dict()) == list(tm.state_dict())
    qx = [ql.tensor(x, requires_grad=grad_input) for x in inputs]
    tx = [torch.tensor(x, requires_grad=grad_input) for x in inputs]
    qout, tout = qm(*qx), tm(*tx)
    if isinstance(qout, tuple):   # RNNs: compare every output
        qflat = [qout[0]] + list(qout[1]) if isinstance(qout[1], tuple) else list(qout)
        tflat = [tout[0]] + list(tout[1]) if isinstance(tout[1], tuple) else list(tout)
    else:
        qflat, tflat = [qout], [tout]
    qloss, tloss = 0, 0
    for q, t in zip(qflat, tflat):
        assert_close(q.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
        proj = rng.standard_normal(q.shape).astype(np.float32)
        qloss = qloss + (q * proj).sum()
        tloss = tloss + (t * torch.tensor(proj)).sum()
    qloss.backward()
    tloss.backward()
    if grad_input:
        for a, b in zip(qx, tx):
            assert_close(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)
    for (n, p), (_, tp) in zip(qm.named_parameters(), tm.named_parameters()):
        assert_close(p.grad.numpy(), tp.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=n)
    return qout, tout


def test_linear_matches_torch(torch_mod, rng):
    x = rng.standard_normal((2, 5, 7)).astype(np.float32)
    check_against_torch(torch_mod, nn.Linear(7, 3), torch_mod.nn.Linear(7, 3), x, rng=rng)
    check_against_torch(torch_mod, nn.Linear(7, 3, bias=False),
                        torch_mod.nn.Linear(7, 3, bias=False), x[0], rng=rng)


@pytest.mark.parametrize("geom", CONV_GEOMS)
def test_conv2d_matches_torch(geom, torch_mod, rng):
    N, C, H, W, Cout, KH, KW, S, P, D, G = geom
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    kw = dict(stride=S, padding=P, dilation=D, groups=G)
    check_against_torch(torch_mod, nn.Conv2d(C, Cout, (KH, KW), **kw),
                        torch_mod.nn.Conv2d(C, Cout, (KH, KW), **kw), x, rng=rng)


def test_conv2d_padding_strings_and_no_bias(torch_mod, rng):
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    for pad in ("same", "valid"):
        check_against_torch(torch_mod, nn.Conv2d(2, 3, 3, padding=pad, bias=False),
                            torch_mod.nn.Conv2d(2, 3, 3, padding=pad, bias=False), x, rng=rng)


@pytest.mark.parametrize("cls, shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)),
                                        ("BatchNorm1d", (4, 3, 7))])
@pytest.mark.parametrize("kwargs", [{}, dict(affine=False), dict(momentum=None),
                                    dict(track_running_stats=False, momentum=0.3),
                                    dict(bias=False)])
def test_batch_norm_train_and_eval_match_torch(cls, shape, kwargs, torch_mod, rng):
    torch = torch_mod
    qm, tm = getattr(nn, cls)(3, **kwargs), getattr(torch.nn, cls)(3, **kwargs)
    if qm.affine:
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5)
            if tm.bias is not None:
                tm.bias.uniform_(-1, 1)
    _copy_from_torch(qm, tm)
    for _ in range(3):   # running statistics follow torch's over several batches
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        qout = qm(x)
        tout = tm(torch.tensor(x))
        np.testing.assert_allclose(qout.numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
        for name, b in tm.named_buffers():
            np.testing.assert_allclose(np.asarray(getattr(qm, name)), b.numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=name)
    x = rng.standard_normal(shape).astype(np.float32)
    qsd = {k: np.asarray(v).copy() for k, v in qm.state_dict().items()}
    check_against_torch(torch, qm, tm, x, rng=rng)          # training mode gradients
    qm.load_state_dict(qsd)
    qm.eval(), tm.eval()
    check_against_torch(torch, qm, tm, x, rng=rng)          # eval mode gradients


@pytest.mark.parametrize("name, args", [("ReLU", ()), ("ReLU6", ()), ("Hardtanh", (-0.5, 0.7)),
                                        ("LeakyReLU", (0.2,)), ("Sigmoid", ()), ("Tanh", ()),
                                        ("Softmax", (1,)), ("LogSoftmax", (1,)),
                                        ("Flatten", ()), ("Identity", ())])
def test_activations_match_torch(name, args, torch_mod, rng):
    x = (rng.standard_normal((3, 4, 2)) * 4).astype(np.float32)
    x[0, 0, 0], x[0, 0, 1] = 0.0, 6.0   # the kinks: the gradient convention must match
    check_against_torch(torch_mod, getattr(nn, name)(*args),
                        getattr(torch_mod.nn, name)(*args), x, rng=rng)


@pytest.mark.parametrize("name, kwargs", [
    ("MaxPool2d", dict(kernel_size=2)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("MaxPool2d", dict(kernel_size=(3, 2), stride=(2, 1), dilation=(1, 2))),
    ("MaxPool2d", dict(kernel_size=2, ceil_mode=True)),
    ("AvgPool2d", dict(kernel_size=2)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("AvgPool2d", dict(kernel_size=2, divisor_override=3)),
    ("AdaptiveAvgPool2d", dict(output_size=1)),
    ("AdaptiveAvgPool2d", dict(output_size=(3, 4))),
    ("AdaptiveAvgPool2d", dict(output_size=(5, None))),
])
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (3, 9, 9)])
def test_pooling_matches_torch(name, kwargs, shape, torch_mod, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    check_against_torch(torch_mod, getattr(nn, name)(**kwargs),
                        getattr(torch_mod.nn, name)(**kwargs), x, rng=rng)


def test_max_pool_return_indices_match_torch(torch_mod, rng):
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    ty, tidx = torch_mod.nn.functional.max_pool2d(torch_mod.tensor(x), 3, 2, 1,
                                                  return_indices=True)
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


@pytest.mark.parametrize("kwargs", [{}, dict(reduction="sum"), dict(reduction="none"),
                                    dict(ignore_index=2), dict(label_smoothing=0.1),
                                    dict(weight=True), dict(weight=True, label_smoothing=0.2,
                                                            ignore_index=1)])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 3)])
def test_cross_entropy_matches_torch(kwargs, shape, torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal(shape).astype(np.float32)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    kw = dict(kwargs)
    if kw.get("weight"):
        kw["weight"] = (rng.random(shape[1]) + 0.5).astype(np.float32)
    tkw = dict(kw, weight=torch.tensor(kw["weight"])) if "weight" in kw else kw
    qx, tx = ql.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    q = nn.CrossEntropyLoss(**kw)(qx, t)
    tl = torch.nn.CrossEntropyLoss(**tkw)(tx, torch.tensor(t))
    np.testing.assert_allclose(q.numpy(), tl.detach().numpy(), rtol=1e-5, atol=1e-6)
    proj = rng.standard_normal(q.shape).astype(np.float32)
    (q * proj).sum().backward()
    (tl * torch.tensor(proj)).sum().backward()
    np.testing.assert_allclose(qx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_soft_target_cross_entropy_nll_mse_l1_match_torch(torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = rng.standard_normal((5, 3)).astype(np.float32)
    p = np.exp(y) / np.exp(y).sum(1, keepdims=True)
    t = np.array([0, 2, 1, 1, 0])
    cases = [
        (lambda a, m: m.cross_entropy(a, p, label_smoothing=0.1),
         lambda a, m: m.cross_entropy(a, torch.tensor(p), label_smoothing=0.1)),
        (lambda a, m: m.nll_loss(m.log_softmax(a, 1), t, reduction="sum"),
         lambda a, m: m.nll_loss(m.log_softmax(a, 1), torch.tensor(t), reduction="sum")),
        (lambda a, m: m.mse_loss(a, y), lambda a, m: m.mse_loss(a, torch.tensor(y))),
        (lambda a, m: m.mse_loss(a, y, reduction="sum"),
         lambda a, m: m.mse_loss(a, torch.tensor(y), reduction="sum")),
        (lambda a, m: m.l1_loss(a, y), lambda a, m: m.l1_loss(a, torch.tensor(y))),
        (lambda a, m: m.mse_loss(a, y, reduction="none").sum(),
         lambda a, m: m.mse_loss(a, torch.tensor(y), reduction="none").sum()),
    ]
    for qf, tf in cases:
        qx, tx = ql.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        q, tl = qf(qx, F), tf(tx, torch.nn.functional)
        np.testing.assert_allclose(q.numpy(), tl.detach().numpy(), rtol=1e-5)
        q.backward()
        tl.backward()
        np.testing.assert_allclose(qx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert isinstance(nn.MSELoss()(x, y), ql.Tensor) and isinstance(nn.L1Loss()(x, y), ql.Tensor)
    assert nn.NLLLoss()(x, t).shape == ()


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("kwargs, shape", [
    (dict(), (5, 3, 4)),
    (dict(num_layers=2, batch_first=True), (3, 5, 4)),
    (dict(num_layers=2, bidirectional=True, bias=False), (4, 2, 4)),
    (dict(), (6, 4)),                                    # unbatched
])
def test_rnn_matches_torch(cls, kwargs, shape, torch_mod, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    check_against_torch(torch_mod, getattr(nn, cls)(4, 5, **kwargs),
                        getattr(torch_mod.nn, cls)(4, 5, **kwargs), x, rng=rng)


def test_rnn_initial_state_matches_torch(torch_mod, rng):
    torch = torch_mod
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    h0 = rng.standard_normal((2, 2, 5)).astype(np.float32)
    c0 = rng.standard_normal((2, 2, 5)).astype(np.float32)
    q, t = nn.LSTM(3, 5, 2), torch.nn.LSTM(3, 5, 2)
    _copy_from_torch(q, t)
    qo, (qh, qc) = q(x, (h0, c0))
    to, (th, tc) = t(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    for a, b in ((qo, to), (qh, th), (qc, tc)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    q, t = nn.GRU(3, 5, 2), torch.nn.GRU(3, 5, 2)
    _copy_from_torch(q, t)
    qo, qh = q(x, h0)
    to, th = t(torch.tensor(x), torch.tensor(h0))
    np.testing.assert_allclose(qh.numpy(), th.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_rnn_finite_differences(rng):
    """The unrolled LSTM's gradient (composed of checked primitives) in float32 FD."""
    ql.autograd.manual_seed(0)
    m = nn.LSTM(2, 3)
    x = rng.standard_normal((3, 1, 2)).astype(np.float32)
    w = m.weight_hh_l0
    m(x)[0].sum().backward()
    ana = w.grad.numpy().copy()
    eps = 1e-2
    num = np.zeros_like(ana)
    for i in np.ndindex(ana.shape):
        keep = w.data[i]
        w.data[i] = keep + eps
        up = m(x)[0].sum().item()
        w.data[i] = keep - eps
        down = m(x)[0].sum().item()
        w.data[i] = keep
        num[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(ana, num, rtol=2e-2, atol=2e-3)


# -- defaults, dropout, inputs, errors ---------------------------------------------------
def test_default_initialisation_bounds_like_torch():
    ql.autograd.manual_seed(0)
    lin = nn.Linear(50, 40)
    conv = nn.Conv2d(4, 8, 3)
    for m, fan_in in ((lin, 50), (conv, 36)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(m.weight.numpy()).max() <= bound
        assert np.abs(m.weight.numpy()).max() > 0.9 * bound
        assert np.abs(m.bias.numpy()).max() <= bound
        assert abs(m.weight.numpy().std() - bound / np.sqrt(3)) < 0.1 * bound
    lstm = nn.LSTM(3, 16)
    assert max(np.abs(p.numpy()).max() for p in lstm.parameters()) <= 0.25
    bn = nn.BatchNorm2d(3)
    assert (bn.momentum, bn.eps) == (0.1, 1e-5) and bn.weight.numpy().tolist() == [1, 1, 1]
    ql.autograd.manual_seed(3)
    a = nn.Linear(3, 3).weight.numpy().copy()
    ql.autograd.manual_seed(3)
    np.testing.assert_array_equal(a, nn.Linear(3, 3).weight.numpy())


def test_dropout():
    ql.autograd.manual_seed(0)
    d = nn.Dropout(0.25)
    x = ql.tensor(np.ones((200, 100)), requires_grad=True)
    y = d(x)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)
    d.eval()
    assert d(x) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    with pytest.raises(ValueError, match="`p` must be a probability"):
        nn.Dropout(1.5)


def test_float64_and_tensor_inputs_accepted():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
    x64 = np.ones((1, 1, 3, 3))
    a, b = m(x64), m(ql.tensor(x64))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_argument_errors_are_clear():
    with pytest.raises(ValueError, match=r"`input` must end in in_features=3"):
        nn.Linear(3, 2)(np.ones((2, 4)))
    with pytest.raises(ValueError, match="expects 4 input channels"):
        nn.Conv2d(4, 2, 3)(np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="`input` must have 4 dimensions"):
        nn.Conv2d(1, 2, 3)(np.ones((3, 5, 5)))
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        nn.Conv2d(1, 2, 5)(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="divisible by `groups`"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="`stride` must be >= 1"):
        nn.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(TypeError, match="`kernel_size` must be an int or a pair"):
        nn.Conv2d(1, 1, "3")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match="`input` must be a qlearn.Tensor or a float array"):
        nn.ReLU()(np.ones(3, np.int32))
    with pytest.raises(ValueError, match="BatchNorm2d\\(3\\) got input with 2 channels"):
        nn.BatchNorm2d(3)(np.ones((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at most half of kernel_size"):
        nn.MaxPool2d(2, padding=2)(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"`target` values must be in \[0, 2\]"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="`target` must have shape"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="input_size=4"):
        nn.LSTM(4, 3)(np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="`h_0` must have shape"):
        nn.LSTM(4, 3)(np.ones((2, 1, 4)), (np.ones((2, 1, 3)), np.ones((2, 1, 3))))


# -- properties over random geometries ---------------------------------------------------


def conv_ref(x, w, b, S, P, D, G):
    """Eq. (2) of the training docs, as loops over the output (float64)."""
    N, C, H, W = x.shape
    Cout, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (P[0], P[0]), (P[1], P[1])))
    OH = (H + 2 * P[0] - D[0] * (KH - 1) - 1) // S[0] + 1
    OW = (W + 2 * P[1] - D[1] * (KW - 1) - 1) // S[1] + 1
    y = np.zeros((N, Cout, OH, OW))
    for o in range(Cout):
        g = o // (Cout // G)
        for p in range(OH):
            for q in range(OW):
                patch = xp[:, g * Cg:(g + 1) * Cg, p * S[0]:p * S[0] + D[0] * (KH - 1) + 1:D[0],
                           q * S[1]:q * S[1] + D[1] * (KW - 1) + 1:D[1]]
                y[:, o, p, q] = (patch * w[o]).sum(axis=(1, 2, 3)) + (b[o] if b is not None else 0)
    return y


@given(st.data())
def test_conv2d_random_geometry_matches_loops(data):
    G = data.draw(st.sampled_from([1, 2, 3]))
    Cg, Og = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    KH, KW = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    S = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    D = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    P = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    H = data.draw(st.integers(max(1, D[0] * (KH - 1) + 1 - 2 * P[0]), 9))
    W = data.draw(st.integers(max(1, D[1] * (KW - 1) + 1 - 2 * P[1]), 9))
    N = data.draw(st.integers(1, 3))
    bias = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    x = rng.standard_normal((N, Cg * G, H, W)).astype(np.float32)
    w = rng.standard_normal((Og * G, Cg, KH, KW)).astype(np.float32)
    b = rng.standard_normal(Og * G).astype(np.float32) if bias else None
    out = F.conv2d(x, w, b, S, P, D, G).numpy()
    np.testing.assert_allclose(out, conv_ref(x.astype(np.float64), w, b, S, P, D, G),
                               rtol=1e-4, atol=1e-4)


@given(st.data())
def test_pooling_random_geometry_matches_torch(data):
    torch = pytest.importorskip("torch")
    K = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    S = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    P = (data.draw(st.integers(0, K[0] // 2)), data.draw(st.integers(0, K[1] // 2)))
    ceil = data.draw(st.booleans())
    H, W = data.draw(st.integers(K[0], 10)), data.draw(st.integers(K[1], 10))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    x = rng.standard_normal((2, 3, H, W)).astype(np.float32)
    tx = torch.tensor(x)
    tf = torch.nn.functional
    np.testing.assert_array_equal(F.max_pool2d(x, K, S, P, ceil_mode=ceil).numpy(),
                                  tf.max_pool2d(tx, K, S, P, ceil_mode=ceil).numpy())
    for cip in (True, False):
        np.testing.assert_allclose(
            F.avg_pool2d(x, K, S, P, ceil, cip).numpy(),
            tf.avg_pool2d(tx, K, S, P, ceil, cip).numpy(), rtol=1e-5, atol=1e-6)
    osz = (data.draw(st.integers(1, H)), data.draw(st.integers(1, W)))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, osz).numpy(),
                               tf.adaptive_avg_pool2d(tx, osz).numpy(), rtol=1e-5, atol=1e-6)


def test_conv_layer_identical_at_1_and_2_threads(rng):
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)     # above the threshold
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    results = []
    for threads in (1, 2):
        before = ql.get_num_threads()
        ql.set_num_threads(threads)
        try:
            xt, wt = ql.tensor(x, requires_grad=True), ql.tensor(w, requires_grad=True)
            y = F.max_pool2d(F.conv2d(xt, wt, padding=1), 2)
            (y * y).sum().backward()
            results.append((y.numpy(), xt.grad.numpy(), wt.grad.numpy()))
        finally:
            ql.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_rnn_dropout_between_layers_and_zero_size_init(torch_mod, rng):
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    q, t = nn.LSTM(3, 4, num_layers=2, dropout=0.5), torch_mod.nn.LSTM(3, 4, 2, dropout=0.5)
    _copy_from_torch(q, t)
    a, b = q(x)[0].numpy(), q(x)[0].numpy()
    assert not np.array_equal(a, b)                 # training: dropout between the layers
    q.eval(), t.eval()
    np.testing.assert_allclose(q(x)[0].numpy(), t(torch_mod.tensor(x))[0].detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    assert nn.Linear(0, 3).weight.shape == (3, 0)   # zero-element init is a no-op


def test_reprs_match_torch(torch_mod):
    tnn = torch_mod.nn
    pairs = [
        (nn.Conv2d(1, 16, 3, padding=1), tnn.Conv2d(1, 16, 3, padding=1)),
        (nn.Conv2d(4, 8, (3, 2), stride=2, dilation=2, groups=2, bias=False),
         tnn.Conv2d(4, 8, (3, 2), stride=2, dilation=2, groups=2, bias=False)),
        (nn.BatchNorm2d(16), tnn.BatchNorm2d(16)), (nn.BatchNorm1d(3, momentum=None),
                                                    tnn.BatchNorm1d(3, momentum=None)),
        (nn.Linear(3, 4), tnn.Linear(3, 4)), (nn.ReLU(), tnn.ReLU()),
        (nn.MaxPool2d(2), tnn.MaxPool2d(2)), (nn.Flatten(), tnn.Flatten()),
        (nn.Dropout(0.2), tnn.Dropout(0.2)), (nn.Identity(), tnn.Identity()),
        (nn.LSTM(4, 8, num_layers=2, batch_first=True), tnn.LSTM(4, 8, 2, batch_first=True)),
        (nn.GRU(4, 8, bidirectional=True), tnn.GRU(4, 8, bidirectional=True)),
        (nn.Sequential(nn.Linear(2, 2), nn.ReLU()), tnn.Sequential(tnn.Linear(2, 2), tnn.ReLU())),
    ]
    for q, t in pairs:
        assert repr(q) == repr(t)


def test_device_and_dtype_arguments_like_torch():
    assert nn.Linear(2, 3, device="cpu", dtype=np.float32).weight.dtype == np.float32
    nn.Conv2d(1, 2, 3, device="cpu")
    nn.BatchNorm2d(2, dtype="float32")
    nn.LSTM(2, 3, 1, True, False, 0.0, False, 0, "cpu")
    with pytest.raises(ValueError, match="`device` must be None or 'cpu'"):
        nn.Linear(2, 3, device="cuda")
    with pytest.raises(ValueError, match="`dtype` must be None or float32"):
        nn.Conv2d(1, 2, 3, dtype=np.float64)
