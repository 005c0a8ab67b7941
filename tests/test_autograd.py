"""The autograd: every op against float64 finite differences and torch's autograd, and
the engine (accumulation, shared nodes, no_grad, freeing the graph, custom Functions)."""
import gc
import weakref

import numpy as np
import pytest

import qlearn as ql
from qlearn.autograd import Function, gradcheck, ops
from qlearn.autograd.tensor import cat, maximum, minimum, stack, where


def r(rng, *shape):
    return rng.standard_normal(shape)


# -- every primitive, in float64, against central differences ---------------------------
@pytest.mark.parametrize("fn, make", [
    (ops.Add, lambda g: [r(g, 3, 4), r(g, 4)]),
    (ops.Add, lambda g: [r(g, 3, 1), r(g, 1, 5)]),
    (ops.Sub, lambda g: [r(g, 2, 3), r(g, 2, 1)]),
    (ops.Mul, lambda g: [r(g, 2, 3, 4), r(g, 3, 1)]),
    (ops.Div, lambda g: [r(g, 3, 4), 2 + np.abs(r(g, 4))]),
    (ops.Neg, lambda g: [r(g, 5)]),
    (ops.Pow, lambda g: [1 + np.abs(r(g, 6)), 2.5]),
    (ops.Pow, lambda g: [r(g, 6), 3]),
    (ops.MatMul, lambda g: [r(g, 3, 4), r(g, 4, 2)]),
    (ops.MatMul, lambda g: [r(g, 2, 3, 4), r(g, 4, 5)]),
    (ops.MatMul, lambda g: [r(g, 4), r(g, 4, 3)]),
    (ops.MatMul, lambda g: [r(g, 3, 4), r(g, 4)]),
    (ops.MatMul, lambda g: [r(g, 4), r(g, 4)]),
    (ops.MatMul, lambda g: [r(g, 4), r(g, 2, 4, 3)]),
    (ops.MatMul, lambda g: [r(g, 2, 1, 3, 4), r(g, 5, 4, 2)]),
    (ops.Exp, lambda g: [r(g, 3, 2)]),
    (ops.Log, lambda g: [1 + np.abs(r(g, 4))]),
    (ops.Sqrt, lambda g: [1 + np.abs(r(g, 4))]),
    (ops.Abs, lambda g: [r(g, 7)]),
    (ops.Tanh, lambda g: [r(g, 7)]),
    (ops.Sigmoid, lambda g: [5 * r(g, 7)]),
    (ops.ReLU, lambda g: [r(g, 3, 5)]),
    (ops.Maximum, lambda g: [r(g, 3, 4), r(g, 4)]),
    (ops.Minimum, lambda g: [r(g, 3, 4), r(g, 3, 1)]),
    (ops.Sum, lambda g: [r(g, 2, 3, 4)]),
    (ops.Amax, lambda g: [r(g, 2, 3, 4)]),
    (ops.Softmax, lambda g: [r(g, 3, 5), 1]),
    (ops.Softmax, lambda g: [r(g, 3, 5, 2), 0]),
    (ops.LogSoftmax, lambda g: [r(g, 4, 6), 1]),
    (ops.Reshape, lambda g: [r(g, 2, 6), (3, 4)]),
    (ops.Permute, lambda g: [r(g, 2, 3, 4), (2, 0, 1)]),
    (ops.Expand, lambda g: [r(g, 3, 1), (2, 3, 4)]),
    (ops.Clone, lambda g: [r(g, 3)]),
])
def test_primitive_matches_finite_differences(fn, make, rng):
    assert gradcheck(fn, make(rng))


@pytest.mark.parametrize("kwargs", [dict(axis=1), dict(axis=(0, 2), keepdims=True),
                                    dict(axis=-1), dict(axis=None, keepdims=True)])
def test_sum_and_amax_axes(kwargs, rng):
    assert gradcheck(ops.Sum, [r(rng, 2, 3, 4)], kwargs)
    assert gradcheck(ops.Amax, [r(rng, 2, 3, 4)], kwargs)


@pytest.mark.parametrize("key", [1, slice(1, 3), (Ellipsis, 0), (slice(None), [0, 2, 2]),
                                 np.array([[0, 1], [1, 1]])])
