"""4-bit ``quint4x2`` embedding tables against PyTorch 2.13: the dtype, quantize_per_channel
with float qparams and its packed ``int_repr()``, the observers and qconfigs, the 4-bit
lookups and ``nnq.Embedding`` / ``nnq.EmbeddingBag`` with ``dtype=quint4x2``.

Deliberate differences, asserted as qlearn's behaviour:

* ``quantize_per_tensor`` with quint4x2 requires ``zero_point`` in [0, 15] (torch lets 16
  and up through); per-channel quint4x2 needs float zero points (torch has no integer
  per-channel path either: "not implemented");
* torch's 4-bit kernels need an even ``embedding_dim`` (an odd one reads rows at the wrong
  offsets); qlearn packs each row on its own bytes and is checked there against torch on a
  table one column wider;
* torch's ``nnq.Embedding.from_float`` with the 4-bit qconfig builds a quint8 module and
  fails at the first lookup; qlearn keeps the observer's dtype (compared with torch's
  module built with ``dtype=torch.quint4x2`` by hand);
* ``int_repr()`` of a strided view packs the view's values in C order (torch refuses).
"""
import contextlib
import io
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import qlearn as ql
import qlearn.nn.quantized as nnq
import qlearn.quantization as tq
from qlearn import nn
from qlearn import reference as ref
from qlearn.float_qparams import PackedEmbeddingWeight, embedding_bag_4bit

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FQ = ql.per_channel_affine_float_qparams


def _qparams(w, axis=0):
    obs = tq.default_float_qparams_observer_4bit.with_args(ch_axis=axis)()
    obs(w)
    return obs.calculate_qparams()


def _both(torch, w, axis=0):
    s, z = _qparams(w, axis)
    return (ql.quantize_per_channel(w, s, z, axis, ql.quint4x2),
            torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(s),
                                       torch.from_numpy(z), axis, torch.quint4x2))


# ---- the dtype ------------------------------------------------------------------------------
def test_dtype(torch_mod):
    torch = torch_mod
    d = ql.quint4x2
    assert (d.quant_min, d.quant_max, d.bits, d.storage, d.is_signed) == (0, 15, 4,
                                                                         np.uint8, False)
    assert repr(d) == str(torch.quint4x2).replace("torch", "qlearn")
    assert ql.dtypes.DTYPES["quint4x2"] is d
    import copy
    import pickle
    assert copy.deepcopy(d) is d and pickle.loads(pickle.dumps(d)) is d
    assert tq.calculate_qmin_qmax(None, None, False, d, True) == (0, 15)   # as torch


# ---- quantize / dequantize / int_repr ---------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((5, 6), 0), ((5, 5), 0), ((3, 1), 0), ((1, 7), 0),
                                        ((4, 3, 2), 1), ((2, 3, 5), 2), ((7,), 0),
                                        ((6, 4), 1), ((0, 3), 1)])
def test_quantize_per_channel_equals_torch(shape, axis, torch_mod, rng):
    torch = torch_mod
    c = shape[axis]
    view = [1] * len(shape)
    view[axis] = c
    for trial in range(12):
        s = rng.uniform(0.05, 1, c).astype(np.float32)
        z = rng.uniform(-5, 20, c).astype(np.float32)
        x = (rng.standard_normal(shape) * rng.choice([0.1, 1, 10])).astype(np.float32)
        if trial % 3 == 0:                       # ties: (k - Z + 1/2) S, and clamping
            x = ((rng.integers(-3, 19, shape) - z.reshape(view) + 0.5)
                 * s.reshape(view)).astype(np.float32)
        t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(s),
                                       torch.from_numpy(z), axis, torch.quint4x2)
        for ax in (axis, axis - len(shape)):
            q = ql.quantize_per_channel(x, s, z, ax, ql.quint4x2)
            where = f"shape {shape}, axis {ax}, trial {trial}"
            ir = q.int_repr()
            assert ir.dtype == np.uint8 and ir.shape == tuple(t.int_repr().shape), where
            assert_array_equal(ir, t.int_repr().numpy(), err_msg=where)
            assert_array_equal(q.dequantize(), t.dequantize().numpy(), err_msg=where)
            assert_array_equal(q.q_per_channel_scales(), t.q_per_channel_scales().numpy())
            assert_array_equal(q.q_per_channel_zero_points(),
                               t.q_per_channel_zero_points().numpy())
            assert q.q_per_channel_axis() == t.q_per_channel_axis()
            assert q.qscheme() is FQ and q.dtype is ql.quint4x2
            assert q.element_size() == t.element_size() and q.nbytes == t.nbytes
            assert q.numel() == t.numel() and q.shape == tuple(t.shape)
            assert repr(q) == repr(t).replace("torch", "qlearn"), where


