"""The QTensor shape, view and comparison methods against PyTorch 2.13's quantized tensors:
flatten, squeeze, unsqueeze, t, select, narrow, split, chunk, unbind, flip, expand,
repeat, indexing, equal, eq/ne, item, stride and the small conveniences.

Each result is compared with torch's on per-tensor and per-channel tensors (every channel
axis, negative dims, 0-d and empty tensors): the same integers, shape, qscheme, scale and
zero point, or per-channel scales, zero points and axis, and the same dequantized values.

Deliberate differences, asserted as qlearn's behaviour (each documented on its method):

* a view that keeps one channel of a per-channel tensor (``narrow``, ``split``, a slice)
  stays per-channel; torch makes it per-tensor (same integers; the dequantized values,
  float64 per-channel against float32 per-tensor, agree to one float32 ulp);
* ``flip``, ``expand``, ``repeat`` and the 2-d ``t()`` of a per-channel tensor work (the
  channel parameters follow); torch raises "Setting strides is possible only on uniformly
  quantized tensor", so these are checked against NumPy on the integers;
* squeezing the channel axis (of length 1) gives a per-tensor tensor, as ``select`` does;
  torch raises;
* ``flatten``/``reshape`` that merge the channel axis with another axis are refused (torch
  keeps a stale axis whose scales no longer match its length); merging axes before it
  moves the axis (torch keeps the old number);
* ``q1 == q2`` is one bool (``equal``); torch's elementwise ``==`` is ``q1.eq(q2)``;
* argument errors are ValueError / TypeError naming the argument (torch: RuntimeError,
  IndexError).
"""
import doctest

import numpy as np
import pytest

import qlearn as ql

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SCALES = np.array([0.1, 0.2, 0.3, 0.05, 0.7])
ZPS = np.array([1, -2, 3, 0, 5])


