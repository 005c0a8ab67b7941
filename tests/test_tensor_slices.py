"""Tensor.select / narrow / index_select / unbind / split / chunk: torch's pieces and
torch's gradients (each piece is a GetItem, so the gradient scatters back and adds where
an index repeats), and errors that name the argument."""
import numpy as np
import pytest

import qlearn as ql

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7

CASES = [
    ("select", (1, -1)), ("select", (0, 1)), ("select", (2, 0)),
    ("narrow", (2, 1, 2)), ("narrow", (2, -2, 2)), ("narrow", (0, 2, 0)),
    ("narrow", (1, 0, 3)),
    ("index_select", (1, [2, 0, 2])), ("index_select", (2, [])), ("index_select", (0, 1)),
    ("unbind", (1,)), ("unbind", (-1,)),
    ("split", (2, 2)), ("split", (3, 2)), ("split", ([1, 3], 2)), ("split", ([0, 2], 0)),
    ("chunk", (3, 2)), ("chunk", (5, 1)), ("chunk", (1, 0)),
]


def _torch_args(torch, name, args):
    if name == "index_select":
        return (args[0], torch.tensor(args[1], dtype=torch.int64))
    return args


@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_pieces_and_gradients_are_torchs(torch_mod, name, args):
    torch = torch_mod
    t = torch.tensor(X, requires_grad=True)
    q = ql.tensor(X, requires_grad=True)
    ours = getattr(q, name)(*args)
    theirs = getattr(t, name)(*_torch_args(torch, name, args))
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
    else:
        ours, theirs = (ours,), (theirs,)
    w = np.random.default_rng(0)
    loss_q, loss_t = 0, 0
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.data, b.detach().numpy())
        r = w.standard_normal(a.shape).astype(np.float32)
        loss_q = loss_q + (a * ql.tensor(r)).sum()
        loss_t = loss_t + (b * torch.tensor(r)).sum()
    if theirs[0].numel() or len(theirs) > 1:
        loss_q.backward()
        loss_t.backward()
        np.testing.assert_allclose(q.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [0, 1, 5, 7])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 8])
def test_split_and_chunk_sizes_are_torchs(torch_mod, size, n):
    x = np.zeros((size, 2), np.float32)
    for name in ("split", "chunk"):
        ours = [p.shape for p in getattr(ql.tensor(x), name)(n)]
        theirs = [tuple(p.shape) for p in getattr(torch_mod.tensor(x), name)(n)]
        assert ours == theirs, name


def test_repeated_indices_add_their_gradients():
    q = ql.tensor(np.ones(3, np.float32), requires_grad=True)
    q.index_select(0, [2, 2, 0]).sum().backward()
    np.testing.assert_array_equal(q.grad.data, [1, 0, 2])


@pytest.mark.parametrize("call,exc,match", [
    (lambda t: t.select(1, 3), IndexError, r"`index` must be in \[-3, 2\]"),
    (lambda t: t.select(1, 1.0), TypeError, "`index` must be an int"),
    (lambda t: t.select(3, 0), ValueError, "`dim`"),
    (lambda t: t.narrow(2, 3, 2), ValueError, "`start` \\+ `length` must be at most 4"),
    (lambda t: t.narrow(2, 5, 0), IndexError, "`start` must be in"),
    (lambda t: t.narrow(2, 0, -1), ValueError, "non-negative `length`"),
    (lambda t: t.index_select(0, [2]), IndexError, r"indices in \[0, 1\]"),
    (lambda t: t.index_select(0, [-1]), IndexError, r"indices in \[0, 1\]"),
    (lambda t: t.index_select(0, [[0]]), IndexError, "vector"),
    (lambda t: t.index_select(0, [0.5]), TypeError, "`index` must be a vector of integers"),
    (lambda t: t.split([1, 1], 1), ValueError, "adding up to 3"),
    (lambda t: t.split(0, 1), ValueError, "must be positive"),
    (lambda t: t.split(True), TypeError, "`split_size_or_sections` must be an int"),
    (lambda t: t.chunk(0), ValueError, "`chunks` must be positive"),
    (lambda t: ql.tensor(1.0).unbind(), ValueError, "0-d"),
])
def test_bad_arguments_are_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call(ql.tensor(X))