def test_getitem(key, rng):
    assert gradcheck(ops.GetItem, [r(rng, 3, 4), key])


def test_clamp_hardtanh_where_cat_stack(rng):
    x = r(rng, 4, 5)
    assert gradcheck(ops.Clamp, [x], dict(lo=-0.5, hi=0.5))
    assert gradcheck(ops.Clamp, [x], dict(lo=0.1))
    assert gradcheck(ops.Hardtanh, [x, -0.5, 0.5])
    assert gradcheck(ops.Where, [x > 0, x, r(rng, 5)])
    assert gradcheck(ops.Cat, [1, r(rng, 2, 3), r(rng, 2, 1), r(rng, 2, 2)])
    assert gradcheck(ops.Stack, [0, r(rng, 2, 3), r(rng, 2, 3)])
    idx = np.argmax(x, axis=1)
    assert gradcheck(ops.MaxDim, [x, idx, 1])
    assert gradcheck(ops.MaxDim, [x, idx, 1, True])


def test_gradcheck_catches_a_wrong_backward():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 x g

    with pytest.raises(AssertionError, match="Bad: gradient of input 0"):
        gradcheck(Bad, [np.array([1.0, 2.0])])


# -- the Tensor API against torch -----------------------------------------------------
EXPRESSIONS = {
    "arith": lambda a, b, m: ((a + b) * a - b / (a * a + 1) - 2.0 * a + 1.5) ** 2,
    "broadcast": lambda a, b, m: a * b[:1] + b.sum(0, keepdim=True) - 3 / (1 + b * b),
    "reflected": lambda a, b, m: 2 - a + 3 * b - 1 / (2 + a * a),
    "matmul": lambda a, b, m: (a @ b.T).exp().log() @ b,
    "reductions": lambda a, b, m: a.mean(1, keepdim=True) * b.sum(0) + a.var(0),
    "unary": lambda a, b, m: a.tanh() + b.sigmoid() + (a * a + 1).sqrt() + b.abs() + a.relu(),
    "softmax": lambda a, b, m: a.softmax(1) * b.log_softmax(0),
    "shape": lambda a, b, m: a.reshape(4, 3).T.flatten().unsqueeze(0).squeeze(0)
    .view(2, 6).permute(1, 0).transpose(0, 1).reshape(3, 4) * b,
    "index": lambda a, b, m: a[1:, ::2] * b[[0, 0], 1:3] + a[-1, :2],
    "clamp": lambda a, b, m: a.clamp(-0.5, 0.5) + b.clamp(min=0.0) + a.clamp(max=0.2),
    "max": lambda a, b, m: a.max(1)[0] + a.max(0, keepdim=True)[0].sum() + b.amax(1) + a.max(),
    "min": lambda a, b, m: a.min(1)[0] * 2 + b.min(),
    "expand": lambda a, b, m: a[:, :1].expand(3, 4) * b,
    "where_cat_stack": lambda a, b, m: m.stack([m.where(a > 0, a, b), b], 1).sum(1)
    + m.cat([a, b], 0)[1:4],
    "max_min_elementwise": lambda a, b, m: m.maximum(a, b) - m.minimum(a, 0.1 * b),
}


class _TorchNS:
    def __init__(self, torch):
        self.torch = torch

    def stack(self, ts, dim):
        return self.torch.stack(ts, dim)

    def cat(self, ts, dim):
        return self.torch.cat(ts, dim)

    def where(self, c, a, b):
        return self.torch.where(c, a, b)

    def maximum(self, a, b):
        return self.torch.maximum(a, b)

    def minimum(self, a, b):
        return self.torch.minimum(a, b)