def _pair(torch, shape, axis=None, dtype="qint8", seed=0):
    """The same quantized tensor in qlearn and torch (per-channel when ``axis`` is set)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    tx = torch.from_numpy(x) if x.ndim else torch.tensor(float(x))
    if axis is None:
        zp = 3 if dtype == "quint8" else -3
        return (ql.quantize_per_tensor(x, 0.05, zp, getattr(ql, dtype)),
                torch.quantize_per_tensor(tx, 0.05, zp, getattr(torch, dtype)))
    c = shape[axis]
    s, z = SCALES[:c], ZPS[:c] + (10 if dtype == "quint8" else 0)
    return (ql.quantize_per_channel(x, s, z, axis, getattr(ql, dtype)),
            torch.quantize_per_channel(tx, torch.from_numpy(s), torch.from_numpy(z), axis,
                                       getattr(torch, dtype)))


def _assert_same(q, t, where, one_channel_ok=False):
    """q (qlearn) is t (torch): integers, shape, scheme, parameters, reals."""
    import torch
    assert isinstance(q, ql.QTensor), where
    assert tuple(q.shape) == tuple(t.shape), where
    np.testing.assert_array_equal(q.int_repr(), t.int_repr().numpy(), err_msg=where)
    assert q.int_repr().dtype == t.int_repr().numpy().dtype, where
    tq = str(t.qscheme()).replace("torch.", "")
    per_channel_t = t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric,
                                    torch.per_channel_affine_float_qparams)
    if one_channel_ok and not per_channel_t and q.qscheme().name.startswith("per_channel"):
        # deliberate: one channel kept as per-channel (torch: per-tensor)
        assert q.q_per_channel_scales().tolist() == [t.q_scale()], where
        assert q.q_per_channel_zero_points().tolist() == [t.q_zero_point()], where
        np.testing.assert_allclose(q.dequantize(), t.dequantize().numpy(), rtol=2e-7,
                                   atol=0, err_msg=where)
        return
    assert q.qscheme().name == tq, where
    if per_channel_t:
        assert q.q_per_channel_axis() == t.q_per_channel_axis(), where
        np.testing.assert_array_equal(q.q_per_channel_scales(),
                                      t.q_per_channel_scales().numpy(), err_msg=where)
        np.testing.assert_array_equal(q.q_per_channel_zero_points(),
                                      t.q_per_channel_zero_points().numpy(), err_msg=where)
    else:
        assert q.q_scale() == t.q_scale() and q.q_zero_point() == t.q_zero_point(), where
        assert type(q.q_scale()) is float and type(q.q_zero_point()) is int
    deq = q.dequantize()
    if per_channel_t or q.qscheme().name == tq:
        np.testing.assert_array_equal(deq, t.dequantize().numpy(), err_msg=where)


def _consistent(q):
    """A per-channel result must have one scale per slice along its axis."""
    if q.qscheme().name.startswith("per_channel"):
        assert len(q.q_per_channel_scales()) == q.shape[q.q_per_channel_axis()]


# ---- ops torch runs on per-tensor and per-channel tensors --------------------------------
OPS = {
    "flatten()": lambda a: a.flatten(),
    "flatten(1)": lambda a: a.flatten(1),
    "flatten(0,1)": lambda a: a.flatten(0, 1),
    "flatten(-2,-1)": lambda a: a.flatten(-2, -1),
    "flatten(1,1)": lambda a: a.flatten(1, 1),
    "squeeze()": lambda a: a[None].squeeze(),
    "squeeze(0)": lambda a: a[None].squeeze(0),
    "squeeze(-1)": lambda a: a.unsqueeze(-1).squeeze(-1),
    "squeeze(non-1)": lambda a: a.squeeze(1),
    "squeeze((0, 1))": lambda a: a[None].squeeze((0, 1)),
    "squeeze([0, 2])": lambda a: a[None].unsqueeze(2).squeeze([0, 2]),
    "unsqueeze(0)": lambda a: a.unsqueeze(0),
    "unsqueeze(1)": lambda a: a.unsqueeze(1),
    "unsqueeze(3)": lambda a: a.unsqueeze(3),
    "unsqueeze(-1)": lambda a: a.unsqueeze(-1),
    "unsqueeze(-4)": lambda a: a.unsqueeze(-4),
    "select(0,1)": lambda a: a.select(0, 1),
    "select(1,-1)": lambda a: a.select(1, -1),
    "select(-1,2)": lambda a: a.select(-1, 2),
    "narrow(1,1,2)": lambda a: a.narrow(1, 1, 2),
    "narrow(2,-3,2)": lambda a: a.narrow(2, -3, 2),
    "narrow(2,4,0)": lambda a: a.narrow(2, 4, 0),
    "narrow(0,0,2)": lambda a: a.narrow(0, 0, 2),
    "getitem[None]": lambda a: a[None],
    "getitem[:,None,1:]": lambda a: a[:, None, 1:],
    "getitem[...,None]": lambda a: a[..., None],
    "getitem[1,...,::2]": lambda a: a[1, ..., ::2],
    "getitem[:,1]": lambda a: a[:, 1],
    "getitem[-1]": lambda a: a[-1],
    "getitem[:,:,None,1]": lambda a: a[:, :, None, 1],
    "unflatten(1)": lambda a: a.unflatten(1, (3, 1)),
    "unflatten(-1)": lambda a: a.unflatten(-1, (2, -1)),
    "unflatten(0)": lambda a: a.unflatten(0, [1, 2, 1]),
    "movedim(0,-1)": lambda a: a.movedim(0, -1),
    "movedim tuples": lambda a: a.movedim((0, 1), (2, 0)),
    "moveaxis(2,0)": lambda a: a.moveaxis(2, 0),
    "view_as": lambda a: a.view_as(a.flatten(2)) if a.ndim == 3 else a,
    "reshape_as": lambda a: a.reshape_as(a),
    "swapaxes(0,1) pt": lambda a: a.swapaxes(0, 1),
    "detach": lambda a: a.detach(),
    "cpu": lambda a: a.cpu(),
    "to(cpu)": lambda a: a.to("cpu"),
}
# the pieces of a split / chunk / unbind, each compared
MULTI = {
    "split(2,1)": lambda a: a.split(2, 1),
    "split([1,2],1)": lambda a: a.split([1, 2], 1),
    "split(4,1)": lambda a: a.split(4, 1),
    "split(3,-1)": lambda a: a.split(3, -1),
    "split([0,4],2)": lambda a: a.split([0, 4], 2),
    "chunk(2,1)": lambda a: a.chunk(2, 1),
    "chunk(3,-1)": lambda a: a.chunk(3, -1),
    "chunk(5,0)": lambda a: a.chunk(5, 0),
    "chunk(3,2)": lambda a: a.chunk(3, 2),
    "unbind(0)": lambda a: a.unbind(0),
    "unbind(-2)": lambda a: a.unbind(-2),
}
# flip / expand / repeat / t(2-d): torch runs them on per-tensor tensors only
PER_TENSOR_OPS = {
    "flip(1)": lambda a: a.flip(1),
    "flip(0,2)": lambda a: a.flip(0, 2),
    "flip((-1,))": lambda a: a.flip((-1,)),
    "flip()": lambda a: a.flip(()),
    "expand": lambda a: a[:, :1].expand(2, 5, 4),
    "expand(-1, new)": lambda a: a.expand(3, -1, -1, -1),
    "expand(0 new)": lambda a: a.expand(0, 2, 3, 4),
    "repeat(1,2,1)": lambda a: a.repeat(1, 2, 1),
    "repeat(2,1,1,3)": lambda a: a.repeat(2, 1, 1, 3),
    "repeat(1,0,1)": lambda a: a.repeat(1, 0, 1),
    "t(2d)": lambda a: a[0].t(),
    "t(1d)": lambda a: a[0, 0].t(),
    "transpose": lambda a: a.transpose(0, -1),
}
CASES = [(None, "quint8"), (None, "qint8"), (0, "qint8"), (1, "qint8"), (2, "quint8"),
         (-1, "qint8")]


def _case_id(c):
    return "per_tensor-" + c[1] if c[0] is None else f"axis{c[0]}-{c[1]}"


def _run_both(torch, fn, q, t):
    try:
        want = fn(t)
    except (RuntimeError, IndexError) as e:
        return None, e
    return want, None


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("name", list(OPS))
def test_ops_match_torch(torch_mod, name, case):
    axis, dtype = case
    q, t = _pair(torch_mod, (2, 3, 4), None if axis is None else axis % 3, dtype)
    if axis is not None:
        q = ql.quantize_per_channel(q.dequantize(), q.q_per_channel_scales(),
                                    q.q_per_channel_zero_points(), axis, q.dtype)
    where = f"{name} on {_case_id(case)}"
    try:
        want = OPS[name](t)
    except RuntimeError as e:
        # torch refuses (per-channel): qlearn either works correctly or refuses clearly
        try:
            got = OPS[name](q)
        except ValueError:
            return
        _consistent(got)
        # "Setting strides ...", "Squeeze is only possible ...", and torch failing on a
        # per-channel view with no channel left ("0 elements cannot be converted")
        assert any(m in str(e) for m in ("strides", "Squeeze", "0 elements")), (where, e)
        return
    if _torch_broken(want):
        # torch kept a stale channel axis (flatten, select with a negative dim): qlearn
        # moves it or refuses; where it works, the reals are the op on torch's floats
        try:
            got = OPS[name](q)
        except ValueError as e:
            assert "channel axis" in str(e), where
            return
        _consistent(got)
        np.testing.assert_array_equal(got.int_repr(), want.int_repr().numpy())
        floats = OPS[name](torch_mod.from_numpy(q.dequantize())).numpy()
        np.testing.assert_array_equal(got.dequantize(), floats, err_msg=where)
        return
    got = OPS[name](q)
    _assert_same(got, want, where, one_channel_ok=True)
    _consistent(got)


def _torch_broken(t):
    """A per-channel torch result whose axis does not index one scale per slice."""
    if not str(t.qscheme()).startswith("torch.per_channel"):
        return False
    ax = t.q_per_channel_axis()
    return not 0 <= ax < t.dim() or t.shape[ax] != len(t.q_per_channel_scales())


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("name", list(MULTI))
def test_pieces_match_torch(torch_mod, name, case):
    axis, dtype = case
    q, t = _pair(torch_mod, (2, 3, 4), None if axis is None else axis % 3, dtype)
    got = MULTI[name](q)
    assert type(got) is tuple
    try:
        want = MULTI[name](t)
    except RuntimeError as e:           # torch fails on a piece with no channel left
        assert "0 elements" in str(e) and axis is not None
        assert [g.shape for g in got] == [tuple(w.shape) for w in
                                          MULTI[name](torch_mod.zeros(2, 3, 4))]
        for g in got:
            _consistent(g)
        return
    assert len(got) == len(want), name
    for i, (g, w) in enumerate(zip(got, want)):
        where = f"{name} piece {i} on {_case_id(case)}"
        _consistent(g)
        if _torch_broken(w):            # torch kept a stale (negative) axis
            np.testing.assert_array_equal(g.int_repr(), w.int_repr().numpy())
            continue
        _assert_same(g, w, where, one_channel_ok=True)


@pytest.mark.parametrize("dtype", ["quint8", "qint8"])
@pytest.mark.parametrize("name", list(PER_TENSOR_OPS))
def test_per_tensor_copies_match_torch(torch_mod, name, dtype):
    q, t = _pair(torch_mod, (2, 3, 4), None, dtype)
    got, want = PER_TENSOR_OPS[name](q), PER_TENSOR_OPS[name](t)
    _assert_same(got, want, name)
    if name.startswith(("flip", "repeat")):         # copies in torch: contiguous
        assert got.stride() == tuple(want.stride()) and got.is_contiguous()


NUMPY_TWIN = {      # what each op does to the integers, per-channel (torch refuses)
    "flip(1)": lambda a: np.flip(a, 1), "flip(0,2)": lambda a: np.flip(a, (0, 2)),
    "flip((-1,))": lambda a: np.flip(a, -1), "flip()": lambda a: a,
    "expand": lambda a: np.broadcast_to(a[:, :1], (2, 5, 4)),
    "expand(-1, new)": lambda a: np.broadcast_to(a, (3, 2, 3, 4)),
    "expand(0 new)": lambda a: np.broadcast_to(a, (0, 2, 3, 4)),
    "repeat(1,2,1)": lambda a: np.tile(a, (1, 2, 1)),
    "repeat(2,1,1,3)": lambda a: np.tile(a, (2, 1, 1, 3)),
    "repeat(1,0,1)": lambda a: np.tile(a, (1, 0, 1)),
    "t(2d)": lambda a: a[0].T, "t(1d)": lambda a: a[0, 0],
    "transpose": lambda a: np.swapaxes(a, 0, -1),
}


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("name", list(PER_TENSOR_OPS))
def test_per_channel_copies_follow_the_channels(torch_mod, name, axis):
    torch = torch_mod
    q, t = _pair(torch, (2, 3, 4), axis, "qint8")
    try:                                        # torch: mostly per-tensor only
        PER_TENSOR_OPS[name](t)
    except RuntimeError as e:
        assert "uniformly quantized" in str(e)
    got = PER_TENSOR_OPS[name](q)
    _consistent(got)
    np.testing.assert_array_equal(got.int_repr(), NUMPY_TWIN[name](q.int_repr()))
    # the reals follow the integers: the same op on the dequantized array (to one
    # float32 ulp where a per-tensor result dequantizes in float32, t() of axis 0)
    np.testing.assert_allclose(got.dequantize(), NUMPY_TWIN[name](q.dequantize()),
                               rtol=2e-7, atol=0)
    if got.qscheme() is ql.per_channel_affine:
        # and requantizing those reals with the result's own parameters gives them back
        back = ql.quantize_per_channel(got.dequantize(), got.q_per_channel_scales(),
                                       got.q_per_channel_zero_points(),
                                       got.q_per_channel_axis(), ql.qint8)
        np.testing.assert_array_equal(back.int_repr(), got.int_repr())


def test_flatten_and_reshape_move_the_channel_axis(torch_mod):
    q, _ = _pair(torch_mod, (2, 3, 4, 5), 2)
    f = q.flatten(0, 1)                         # axes before the channels merge
    assert f.shape == (6, 4, 5) and f.q_per_channel_axis() == 1
    np.testing.assert_array_equal(f.dequantize(), q.dequantize().reshape(6, 4, 5))
    assert q.flatten(3).q_per_channel_axis() == 2        # after the channels
    r = q.reshape(6, 1, 4, 5)
    assert r.q_per_channel_axis() == 2
    for bad in (lambda: q.flatten(), lambda: q.flatten(2), lambda: q.flatten(1, 2),
                lambda: q.reshape(2, 12, 5), lambda: q.view(6, 20)):
        with pytest.raises(ValueError, match="channel axis"):
            bad()
    one = ql.quantize_per_channel(np.ones((2, 3, 1)), [0.5] * 3, [0] * 3, 1, ql.qint8)
    assert one.flatten(1).shape == (2, 3) and one.flatten(1).q_per_channel_axis() == 1


def test_squeeze_channel_axis_gives_per_tensor(torch_mod):
    torch = torch_mod
    q, t = _pair(torch, (2, 1, 4), 1, "qint8")
    with pytest.raises(RuntimeError, match="Squeeze"):
        t.squeeze(1)
    for s in (q.squeeze(1), q.squeeze(), q.squeeze((0, 1))):
        assert s.qscheme() is ql.per_tensor_affine and s.shape == (2, 4)
        assert s.q_scale() == SCALES[0] and s.q_zero_point() == ZPS[0]
        np.testing.assert_array_equal(s.int_repr(), q.int_repr()[:, 0])
        # the per-tensor twin torch makes with select() on the same channel
        _assert_same(s, t.select(1, 0), "squeeze vs torch select")
    sym = ql.quantize_per_channel(np.ones((1, 2)), [0.5], [0], 0, ql.qint8)
    fq = ql.quantize_per_channel(np.ones((1, 2)), np.array([0.5], np.float32),
                                 np.array([0.25], np.float32), 0, ql.quint8)
    assert sym.squeeze(0).shape == (2,)
    with pytest.raises(ValueError, match="float zero point"):
        fq.squeeze(0)
    with pytest.raises(ValueError, match="float zero point"):
        fq.select(0, 0)


# ---- 0-d and empty tensors --------------------------------------------------------------
ZERO_D = {
    "flatten": lambda a: a.flatten(), "flatten(0,0)": lambda a: a.flatten(0, 0),
    "flatten(-1)": lambda a: a.flatten(-1), "squeeze": lambda a: a.squeeze(),
    "squeeze(0)": lambda a: a.squeeze(0), "squeeze(-1)": lambda a: a.squeeze(-1),
    "unsqueeze(0)": lambda a: a.unsqueeze(0), "unsqueeze(-1)": lambda a: a.unsqueeze(-1),
    "t": lambda a: a.t(), "flip(0)": lambda a: a.flip(0), "flip(())": lambda a: a.flip(()),
    "expand(3)": lambda a: a.expand(3), "expand(2,3)": lambda a: a.expand(2, 3),
    "repeat(2,2)": lambda a: a.repeat(2, 2), "repeat()": lambda a: a.repeat(()),
    "getitem()": lambda a: a[()], "getitem None": lambda a: a[None],
}


@pytest.mark.parametrize("name", list(ZERO_D))
def test_zero_d(torch_mod, name):
    q, t = _pair(torch_mod, (), None, "quint8")
    _assert_same(ZERO_D[name](q), ZERO_D[name](t), name)


@pytest.mark.parametrize("name", ["select", "narrow", "split", "chunk", "unbind",
                                  "squeeze(1)", "unsqueeze(2)"])
def test_zero_d_refusals(torch_mod, name):
    q, t = _pair(torch_mod, (), None, "quint8")
    fn = {"select": lambda a: a.select(0, 0), "narrow": lambda a: a.narrow(0, 0, 1),
          "split": lambda a: a.split(1), "chunk": lambda a: a.chunk(1),
          "unbind": lambda a: a.unbind(), "squeeze(1)": lambda a: a.squeeze(1),
          "unsqueeze(2)": lambda a: a.unsqueeze(2)}[name]
    with pytest.raises((RuntimeError, IndexError)):
        fn(t)
    with pytest.raises(ValueError):
        fn(q)


EMPTY = {
    "chunk(2,0)": lambda a: a.chunk(2, 0), "chunk(2,1)": lambda a: a.chunk(2, 1),
    "split(2,0)": lambda a: a.split(2, 0), "split(0,0)": lambda a: a.split(0, 0),
    "split(2,1)": lambda a: a.split(2, 1), "unbind(1)": lambda a: a.unbind(1),
    "unbind(0)": lambda a: a.unbind(0),
    "flatten": lambda a: (a.flatten(),), "squeeze": lambda a: (a.unsqueeze(1).squeeze(),),
    "flip": lambda a: (a.flip(0, 1),), "repeat": lambda a: (a.repeat(2, 2),),
    "expand": lambda a: (a.unsqueeze(0).expand(4, 0, 3),),
    "narrow": lambda a: (a.narrow(1, 1, 2),),
}


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("name", list(EMPTY))
def test_empty(torch_mod, name, per_channel):
    torch = torch_mod
    q, t = _pair(torch, (0, 3), 1 if per_channel else None, "qint8")
    try:
        want = EMPTY[name](t)
    except RuntimeError as e:
        assert per_channel and "uniformly" in str(e)
        got = EMPTY[name](q)
        for g in got:
            _consistent(g)
            assert g.numel() == 0
        return
    if per_channel and any(_torch_broken(w) for w in want) or name == "flip":
        # torch keeps a stale axis (flatten) or unflipped scales (flip of no elements)
        try:
            got = EMPTY[name](q)
        except ValueError as e:
            assert "channel axis" in str(e)
            return
        for g, w in zip(got, want):
            _consistent(g)
            assert tuple(g.shape) == tuple(w.shape)
        return
    got = EMPTY[name](q)
    assert len(got) == len(want), name
    for g, w in zip(got, want):
        _assert_same(g, w, name, one_channel_ok=True)


# ---- equality -------------------------------------------------------------------------------
def _variants(torch):
    x = np.array([[0.1, 0.2, -0.3], [0.0, 0.45, 1.0]], np.float32)
    tx = torch.from_numpy(x)
    s, z = np.array([0.1, 0.05]), np.array([0, 1])
    return [
        (ql.quantize_per_tensor(x, 0.1, 0, ql.qint8),
         torch.quantize_per_tensor(tx, 0.1, 0, torch.qint8)),
        (ql.quantize_per_tensor(x, 0.1, 1, ql.qint8),
         torch.quantize_per_tensor(tx, 0.1, 1, torch.qint8)),
        (ql.quantize_per_tensor(x, 0.05, 0, ql.qint8),
         torch.quantize_per_tensor(tx, 0.05, 0, torch.qint8)),
        (ql.quantize_per_tensor(x, 0.1, 0, ql.quint8),
         torch.quantize_per_tensor(tx, 0.1, 0, torch.quint8)),
        (ql.quantize_per_tensor(x * 2, 0.2, 0, ql.qint8),
         torch.quantize_per_tensor(tx * 2, 0.2, 0, torch.qint8)),
        (ql.quantize_per_channel(x, s, z, 0, ql.qint8),
         torch.quantize_per_channel(tx, torch.from_numpy(s), torch.from_numpy(z), 0,
                                    torch.qint8)),
        (ql.quantize_per_channel(x, [0.1, 0.1], [0, 0], 0, ql.qint8),
         torch.quantize_per_channel(tx, torch.tensor([0.1, 0.1], dtype=torch.float64),
                                    torch.tensor([0, 0]), 0, torch.qint8)),
        (ql.quantize_per_tensor(x[:1], 0.1, 0, ql.qint8),
         torch.quantize_per_tensor(tx[:1], 0.1, 0, torch.qint8)),
    ]


def test_equal_and_eq_match_torch(torch_mod):
    torch = torch_mod
    vs = _variants(torch)
    for i, (qa, ta) in enumerate(vs):
        assert qa.equal(qa.clone()) and torch.equal(ta, ta.clone())
        assert qa.equal(qa.dequantize()) is torch.equal(ta, ta.dequantize()) is False
        for j, (qb, tb) in enumerate(vs):
            where = f"variants {i} and {j}"
            assert qa.equal(qb) == torch.equal(ta, tb) == (qa == qb), where
            assert (qa != qb) == (not torch.equal(ta, tb)), where
            try:
                want = (ta == tb).numpy()
            except RuntimeError:
                continue
            got = qa.eq(qb)
            assert isinstance(got, ql.Tensor) and got.data.dtype == np.bool_
            np.testing.assert_array_equal(got.data, want, err_msg=where)
            np.testing.assert_array_equal(qa.ne(qb).data, (ta != tb).numpy(), err_msg=where)
            np.testing.assert_array_equal(ql.eq(qa, qb).data, torch.eq(ta, tb).numpy())
        for other, tother in ((0.1, 0.1), (np.float32(0.2), 0.2),
                              (np.array([0.1, 0.0, 0.5], np.float32),
                               torch.tensor([0.1, 0.0, 0.5])),
                              (ql.tensor(np.zeros(3, np.float32)), torch.zeros(3))):
            np.testing.assert_array_equal(qa.eq(other).data, (ta == tother).numpy())
            np.testing.assert_array_equal(qa.ne(other).data, (ta != tother).numpy())


def test_equality_edges():
    q = ql.quantize_per_tensor([0.1, 0.2], 0.1, 0, ql.quint8)
    assert (q == 3) is False and (q != "a") is True       # Python's fallback
    assert q in [ql.quantize_per_tensor([0.1, 0.2], 0.1, 0, ql.quint8)]
    assert not q.equal(ql.tensor([0.1, 0.2]))
    sym = ql.QTensor(q.int_repr(), ql.quint8, ql.per_tensor_symmetric, 0.1, 0)
    assert not q.equal(sym)                              # the scheme counts
    with pytest.raises(TypeError, match="`other`"):
        q.equal(3)
    with pytest.raises(TypeError, match="`other`"):
        q.eq("a")
    with pytest.raises(TypeError, match="unhashable"):
        hash(q)


# ---- conveniences ---------------------------------------------------------------------------
def test_conveniences_match_torch(torch_mod):
    torch = torch_mod
    for axis in (None, 1):
        q, t = _pair(torch, (2, 3, 4), axis, "qint8")
        assert q.item.__doc__ and q[1, 2, 3].item() == t[1, 2, 3].item()
        assert q.stride() == tuple(t.stride()) and q.stride(-1) == t.stride(-1)
        assert q.is_contiguous() == t.is_contiguous()
        if axis is None:                # (torch cannot transpose a per-channel tensor)
            assert q.transpose(0, 2).stride() == tuple(t.transpose(0, 2).stride())
            assert q.transpose(0, 2).is_contiguous() == t.transpose(0, 2).is_contiguous()
        assert q.requires_grad is t.requires_grad is False
        assert q.cpu() is q and q.to("cpu") is q and q.to(q.dtype) is q
        d = q.detach()
        assert d is not q and d == q
        u = q.unsqueeze(0).expand(2, -1, -1, -1) if axis is None else q.unsqueeze(0)
        if axis is None:
            assert u.stride() == tuple(t.unsqueeze(0).expand(2, -1, -1, -1).stride())
    with pytest.raises(ValueError, match="one element"):
        q.item()
    with pytest.raises(TypeError, match="dequantize"):
        q.to(ql.float32)


# ---- bad input ------------------------------------------------------------------------------
BAD = [
    (lambda q: q.flatten(2, 1), ValueError, "`start_dim` must not come after"),
    (lambda q: q.flatten(3), ValueError, "`start_dim` must be in"),
    (lambda q: q.flatten(0, -4), ValueError, "`end_dim` must be in"),
    (lambda q: q.flatten(1.0), TypeError, "`start_dim` must be an integer"),
    (lambda q: q.squeeze(3), ValueError, "`dim` must be in"),
    (lambda q: q.squeeze((0, 0)), ValueError, "`dim` must not name an axis twice"),
    (lambda q: q.squeeze(True), TypeError, "`dim` must be an integer"),
    (lambda q: q.unsqueeze(4), ValueError, r"`dim` must be in \[-4, 3\]"),
    (lambda q: q.unsqueeze(-5), ValueError, "`dim` must be in"),
    (lambda q: q.unsqueeze(1.0), TypeError, "`dim` must be an integer"),
    (lambda q: q.t(), ValueError, "at most 2 dimensions"),
    (lambda q: q.select(1, 3), ValueError, r"`index` must be in \[-3, 2\]"),
    (lambda q: q.select(3, 0), ValueError, "`dim` must be in"),
    (lambda q: q.select(0, 0.5), TypeError, "`index` must be an integer"),
    (lambda q: q.narrow(1, 2, 2), ValueError, "`start` \\+ `length` must be at most 3"),
    (lambda q: q.narrow(1, -4, 1), ValueError, "`start` must be in"),
    (lambda q: q.narrow(1, 0, -1), ValueError, "`length` must be non-negative"),
    (lambda q: q.chunk(0, 1), ValueError, "`chunks` must be a positive integer"),
    (lambda q: q.chunk(-1), ValueError, "`chunks` must be non-negative"),
    (lambda q: q.split(0, 1), ValueError, "can be 0 only"),
    (lambda q: q.split(-1, 1), ValueError, "must be non-negative"),
    (lambda q: q.split([1, 1], 1), ValueError, "must sum to 3"),
    (lambda q: q.split(2.0, 1), TypeError, "`split_size_or_sections` must be an integer"),
    (lambda q: q.flip(1, 1), ValueError, "`dims` must not name an axis twice"),
    (lambda q: q.flip(3), ValueError, "`dims` must be in"),
    (lambda q: q.expand(3, 4), ValueError, "at least 3 sizes"),
    (lambda q: q.expand(2, 3, 5), ValueError, "keep the length 4 of dimension 2"),
    (lambda q: q.expand(-1, 2, 3, 4), ValueError, "non-negative"),
    (lambda q: q.expand(2, 3, 4.0), TypeError, "`sizes` must be integers"),
    (lambda q: q.repeat(2, 2), ValueError, "at least 3 repeats"),
    (lambda q: q.repeat(1, -1, 1), ValueError, "`sizes` must be non-negative"),
    (lambda q: q.view_as(3), TypeError, "`other` must be a tensor"),
    (lambda q: q.unflatten(1, (2, 2)), ValueError, "`sizes` must multiply to 3"),
    (lambda q: q.unflatten(1, (-1, -1)), ValueError, "at most one -1"),
    (lambda q: q.unflatten(1, 3), TypeError, "`sizes` must be a non-empty tuple"),
    (lambda q: q.unflatten(3, (1, 3)), ValueError, "`dim` must be in"),
    (lambda q: q.movedim((0, 1), 2), ValueError, "as many axes"),
    (lambda q: q.movedim(0, 3), ValueError, "`destination` must be in"),
    (lambda q: q.movedim((0, 0), (1, 2)), ValueError, "`source` must not name"),
    (lambda q: q.stride(5), ValueError, "`dim` must be in"),
]


@pytest.mark.parametrize("axis", [None, 1], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("fn, exc, match", BAD)
def test_bad_input(torch_mod, fn, exc, match, axis):
    torch = torch_mod
    q, t = _pair(torch, (2, 3, 4), axis, "qint8")
    with pytest.raises(exc, match=match):
        fn(q)
    if exc is ValueError and "stride" not in match and "chunks` must be non" not in match:
        with pytest.raises((RuntimeError, IndexError, ValueError, TypeError)):
            fn(t)                               # torch refuses the same input too


def test_per_channel_indexing_refusals():
    q = ql.quantize_per_channel(np.ones((2, 3)), [0.1, 0.2, 0.3], [0, 0, 0], 1, ql.qint8)
    for key in ([0, 1], np.array([True, False]), (slice(None), [0, 2]), True):
        with pytest.raises(TypeError, match="basic indexing only"):
            q[key]


# ---- the doctests of the compiled class (pytest --doctest-modules cannot see them) ---------
@pytest.mark.parametrize("name", sorted(n for n, v in vars(ql.QTensor).items()
                                        if ">>>" in (getattr(v, "__doc__", None) or "")))
def test_qtensor_method_doctests(name):
    doc = vars(ql.QTensor)[name].__doc__
    test = doctest.DocTestParser().get_doctest(doc, {}, f"QTensor.{name}", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def test_qtensor_class_doctest():
    test = doctest.DocTestParser().get_doctest(ql.QTensor.__doc__, {}, "QTensor", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


# ---- property test: chains of views against NumPy on the integers and the reals --------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _numpy_twin(name, a, args):
    if name == "flatten":
        s, e = args
        merged = (int(np.prod(a.shape[s:e + 1])),)        # (-1 cannot size an empty axis)
        return a.reshape(a.shape[:s] + merged + a.shape[e + 1:]) if a.ndim else a.reshape(1)
    if name == "unsqueeze":
        return np.expand_dims(a, args[0])
    if name == "squeeze":
        return np.squeeze(a, axis=args[0]) if a.shape[args[0]] == 1 else a
    if name == "transpose":
        return np.swapaxes(a, *args)
    if name == "movedim":
        return np.moveaxis(a, *args)
    if name == "narrow":
        d, s, ln = args
        return a[(slice(None),) * d + (slice(s, s + ln),)]
    if name == "select":
        d, i = args
        return a[(slice(None),) * d + (i,)]
    if name == "flip":
        return np.flip(a, args[0])
    if name == "repeat":
        return np.tile(a, args)
    raise AssertionError(name)


@st.composite
def _chain(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    axis = draw(st.one_of(st.none(), st.integers(0, ndim - 1)))
    return shape, axis, draw(st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=5))


@given(_chain())
def test_view_chains_follow_numpy(case):
    shape, axis, seeds = case
    rng = np.random.default_rng(seeds[0])
    x = rng.standard_normal(shape).astype(np.float32)
    if axis is None:
        q = ql.quantize_per_tensor(x, 0.05, 3, ql.qint8)
    else:
        c = shape[axis]
        q = ql.quantize_per_channel(x, rng.uniform(0.01, 0.2, c), rng.integers(-5, 5, c),
                                    axis, ql.qint8)
    for seed in seeds:
        r = np.random.default_rng(seed)
        n = q.ndim
        names = ["unsqueeze", "repeat"] + (["flatten", "squeeze", "transpose", "movedim",
                                            "narrow", "select", "flip"] if n else [])
        name = names[int(r.integers(len(names)))]
        if name == "flatten":
            s = int(r.integers(n))
            args = (s, int(r.integers(s, n)))
        elif name == "unsqueeze":
            args = (int(r.integers(n + 1)),)
        elif name in ("squeeze", "flip"):
            args = (int(r.integers(n)),)
        elif name in ("transpose", "movedim"):
            args = (int(r.integers(n)), int(r.integers(n)))
        elif name == "narrow":
            d = int(r.integers(n))
            s = int(r.integers(q.shape[d] + 1))
            args = (d, s, int(r.integers(q.shape[d] - s + 1)))
        elif name == "select":
            d = int(r.integers(n))
            if q.shape[d] == 0:
                continue
            args = (d, int(r.integers(q.shape[d])))
        else:
            args = tuple(int(v) for v in r.integers(1, 3, n + int(r.integers(2))))
        try:
            got = getattr(q, name)(*args)
        except ValueError as e:           # only a reshape that merges the channel axis
            assert name == "flatten" and "channel axis" in str(e), (name, args, e)
            continue
        _consistent(got)
        assert_ints = _numpy_twin(name, q.int_repr(), args)
        np.testing.assert_array_equal(got.int_repr(), assert_ints, err_msg=f"{name}{args}")
        np.testing.assert_allclose(got.dequantize(), _numpy_twin(name, q.dequantize(), args),
                                   rtol=2e-7, atol=0, err_msg=f"{name}{args}")
        q = got