def test_int_repr_layout_by_hand():
    q = ql.quantize_per_channel([[0.0, 1.0, 2.0], [3.0, 4.0, 20.0]], [1.0, 1.0],
                                np.zeros(2, np.float32), 0, ql.quint4x2)
    # values 0 1 2 | 3 4 15 (20 clamps), two a byte, low nibble first, across rows
    assert_array_equal(q.int_repr(), [0 | 1 << 4, 2 | 3 << 4, 4 | 15 << 4])
    # a view packs its own values in C order (torch refuses a strided quint4x2 view)
    v = q[:, 1:]
    assert_array_equal(v.int_repr(), [1 | 2 << 4, 4 | 15 << 4])
    assert_array_equal(q.t().int_repr(), [0 | 3 << 4, 1 | 4 << 4, 2 | 15 << 4])
    assert_array_equal(v.dequantize(), [[1, 2], [4, 15]])
    assert v.q_per_channel_axis() == 0 and v.dtype is ql.quint4x2


def test_views_and_serialization_keep_the_table(tmp_path, rng):
    w = rng.standard_normal((6, 8)).astype(np.float32)
    s, z = _qparams(w)
    q = ql.quantize_per_channel(w, s, z, 0, ql.quint4x2)
    assert q.clone() == q and q.narrow(0, 2, 3).q_per_channel_scales().tolist() == \
        s[2:5].tolist()
    for part, rows in zip(q.chunk(3), np.split(np.arange(6), 3)):
        assert_array_equal(part.dequantize(), q.dequantize()[rows])
    buf = io.BytesIO()
    ql.save({"w": q, "parts": list(q.split(4))}, buf)
    buf.seek(0)
    back = ql.load(buf)
    assert back["w"] == q and back["w"].dtype is ql.quint4x2
    assert_array_equal(back["w"].int_repr(), q.int_repr())
    assert back["parts"][1] == q[4:]
    with pytest.raises(ValueError, match="float zero point"):
        q.select(0, 1)


@pytest.mark.parametrize("zero_point", [0, 1, 3, 8, 15])
def test_quantize_per_tensor_equals_torch(zero_point, torch_mod, rng):
    torch = torch_mod
    for trial, shape in enumerate([(7,), (3, 5), (2, 3, 4), (), (0, 2), (1,)] * 3):
        scale = float(np.float32(rng.choice([0.05, 0.37, 1.0, 2.5]) * rng.uniform(0.5, 2)))
        x = (rng.standard_normal(shape) * 4).astype(np.float32)
        if trial % 2:                     # ties (k + 1/2) S, where the order of the
            x = ((rng.integers(-4, 18, shape) + 0.5) * np.float32(scale)).astype(np.float32)
        t = torch.quantize_per_tensor(torch.from_numpy(x) if x.ndim else torch.tensor(x),
                                      scale, zero_point, torch.quint4x2)
        q = ql.quantize_per_tensor(x, scale, zero_point, ql.quint4x2)
        where = f"shape {shape}, S={scale}, Z={zero_point}"
        assert_array_equal(q.int_repr(), t.int_repr().numpy(), err_msg=where)
        assert_array_equal(q.dequantize(), t.dequantize().numpy(), err_msg=where)
        assert q.q_scale() == t.q_scale() and q.q_zero_point() == t.q_zero_point()
        assert q.qscheme() is ql.per_tensor_affine and q.shape == tuple(t.shape)
        assert repr(q) == repr(t).replace("torch", "qlearn"), where
    # rounding before adding Z: 0.5 -> 0 (+1 = 1), where round(0.5 + 1) would give 2
    assert ql.quantize_per_tensor([0.5, 1.5], 1.0, 1, ql.quint4x2).int_repr().tolist() == \
        [1 | 3 << 4]