class _QlNS:
    stack = staticmethod(stack)
    cat = staticmethod(cat)
    where = staticmethod(where)

    @staticmethod
    def maximum(a, b):
        return maximum(a, b)

    @staticmethod
    def minimum(a, b):
        return minimum(a, b)


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_tensor_expressions_match_torch(name, rng, torch_mod):
    torch = torch_mod
    a0 = rng.standard_normal((3, 4)).astype(np.float32)
    b0 = rng.standard_normal((3, 4)).astype(np.float32)
    expr = EXPRESSIONS[name]
    a, b = ql.tensor(a0, requires_grad=True), ql.tensor(b0, requires_grad=True)
    ta = torch.tensor(a0, requires_grad=True)
    tb = torch.tensor(b0, requires_grad=True)
    out, tout = expr(a, b, _QlNS), expr(ta, tb, _TorchNS(torch))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    proj = rng.standard_normal(out.shape).astype(np.float32)
    (out * proj).sum().backward()
    (tout * torch.tensor(proj)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_ties_share_gradient_as_torch(torch_mod):
    x = ql.tensor([1.0, 3.0, 3.0], requires_grad=True)
    tx = torch_mod.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    tx.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())  # [0, .5, .5]
    x = ql.tensor([0.0, -1.0, 2.0], requires_grad=True)
    tx = torch_mod.tensor([0.0, -1.0, 2.0], requires_grad=True)
    (x.relu() + x.abs() + x.clamp(0, 2)).sum().backward()
    (tx.relu() + tx.abs() + tx.clamp(0, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# -- the engine -------------------------------------------------------------------------
def test_gradients_accumulate_over_backward_calls_and_uses():
    x = ql.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0])
    y = x * x            # one node used by two consumers (a diamond)
    x.grad = None
    (y * 2 + y.exp()).sum().backward()
    xv = x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), 4 * xv + np.exp(xv ** 2) * 2 * xv, rtol=1e-6)


def test_same_tensor_twice_and_constants():
    x = ql.tensor([3.0], requires_grad=True)
    c = ql.tensor([2.0])                       # no grad: constant
    (x * x * c + np.float32(1) * x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [13.0])
    assert c.grad is None


def test_no_grad_and_requires_grad_false_build_no_graph():
    x = ql.tensor([1.0], requires_grad=True)
    with ql.no_grad():
        y = x * 2
        with ql.enable_grad():
            z = x * 2
        assert not ql.autograd.is_grad_enabled()
    assert ql.autograd.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad
    assert z.grad_fn is not None
    w = ql.tensor([1.0]) * 3
    assert w.grad_fn is None and not w.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        w.backward()


def test_backward_frees_saved_arrays_and_second_backward_raises():
    x = ql.tensor(np.ones(3), requires_grad=True)
    y = (x * x).sum()
    node = y.grad_fn
    y.backward()
    mul = node.next_functions[0]
    assert mul.ctx._saved == () and mul.ctx._freed
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = ql.tensor([2.0], requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0])


def test_graph_does_not_keep_intermediate_tensors_alive():
    x = ql.tensor(np.ones(1000), requires_grad=True)
    h = x.tanh()
    data = weakref.ref(h)
    loss = (h + 1).sum()     # Add saves nothing: h is referenced by no node
    del h
    gc.collect()
    assert data() is None
    loss.backward()
    assert x.grad.shape == (1000,)


def test_deep_graph_does_not_recurse():
    x = ql.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0])


def test_backward_with_gradient_argument_and_errors():
    x = ql.tensor([[1.0, 2.0]], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="one-element"):
        y.backward()
    with pytest.raises(ValueError, match="`gradient` must have shape"):
        y.backward(np.ones(3))
    y.backward(np.array([[1.0, 10.0]]))
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 20.0]])
    leaf = ql.tensor([1.0], requires_grad=True)
    leaf.backward()
    leaf.backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [2.0])


def test_custom_function_multiple_outputs_none_grads_and_shape_check():
    class SplitScale(Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.k = k
            return x[:1] * k, x[1:]

        @staticmethod
        def backward(ctx, g0, g1):
            return np.concatenate([g0 * ctx.k, g1]), None

    x = ql.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b = SplitScale.apply(x, 5.0)
    (a.sum() * 2).backward()      # b unused: its gradient is zeros
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 0.0, 0.0])

    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return np.ones(7)

    with pytest.raises(RuntimeError, match="Wrong.backward returned a gradient of shape"):
        Wrong.apply(ql.tensor([1.0, 2.0], requires_grad=True)).backward()

    class Broadcasting(Function):   # a broadcast gradient is summed back, as in torch
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            return np.broadcast_to(g, (3,) + g.shape)

    x = ql.tensor([1.0, 2.0], requires_grad=True)
    Broadcasting.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_needs_input_grad_and_ste_example():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    Probe.apply(ql.tensor([1.0], requires_grad=True), ql.tensor([1.0]))
    assert seen["needs"] == (True, False)
    with ql.no_grad():
        Probe.apply(ql.tensor([1.0], requires_grad=True), ql.tensor([1.0]))
    assert seen["needs"] == (False, False)


def test_tensor_basics():
    t = ql.tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert t.dtype == np.float32 and t.shape == (2, 3) and t.ndim == 2 and len(t) == 2
    assert t.size() == (2, 3) and t.size(1) == 3 and t.numel() == 6 and t.dim() == 2
    assert np.asarray(t).dtype == np.float32
    assert (np.ones((2, 3)) + t).requires_grad is False
    x = ql.tensor([1.0], requires_grad=True)
    y = np.float32(2.0) * x   # ndarray scalar on the left defers to Tensor
    assert isinstance(y, ql.Tensor) and y.requires_grad
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad
    assert x.is_leaf and not y.is_leaf
    with pytest.raises(TypeError, match="numeric"):
        ql.tensor(["a"])
    with pytest.raises(TypeError, match="Tensor exponent"):
        x ** x
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    v, i = ql.tensor([[1.0, 5.0, 2.0]]).max(dim=1)
    assert v.item() == 5.0 and i.tolist() == [1]
    res = ql.tensor([[1.0, 5.0, 2.0]]).max(1)
    assert res.values.item() == 5.0 and res.indices.tolist() == [1]
    assert ql.tensor([[1.0, 5.0]]).argmax(1).tolist() == [1]
    assert "grad_fn=<MulBackward>" in repr(y)
    assert "requires_grad=True" in repr(x)
    with pytest.raises(ValueError, match="`dim` must be in"):
        ql.tensor([1.0]).softmax(3)


def test_grad_mode_is_thread_local():
    import threading
    out = {}
    with ql.no_grad():
        th = threading.Thread(target=lambda: out.setdefault("on", ql.autograd.is_grad_enabled()))
        th.start()
        th.join()
    assert out["on"] is True


def test_retain_grad_matches_torch(torch_mod):
    x = ql.tensor([1.0, -2.0, 3.0], requires_grad=True)
    tx = torch_mod.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y, ty = x.tanh(), tx.tanh()
    y.retain_grad()
    ty.retain_grad()
    ((y * y).sum() + y.sum()).backward()
    ((ty * ty).sum() + ty.sum()).backward()
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


def test_tensor_keyword_argument_is_refused_and_scalars_convert():
    class Scale(Function):
        @staticmethod
        def forward(ctx, x, k=1.0):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g

    x = ql.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="pass tensors positionally"):
        Scale.apply(x, k=ql.tensor(2.0))
    assert float(ql.tensor(2.5)) == 2.5 and int(ql.tensor([3.0])) == 3
    assert bool(ql.tensor(1.0)) and not bool(ql.tensor([0.0]))


def test_graph_is_freed_by_reference_counting_alone():
    """Nodes hold no reference to their outputs, so there are no cycles: dropping the
    loss frees the whole graph at once, without the cyclic garbage collector."""
    gc.disable()
    try:
        w = ql.tensor(np.ones((50, 50)), requires_grad=True)
        h = (w @ w).relu()
        h.retain_grad()
        loss = (h * h).sum()
        node = weakref.ref(h.grad_fn)
        del h
        loss.backward()
        assert node() is not None        # still reachable from loss
        del loss
        assert node() is None
    finally:
        gc.enable()


def test_max_min_numpy_spelling_returns_values(torch_mod):
    x0 = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], np.float32)
    x, tx = ql.tensor(x0, requires_grad=True), torch_mod.tensor(x0, requires_grad=True)
    (x.max(axis=1).sum() + x.min(axis=0, keepdims=True).sum()).backward()
    (tx.amax(1).sum() + tx.amin(0, keepdim=True).sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    with pytest.raises(TypeError, match="not both"):
        x.max(1, axis=1)


def test_gradcheck_random_state_takes_an_int_or_a_generator():
    x = np.linspace(-2, 2, 5)
    assert gradcheck(ops.Tanh, [x], random_state=7)
    assert gradcheck(ops.Tanh, [x], random_state=np.random.default_rng(7))