BAD = [
    (lambda: ql.quantize_per_tensor([0.5], 0.1, 16, ql.quint4x2), ValueError,
     r"`zero_point` must be in \[0, 15\]"),
    (lambda: ql.quantize_per_tensor([np.inf], 0.1, 0, ql.quint4x2), ValueError, "finite"),
    (lambda: ql.quantize_per_channel(np.ones((2, 2)), [1.0, 1.0], [0, 0], 0, ql.quint4x2),
     ValueError, "`dtype`"),
    (lambda: ql.QTensor(np.full((2, 2), 16, np.uint8), ql.quint4x2, FQ,
                        scales=[1.0, 1.0], zero_points=np.zeros(2, np.float32), axis=0),
     ValueError, r"values in \[0, 15\]"),
    (lambda: ql.QTensor(np.full(2, 16, np.uint8), ql.quint4x2, ql.per_tensor_affine, 1.0,
                        0), ValueError, r"values in \[0, 15\]"),
    (lambda: ql.QTensor(np.zeros(2, np.uint8), ql.quint4x2, ql.per_channel_affine,
                        scales=[1.0, 1.0], zero_points=[0, 0], axis=0),
     ValueError, "per_channel_affine_float_qparams"),
    (lambda: ql.QTensor(np.zeros(2, np.int8), ql.quint4x2, FQ, scales=[1.0, 1.0],
                        zero_points=np.zeros(2, np.float32), axis=0), TypeError, "uint8"),
    (lambda: ql.quantize_per_channel(np.array([[np.nan]], np.float32), [1.0],
                                     np.zeros(1, np.float32), 0, ql.quint4x2),
     ValueError, "finite"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_torch_differs_where_documented(torch_mod):
    torch = torch_mod
    # torch's per-tensor quint4x2 takes Z = 16 (and clamps everything to 15)
    t = torch.quantize_per_tensor(torch.tensor([0.5]), 1.0, 16, torch.quint4x2)
    assert t.int_repr().tolist() == [15]
    with pytest.raises(RuntimeError, match="not implemented"):
        torch.quantize_per_channel(torch.ones(2, 2), torch.ones(2, dtype=torch.float64),
                                   torch.zeros(2, dtype=torch.long), 0, torch.quint4x2)


# ---- observers and qconfigs -------------------------------------------------------------------
def test_observers_and_qconfig_equal_torch(torch_mod, rng):
    torch = torch_mod
    import torch.ao.quantization as ttq
    qc, tqc = tq.float_qparams_weight_only_qconfig_4bit, ttq.float_qparams_weight_only_qconfig_4bit
    assert repr(qc).replace("qlearn.quantization", "torch.ao.quantization").replace(
        "qlearn.", "torch.") == repr(tqc)
    for shape in [(5, 6), (7, 3), (1, 1), (4, 9), (3, 40)]:
        w = (rng.standard_normal(shape) * rng.choice([1e-3, 1, 100])).astype(np.float32)
        w[0] = 0.3                                 # a constant row: scale 1 (the eps rule)
        o, to = qc.weight(), tqc.weight()
        assert (o.quant_min, o.quant_max) == (to.quant_min, to.quant_max) == (0, 15)
        o(w)
        to(torch.from_numpy(w))
        (s, z), (ts, tz) = o.calculate_qparams(), to.calculate_qparams()
        assert s.dtype == z.dtype == np.float32
        assert_array_equal(s, ts.numpy())
        assert_array_equal(z, tz.numpy())
    for cls in ("MinMaxObserver", "MovingAverageMinMaxObserver"):
        for rr in (False, True):
            o = getattr(tq, cls)(dtype=ql.quint4x2, reduce_range=rr)
            to = getattr(ttq, cls)(dtype=torch.quint4x2, reduce_range=rr)
            x = rng.standard_normal(50).astype(np.float32)
            o(x)
            to(torch.from_numpy(x))
            (s, z), (ts, tz) = o.calculate_qparams(), to.calculate_qparams()
            assert (o.quant_min, o.quant_max) == (to.quant_min, to.quant_max)
            assert_array_equal(s, ts.numpy())
            assert_array_equal(z, tz.numpy())


# ---- the 4-bit lookup ---------------------------------------------------------------------------
def _torch_bag(torch, t, idx, off, psw, include_last_offset=False):
    packed = torch.ops.quantized.embedding_bag_prepack(t)
    return torch.ops.quantized.embedding_bag_4bit(
        packed, torch.from_numpy(idx), torch.from_numpy(off), False, 0, False,
        None if psw is None else torch.from_numpy(psw), None, include_last_offset).numpy()


def test_embedding_bag_4bit_equals_torch(torch_mod, rng):
    torch = torch_mod
    for trial in range(60):
        n, d = int(rng.integers(1, 20)), int(rng.choice([2, 4, 6, 16, 30, 64]))
        w = (rng.standard_normal((n, d)) * rng.choice([0.01, 1, 50])).astype(np.float32)
        q, t = _both(torch, w)
        length = int(rng.integers(0, 30))
        idx = rng.integers(0, n, length)
        off = np.sort(rng.integers(0, length + 1, int(rng.integers(1, 6))))
        off[0] = 0
        psw = rng.standard_normal(length).astype(np.float32) if trial % 2 else None
        want = _torch_bag(torch, t, idx, off, psw)
        got = embedding_bag_4bit(q, idx, np.append(off, length), psw)
        assert_array_equal(got, want, err_msg=f"trial {trial}: N={n}, D={d}")
    # the prepacked table: torch's unpack gives the QTensor back, to the bit
    ops = torch.ops.quantized
    unpacked = ops.embedding_bag_unpack(ops.embedding_bag_prepack(t))
    assert_array_equal(unpacked.int_repr().numpy(), q.int_repr())


def test_lookup_rounds_scale_and_bias_to_float16(rng):
    w = rng.standard_normal((9, 7)).astype(np.float32)       # odd D: rows on their own bytes
    s, z = _qparams(w)
    q = ql.quantize_per_channel(w, s, z, 0, ql.quint4x2)
    p = PackedEmbeddingWeight(q)
    assert p.ints.shape == (9, 4) and p.bits == 4
    vals = np.stack([p.ints & 15, p.ints >> 4], 2).reshape(9, 8)[:, :7]
    ir = q.int_repr()                                          # flat: crosses rows
    assert_array_equal(vals, np.stack([ir & 15, ir >> 4], 1).reshape(-1)[:63].reshape(9, 7))
    s16 = s.astype(np.float16).astype(np.float32)
    b16 = (-(z * s)).astype(np.float16).astype(np.float32)
    # one row read: fma(S16, q, b16), one rounding
    want = ref.embedding_bag_4bit_ref(p.ints, s16, b16, np.arange(9), np.arange(10),
                                      embedding_dim=7)
    assert_array_equal(embedding_bag_4bit(q, np.arange(9), np.arange(10)), want)
    assert_allclose(want, q.dequantize(), atol=float(np.abs(z * s).max()) * 2 ** -10 + 1e-6)


def test_odd_embedding_dim_against_torch_on_a_wider_table(torch_mod, rng):
    torch = torch_mod
    for d in (1, 3, 7, 33):
        w = rng.standard_normal((11, d)).astype(np.float32)
        wide = np.concatenate([w, w[:, :1]], axis=1)       # same row ranges: same qparams
        q, _ = _both(torch, w)
        _, t = _both(torch, wide)
        idx, off = rng.integers(0, 11, 25), np.array([0, 3, 3, 10])
        psw = rng.standard_normal(25).astype(np.float32)
        for weights in (None, psw):
            want = _torch_bag(torch, t, idx, off, weights)[:, :d]
            assert_array_equal(embedding_bag_4bit(q, idx, np.append(off, 25), weights), want)


def test_lookup_is_thread_count_independent(num_threads, rng):
    w = rng.standard_normal((300, 64)).astype(np.float32)
    s, z = _qparams(w)
    q = ql.quantize_per_channel(w, s, z, 0, ql.quint4x2)
    idx = rng.integers(0, 300, 5000)
    bounds = np.append(np.sort(rng.integers(0, 5000, 40)), 5000)
    bounds[0] = 0
    psw = rng.standard_normal(5000).astype(np.float32)
    got = embedding_bag_4bit(q, idx, bounds, psw)
    from qlearn.kernels import float_qparams as kfq
    p = PackedEmbeddingWeight(q)
    serial = np.empty_like(got)
    kfq.embedding_bag_4bit(p.ints, p.scales, p.biases, idx, bounds, psw, 0, serial,
                           num_threads=1)
    assert_array_equal(got, serial)


# ---- the modules ----------------------------------------------------------------------------
def _float_bag(torch, w, **kw):
    ours = nn.EmbeddingBag(*w.shape, _weight=w, **kw)
    theirs = torch.nn.EmbeddingBag(*w.shape, _weight=torch.from_numpy(w.copy()), **kw)
    return ours, theirs


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_quantized_embedding_bag_equals_torch(weighted, include_last_offset, torch_mod, rng):
    torch = torch_mod
    import torch.ao.nn.quantized as tnnq
    import torch.ao.quantization as ttq
    w = rng.standard_normal((50, 36)).astype(np.float32)
    fo, ft = _float_bag(torch, w, mode="sum", include_last_offset=include_last_offset)
    fo.qconfig = tq.float_qparams_weight_only_qconfig_4bit
    ft.qconfig = ttq.float_qparams_weight_only_qconfig_4bit
    ours, theirs = nnq.EmbeddingBag.from_float(fo), tnnq.EmbeddingBag.from_float(ft)
    assert repr(ours) == repr(theirs).replace("torch.", "qlearn.")
    assert ours.dtype is ql.quint4x2 and ours.weight().dtype is ql.quint4x2
    assert_array_equal(ours.weight().int_repr(), theirs.weight().int_repr().numpy())
    for _ in range(8):
        idx = rng.integers(0, 50, 40)
        off = np.sort(rng.integers(0, 41, 5))
        off[0] = 0
        if include_last_offset:
            off = np.append(off, 40)
        psw = rng.standard_normal(40).astype(np.float32) if weighted else None
        got = ours(idx, off, psw).numpy()
        want = theirs(torch.from_numpy(idx), torch.from_numpy(off),
                      None if psw is None else torch.from_numpy(psw)).numpy()
        assert_array_equal(got, want)


def test_quantized_embedding_equals_torch(torch_mod, rng):
    torch = torch_mod
    import torch.ao.nn.quantized as tnnq
    import torch.ao.quantization as ttq
    w = rng.standard_normal((20, 10)).astype(np.float32)
    emb = nn.Embedding(20, 10, _weight=w)
    emb.qconfig = tq.float_qparams_weight_only_qconfig_4bit
    ours = nnq.Embedding.from_float(emb)
    assert ours.dtype is ql.quint4x2
    # torch's from_float makes a quint8 module around the 4-bit table, whose lookup
    # fails or returns rows of the wrong width
    temb = torch.nn.Embedding(20, 10, _weight=torch.from_numpy(w.copy()))
    temb.qconfig = ttq.float_qparams_weight_only_qconfig_4bit
    broken = tnnq.Embedding.from_float(temb)
    assert broken.dtype == torch.quint8 and broken.weight().dtype == torch.quint4x2
    with contextlib.suppress(RuntimeError):
        assert tuple(broken(torch.tensor([0, 3])).shape) != (2, 10)
    theirs = tnnq.Embedding(20, 10, dtype=torch.quint4x2)
    theirs.set_weight(_both(torch, w)[1])
    assert repr(ours) == repr(theirs).replace("torch.", "qlearn.")
    idx = rng.integers(0, 20, (3, 7))
    want = theirs(torch.from_numpy(idx.reshape(-1))).numpy().reshape(3, 7, 10)
    assert_array_equal(ours(idx).numpy(), want)


def test_mean_and_max_reduce_the_4bit_rows(rng):
    w = rng.standard_normal((12, 6)).astype(np.float32)
    fo = nn.EmbeddingBag(12, 6, _weight=w, mode="mean")
    fo.qconfig = tq.float_qparams_weight_only_qconfig_4bit
    q = nnq.EmbeddingBag.from_float(fo)
    p = PackedEmbeddingWeight(q.weight())
    idx, off = np.array([1, 4, 4, 9, 0]), np.array([0, 3])
    for mode in ("mean", "max"):
        q.mode = mode
        want = ref.embedding_bag_4bit_ref(p.ints, p.scales, p.biases, idx, [0, 3, 5],
                                          mode=mode, embedding_dim=6)
        assert_array_equal(q(idx, off).numpy(), want)


def test_prepare_convert_with_the_4bit_qconfig_equals_torch(torch_mod, rng):
    torch = torch_mod
    import torch.ao.quantization as ttq
    w = rng.standard_normal((30, 8)).astype(np.float32)
    fo, ft = _float_bag(torch, w, mode="sum")

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.bag = fo

        def forward(self, idx, off):
            return self.bag(idx, off)

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bag = ft

        def forward(self, idx, off):
            return self.bag(idx, off)

    mo, mt = Ours(), Theirs()
    mo.bag.qconfig = tq.float_qparams_weight_only_qconfig_4bit
    mt.bag.qconfig = ttq.float_qparams_weight_only_qconfig_4bit
    tq.prepare(mo, inplace=True)
    ttq.prepare(mt, inplace=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.convert(mo, inplace=True)
        ttq.convert(mt, inplace=True)
    assert type(mo.bag) is nnq.EmbeddingBag and mo.bag.dtype is ql.quint4x2
    assert repr(mo.bag) == repr(mt.bag).replace("torch.", "qlearn.")
    idx, off = rng.integers(0, 30, 17), np.array([0, 5, 5, 12])
    assert_array_equal(mo(idx, off).numpy(),
                       mt(torch.from_numpy(idx), torch.from_numpy(off)).numpy())


def test_state_dict_round_trip_carries_the_dtype(tmp_path, rng):
    w = rng.standard_normal((7, 6)).astype(np.float32)
    fo = nn.EmbeddingBag(7, 6, _weight=w, mode="sum")
    fo.qconfig = tq.float_qparams_weight_only_qconfig_4bit
    q = nnq.EmbeddingBag.from_float(fo)
    ql.save(q.state_dict(), tmp_path / "e.qlearn")
    other = nnq.EmbeddingBag(7, 6, mode="sum")            # a quint8 module
    other.load_state_dict(ql.load(tmp_path / "e.qlearn"))
    assert other.dtype is ql.quint4x2 and other.weight() == q.weight()
    idx, off = rng.integers(0, 7, 9), np.array([0, 4])
    assert_array_equal(other(idx, off).numpy(), q(idx, off).numpy())


def test_qat_4bit_embedding_bag_equals_torch(torch_mod, rng):
    torch = torch_mod
    import torch.ao.nn.qat as tnnqat
    import torch.ao.nn.quantized as tnnq
    import torch.ao.quantization as ttq

    import qlearn.nn.qat as nnqat
    from qlearn.quantization.qconfig import default_embedding_qat_qconfig_4bit
    w = rng.standard_normal((12, 6)).astype(np.float32)
    fo, ft = _float_bag(torch, w, mode="sum")
    fo.qconfig = default_embedding_qat_qconfig_4bit
    ft.qconfig = ttq.default_embedding_qat_qconfig_4bit
    qo, qt = nnqat.EmbeddingBag.from_float(fo), tnnqat.EmbeddingBag.from_float(ft)
    idx, off = rng.integers(0, 12, 10), np.array([0, 4])
    yo, yt = qo(idx, off), qt(torch.from_numpy(idx), torch.from_numpy(off))
    assert_array_equal(yo.numpy(), yt.detach().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        co, ct = nnq.EmbeddingBag.from_float(qo), tnnq.EmbeddingBag.from_float(qt)
    assert co.dtype is ql.quint4x2
    assert_array_equal(co.weight().int_repr(), ct.weight().int_repr().numpy())
    assert_array_equal(co(idx, off).numpy(),
                       ct(torch.from_numpy(idx), torch.from_numpy(off)).numpy())


def test_modules_reject_bad_input(rng):
    m = nnq.EmbeddingBag(4, 3, dtype=ql.quint4x2)
    assert m.weight().dtype is ql.quint4x2
    q8 = ql.quantize_per_channel(np.ones((4, 3)), [1.0] * 4, np.zeros(4, np.float32), 0,
                                 ql.quint8)
    with pytest.raises(TypeError, match="qlearn.quint4x2 QTensor"):
        m.set_weight(q8)
    with pytest.raises(TypeError, match="quint4x2 table"):
        embedding_bag_4bit(q8, np.array([0]), np.array([0, 1]))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        embedding_bag_4bit(m.weight(), np.array([4]), np.array([0, 1]))
    with pytest.raises(ValueError, match="`mode`"):
        embedding_bag_4bit(m.weight(), np.array([0]), np.array([0, 1]), mode="median")
    with pytest.raises(ValueError, match="quint8 or qlearn.quint4x2"):
        nnq.Embedding(4, 3, dtype=ql.qint8)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("d", [1, 8, 45, 64])
def test_lookup_avx2_equals_portable_loop(mode, d, num_threads, rng):
    from qlearn.kernels import simd
    w = (rng.standard_normal((300, d)) * 3).astype(np.float32)   # lanes, odd tails
    s, z = _qparams(w)
    q = ql.quantize_per_channel(w, s, z, 0, ql.quint4x2)
    idx = rng.integers(0, 300, 3000)
    bounds = np.append(np.sort(rng.integers(0, 3000, 64)), 3000)
    bounds[0] = 0
    psw = rng.standard_normal(3000).astype(np.float32) if mode == "sum" else None
    fast = embedding_bag_4bit(q, idx, bounds, psw, mode)
    with simd.use("generic"):
        plain = embedding_bag_4bit(q, idx, bounds, psw, mode)
    assert_array_equal(fast, plain)
    # and the reduction is what it says, on the largest bag
    p = PackedEmbeddingWeight(q)
    b = int(np.argmax(np.diff(bounds)))
    sel = slice(bounds[b], bounds[b + 1])
    want = ref.embedding_bag_4bit_ref(p.ints, p.scales, p.biases, idx[sel],
                                      [0, bounds[b + 1] - bounds[b]],
                                      None if psw is None else psw[sel], mode, d)
    assert_array_equal(fast[b:b + 1], want)
